"""The content store: files kept by their sha256 under `<data dir>/blobs/<aa>/<sha256>`.

The data directory is the folder of the SQLite database file (for a server URL: the platform's user
data folder). Blobs are written once (the same content is stored once), owner-only (files 0600,
folders 0700), through a temp file in the same folder, fsync and rename, so a blob is either whole
or absent, never half-written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from tollgate.errors import InvalidInput, StorageError

_BUFFER = 1 << 20


def data_dir_for(location: str | os.PathLike | None = None) -> Path:
    """The data directory of a database location (see db.resolve_location)."""
    from tollgate.db import default_data_dir, resolve_location, sqlite_path

    path = sqlite_path(resolve_location(location))
    return path.parent if path is not None else default_data_dir()


def blob_path(sha256: str, *, data_dir: Path) -> Path:
    return Path(data_dir) / "blobs" / sha256[:2] / sha256


def has_blob(sha256: str, *, data_dir: Path) -> bool:
    return blob_path(sha256, data_dir=data_dir).is_file()


def hash_file(src_path: str | os.PathLike) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    size = 0
    with _open_source(src_path) as handle:
        while chunk := handle.read(_BUFFER):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _private_dir(path: Path) -> None:
    from tollgate.outfiles import private_folder

    private_folder(path)


def store_blob(src_path: str | os.PathLike, *, data_dir: Path | None = None) -> tuple[str, int]:
    """Copy a file into the content store; returns (sha256, size). Already stored content is not rewritten.

    `data_dir` defaults to the data directory of the current database location ($TOLLGATE_DB ...)."""
    data_dir = Path(data_dir) if data_dir is not None else data_dir_for(None)
    source = _open_source(src_path)
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
                _fsync_dir(final.parent)
                return sha256, size
            finally:
                if os.path.exists(temp_name):
                    os.unlink(temp_name)
    except OSError as exc:
        raise StorageError(f"Cannot store '{src_path}' in {data_dir / 'blobs'}: {exc.strerror or exc}.") from None


def _open_source(src_path: str | os.PathLike):
    try:
        return open(src_path, "rb")
    except FileNotFoundError:
        raise InvalidInput(f"There is no file '{src_path}'.") from None
    except IsADirectoryError:
        raise InvalidInput(f"'{src_path}' is a folder, not a file.") from None
    except PermissionError:
        raise InvalidInput(f"'{src_path}' cannot be read (permission denied).") from None


def copy_blob(sha256: str, target: str | os.PathLike, *, data_dir: Path) -> Path:
    """Write a stored blob to `target` atomically (temp file in the same folder, fsync, rename)."""
    source = blob_path(sha256, data_dir=data_dir)
    if not source.is_file():
        raise InvalidInput(f"The content {sha256} is not in the store at {data_dir / 'blobs'}.")
    target = Path(target)
    temp_name = None
    try:
        _private_dir(target.parent)
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, _BUFFER)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(temp_name, target)
    except OSError as exc:  # a full disk, a read-only file system, permissions
        raise StorageError(f"Cannot write {target}: {exc.strerror or exc}.",
                           hint="Nothing was written there.") from None
    finally:
        if temp_name is not None and os.path.exists(temp_name):
            os.unlink(temp_name)
    return target


def _fsync_dir(path: Path) -> None:
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
