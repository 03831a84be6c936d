"""How the database is opened (its location: `tollgate.location`), and how every change is made: one transaction each.

SQLite is opened in the driver's autocommit mode and we emit BEGIN ourselves (SQLAlchemy's
connect/begin events), so that a write transaction is BEGIN IMMEDIATE: it takes the write lock
before reading, and two writers queue on the busy timeout instead of failing with "database is
locked" when one read before the other wrote.

PostgreSQL (`postgresql://user@host/db`, driver: the `postgres` extra, psycopg 3) runs the same
code. Write transactions are READ COMMITTED, as the server's default; where a write depends on
what it read (check-and-record in `consume`) the library takes a transaction-scoped advisory lock
keyed by what the decision is about (`lock_customer_feature`), which does on PostgreSQL what BEGIN
IMMEDIATE does on SQLite, without serializing unrelated writers. Read transactions are REPEATABLE
READ (one consistent snapshot per command, like a WAL read transaction). Schema creation and
migrations run in one transaction (DDL is transactional there) under an advisory lock, so several
processes opening a new database at once create it once. There is no file to back up: operators
use pg_dump.
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, func, inspect, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import NullPool, QueuePool

from tollgate import interrupts, models
from tollgate.clock import utcnow
from tollgate.errors import InvalidInput, StorageError, TollgateError
from tollgate.location import (  # noqa: F401 - the location API is also db's (db.resolve_location, ...)
    create_private_file,
    default_data_dir,
    display_location,
    engine_url,
    existing_file,
    is_postgres_url,
    is_url,
    readonly_uri,
    resolve_location,
    sqlite_path,
)

if TYPE_CHECKING:  # sqlmodel (pydantic, the ORM) loads only where a session or the whole schema is needed
    from sqlmodel import Session

SCHEMA_VERSION = 4
BUSY_TIMEOUT_MS = 5000
PG_CONNECT_TIMEOUT_S = 10
# pg_advisory_xact_lock(bigint) key held while the schema is created or migrated (one bigint keys
# never clash with the (int, int) keys of `lock_customer_feature`: PostgreSQL keeps them apart).
SCHEMA_LOCK_KEY = 0x746F6C6C67617465  # "tollgate"


def storage_error(exc: BaseException, location: str) -> TollgateError:
    """Turn a driver error into one plain sentence about what went wrong with the database (a
    StorageError; InvalidInput for text PostgreSQL cannot hold)."""
    if isinstance(exc, PoolTimeout):
        return StorageError(f"Every connection to {display_location(location)} stayed busy too long (the pool of "
                            "this process is exhausted).", hint="Use fewer threads at once, or try again.")
    orig = getattr(exc, "orig", exc)
    if type(orig).__module__.startswith("psycopg"):
        return _postgres_error(orig, location)
    message = str(orig).lower()
    where = f"the database at {display_location(location)}"
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
    return StorageError(f"{where} failed: {orig}.")


# SQLSTATE classes and codes of PostgreSQL errors that have a plain sentence of their own
_PG_RETRY = {"40001", "40P01"}  # serialization failure, deadlock detected
_PG_LOCKED = {"55P03", "57014"}  # lock not available, statement canceled (lock/statement timeout)


def _postgres_error(orig: BaseException, location: str) -> TollgateError:
    """psycopg's errors as one sentence. Connection failures carry no SQLSTATE: they are told apart
    by libpq's message ("Connection refused", "password authentication failed", ...)."""
    where = f"the database at {display_location(location)}"
    state = getattr(orig, "sqlstate", None) or ""
    text = str(orig).strip()
    message = text.lower()
    first_line = text.splitlines()[0].strip().rstrip(".") if text else type(orig).__name__
    if "nul (0x00)" in message:  # psycopg refuses to send such text: it can be neither stored nor found
        return InvalidInput("The text given contains a NUL character (\\x00), which PostgreSQL can neither store "
                            "nor look up.", hint="Remove it and try again; nothing was written.")
    if state in _PG_RETRY:
        return StorageError(f"{where} refused a change that clashed with another one made at the same time.",
                            hint="Try again; nothing was written.")
    if state in _PG_LOCKED:
        return StorageError(f"{where} is locked by another transaction.", hint="Try again in a moment.")
    if state == "53100" or "no space left" in message:
        return StorageError(f"The disk of the server holding {where} is full.", hint="Free some space and try again.")
    if state == "25006" or "read-only transaction" in message:
        return StorageError(f"{where} is read-only (a standby server?).", hint="Point --db at the primary server.")
    if state == "3D000" or re.search(r'database "[^"]*" does not exist', message):
        return StorageError(f"{where} does not exist on the server.",
                            hint="Create it first (createdb, or CREATE DATABASE), then run tollgate again.")
    if (state.startswith("28") or "password authentication failed" in message
            or re.search(r'role "[^"]*" does not exist', message) or "no password supplied" in message
            or "no pg_hba.conf entry" in message):
        return StorageError(f"Authentication to {where} failed.",
                            hint="Check the user name and password in the URL (or ~/.pgpass, $PGPASSWORD).")
    if "connection refused" in message:
        return StorageError(f"The server of {where} refused the connection.",
                            hint="Check that PostgreSQL is running and listening on that host and port.")
    if "failed to resolve host" in message or "could not translate host name" in message:
        return StorageError(f"The server of {where} cannot be found.", hint="Check the host name in the URL.")
    if "timeout expired" in message or "timed out" in message:
        return StorageError(f"The server of {where} did not answer in time.",
                            hint="Check the host, port and network, then try again.")
    if "server closed the connection" in message or "terminating connection" in message or "consuming input failed" in message:
        return StorageError(f"The connection to {where} was lost.", hint="Try again; check the server's log if it recurs.")
    return StorageError(f"{where} failed: {first_line}.")


def explicit_busy_timeout_ms() -> int | None:
    """TOLLGATE_BUSY_TIMEOUT_MS when it is set: how long the operator lets a command wait for another
    process's lock (milliseconds). A value that is not a whole number is refused in one sentence."""
    text = os.environ.get("TOLLGATE_BUSY_TIMEOUT_MS", "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        from tollgate.errors import InvalidInput

        raise InvalidInput(f"TOLLGATE_BUSY_TIMEOUT_MS is {text[:40]!r}, not a number of milliseconds.",
                           hint="Set it to a whole number such as 5000, or unset it.")
    return int(text)


def busy_timeout_ms() -> int:
    """How long a connection waits for a lock: TOLLGATE_BUSY_TIMEOUT_MS, else BUSY_TIMEOUT_MS."""
    explicit = explicit_busy_timeout_ms()
    return BUSY_TIMEOUT_MS if explicit is None else explicit


def _sqlite_engine(path: Path) -> Engine:
    """An engine on exactly this file. The driver is handed the path itself, never a URL that would
    be parsed again (where `?`, `#` or `%41` would name another file); absolute, so that no name
    means something else to SQLite (`:memory:`, `file:...`)."""
    busy_ms = busy_timeout_ms()
    filename = str(Path(path).absolute())

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(filename, timeout=busy_ms / 1000, check_same_thread=False)

    engine = create_engine("sqlite://", creator=connect, poolclass=QueuePool)

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



def _file_schema_version(path: Path, location: str) -> int:
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
        raise _foreign(location)
    return version


def _foreign(location: str) -> StorageError:
    return ForeignDatabase(f"{display_location(location)} is a database of another program, not a tollgate one.",
                           hint="Point --db at a tollgate database; it was left as it is.")


def _create_sqlite_database(path: Path) -> None:
    """Create a new tollgate database file whole: the schema is written into a private temporary
    file beside it, which is then linked to the name (this fails if another process took the name
    meanwhile: its database is used). So the name never holds an empty or half-made database, and
    an empty file found there is never one of ours."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.new")
    create_private_file(temp)
    try:
        engine = _sqlite_engine(temp)
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


def postgres_url(location: str) -> URL:
    """The SQLAlchemy URL of a PostgreSQL location; one sentence (the password masked) for one that
    does not parse (a port that is not a number, an unclosed [)."""
    try:
        return make_url(engine_url(location))
    except (ArgumentError, ValueError):
        raise StorageError(f"{display_location(location)} is not a valid PostgreSQL URL.",
                           hint="Use postgresql://USER@HOST:PORT/DATABASE.") from None


def _postgres_engine(location: str) -> Engine:
    """An engine on a PostgreSQL server (psycopg 3), checked for liveness on checkout."""
    url = postgres_url(location)
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    if "application_name" not in url.query:
        connect_args["application_name"] = "tollgate"
    try:
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except ModuleNotFoundError as exc:
        raise StorageError(
            f"Using PostgreSQL needs its driver, which is not installed ({exc.name}).",
            hint="Install it with: pip install 'tollgate[postgres]'.",
        ) from None


def lock_customer_feature(session: Session, customer_id: int, feature_id: int) -> None:
    """Hold, until the transaction ends, the lock that serializes check-and-record of one customer's
    usage of one feature (`consume`): a second caller waits here and then reads the usage the first
    one recorded, so together they can never pass a hard limit.

    SQLite: nothing to do, the write transaction began IMMEDIATE and holds the database's write lock.
    PostgreSQL: pg_advisory_xact_lock(customer_id, feature_id), released at COMMIT or ROLLBACK; call
    it before reading the usage (READ COMMITTED: the reads that follow see the other's commit)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(customer_id, feature_id)))


def _vacuum_into(engine: Engine, target: Path, *, shown: Path | None = None) -> None:
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
            raw.driver_connection.execute("VACUUM INTO ?", (str(Path(target).absolute()),))  # a name, never a URI
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


class ForeignDatabase(StorageError):
    """The database holds tables of another program (e.g. a `meta` table that is not tollgate's)."""


_META_COLUMNS = {
    "sqlite": "SELECT name FROM pragma_table_info('meta')",
    "postgresql": "SELECT column_name FROM information_schema.columns "
                  "WHERE table_schema = current_schema() AND table_name = 'meta'",
}
# CASTs: another program's meta table may have columns of other types; reading it must not fail
_STORED_VERSION = "SELECT CAST(value AS TEXT) FROM meta WHERE CAST(key AS TEXT) = 'schema_version'"


class Database:
    """One tollgate database: opened (created or migrated) on first use, then one session per command."""

    def __init__(self, location: str | os.PathLike | None = None, *, create: bool = True) -> None:
        """`create=False`: opening a location without a tollgate database raises StorageError
        instead of creating one (for a source that must exist, e.g. of `db copy`)."""
        self.location = resolve_location(location)
        self.path = sqlite_path(self.location)
        self.create = create
        self.create_on_read = True
        """False: a read (`read`, `connect()`) of a SQLite file that does not exist is refused
        (NotFound) and creates nothing (the CLI's read commands given --db)."""
        if self.is_postgres:
            postgres_url(self.location)  # a URL that does not parse is refused before anything uses it
        self._engine: Engine | None = None
        self._file_version: int | None = None  # a SQLite file's version, as read (read-only) before opening it

    @property
    def is_sqlite(self) -> bool:
        return self.path is not None

    @property
    def is_postgres(self) -> bool:
        return self.path is None and is_postgres_url(self.location)

    @property
    def display_location(self) -> str:
        return display_location(self.location)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._open()
        return self._engine

    def _open(self) -> Engine:
        try:
            if self.path is not None and self.create and not existing_file(self.path, self.display_location):
                try:
                    _create_sqlite_database(self.path)
                except OSError as exc:
                    raise StorageError(f"Cannot create the database at {self.display_location}: "
                                       f"{exc.strerror}.") from None
            engine = self.bare_engine()
            try:
                self._prepare_schema(engine)
            except BaseException:
                engine.dispose()
                raise
            return engine
        except ForeignDatabase:
            raise _foreign(self.location) from None
        except DBAPIError as exc:
            raise storage_error(exc, self.location) from None

    def bare_engine(self) -> Engine:
        """An engine on the location with nothing created in it yet (a new SQLite file is created
        empty, 0600). For `db copy`, which creates the target's schema in its own transaction;
        everything else uses `engine` (created, checked, migrated). An existing SQLite file is
        checked first without writing a byte: anything but a tollgate database of this version or
        older is refused untouched."""
        if self.path is not None:
            if existing_file(self.path, self.display_location):
                self._file_version = _file_schema_version(self.path, self.location)
                self._refuse_newer(self._file_version)
            elif not self.create:
                raise StorageError(f"There is no tollgate database at {self.display_location}.", hint="Check the path.")
            else:
                try:
                    create_private_file(self.path)
                except OSError as exc:
                    raise StorageError(f"Cannot create the database at {self.display_location}: "
                                       f"{exc.strerror}.") from None
            return _sqlite_engine(self.path)
        if self.is_postgres:
            return _postgres_engine(self.location)
        raise StorageError(
            f"{self.display_location} is neither a SQLite file nor a PostgreSQL URL.",
            hint="Use a file path, sqlite:///PATH or postgresql://USER@HOST/DATABASE.",
        )

    def _prepare_schema(self, engine: Engine) -> None:
        """Create a brand-new schema, check the version of an existing one, migrate an older one.

        The common case (an existing, current database) costs one plain query: start-up time matters.
        """
        found = self._file_version  # a SQLite file's, read before it was opened
        if found is None:
            with engine.connect() as conn:
                found = schema_version_in(conn)
        if found is None:
            found = self._create_schema(engine)
            if found is None:
                return
        self._refuse_newer(found)
        if found < SCHEMA_VERSION:
            self._migrate(engine, found)

    def _refuse_newer(self, found: int) -> None:
        if found > SCHEMA_VERSION:
            raise StorageError(
                f"{self.display_location} was written by a newer tollgate (schema {found}; this one knows "
                f"{SCHEMA_VERSION}).", hint="Upgrade tollgate to use it; nothing was changed.")

    def _create_schema(self, engine: Engine) -> int | None:
        """Create the schema in an empty database, under the schema lock. Returns None when it created
        it, or the version found if another process created it first (checked again under the lock:
        several processes may open a brand-new database at once)."""
        with self._schema_transaction(engine) as conn:
            found = schema_version_in(conn)
            if found is not None:
                return found
            if inspect(conn).get_table_names():
                raise _foreign(self.location)
            if not self.create:
                raise StorageError(f"There is no tollgate database at {self.display_location} (it is empty).",
                                   hint="Check the location.")
            models.load_all()
            create_schema(conn)
        return None

    @contextmanager
    def _schema_transaction(self, engine: Engine) -> Iterator[Connection]:
        """One write transaction for creating or migrating the schema: BEGIN IMMEDIATE on SQLite;
        on PostgreSQL (transactional DDL), a transaction holding the schema's advisory lock."""
        with engine.connect().execution_options(tollgate_begin=self._write_begin) as conn, conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
            yield conn

    def _migrate(self, engine: Engine, found: int) -> None:
        """Under the schema lock, if the schema is still older: back the file up (VACUUM INTO, from
        another connection: a reader beside our write lock, so the copy is the unmigrated database;
        PostgreSQL: the operator's pg_dump), then apply every migration in one transaction
        (PostgreSQL's DDL is transactional too). Processes opening the database at once wait for the
        lock and find it migrated: one backup, one migration."""
        with self._schema_transaction(engine) as conn:
            found = schema_version_in(conn) or 0  # another process may have migrated it while we waited
            if found >= SCHEMA_VERSION:
                return
            if self.path is not None:
                backup = self.path.with_name(f"{self.path.name}.schema-{found}.{utcnow():%Y%m%dT%H%M%S}.bak")
                _vacuum_into(engine, backup)
            from tollgate.migrations import MIGRATIONS

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
    def _session(self, begin: str, *, commit: bool, snapshot: bool = False) -> Iterator[Session]:
        from sqlmodel import Session

        engine = self.engine.execution_options(tollgate_begin=begin)
        if snapshot and engine.dialect.name == "postgresql":
            engine = engine.execution_options(isolation_level="REPEATABLE READ")
        writing = commit and not snapshot  # a write session that keeps its work (not a read, not a dry run)
        try:
            with Session(bind=engine, expire_on_commit=False, autoflush=False) as session, \
                    (interrupts.write_transaction() if writing else nullcontext()):
                session.begin()
                try:
                    yield session
                except BaseException:
                    session.rollback()
                    raise
                if not commit:
                    session.rollback()
                else:
                    with interrupts.committing() if writing else nullcontext():
                        session.commit()
        except (DBAPIError, PoolTimeout) as exc:
            raise storage_error(exc, self.location) from None

    @contextmanager
    def connect(self, *, write: bool = False) -> Iterator[Connection]:
        """A Core connection from the engine's pool in one transaction (see `transaction`): the access
        path (`check`), which runs Core statements only and costs no ORM session."""
        if not write:
            self._refuse_missing_for_read()
        try:
            with transaction(self.engine, write=write) as conn:
                yield conn
        except (DBAPIError, PoolTimeout) as exc:
            raise storage_error(exc, self.location) from None

    def write(self, *, dry_run: bool = False) -> Any:
        """A session in one write transaction (BEGIN IMMEDIATE): committed at the end, rolled back on
        error, and always rolled back with `dry_run` (the same code runs; nothing is kept)."""
        return self._session(self._write_begin, commit=not dry_run)

    def read(self) -> Any:
        """A session in one read transaction: a consistent snapshot, never blocking writers (WAL;
        PostgreSQL: REPEATABLE READ). It ends with COMMIT (nothing to write) so the objects read
        stay loaded."""
        self._refuse_missing_for_read()
        return self._session("BEGIN", commit=True, snapshot=True)

    def _refuse_missing_for_read(self) -> None:
        if self.create_on_read or self._engine is not None or self.path is None:
            return
        if not existing_file(self.path, self.display_location):
            from tollgate.errors import NotFound

            raise NotFound(f"There is no database at {self.display_location}; nothing was created.",
                           hint="Check --db, or create it with a command that writes (such as `tollgate "
                                "catalog import FILE`).")

    def info(self) -> dict[str, Any]:
        """Location, engine and its version, schema version, size and row counts per table."""
        from sqlmodel import SQLModel

        engine = self.engine
        models.load_all()
        counts: dict[str, int] = {}
        size = None
        with engine.connect() as conn:
            for table in SQLModel.metadata.sorted_tables:
                counts[table.name] = conn.execute(select(func.count()).select_from(table)).scalar_one()
            version = schema_version_in(conn)
            if self.is_sqlite:
                journal_mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                server_version = conn.exec_driver_sql("SELECT sqlite_version()").scalar()
            else:
                journal_mode = None
                server_version = conn.exec_driver_sql("SHOW server_version").scalar()
                if engine.dialect.name == "postgresql":
                    size = conn.execute(select(func.pg_database_size(func.current_database()))).scalar()
        if self.path is not None:
            size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return {
            "location": self.display_location,
            "engine": engine.dialect.name,
            "server_version": server_version,
            "schema_version": version,
            "size_bytes": size,
            "journal_mode": journal_mode,
            "tables": counts,
        }

    def backup(self, target: Path) -> Path:
        """A consistent copy of the whole database (VACUUM INTO), written to a temp file then renamed."""
        if self.path is None:
            raise StorageError(
                "db backup copies SQLite files; back a PostgreSQL database up with pg_dump.",
                hint="For example: pg_dump --format=custom --file=tollgate.dump 'postgresql://USER@HOST/DATABASE'"
                " (or `tollgate db copy URL FILE` for a SQLite copy).",
            )
        target = Path(target).expanduser()
        from tollgate.outfiles import check_target

        check_target(target, database=self.path, what="The backup file")
        if target.exists():
            raise StorageError(f"{target} already exists.", hint="Choose a new file name; nothing was overwritten.")
        partial = target.with_name(f".{target.name}.partial")
        engine = self.engine
        try:
            partial.unlink(missing_ok=True)  # left by a backup that was killed
        except OSError:
            pass  # _vacuum_into says what is wrong with the folder
        _vacuum_into(engine, partial, shown=target)  # removes what it wrote when it fails
        try:
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise StorageError(f"Cannot write {target}: {exc.strerror or exc}.", hint="Nothing was written.") from None
        return target

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


@contextmanager
def transaction(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """One transaction on a Core connection, begun the way sessions begin (see `Database.write` and
    `Database.read`): a write is BEGIN IMMEDIATE on SQLite; a read is a snapshot (REPEATABLE READ on
    PostgreSQL). Committed at the end, rolled back on error."""
    options: dict[str, Any] = {"tollgate_begin": "BEGIN IMMEDIATE" if write else "BEGIN"}
    if engine.dialect.name == "postgresql" and not write:
        options["isolation_level"] = "REPEATABLE READ"
    with engine.connect().execution_options(**options) as conn, \
            (interrupts.write_transaction() if write else nullcontext()):
        with conn.begin() as trans:
            yield conn
            with interrupts.committing() if write else nullcontext():
                trans.commit()


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


def integrity_check(path: Path) -> str:
    """PRAGMA integrity_check through the standard library (used by tests and `db info`)."""
    conn = sqlite3.connect(readonly_uri(path), uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
