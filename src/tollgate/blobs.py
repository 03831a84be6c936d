"""The content store: files kept by their sha256 under `<data dir>/blobs/<aa>/<sha256>`.

The data directory is the folder of the SQLite database file (for a server URL: the platform's user
data folder). Blobs are written once (the same content is stored once), owner-only (files 0600,
folders 0700), through a temp file in the same folder, fsync and rename, so a blob is either whole
or absent, never half-written.

A checksum becomes a path in one place, `blob_path`, and only when it is exactly 64 lowercase hex
digits: a damaged or crafted row (`sha256 = '../../etc/passwd'`) is a StorageError there, so no
caller (export --with-files, db copy, download get, import) can be led out of the store. Files
are read by the one rule of files.open_regular (regular files only, never a FIFO or device).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from tollgate.errors import InvalidInput, StorageError
from tollgate.files import fsync_folder, open_regular, write_atomic

_BUFFER = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


def is_sha256(value: object) -> bool:
    """Exactly 64 lowercase hex digits (the only shape a stored checksum has)."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def data_dir_for(location: str | os.PathLike | None = None) -> Path:
    """The data directory of a database location (see location.resolve_location)."""
    from tollgate.location import default_data_dir, resolve_location, sqlite_path

    path = sqlite_path(resolve_location(location))
    return path.parent if path is not None else default_data_dir()


def blob_path(sha256: str, *, data_dir: Path) -> Path:
    """Where the content `sha256` is stored; anything but a sha256 is a damaged record (StorageError)."""
    if not is_sha256(sha256):
        raise StorageError(f"A download's recorded checksum {str(sha256)[:80]!r} is not a sha256; the database is "
                           "damaged (or was edited by hand), and nothing was read or written for it.",
                           hint="Restore the database from a backup, or remove that download and add its file again.")
    return Path(data_dir) / "blobs" / sha256[:2] / sha256


def has_blob(sha256: str, *, data_dir: Path) -> bool:
    return blob_path(sha256, data_dir=data_dir).is_file()


def hash_file(src_path: str | os.PathLike, *, inside: Path | None = None) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of a regular file (within the folder `inside`, if given), read in
    1 MiB pieces."""
    digest = hashlib.sha256()
    size = 0
    with _open_source(src_path, inside) as handle:
        while chunk := handle.read(_BUFFER):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _private_dir(path: Path) -> None:
    from tollgate.outfiles import private_folder

    private_folder(path)


def store_blob(src_path: str | os.PathLike, *, data_dir: Path | None = None,
               inside: Path | None = None) -> tuple[str, int]:
    """Copy a regular file (within the folder `inside`, if given) into the content store; returns
    (sha256, size). Already stored content is not rewritten.

    `data_dir` defaults to the data directory of the current database location ($TOLLGATE_DB ...)."""
    data_dir = Path(data_dir) if data_dir is not None else data_dir_for(None)
    source = _open_source(src_path, inside)
    try:
        with source:
            blobs = data_dir / "blobs"
            _private_dir(blobs)
            fd, temp_name = tempfile.mkstemp(prefix=".incoming-", dir=blobs)  # created 0600
            try:
                digest = hashlib.sha256()
                size = 0
                with os.fdopen(fd, "wb") as target:
                    while chunk := source.read(_BUFFER):
                        digest.update(chunk)
                        size += len(chunk)
                        target.write(chunk)
                    target.flush()
                    os.fsync(target.fileno())
                sha256 = digest.hexdigest()
                final = blob_path(sha256, data_dir=data_dir)
                if final.is_file() and final.stat().st_size == size:
                    return sha256, size  # the same content is stored once
                _private_dir(final.parent)
                os.replace(temp_name, final)
                fsync_folder(final.parent)
                return sha256, size
            finally:
                if os.path.exists(temp_name):
                    os.unlink(temp_name)
    except OSError as exc:
        raise StorageError(f"Cannot store '{src_path}' in {data_dir / 'blobs'}: {exc.strerror or exc}.") from None


def _open_source(src_path: str | os.PathLike, inside: Path | None = None):
    return open_regular(src_path, inside=inside, folder_name="the catalog's folder")


def open_blob(sha256: str, *, data_dir: Path):
    """The stored content `sha256`, open for reading; FileNotFoundError when it is not in the store."""
    path = blob_path(sha256, data_dir=data_dir)
    if not os.path.lexists(path):
        raise FileNotFoundError(path)
    return open_regular(path)


def copy_blob(sha256: str, target: str | os.PathLike, *, data_dir: Path) -> Path:
    """Write a stored blob to `target` (its folders created if needed) by files.write_atomic."""
    try:
        source = open_blob(sha256, data_dir=data_dir)
    except FileNotFoundError:
        raise InvalidInput(f"The content {sha256} is not in the store at {data_dir / 'blobs'}.") from None
    with source:
        folder = Path(target).parent
        try:
            _private_dir(folder)  # and its new parents: 0700 whatever the umask
        except PermissionError:
            raise InvalidInput(f"Cannot create the folder {folder} (permission denied).") from None
        except OSError as exc:  # a full disk, a read-only file system, a file in the way
            raise StorageError(f"Cannot create the folder {folder}: {exc.strerror or exc}.") from None
        return write_atomic(target, lambda out: shutil.copyfileobj(source, out, _BUFFER))
