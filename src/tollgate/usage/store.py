"""The lowest layer of usage: idempotent event inserts. Shared by `usage report`, batch ingest,
voids and `check --consume`.

An event's key is its identity: `INSERT ... ON CONFLICT (key) DO NOTHING`, then, if nothing was
inserted, the stored event is compared: the same payload is a harmless duplicate (a retry), a
different payload under the same key is an error, never a silent skip.

Batch ingest (`insert_event_rows`) hands tuples straight to the driver's executemany on SQLite, with
times already in the text form SQLAlchemy stores (`time_encoder`): building a dict per row and
letting SQLAlchemy convert each datetime costs more than the insert itself at a million rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Executable, String, func, select, type_coerce
from sqlmodel import Session

from tollgate import tables
from tollgate.coltypes import sqlite_text
from tollgate.engines import core_connection, dialect_name, driver_cursor
from tollgate.errors import Conflict

EVENT = tables.usage_event
PAYLOAD = ("customer_id", "feature_id", "quantity_micros", "occurred_at")


_INSERTS: dict[str, Executable] = {}


def _insert_ignoring_duplicates(session: Session | Connection) -> Executable:
    """INSERT ... ON CONFLICT (key) DO NOTHING; on PostgreSQL with RETURNING key, because psycopg's
    rowcount through SQLAlchemy Core is -1 there (`_inserted` counts the rows returned instead).
    Built once per dialect: a statement built anew on every call has its cache key worked out anew."""
    name = dialect_name(session)
    statement = _INSERTS.get(name)
    if statement is None:
        if name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            statement = pg_insert(EVENT).on_conflict_do_nothing(index_elements=["key"]).returning(EVENT.c.key)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            statement = sqlite_insert(EVENT).on_conflict_do_nothing(index_elements=["key"])
        _INSERTS[name] = statement
    return statement


def _inserted(result: Any) -> int:
    """How many rows an `_insert_ignoring_duplicates` inserted."""
    return len(result.all()) if result.returns_rows else result.rowcount


@dataclass(frozen=True)
class StoredEvent:
    key: str
    customer_id: int
    feature_id: int
    quantity_micros: int
    occurred_at: datetime


def stored_event(session: Session | Connection, key: str) -> StoredEvent | None:
    row = session.execute(
        select(EVENT.c.key, *(EVENT.c[name] for name in PAYLOAD)).where(EVENT.c.key == key)
    ).first()
    return StoredEvent(*row) if row else None


def insert_event(
    session: Session | Connection,
    *,
    key: str,
    customer_id: int,
    feature_id: int,
    quantity_micros: int,
    occurred_at: datetime,
    recorded_at: datetime,
    voids: str | None = None,
    reason: str | None = None,
    compare_time: bool = True,
) -> bool:
    """Record one event. True if inserted; False if the same event was already recorded under `key`.

    Raises Conflict if `key` is taken by an event with a different customer, feature, quantity or time
    (the time is not compared with `compare_time=False`: for an event reported without a time, a retry
    a moment later is the same event).
    """
    values = {
        "key": key,
        "customer_id": customer_id,
        "feature_id": feature_id,
        "quantity_micros": quantity_micros,
        "occurred_at": occurred_at,
        "recorded_at": recorded_at,
        "voids": voids,
        "reason": reason,
    }
    if dialect_name(session) == "sqlite":  # one fixed statement: straight to the driver, as a batch's rows go
        with driver_cursor(core_connection(session)) as cursor:
            cursor.execute(_SQLITE_INSERT_EVENT, (key, customer_id, feature_id, quantity_micros,
                                                  sqlite_text(occurred_at), sqlite_text(recorded_at), voids, reason))
            inserted = cursor.rowcount == 1
    else:
        inserted = _inserted(session.execute(_insert_ignoring_duplicates(session), values)) == 1
    if inserted:
        from tollgate.usage.rollups import add_events

        add_events(session, [(customer_id, feature_id, occurred_at, quantity_micros)])
    else:
        existing = stored_event(session, key)
        if existing is None or not same_payload(existing, values, compare_time=compare_time):
            raise Conflict(
                f"The usage key '{key}' was already used for a different event.",
                hint="Each event needs its own key; re-send an event only with exactly the same values.",
            )
    return inserted


def same_payload(existing: StoredEvent, values: dict[str, Any], *, compare_time: bool = True) -> bool:
    names = PAYLOAD if compare_time else PAYLOAD[:-1]
    return all(getattr(existing, name) == values[name] for name in names)


ROW_COLUMNS = ("key", "customer_id", "feature_id", "quantity_micros", "occurred_at", "recorded_at")
_SQLITE_INSERT_ROWS = (
    "INSERT INTO usage_event (key, customer_id, feature_id, quantity_micros, occurred_at, recorded_at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"
)
_SQLITE_INSERT_EVENT = (  # one event (insert_event): ROW_COLUMNS, then what a void or a consume notes
    "INSERT INTO usage_event (key, customer_id, feature_id, quantity_micros, occurred_at, recorded_at, voids, reason) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"
)


def time_encoder(db: Session | Connection) -> Callable[[datetime], Any]:
    """How times go straight to the driver (`insert_event_rows`, usage.window_batch): text on SQLite
    (as SQLAlchemy writes them), else datetimes. `db`: a Session or a Core Connection."""
    return sqlite_text if dialect_name(db) == "sqlite" else (lambda moment: moment)


class Inserted(NamedTuple):
    rows: list[tuple]
    """The rows inserted: the first row of each new key."""
    by_day: dict[tuple[int, int, datetime], int]
    """What they added per (customer, feature, UTC day), in millionths."""


def insert_event_rows(session: Session, rows: Sequence[tuple]) -> Inserted:
    """Set-based insert of events given as `ROW_COLUMNS` tuples (times from `time_encoder`), in the
    session's transaction; duplicates by key are skipped. The rows inserted are counted in the
    rollups here, so no batch of events reaches the table without them (usage.rollups.add_events).

    On SQLite this is the driver's executemany on the session's own connection (no per-row work in
    SQLAlchemy; one writer at a time, so the rows inserted are those whose stored id is past the
    largest id before, and SQLite groups those for the rollups: rollups.add_new_events_sqlite);
    elsewhere a Core executemany that returns the keys it inserted."""
    if not rows:
        return Inserted([], {})
    from tollgate.usage.rollups import add_events, add_new_events_sqlite

    if dialect_name(session) == "sqlite":
        high_water = session.execute(select(func.max(EVENT.c.id))).scalar() or 0
        with driver_cursor(session.connection()) as cursor:
            cursor.executemany(_SQLITE_INSERT_ROWS, rows)
            count = cursor.rowcount
        if count == len(rows):
            inserted = list(rows)
        else:
            stored = stored_rows(session, (row[0] for row in rows))
            inserted = _first_of_each(row for row in rows if stored[row[0]].id > high_water)
        by_day = add_new_events_sqlite(session.connection(), high_water) if inserted else {}
        if by_day is not None:
            return Inserted(inserted, by_day)
        # None: a day SQLite can't sum; add_events below counts the rows and refuses that day (exit 2)
    else:
        result = session.execute(_insert_ignoring_duplicates(session), [dict(zip(ROW_COLUMNS, row)) for row in rows])
        new_keys = set(result.scalars())
        inserted = _first_of_each(row for row in rows if row[0] in new_keys)
    return Inserted(inserted, add_events(session, [(row[1], row[2], row[4], row[3]) for row in inserted]))


def _first_of_each(rows: Iterable[tuple]) -> list[tuple]:
    """The first row of each key (a key repeated in one batch was inserted once)."""
    seen: set[str] = set()
    out = []
    for row in rows:
        if row[0] not in seen:
            seen.add(row[0])
            out.append(row)
    return out


BULK_CACHE_KIB = 64 * 1024
"""SQLite page cache for a batch insert (the default 2 MiB thrashes on the unique index of keys)."""


@contextmanager
def bulk_cache(session: Session) -> Iterator[None]:
    """A larger SQLite page cache on the session's connection while a batch insert runs, then the
    previous size again (the connection goes back to the pool). Nothing on other databases."""
    if dialect_name(session) != "sqlite":
        yield
        return
    conn: Any = session.connection().connection.driver_connection  # sqlite3.Connection
    previous = int(conn.execute("PRAGMA cache_size").fetchone()[0])
    conn.execute(f"PRAGMA cache_size = {-BULK_CACHE_KIB:d}")  # sql-format-ok: an int, not bindable
    try:
        yield
    except BaseException:
        # an interrupt may have closed the connection (the pool drops it): the failure is what matters
        with suppress(Exception):
            conn.execute(f"PRAGMA cache_size = {previous:d}")  # sql-format-ok: an int, not bindable
        raise
    conn.execute(f"PRAGMA cache_size = {previous:d}")  # sql-format-ok: an int, not bindable


_AS_STORED = {"occurred_at", "recorded_at"}
"""usage_event's times, read as the driver gives them (no datetime parsing in Python): text on SQLite,
datetimes on PostgreSQL, i.e. the form `time_encoder` writes."""


class StoredRow(NamedTuple):
    id: int
    key: str
    customer_id: int
    feature_id: int
    quantity_micros: int
    occurred_at: Any  # as stored: see _AS_STORED
    recorded_at: Any


def stored_rows(session: Session, keys: Iterable[str], *, batch: int = 500) -> dict[str, StoredRow]:
    """The stored events under `keys` (those that exist), by key, times as `time_encoder` writes them:
    set-based duplicate/conflict checks that cost no per-row datetime parsing."""
    wanted = list(dict.fromkeys(keys))
    found: dict[str, StoredRow] = {}
    columns = [type_coerce(EVENT.c[n], String) if n in _AS_STORED else EVENT.c[n] for n in StoredRow._fields]
    for start in range(0, len(wanted), batch):
        chunk = wanted[start : start + batch]
        for row in session.execute(select(*columns).where(EVENT.c.key.in_(chunk))):
            found[row[1]] = StoredRow(*row)
    return found


def same_time(stored: Any, encoded: Any) -> bool:
    """Whether a stored time (as `stored_rows` reads it) is the moment `encoded` (from time_encoder)."""
    if stored == encoded:
        return True

    def moment(value: Any) -> datetime | None:
        if isinstance(value, datetime):
            return value.replace(tzinfo=None)
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            return None

    return moment(stored) is not None and moment(stored) == moment(encoded)

