"""Reading inputs and writing outputs the way the CLI promises.

Every file the package writes (coded files, images, weights, checkpoints,
configs, results, plots) goes through :func:`atomic_output`: a temporary file in
the destination directory, moved into place only when complete, so an error or
an interrupt never leaves a partial file. Without ``overwrite`` the move is a
hard link, which fails atomically if the destination appeared meanwhile.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from licodec.errors import InputError, OutputError

__all__ = [
    "STDIO",
    "atomic_output",
    "check_input",
    "check_output",
    "read_bytes",
    "write_atomic",
]

#: The name that means stdin (for inputs) or stdout (for outputs).
STDIO = "-"
_CHUNK = 1 << 20


def _kind(mode: int) -> str | None:
    """What a non-regular file is, for messages (None for a regular file)."""
    for test, name in (
        (stat.S_ISREG, None),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _refuse_special(path: str, mode: int) -> None:
    kind = _kind(mode)
    if kind == "a directory":
        raise InputError(f"{path}: is a directory")
    if kind is not None:
        raise InputError(
            f"{path}: is {kind}, not a regular file (to read a stream, pass '-' "
            "and redirect it to stdin)"
        )


def check_input(path: str) -> None:
    """Refuse (before any work) an input that is missing or not a regular file or '-'."""
    if path == STDIO:
        return
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    _refuse_special(path, mode)


def _too_large(name: str, max_bytes: int) -> InputError:
    from licodec.codec.limits import format_size

    return InputError(
        f"{name}: input is larger than the limit of {format_size(max_bytes)} "
        "(raise it with --max-input)"
    )


def _read_bounded(f: BinaryIO, name: str, max_bytes: int) -> bytes:
    """At most ``max_bytes`` from ``f`` (InputError beyond), in 1 MiB reads."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = f.read(min(_CHUNK, max_bytes + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            del chunks
            raise _too_large(name, max_bytes)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_bytes(path: str, max_bytes: int | None = None) -> bytes:
    """All bytes of ``path`` (``-`` = stdin), with one-line errors.

    Reads at most ``max_bytes`` (default :data:`licodec.codec.limits.MAX_INPUT_BYTES`,
    256 MiB) whatever the file claims to hold, and refuses directories, FIFOs,
    devices and sockets: only stdin (``-``) may be a stream.
    """
    if max_bytes is None:
        from licodec.codec.limits import MAX_INPUT_BYTES

        max_bytes = MAX_INPUT_BYTES
    if path == STDIO:
        try:
            return _read_bounded(sys.stdin.buffer, "<stdin>", max_bytes)
        except OSError as exc:
            raise InputError(f"<stdin>: cannot read ({exc.strerror or exc})") from None
    check_input(path)
    try:
        # O_NONBLOCK: if the path became a FIFO since the check, opening it must not wait.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as f:
        try:
            st = os.fstat(fd)
            _refuse_special(path, st.st_mode)
            if st.st_size > max_bytes:
                raise _too_large(path, max_bytes)
            return _read_bounded(f, path, max_bytes)
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
    check_output(path, overwrite)
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)


@contextmanager
def atomic_output(
    path: str | os.PathLike[str], overwrite: bool = True, mkdir: bool = False
) -> Iterator[Path]:
    """A temporary file beside ``path`` for the caller to write; on a clean exit it is
    synced, given the permissions the umask allows and moved onto ``path``.

    Every file the package writes goes through here, so none is ever seen half
    written and none is left behind: on any error, Ctrl-C included, the temporary
    file is removed. ``overwrite=False`` fails (atomically) if ``path`` exists.
    """
    p = Path(path)
    try:
        if mkdir:
            p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        try:
            yield Path(tmp)
            _fsync(tmp)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
            if overwrite:
                os.replace(tmp, p)
            else:
                _link_no_clobber(tmp, p)
        except FileExistsError:
            raise OutputError(f"{path} exists; use -f to overwrite") from None
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        _fsync(p.parent)  # the rename itself durable (best effort)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _fsync(path: str | Path) -> None:
    """Flush ``path`` (a file, or a directory's entries) to disk; silently where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
