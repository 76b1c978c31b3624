"""The ``licodec`` command: one parser, one module per sub-command.

Each module in ``COMMANDS`` exposes ``register(subparsers)``, which adds its
parser and sets ``func(args) -> int``. Heavy imports (torch, models) happen
inside ``func`` so that ``licodec --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from licodec.errors import EXIT_ERROR, LicodecError

# Module names under licodec.cli, in the order they appear in --help.
COMMANDS = (
    "demo",
    "compress",
    "decompress",
    "info",
    "zoo",
    "import_checkpoint",
    "train",
    "eval",
    "baselines",
    "bd_rate",
    "plot",
    "compare",
    "bitmap",
)


def build_parser() -> argparse.ArgumentParser:
    from licodec import __version__

    parser = argparse.ArgumentParser(
        prog="licodec",
        description="Learned image compression (WACNN, STF, TCM) with real bitstreams.",
    )
    parser.add_argument("--version", action="version", version=f"licodec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"licodec.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"licodec.cli.{name}":
                continue  # command not part of this build
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    # CompressAI 1.2.8 calls torch.jit.script at import; users need not see that.
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except LicodecError as exc:
        print(f"licodec: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("licodec: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("licodec: error: out of memory", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
