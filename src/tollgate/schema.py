"""The schema of a tollgate database: its version (`schema_version_in`, the one reader of it),
creating it, refusing what is not ours or newer, and migrating an older one in one transaction
after a backup (VACUUM INTO, also `db backup`'s copy). Schema creation and migrations run under the
schema lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock, with transactional DDL), so
several processes opening a new or older database at once create or migrate it once. On
PostgreSQL there is no file to back up: operators use pg_dump.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, func, inspect, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from tollgate import models
from tollgate.clock import utcnow
from tollgate.engines import begin, sqlite_engine, transaction
from tollgate.errors import StorageError
from tollgate.location import create_private_file, display_location, readonly_uri
from tollgate.storage_errors import storage_error

SCHEMA_VERSION = 4
# pg_advisory_xact_lock(bigint) key held while the schema is created or migrated (one bigint keys
# never clash with the (int, int) keys of `locks.lock_customer_feature`: PostgreSQL keeps them apart).
SCHEMA_LOCK_KEY = 0x746F6C6C67617465  # "tollgate"


class ForeignDatabase(StorageError):
    """The database holds tables of another program (e.g. a `meta` table that is not tollgate's)."""


_META_COLUMNS = {
    "sqlite": "SELECT name FROM pragma_table_info('meta')",
    "postgresql": "SELECT column_name FROM information_schema.columns "
                  "WHERE table_schema = current_schema() AND table_name = 'meta'",
}
# CASTs: another program's meta table may have columns of other types; reading it must not fail
_STORED_VERSION = "SELECT CAST(value AS TEXT) FROM meta WHERE CAST(key AS TEXT) = 'schema_version'"


def schema_version_in(conn: Connection) -> int | None:
    """The schema version recorded in the database: the one reader of it (opening, migrating, `db
    info`, `db copy`). None when there is no meta table (an empty database); ForeignDatabase when
    the meta table is another program's (other columns, no version, a version that is not a number).
    It only reads, with queries that cannot fail on a foreign table: safe on a read-only connection,
    and inside a PostgreSQL transaction."""
    columns = {row[0] for row in conn.exec_driver_sql(_META_COLUMNS[conn.dialect.name])}
    if not columns:
        return None
    value = conn.exec_driver_sql(_STORED_VERSION).scalar() if {"key", "value"} <= columns else None
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise ForeignDatabase("The database holds a meta table that is not tollgate's.",
                              hint="Point --db at a tollgate database; it was left as it is.")
    return int(value)


def create_schema(conn: Connection) -> None:
    """Create every table of the current schema and record its version (in the caller's transaction)."""
    from sqlmodel import SQLModel

    models.load_all()
    SQLModel.metadata.create_all(conn)
    conn.execute(models.Meta.__table__.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))


def file_schema_version(path: Path, location: str) -> int:
    """The schema version of the tollgate database in an existing file, read without writing a
    byte (no connection at all for a file that is not SQLite; then a read-only one). StorageError
    for an empty file, a file that is not SQLite, a database of another program."""
    shown = display_location(location)
    try:
        with open(path, "rb") as handle:
            header = handle.read(16)
    except OSError as exc:
        raise StorageError(f"Cannot open the database at {shown}: {exc.strerror}.") from None
    if not header:
        raise StorageError(f"{shown} is an empty file, not a tollgate database.",
                           hint="Point --db at a new file or a tollgate database; it was left as it is.")
    if header != b"SQLite format 3\x00":
        raise StorageError(f"{shown} is not a valid SQLite database.", hint="Point --db at a tollgate database.")
    uri = readonly_uri(path)
    engine = create_engine("sqlite://", poolclass=NullPool,
                           creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False))
    try:
        with engine.connect() as conn:
            version = schema_version_in(conn)
    except ForeignDatabase:
        version = None
    except DBAPIError as exc:
        raise storage_error(exc, location) from None
    finally:
        engine.dispose()
    if version is None:
        raise foreign(location)
    return version


def foreign(location: str) -> StorageError:
    return ForeignDatabase(f"{display_location(location)} is a database of another program, not a tollgate one.",
                           hint="Point --db at a tollgate database; it was left as it is.")


def create_sqlite_database(path: Path) -> None:
    """Create a new tollgate database file whole: the schema is written into a private temporary
    file beside it, which is then linked to the name (this fails if another process took the name
    meanwhile: its database is used). So the name never holds an empty or half-made database, and
    an empty file found there is never one of ours."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.new")
    create_private_file(temp)
    try:
        engine = sqlite_engine(temp)
        try:
            with transaction(engine, write=True) as conn:
                create_schema(conn)
        finally:
            engine.dispose()
        try:
            os.link(temp, path)
        except FileExistsError:
            pass  # another process created it first
        except OSError:  # a file system without hard links
            if not os.path.lexists(path):
                os.rename(temp, path)
    finally:
        for leftover in (temp, Path(f"{temp}-wal"), Path(f"{temp}-shm"), Path(f"{temp}-journal")):
            leftover.unlink(missing_ok=True)


def vacuum_into(engine: Engine, target: Path, *, shown: Path | None = None) -> None:
    """A consistent copy of a live SQLite database (VACUUM can't run inside a transaction, so this
    uses the driver connection, which is in autocommit mode), private (0600) from its first byte:
    the file is created empty first (VACUUM INTO fills an empty file). On failure (a full disk, a
    read-only folder) the partial copy is removed and StorageError says why (naming `shown`, the
    file the copy is for, when `target` is a temporary name)."""
    created = False
    try:
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        created = True
        raw = engine.raw_connection()
        try:
            driver: Any = raw.driver_connection  # sqlite3.Connection
            driver.execute("VACUUM INTO ?", (str(Path(target).absolute()),))  # a name, never a URI
        finally:
            raw.close()
        os.chmod(target, 0o600)
    except (sqlite3.Error, DBAPIError, OSError) as exc:
        if created:
            Path(target).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StorageError(f"Cannot write {shown or target}: {exc.strerror or exc}.",
                               hint="Nothing was written.") from None
        raise storage_error(exc, str(shown or target)) from None


def refuse_newer(found: int, location: str) -> None:
    """StorageError when the database was written by a newer tollgate (nothing is changed)."""
    if found > SCHEMA_VERSION:
        raise StorageError(
            f"{display_location(location)} was written by a newer tollgate (schema {found}; this one knows "
            f"{SCHEMA_VERSION}).", hint="Upgrade tollgate to use it; nothing was changed.")


def prepare(engine: Engine, *, location: str, path: Path | None, create: bool, found: int | None) -> None:
    """Create a brand-new schema, check the version of an existing one (`found`: a SQLite file's,
    read before it was opened), migrate an older one.

    The common case (an existing, current database) costs one plain query: start-up time matters.
    """
    if found is None:
        with engine.connect() as conn:
            found = schema_version_in(conn)
    if found is None:
        found = _create(engine, location=location, create=create)
        if found is None:
            return
    refuse_newer(found, location)
    if found < SCHEMA_VERSION:
        _migrate(engine, found, path)


def _create(engine: Engine, *, location: str, create: bool) -> int | None:
    """Create the schema in an empty database, under the schema lock. Returns None when it created
    it, or the version found if another process created it first (checked again under the lock:
    several processes may open a brand-new database at once)."""
    with schema_transaction(engine) as conn:
        found = schema_version_in(conn)
        if found is not None:
            return found
        if inspect(conn).get_table_names():
            raise foreign(location)
        if not create:
            raise StorageError(f"There is no tollgate database at {display_location(location)} (it is empty).",
                               hint="Check the location.")
        create_schema(conn)
    return None


@contextmanager
def schema_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction for creating or migrating the schema: BEGIN IMMEDIATE on SQLite;
    on PostgreSQL (transactional DDL), a transaction holding the schema's advisory lock. Not counted
    as the command's write (interrupts): a read command that migrated first still stops at Ctrl-C."""
    with engine.connect() as conn, conn.begin():
        begin(conn, write=True)
        if engine.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
        yield conn


def _migrate(engine: Engine, found: int, path: Path | None) -> None:
    """Under the schema lock, if the schema is still older: back the file up (VACUUM INTO, from
    another connection: a reader beside our write lock, so the copy is the unmigrated database;
    PostgreSQL: the operator's pg_dump), then apply every migration in one transaction
    (PostgreSQL's DDL is transactional too). Processes opening the database at once wait for the
    lock and find it migrated: one backup, one migration."""
    with schema_transaction(engine) as conn:
        found = schema_version_in(conn) or 0  # another process may have migrated it while we waited
        if found >= SCHEMA_VERSION:
            return
        if path is not None:
            vacuum_into(engine, path.with_name(f"{path.name}.schema-{found}.{utcnow():%Y%m%dT%H%M%S}.bak"))
        from tollgate.migrations import MIGRATIONS

        for version in range(found + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version](conn)
        conn.execute(
            models.Meta.__table__.update()
            .where(models.Meta.key == "schema_version")
            .values(value=str(SCHEMA_VERSION))
        )
