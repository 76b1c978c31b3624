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


def _parser_for(
    parser: argparse.ArgumentParser,
    argv: list[str],
    args: argparse.Namespace,
    unknown: list[str],
) -> argparse.ArgumentParser:
    """The sub-command's parser when the unknown arguments follow its name, else ``parser``."""
    command = getattr(args, "command", None)
    if command is None or command not in argv:
        return parser
    if any(a in argv[: argv.index(command)] for a in unknown):
        return parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub: argparse.ArgumentParser | None = action.choices.get(command)
            if sub is not None:
                return sub
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # argparse reports a sub-command's unknown option with the top-level usage;
        # the sub-command's own usage is the one that helps.
        _parser_for(parser, argv, args, unknown).error(
            f"unrecognized arguments: {' '.join(unknown)}"
        )
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
