"""Engines: how a connection to a database is made, and how one transaction on it begins.

SQLite is opened in the driver's autocommit mode and we emit BEGIN ourselves (`begin`, called by
every transaction), so that a write transaction is BEGIN IMMEDIATE: it takes the write lock
before reading, and two writers queue on the busy timeout instead of failing with "database is
locked" when one read before the other wrote.

PostgreSQL (`postgresql://user@host/db`, driver: the `postgres` extra, psycopg 3) runs the same
code. Write transactions are READ COMMITTED, as the server's default; where a write depends on
what it read, the library takes a lock first (locks.py). Read transactions are REPEATABLE READ (one
consistent snapshot per command, like a WAL read transaction).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import QueuePool

from tollgate import interrupts
from tollgate.errors import InvalidInput, StorageError
from tollgate.location import display_location, engine_url

BUSY_TIMEOUT_MS = 5000
PG_CONNECT_TIMEOUT_S = 10


def explicit_busy_timeout_ms() -> int | None:
    """TOLLGATE_BUSY_TIMEOUT_MS when it is set: how long the operator lets a command wait for another
    process's lock (milliseconds). A value that is not a whole number is refused in one sentence."""
    text = os.environ.get("TOLLGATE_BUSY_TIMEOUT_MS", "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise InvalidInput(f"TOLLGATE_BUSY_TIMEOUT_MS is {text[:40]!r}, not a number of milliseconds.",
                           hint="Set it to a whole number such as 5000, or unset it.")
    return int(text)


def busy_timeout_ms() -> int:
    """How long a connection waits for a lock: TOLLGATE_BUSY_TIMEOUT_MS, else BUSY_TIMEOUT_MS."""
    explicit = explicit_busy_timeout_ms()
    return BUSY_TIMEOUT_MS if explicit is None else explicit


def sqlite_engine(path: Path) -> Engine:
    """An engine on exactly this file. The driver is handed the path itself, never a URL that would
    be parsed again (where `?`, `#` or `%41` would name another file); absolute, so that no name
    means something else to SQLite (`:memory:`, `file:...`).

    The engine has no event listeners: each connection is set up as it is made (`connect`), and
    transactions begin in `begin`. A listener on the engine would make SQLAlchemy dispatch its
    events around every statement, about a tenth of a one-statement check. So a transaction begun
    any other way (`engine.begin()`, a Session of its own) is none at all on SQLite: each statement
    commits by itself and a rollback undoes nothing. Use `transaction` or `Database`'s sessions."""
    busy_ms = busy_timeout_ms()
    filename = str(Path(path).absolute())

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(filename, timeout=busy_ms / 1000, check_same_thread=False)
        connection.isolation_level = None  # autocommit in the driver: `begin` emits BEGIN
        connection.execute(f"PRAGMA busy_timeout = {busy_ms:d}")  # sql-format-ok: an int; PRAGMA cannot bind
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA synchronous = FULL")
        return connection

    return create_engine("sqlite://", creator=connect, poolclass=QueuePool)


def begin(conn: Connection, *, write: bool) -> None:
    """Begin the database's transaction on a connection SQLAlchemy has begun (`conn.begin()`, or a
    Session's connection): on SQLite, BEGIN IMMEDIATE for a write (the write lock, taken before
    anything is read) or BEGIN, straight on the driver's connection (public:
    PoolProxiedConnection.driver_connection; through exec_driver_sql a BEGIN cost as much as the
    statement after it). A driver error (a lock not granted in time) is raised as SQLAlchemy's, as
    exec_driver_sql would. PostgreSQL begins by itself, at the isolation level of the engine's
    execution options (`transaction_engine`)."""
    if conn.dialect.name != "sqlite":
        return
    statement = "BEGIN IMMEDIATE" if write else "BEGIN"
    try:
        driver: Any = conn.connection.driver_connection  # sqlite3.Connection
        driver.execute(statement)
    except sqlite3.Error as exc:
        raise DBAPIError(statement, (), exc) from exc


def postgres_url(location: str) -> URL:
    """The SQLAlchemy URL of a PostgreSQL location; one sentence (the password masked) for one that
    does not parse (a port that is not a number, an unclosed [)."""
    try:
        return make_url(engine_url(location))
    except (ArgumentError, ValueError):
        raise StorageError(f"{display_location(location)} is not a valid PostgreSQL URL.",
                           hint="Use postgresql://USER@HOST:PORT/DATABASE.") from None


def postgres_engine(location: str) -> Engine:
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


def dialect_name(db: Any) -> str:
    """"sqlite" or "postgresql": the database of a Session or of a Core Connection."""
    return (db.dialect if isinstance(db, Connection) else db.get_bind().dialect).name


def core_connection(db: Any) -> Connection:
    """The Core connection of a Session (the one its transaction runs on), or the Connection itself
    (anything with a dialect: a Connection, or what stands in for one)."""
    return db.connection() if hasattr(db, "connection") and not hasattr(db, "dialect") else db


@contextmanager
def driver_cursor(conn: Connection) -> Iterator[Any]:
    """A cursor of the DBAPI connection under a Core connection, for fixed statements run straight
    on the driver. A driver error inside is raised as SQLAlchemy's DBAPIError, as a Core statement's
    would be, so the transaction's owner reports it as every other (a StorageError in one sentence).
    Closed quietly: after an interrupt the pool may already have closed the connection, and closing
    the cursor must not replace the interrupt with a "closed database" error."""
    driver: Any = conn.connection.driver_connection
    cursor = driver.cursor()
    try:
        yield cursor
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError(None, None, exc) from exc
    finally:
        with suppress(Exception):
            cursor.close()


@contextmanager
def transaction(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """One transaction on a Core connection, begun the way sessions begin (see `Database.write` and
    `Database.read`): a write is BEGIN IMMEDIATE on SQLite; a read is a snapshot (REPEATABLE READ on
    PostgreSQL). Committed at the end, rolled back on error. `engine` may be transaction_engine's."""
    with transaction_engine(engine, write=write).connect() as conn, \
            (interrupts.write_transaction() if write else nullcontext()):
        with conn.begin() as trans:
            begin(conn, write=write)
            yield conn
            with interrupts.committing() if write else nullcontext():
                trans.commit()


def transaction_engine(engine: Engine, *, write: bool) -> Engine:
    """The engine (the same pool) with the execution options of a read or a write transaction: on
    PostgreSQL a read is REPEATABLE READ; SQLite needs none (`begin`) and gets the engine itself.
    Made once and kept (Database does), it saves setting the options on every connection."""
    if engine.dialect.name != "postgresql" or write:
        return engine
    if engine.get_execution_options().get("isolation_level") == "REPEATABLE READ":
        return engine
    return engine.execution_options(isolation_level="REPEATABLE READ")
