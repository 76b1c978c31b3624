"""Small helpers shared by the sub-commands: argparse value types, progress bars, messages.

The ``type=`` functions here make a bad number a usage error (exit 2, with the
sub-command's usage line) at argument parsing, before anything is loaded.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from licodec.codec.files import STDIO, check_input
from licodec.errors import InputError, OutputError

__all__ = [
    "LazyBar",
    "add_device_option",
    "add_threads_option",
    "apply_threads",
    "check_device",
    "crop_box",
    "device",
    "human_bytes",
    "int_range",
    "named",
    "non_negative_int",
    "note",
    "number_pair",
    "positive_float",
    "positive_int",
    "progress_bar",
    "quality",
    "quality_list",
    "report_error",
]


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _int(text, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _int(text, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def int_range(lo: int, hi: int) -> Callable[[str], int]:
    """argparse type factory: an integer in ``lo..hi``."""

    def parse(text: str) -> int:
        value = _int(text, f"an integer in {lo}..{hi}")
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected an integer in {lo}..{hi}, got {value}")
        return value

    parse.__name__ = f"integer {lo}..{hi}"
    return parse


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _max_quality() -> int:
    from licodec.codec.container import MAX_QUALITY  # no torch: container is pure Python

    return int(MAX_QUALITY)


def quality(text: str) -> int:
    """argparse type: a quality index, 1..31 (what a .lic file can record).

    Whether a model has that quality is checked when it is loaded (exit 5).
    """
    return int_range(1, _max_quality())(text)


def quality_list(text: str) -> list[int]:
    """argparse type: comma-separated distinct qualities, e.g. ``1,3,6``."""
    parts = [v.strip() for v in text.split(",") if v.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("no quality given")
    hi = _max_quality()
    values = []
    for part in parts:
        try:
            values.append(int_range(1, hi)(part))
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated integers in 1..{hi}, got {text!r}"
            ) from None
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"a quality is listed twice in {text!r}")
    return values


def number_pair(text: str) -> tuple[float, float]:
    """argparse type: ``MIN,MAX`` with MIN < MAX (plot ranges)."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX, got {text!r}") from None
    if not hi > lo:
        raise argparse.ArgumentTypeError(f"MAX must exceed MIN, got {text!r}")
    return lo, hi


def crop_box(text: str) -> tuple[int, int, int, int]:
    """argparse type: ``X,Y,W,H`` in pixels (X, Y >= 0; W, H >= 1)."""
    try:
        parts = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected x,y,w,h in pixels, got {text!r}") from None
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"expected 4 numbers x,y,w,h, got {len(parts)}")
    x, y, w, h = parts
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"x,y must be >= 0 and w,h >= 1, got {text}")
    return x, y, w, h


def device(text: str) -> str:
    """argparse type: a device name (cpu, cuda, cuda:N, mps, auto), canonical.

    Only the spelling is checked here (no torch); whether this machine has the
    device is checked when the model loads (exit 5).
    """
    from licodec.codec.device import parse_device

    try:
        return parse_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        type=device,
        default="cpu",
        metavar="{cpu,cuda,cuda:N,mps,auto}",
        help="where the model runs (default: cpu); auto picks cuda, then mps, then cpu. "
        "The entropy coder always runs on the CPU",
    )


def check_device(name: str) -> None:
    """Fail now (exit 5) if this machine lacks device ``name``; "cpu" needs no torch."""
    if name != "cpu":
        from licodec.codec.device import resolve_device

        resolve_device(name)


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


def _bar_format(unit: str) -> str:
    # Counts and times, no rate: a tile or an image takes seconds, and tqdm's rate
    # over a bar created after the first step (LazyBar) or updated by assignment
    # is meaningless.
    return (
        "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
        + unit
        + "s [{elapsed}<{remaining}]"
    )


def _new_bar(total: int, desc: str, unit: str, initial: int = 0) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        leave=False,
        disable=None,  # hidden when stderr is not a terminal
        mininterval=0,  # steps are seconds apart: show every one
        bar_format=_bar_format(unit),
    )


def _advance(bar: Any, done: int) -> None:
    """Move ``bar`` to ``done`` through ``update`` so its time estimate is right."""
    if done > bar.n:
        bar.update(done - bar.n)


@contextmanager
def progress_bar(
    total: int, desc: str, quiet: bool, unit: str = "tile"
) -> Iterator[Callable[[int, int], None] | None]:
    """A tqdm bar on stderr when there is more than one step (hidden if not a TTY).

    While it is open, lines printed to ``sys.stderr`` go through ``tqdm.write``,
    so they appear above the bar instead of on its row.
    """
    if quiet or total <= 1:
        yield None
        return
    bar = _new_bar(total, desc, unit)

    def update(done: int, _total: int) -> None:
        _advance(bar, done)

    try:
        if bar.disable:
            yield update
        else:
            from contextlib import redirect_stderr

            from tqdm.contrib import DummyTqdmFile

            with redirect_stderr(DummyTqdmFile(sys.stderr)):
                yield update
    finally:
        bar.close()


class LazyBar:
    """A tqdm bar created on the first update that has more than one step.

    Used as a ``progress(done, total)`` callback for the tiles of one image, so
    single-tile images never show a bar. It counts tiles; its clock starts at
    the first update, so the steps done before it do not count towards the
    time estimate.
    """

    def __init__(self, name: str, disabled: bool, unit: str = "tile") -> None:
        self.name = name
        self.disabled = disabled
        self.unit = unit
        self.bar: Any = None

    def update(self, done: int, total: int) -> None:
        if self.disabled or total <= 1:
            return
        if self.bar is not None and done < self.bar.n:  # a new pass (a --size search try)
            self.close()
        if self.bar is None:
            self.bar = _new_bar(total, self.name, self.unit, initial=done)
        _advance(self.bar, done)

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


# -- inputs and outputs of the multi-file commands (compress, decompress) ---------------------


def expand_inputs(items: Iterable[str], extensions: AbstractSet[str]) -> list[str]:
    """Inputs as given, with each directory replaced by its files of ``extensions`` (sorted).

    A missing input raises :class:`InputError`; a directory without matching
    files too (a silent no-op would hide a typo).
    """
    out: list[str] = []
    for item in items:
        if item == STDIO:
            out.append(item)
            continue
        p = Path(item)
        if p.is_dir():
            files = sorted(
                str(f) for f in p.iterdir() if f.is_file() and f.suffix.lower() in extensions
            )
            if not files:
                raise InputError(f"{item}: directory has no {'/'.join(sorted(extensions))} files")
            out.extend(files)
        else:
            check_input(item)  # missing, a FIFO or a device: refused before any work
            out.append(item)
    return out


def plan_outputs(inputs: list[str], output: str | None, suffix: str, many: bool) -> list[str]:
    """Output path for each input.

    One input: ``output`` is the file, or an existing directory to write into
    (default: the input with ``suffix``; for stdin, stdout). Several inputs
    (``many``): ``output`` is a directory (created if missing; default: beside
    each input).
    """
    if not many:
        inp = inputs[0]
        if output is not None and output != STDIO and Path(output).is_dir():
            stem = "stdin" if inp == STDIO else Path(inp).stem
            return [str(Path(output) / (stem + suffix))]
        if output is not None:
            return [output]
        if inp == STDIO:
            return [STDIO]
        return [str(Path(inp).with_suffix(suffix))]
    if output == STDIO:
        raise OutputError("several inputs cannot all be written to stdout")
    if STDIO in inputs:
        raise InputError("stdin ('-') can only be used as the only input")
    if output is not None:
        d = Path(output)
        if d.exists() and not d.is_dir():
            raise OutputError(f"{output}: with several inputs, -o must be a directory")
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create directory {output}: {exc.strerror or exc}") from None
        outs = [str(d / (Path(i).stem + suffix)) for i in inputs]
    else:
        outs = [str(Path(i).with_suffix(suffix)) for i in inputs]
    seen: dict[str, str] = {}
    for i, o in zip(inputs, outs):
        key = os.path.normcase(os.path.abspath(o))
        if key in seen:
            raise OutputError(f"{seen[key]} and {i} would both be written to {o}")
        seen[key] = i
    return outs
