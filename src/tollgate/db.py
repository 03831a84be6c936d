"""Where the database is, how it is opened, and how every change is made: one transaction each.

SQLite is opened in the driver's autocommit mode and we emit BEGIN ourselves (SQLAlchemy's
connect/begin events), so that a write transaction is BEGIN IMMEDIATE: it takes the write lock
before reading, and two writers queue on the busy timeout instead of failing with "database is
locked" when one read before the other wrote.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, inspect, select
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel

from tollgate import models
from tollgate.clock import utcnow
from tollgate.errors import StorageError

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 5000

# MIGRATIONS[n] upgrades a database at schema n-1 to schema n, inside one transaction.
# Each released schema keeps a fixture in tests/fixtures/ that must upgrade without loss.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


def default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("tollgate", appauthor=False))


def resolve_location(db: str | os.PathLike | None = None) -> str:
    """The database to use: `db` (from --db) > $TOLLGATE_DB > the platform's user data directory."""
    if db:
        return str(db)
    from_env = os.environ.get("TOLLGATE_DB")
    if from_env:
        return from_env
    return str(default_data_dir() / "tollgate.db")


def is_url(location: str) -> bool:
    return "://" in location


def sqlite_path(location: str) -> Path | None:
    """The file behind a location, or None for a server URL."""
    if location.startswith("sqlite:///"):
        return Path(location.removeprefix("sqlite:///"))
    if is_url(location):
        return None
    return Path(location).expanduser()


def storage_error(exc: BaseException, location: str) -> StorageError:
    """Turn a driver error into one plain sentence about what went wrong with the database."""
    message = str(getattr(exc, "orig", exc)).lower()
    where = f"the database at {location}"
    if "locked" in message or "busy" in message:
        return StorageError(f"{where} is locked by another process.", hint="Try again in a moment.")
    if "readonly" in message or "read-only" in message:
        return StorageError(f"{where} is read-only.", hint="Check the permissions of the file and its folder.")
    if "full" in message:
        return StorageError(f"The disk holding {where} is full.", hint="Free some space and try again.")
    if "not a database" in message or "malformed" in message or "encrypted" in message:
        return StorageError(f"{where} is not a valid SQLite database.", hint="Point --db at a tollgate database.")
    if "unable to open" in message:
        return StorageError(f"{where} cannot be opened.", hint="Check that its folder exists and is writable.")
    return StorageError(f"{where} failed: {getattr(exc, 'orig', exc)}.")


def _create_private_file(path: Path) -> None:
    """Create an empty database file readable by its owner only (0600), its folder 0700 if new."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)


def _sqlite_engine(path: Path) -> Engine:
    busy_ms = int(os.environ.get("TOLLGATE_BUSY_TIMEOUT_MS", BUSY_TIMEOUT_MS))
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": busy_ms / 1000})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms:d}")  # sql-format-ok: an int; PRAGMA cannot bind
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql(connection.get_execution_options().get("tollgate_begin", "BEGIN"))

    return engine


def _vacuum_into(engine: Engine, target: Path) -> None:
    """A consistent copy of a live SQLite database (VACUUM can't run inside a transaction, so this
    uses the driver connection, which is in autocommit mode), made private (0600)."""
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("VACUUM INTO ?", (str(target),))
    finally:
        raw.close()
    os.chmod(target, 0o600)


_HAS_META = {
    "sqlite": "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
    "postgresql": "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'meta'",
}


class Database:
    """One tollgate database: opened (created or migrated) on first use, then one session per command."""

    def __init__(self, location: str | os.PathLike | None = None) -> None:
        self.location = resolve_location(location)
        self.path = sqlite_path(self.location)
        self._engine: Engine | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.path is not None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._open()
        return self._engine

    def _open(self) -> Engine:
        try:
            if self.path is not None:
                brand_new = not self.path.exists()
                if brand_new:
                    _create_private_file(self.path)
                engine = _sqlite_engine(self.path)
            else:
                engine = create_engine(self.location, pool_pre_ping=True)
            self._prepare_schema(engine)
            return engine
        except DBAPIError as exc:
            raise storage_error(exc, self.location) from None
        except OSError as exc:
            raise StorageError(f"Cannot create the database at {self.location}: {exc.strerror}.") from None

    def _prepare_schema(self, engine: Engine) -> None:
        """Create a brand-new schema, check the version of an existing one, migrate an older one.

        The common case (an existing, current database) costs one plain query: start-up time matters.
        """
        found = self._stored_version(engine)
        if found is None:
            with engine.connect() as conn:
                tables = inspect(conn).get_table_names()
            if tables:
                raise StorageError(
                    f"{self.location} is a database, but not a tollgate one.",
                    hint="Point --db at a tollgate database.",
                )
            models.load_all()
            with engine.connect().execution_options(tollgate_begin=self._write_begin) as conn, conn.begin():
                SQLModel.metadata.create_all(conn)
                conn.execute(models.Meta.__table__.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
            return
        if found > SCHEMA_VERSION:
            raise StorageError(
                f"{self.location} was written by a newer tollgate (schema {found}; this one knows {SCHEMA_VERSION}).",
                hint="Upgrade tollgate to use it; nothing was changed.",
            )
        if found < SCHEMA_VERSION:
            self._migrate(engine, found)

    @staticmethod
    def _stored_version(engine: Engine) -> int | None:
        """The schema version recorded in the database, or None when it has no meta table."""
        with engine.connect() as conn:
            has_meta = conn.exec_driver_sql(_HAS_META[engine.dialect.name]).first() is not None
            if not has_meta:
                return None
            value = conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'schema_version'").scalar()
        return int(value or 0)

    @staticmethod
    def schema_version(engine_or_conn) -> int:
        stmt = select(models.Meta.value).where(models.Meta.key == "schema_version")
        if isinstance(engine_or_conn, Engine):
            with engine_or_conn.connect() as conn:
                value = conn.execute(stmt).scalar()
        else:
            value = engine_or_conn.execute(stmt).scalar()
        return int(value or 0)

    def _migrate(self, engine: Engine, found: int) -> None:
        """Back the file up (VACUUM INTO), then apply every migration in one transaction."""
        if self.path is not None:
            backup = self.path.with_name(f"{self.path.name}.schema-{found}.{utcnow():%Y%m%dT%H%M%S}.bak")
            _vacuum_into(engine, backup)
        with engine.connect().execution_options(tollgate_begin=self._write_begin) as conn, conn.begin():
            for version in range(found + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version](conn)
            conn.execute(
                models.Meta.__table__.update()
                .where(models.Meta.key == "schema_version")
                .values(value=str(SCHEMA_VERSION))
            )

    @property
    def _write_begin(self) -> str:
        return "BEGIN IMMEDIATE" if self.is_sqlite else "BEGIN"

    @contextmanager
    def _session(self, begin: str, *, commit: bool) -> Iterator[Session]:
        engine = self.engine.execution_options(tollgate_begin=begin)
        try:
            with Session(bind=engine, expire_on_commit=False, autoflush=False) as session:
                session.begin()
                try:
                    yield session
                except BaseException:
                    session.rollback()
                    raise
                session.commit() if commit else session.rollback()
        except DBAPIError as exc:
            raise storage_error(exc, self.location) from None

    def write(self, *, dry_run: bool = False) -> Any:
        """A session in one write transaction (BEGIN IMMEDIATE): committed at the end, rolled back on
        error, and always rolled back with `dry_run` (the same code runs; nothing is kept)."""
        return self._session(self._write_begin, commit=not dry_run)

    def read(self) -> Any:
        """A session in one read transaction: a consistent snapshot, never blocking writers (WAL).
        It ends with COMMIT (nothing to write) so the objects read stay loaded."""
        return self._session("BEGIN", commit=True)

    def info(self) -> dict[str, Any]:
        """Path, schema version, file size and row counts per table."""
        engine = self.engine
        models.load_all()
        counts: dict[str, int] = {}
        with engine.connect() as conn:
            for table in SQLModel.metadata.sorted_tables:
                counts[table.name] = conn.execute(select(func.count()).select_from(table)).scalar_one()
            version = self.schema_version(conn)
            journal_mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar() if self.is_sqlite else None
        size = None
        if self.path is not None:
            size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return {
            "location": self.location,
            "engine": engine.dialect.name,
            "schema_version": version,
            "size_bytes": size,
            "journal_mode": journal_mode,
            "tables": counts,
        }

    def backup(self, target: Path) -> Path:
        """A consistent copy of the whole database (VACUUM INTO), written to a temp file then renamed."""
        if self.path is None:
            raise StorageError("db backup copies SQLite files; for PostgreSQL use pg_dump.")
        target = Path(target).expanduser()
        if target.exists():
            raise StorageError(f"{target} already exists.", hint="Choose a new file name; nothing was overwritten.")
        partial = target.with_name(f".{target.name}.partial")
        partial.unlink(missing_ok=True)
        try:
            _vacuum_into(self.engine, partial)
            os.replace(partial, target)
        except DBAPIError as exc:
            partial.unlink(missing_ok=True)
            raise storage_error(exc, str(target)) from None
        return target

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def integrity_check(path: Path) -> str:
    """PRAGMA integrity_check through the standard library (used by tests and `db info`)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
