"""Files tollgate writes where the user says (`catalog export FILE`, `db backup FILE`, `download get
--to`, the reject file of `usage report --file --skip-invalid`): one rule and one writer for all.

The rule (`check_target`): the target is never the database or one of SQLite's files beside it
(`-wal`, `-shm`, `-journal`), compared by resolved path and, when both exist, by inode, so a symlink
or a hard link can't get around it; not even with `--overwrite`. A target that exists is refused
unless the caller allows replacing it.

The writer (`atomic_file`): a temporary file in the target's folder, fsynced, then renamed over the
target (and the folder fsynced), so the target is the old complete file or the new complete one,
never half of either. Leaving the block with an exception removes the temporary file.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from tollgate.errors import InvalidInput, StorageError

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def database_files(database: str | os.PathLike | None) -> list[Path]:
    """The SQLite file and the files SQLite keeps beside it, under the name given and the resolved one."""
    if database is None:
        return []
    names = {str(database), os.path.realpath(database)}
    return [Path(name + suffix) for name in sorted(names) for suffix in ("", *SQLITE_SIDE_FILES)]


def is_database_file(target: str | os.PathLike, database: str | os.PathLike | None) -> bool:
    """Whether writing `target` would write the database `database` (a path) or one of its side files."""
    real = os.path.realpath(target)
    for candidate in database_files(database):
        if real == os.path.realpath(candidate):
            return True
        try:
            if os.path.samefile(target, candidate):  # a hard link
                return True
        except OSError:
            continue
    return False


def check_target(
    target: str | os.PathLike, *, database: str | os.PathLike | None, what: str, overwrite: bool = True,
    option: str = "--overwrite",
) -> Path:
    """Refuse (InvalidInput, exit 2) a target that is the database or one of its files, whatever
    `overwrite` says, and an existing target unless `overwrite`. `what` names the file in the message
    ("The reject file"). Returns the target as a Path."""
    path = Path(target).expanduser()
    if is_database_file(path, database):
        raise InvalidInput(f"{what} {path} is the database itself (or one of its files); nothing was written.",
                           hint="Choose another file name.")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise InvalidInput(f"{what} {path} already exists; nothing was written.",
                           hint=f"Pass {option} to replace it, or choose another file.")
    if path.is_dir():
        raise InvalidInput(f"{what} {path} is a folder.", hint="Give a file name.")
    return path


@contextmanager
def atomic_file(target: str | os.PathLike, *, binary: bool = False, mode: int = 0o666) -> Iterator[IO[Any]]:
    """Yield a file to write; on leaving the block it replaces `target` whole (see the module's
    docstring). `mode` is filtered by the umask, as for any new file. A folder that is missing or
    can't be written is InvalidInput; a full disk or an I/O error is StorageError."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    temp = folder / f".{target.name[:80]}.{os.getpid()}-{secrets.token_hex(4)}.partial"
    try:
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    except OSError as exc:
        raise _cannot_write(target, folder, exc) from None
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})) as handle:
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


def fsync_folder(path: str | os.PathLike) -> None:
    """Make a rename in `path` durable (best effort: some file systems can't fsync a folder)."""
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


def private_folder(path: str | os.PathLike) -> Path:
    """Create a folder (and its missing parents) owner-only, 0700 whatever the umask; an existing
    folder is left as it is."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    path.mkdir(parents=True, mode=0o700, exist_ok=True)
    for created in missing:
        os.chmod(created, 0o700)
    return path
