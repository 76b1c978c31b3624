"""Reading inputs and writing outputs the way the CLI promises.

Outputs are written to a temporary file in the destination directory and moved
into place only when complete, so an error or an interrupt never leaves a
partial file. Without ``overwrite`` the move is a hard link, which fails
atomically if the destination appeared meanwhile.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from licodec.errors import InputError, OutputError

__all__ = [
    "STDIO",
    "check_output",
    "expand_inputs",
    "plan_outputs",
    "read_bytes",
    "write_atomic",
]

#: The name that means stdin (for inputs) or stdout (for outputs).
STDIO = "-"


def read_bytes(path: str, max_bytes: int | None = None) -> bytes:
    """All bytes of ``path`` (``-`` = stdin), with one-line errors."""
    if path == STDIO:
        return sys.stdin.buffer.read()
    p = Path(path)
    try:
        if p.is_dir():
            raise InputError(f"{path}: is a directory")
        size = p.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise InputError(f"{path}: file is larger than {max_bytes} bytes")
        return p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def check_output(path: str, overwrite: bool) -> None:
    """Fail early (before any work) if ``path`` cannot be a new output file."""
    if path == STDIO:
        return
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{path}: is a directory")
    if p.exists() and not overwrite:
        raise OutputError(f"{path} exists; use -f to overwrite")
    parent = p.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {path}: permission denied")


def write_atomic(path: str, data: bytes, overwrite: bool) -> None:
    """Write ``data`` to ``path`` (``-`` = stdout) all at once or not at all."""
    if path == STDIO:
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except (BrokenPipeError, OSError) as exc:
            raise OutputError(f"cannot write to stdout ({exc.strerror or exc})") from None
        return
    p = Path(path)
    check_output(path, overwrite)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())
            if overwrite:
                os.replace(tmp, p)
            else:
                _link_no_clobber(tmp, p)
        except FileExistsError:
            raise OutputError(f"{path} exists; use -f to overwrite") from None
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _link_no_clobber(tmp: str, dest: Path) -> None:
    try:
        os.link(tmp, dest)
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            # File systems without hard links: best effort check-then-move.
            if dest.exists():
                raise FileExistsError(str(dest)) from None
            os.replace(tmp, dest)
            return
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def expand_inputs(items: Iterable[str], extensions: set[str]) -> list[str]:
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
        elif not p.exists():
            raise InputError(f"{item}: no such file")
        else:
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
