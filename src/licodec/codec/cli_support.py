"""Small helpers shared by the ``compress``, ``decompress`` and ``info`` commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "LazyBar",
    "add_threads_option",
    "apply_threads",
    "human_bytes",
    "named",
    "note",
    "positive_int",
    "progress_bar",
    "report_error",
]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="CPU threads for the model (default: torch's default, one per core)",
    )


def add_max_pixels_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-pixels",
        type=positive_int,
        default=None,
        metavar="N",
        help="largest declared image accepted (default: 2^28 pixels)",
    )


def apply_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


@contextmanager
def progress_bar(
    total: int, desc: str, quiet: bool, unit: str = "tile"
) -> Iterator[Callable[[int, int], None] | None]:
    """A tqdm bar on stderr when there is more than one step (hidden if not a TTY)."""
    if quiet or total <= 1:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, disable=None)

    def update(done: int, _total: int) -> None:
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


class LazyBar:
    """A tqdm bar created on the first update that has more than one step.

    Used as a ``progress(done, total)`` callback for the tiles of one image, so
    single-tile images never show a bar.
    """

    def __init__(self, name: str, disabled: bool, unit: str = "tile") -> None:
        self.name = name
        self.disabled = disabled
        self.unit = unit
        self.bar: Any = None

    def update(self, done: int, total: int) -> None:
        if self.disabled or total <= 1:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                desc=self.name,
                unit=self.unit,
                file=sys.stderr,
                leave=False,
                disable=None,
            )
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.2f} MiB"


def note(name: str, message: str, quiet: bool) -> None:
    if not quiet:
        print(f"licodec: note: {name}: {message}", file=sys.stderr)


def named(exc: Exception, name: str) -> Exception:
    """The same error type with ``name: `` in front of its message (if not there yet)."""
    text = str(exc)
    if text.startswith(f"{name}:"):
        return exc
    new = type(exc)(f"{name}: {text}")
    return new


def report_error(exc: Exception) -> None:
    print(f"licodec: error: {exc}", file=sys.stderr)


def for_each_file(
    inputs: list[str],
    outputs: list[str],
    one: Callable[[str, str, bool], None],
    label: str,
    quiet: bool,
) -> int:
    """Run ``one(input, output, False)`` over several files with a progress bar.

    A failing file does not stop the rest: each error is reported and the
    first error's exit code is returned. A single file runs as
    ``one(input, output, True)`` (its own tile progress) and its error propagates.
    """
    from licodec.errors import EXIT_OK, LicodecError

    if len(inputs) == 1:
        one(inputs[0], outputs[0], True)
        return EXIT_OK
    rc = EXIT_OK
    with progress_bar(len(inputs), label, quiet, unit="image") as update:
        for k, (inp, out) in enumerate(zip(inputs, outputs)):
            try:
                one(inp, out, False)
            except LicodecError as exc:
                report_error(exc)
                rc = rc or exc.exit_code
            if update is not None:
                update(k + 1, len(inputs))
    return rc
