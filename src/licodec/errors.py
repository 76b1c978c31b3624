"""Error types that the CLI turns into one-line messages and exit codes."""

from __future__ import annotations

__all__ = [
    "EXIT_ERROR",
    "EXIT_FORMAT",
    "EXIT_INPUT",
    "EXIT_MODEL",
    "EXIT_OK",
    "EXIT_OUTPUT",
    "EXIT_TARGET",
    "EXIT_USAGE",
    "FormatError",
    "InputError",
    "LicodecError",
    "ModelError",
    "OutputError",
    "TargetError",
]

EXIT_OK = 0
EXIT_ERROR = 1  # unexpected failure
EXIT_USAGE = 2  # bad command line (argparse's own code)
EXIT_INPUT = 3  # input missing, unreadable, not an image
EXIT_FORMAT = 4  # a .lic file is corrupt, truncated, foreign or from a future version
EXIT_MODEL = 5  # unknown model, missing or mismatching weights
EXIT_OUTPUT = 6  # output exists (without -f) or cannot be written
EXIT_TARGET = 7  # --size / --bpp cannot be reached with this model and image


class LicodecError(Exception):
    """Base class: an error a user can act on; ``exit_code`` is what the CLI returns."""

    exit_code = EXIT_ERROR


class InputError(LicodecError):
    exit_code = EXIT_INPUT


class FormatError(LicodecError):
    exit_code = EXIT_FORMAT


class ModelError(LicodecError):
    exit_code = EXIT_MODEL


class OutputError(LicodecError):
    exit_code = EXIT_OUTPUT


class TargetError(LicodecError):
    """A requested file size or bpp that the model cannot reach for this image."""

    exit_code = EXIT_TARGET
