"""Engines: how a connection to a database is made, and how one transaction on it begins.

SQLite is opened in the driver's autocommit mode and we emit BEGIN ourselves (SQLAlchemy's
connect/begin events), so that a write transaction is BEGIN IMMEDIATE: it takes the write lock
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
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
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
        # Straight on the driver's connection (public: PoolProxiedConnection.driver_connection):
        # through exec_driver_sql, a BEGIN cost as much as the statement after it. A driver error
        # (a lock not granted in time) is raised as SQLAlchemy's, as exec_driver_sql would.
        begin = connection.get_execution_options().get("tollgate_begin", "BEGIN")
        try:
            connection.connection.driver_connection.execute(begin)
        except sqlite3.Error as exc:
            raise DBAPIError(begin, (), exc) from exc

    return engine


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


@contextmanager
def transaction(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """One transaction on a Core connection, begun the way sessions begin (see `Database.write` and
    `Database.read`): a write is BEGIN IMMEDIATE on SQLite; a read is a snapshot (REPEATABLE READ on
    PostgreSQL). Committed at the end, rolled back on error. `engine` may be transaction_engine's."""
    with transaction_engine(engine, write=write).connect() as conn, \
            (interrupts.write_transaction() if write else nullcontext()):
        with conn.begin() as trans:
            yield conn
            with interrupts.committing() if write else nullcontext():
                trans.commit()


def transaction_engine(engine: Engine, *, write: bool) -> Engine:
    """The engine (the same pool) with the execution options of a read or a write transaction; the
    engine itself when it has them. Made once and kept (Database does), it saves setting the options
    on every connection, about 5 µs of a check's 100 or so."""
    options: dict[str, Any] = {"tollgate_begin": "BEGIN IMMEDIATE" if write else "BEGIN"}
    if engine.dialect.name == "postgresql" and not write:
        options["isolation_level"] = "REPEATABLE READ"
    present = engine.get_execution_options()
    if all(present.get(name) == value for name, value in options.items()):
        return engine
    return engine.execution_options(**options)
