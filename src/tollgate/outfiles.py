"""Files tollgate writes where the user says (`catalog export FILE`, `db backup FILE`, `download get
--to`, the reject file of `usage report --file --skip-invalid`): one rule for all (the writer is
files.atomic_file).

The rule (`check_target`): the target is never the database or one of SQLite's files beside it
(`-wal`, `-shm`, `-journal`), compared by resolved path and, when both exist, by inode, so a symlink
or a hard link can't get around it; not even with `--overwrite`. A target that exists is refused
unless the caller allows replacing it.
"""

from __future__ import annotations

import os
from pathlib import Path

from tollgate.errors import InvalidInput

KEY_FOLDER = "signing-keys"
"""The data folder's folder of private signing keys (signing.py): no file tollgate writes lands in it."""

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
    option: str = "--overwrite", keys: str | os.PathLike | None = None,
) -> Path:
    """Refuse (InvalidInput, exit 2) a target that is the database or one of its files, or inside
    `keys` (the folder of the private signing keys; by default the one beside `database`), whatever
    `overwrite` says, and an existing target unless `overwrite`. `what` names the file in the message
    ("The reject file"). Returns the target as a Path."""
    path = Path(target).expanduser()
    if keys is None:
        from tollgate.blobs import data_dir_for

        keys = data_dir_for(database) / KEY_FOLDER
    if is_database_file(path, database):
        raise InvalidInput(f"{what} {path} is the database itself (or one of its files); nothing was written.",
                           hint="Choose another file name.")
    if Path(os.path.realpath(path)).is_relative_to(os.path.realpath(keys)):
        raise InvalidInput(f"{what} {path} is in the folder of the private signing keys; nothing was written.",
                           hint="Choose a file outside it.")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise InvalidInput(f"{what} {path} already exists; nothing was written.",
                           hint=f"Pass {option} to replace it, or choose another file.")
    if path.is_dir():
        raise InvalidInput(f"{what} {path} is a folder.", hint="Give a file name.")
    return path


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
