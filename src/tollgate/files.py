"""The files tollgate reads and writes, each by one rule.

Reading (`open_regular`): a file given as input (`download add FILE`, a catalog's `file =`, a blob
being copied) is opened without blocking (O_NONBLOCK, so a FIFO without a writer can't hang the
open), checked with fstat on the opened descriptor, and read from that same descriptor: anything
but a regular file (a folder, FIFO, device such as /dev/zero, socket) is refused, so there is no
window between the check and the read. With `inside`, the path, symlinks resolved, must also lie
within that folder; it is then opened from the folder one component at a time with O_NOFOLLOW, so a
component swapped for a symlink after the check fails instead of leading out.

Writing (`write_atomic`): a new temp file in the target's folder (created exclusively, permissions
as the umask allows) is filled, flushed, fsynced and renamed onto the target, and the folder is
fsynced: the target is the old complete file or the new complete one, never half of one. If
filling fails, the temp file is removed and the target is untouched.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal, TextIO, overload

from tollgate.errors import InvalidInput, StorageError

_CLOEXEC = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | _CLOEXEC
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FOLDER = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def open_regular(path: str | os.PathLike, *, inside: str | os.PathLike | None = None,
                 folder_name: str = "the folder") -> BinaryIO:
    """Open a regular file for reading (binary); anything else is one InvalidInput, never a hang.

    `inside`: the file must be within this folder once symlinks are resolved ("'...' is outside
    {folder_name} (...)" otherwise)."""
    shown = str(path)
    try:
        fd = os.open(path, _READ) if inside is None else _open_inside(Path(path), Path(inside), folder_name)
    except OSError as exc:
        raise cannot_read(exc, shown) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise InvalidInput(f"'{shown}' is a folder, not a file.")
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "a special file")
            raise InvalidInput(f"'{shown}' is {kind}, not a regular file; only regular files are read.")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def cannot_read(exc: OSError, shown: str) -> InvalidInput:
    """The one sentence for a file that can't be opened for reading."""
    if isinstance(exc, FileNotFoundError):
        return InvalidInput(f"There is no file '{shown}'.")
    if isinstance(exc, IsADirectoryError):
        return InvalidInput(f"'{shown}' is a folder, not a file.")
    if isinstance(exc, PermissionError):
        return InvalidInput(f"'{shown}' cannot be read (permission denied).")
    return InvalidInput(f"'{shown}' cannot be opened: {exc.strerror or exc}.")  # ELOOP, ENXIO (a socket), ...


def _open_inside(path: Path, folder: Path, folder_name: str) -> int:
    base = Path(os.path.realpath(folder))
    real = Path(os.path.realpath(path))
    try:
        parts = real.relative_to(base).parts
    except ValueError:
        raise InvalidInput(f"'{path}' is outside {folder_name} ({base}), symlinks resolved; "
                           "only files inside it are read.") from None
    if not parts:
        raise IsADirectoryError
    if os.open not in os.supports_dir_fd:  # no openat (Windows): the resolved path, its last step not followed
        return os.open(real, _READ | _NOFOLLOW)
    dir_fd = os.open(base, _FOLDER)
    try:
        for part in parts[:-1]:  # each step a real folder now, as it was when resolved
            step = os.open(part, _FOLDER | _NOFOLLOW, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = step
        return os.open(parts[-1], _READ | _NOFOLLOW, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


@overload
def atomic_file(target: str | os.PathLike, *, binary: Literal[False] = False,
                mode: int = 0o666) -> AbstractContextManager[TextIO]: ...
@overload
def atomic_file(target: str | os.PathLike, *, binary: Literal[True],
                mode: int = 0o666) -> AbstractContextManager[BinaryIO]: ...


@contextmanager  # yields a TextIO, or with `binary` a BinaryIO (the overloads above)
def atomic_file(target: str | os.PathLike, *, binary: bool = False, mode: int = 0o666) -> Iterator[Any]:
    """The one atomic writer: yield a new temp file next to `target` (created exclusively, never
    through a symlink; `mode` filtered by the umask); on leaving the block it is fsynced and renamed
    over `target`, and the folder fsynced. An exception leaving the block removes the temp file and
    leaves `target` as it was. A missing folder or no permission is InvalidInput (exit 2), a full
    disk or an I/O error StorageError (exit 3); errors raised inside the block pass through."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    temp = folder / f".{target.name[:80]}.{os.getpid()}-{secrets.token_hex(4)}.partial"
    try:
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | _NOFOLLOW | _CLOEXEC, mode)
    except OSError as exc:
        raise _cannot_write(target, folder, exc) from None
    try:
        handle: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
        fsync_folder(folder)
    except OSError as exc:
        raise _cannot_write(target, folder, exc) from None
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)


def _cannot_write(target: Path, folder: Path, exc: OSError) -> Exception:
    if isinstance(exc, FileNotFoundError):
        return InvalidInput(f"The folder {folder} does not exist; nothing was written.")
    if isinstance(exc, IsADirectoryError):
        return InvalidInput(f"{target} is a folder; nothing was written.")
    if isinstance(exc, PermissionError):
        return InvalidInput(f"{target} cannot be written (permission denied); nothing was written.")
    return StorageError(f"Cannot write {target}: {exc.strerror or exc}.",
                        hint="Nothing was written; the file was left as it was.")


def write_atomic(target: str | os.PathLike, fill: Callable[[IO[bytes]], object]) -> Path:
    """`atomic_file` with the content written by `fill(handle)` (binary). Returns the target's path."""
    with atomic_file(target, binary=True) as handle:
        fill(handle)
    return Path(target)


def write_text_atomic(target: str | os.PathLike, text: str) -> Path:
    """`write_atomic` of UTF-8 text with LF line ends."""
    return write_atomic(target, lambda handle: handle.write(text.encode("utf-8")))


def fsync_folder(path: str | os.PathLike) -> None:
    """Make a rename in `path` durable (best effort: some platforms can't open a folder)."""
    try:
        fd = os.open(path, _FOLDER)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
