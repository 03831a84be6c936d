"""Usage rollups: the usage of any window of time, exact, without summing the events.

Every event write (a report, a file, `consume`, a void, `db copy`) adds the event to the rollups in
the same transaction (`add_events`), so the sum of any window [start, end) of one customer's usage of
one feature is read from a bounded number of rows (`window_total`), whatever the number of events.

The design: fixed UTC buckets, refined where events are dense.
- Every event counts in its UTC day's bucket (level 0): `usage_rollup(customer, feature, level, start)
  -> (total_micros, events)`.
- A bucket that holds more than REFINE_AFTER events is split into its children (an hour's buckets in
  a day, a minute's in an hour, then seconds, milliseconds and microseconds): from the moment a bucket passes the
  threshold, every event in it also counts in its child, and the children are built once from the
  bucket's events then (a bounded scan: the bucket holds REFINE_AFTER + a few events at that moment).
  Invariant: a bucket with more than REFINE_AFTER events has all its children (those with an event).
- A window's usage is the sum of the days that lie wholly inside it; at each edge, the partial day is
  the sum of its whole children inside the window plus, recursively, the partial child at the edge;
  a partial bucket that is not refined holds at most REFINE_AFTER events and is summed from the
  events themselves (a covering index: customer, feature, time, quantity). So a window costs at most
  (days in it) + 2 x (24 + 60 + 60 + 1000 + 1000) bucket rows and 2 x REFINE_AFTER events, read in a few
  range queries; in practice about five queries for a period with a million events.

Why not counters per billing period: periods follow anchors that change (a plan change, a second
subscription, an override), events arrive backdated and voids land at the original time, so any
window must be exact, not only the one that was current when an event arrived. Why not hour or
minute buckets everywhere: a sparse customer (a few events a day) would pay one bucket row per event
at every level, doubling the cost of a bulk import; refinement costs only where events are dense.

Counts only grow (a void is an event of its own, with a negative quantity), so a refined bucket never
becomes unrefined. Writers of one bucket are serialized by the database (SQLite: the write lock;
PostgreSQL: the row lock the upsert of the day's bucket takes, held to COMMIT), so exactly one writer
sees a bucket pass the threshold, and it builds the children from events every earlier writer has
committed.

Bounds (no accepted sequence of events can overflow a 64-bit sum): an event is at most 10**12 units
(usage.values.quantity_micros), and every bucket (a day, or any part of one) of one customer's feature stays
within MAX_DAY_UNITS either way (`--set` records negative changes, so a part of a day is bounded too);
a report that would pass it is refused (InvalidInput, exit 2). Stored sums thus never overflow; window
sums are added up in Python.

`rebuild` recomputes every rollup from the events (schema migration, `db copy`), and `differences`
compares the stored rollups with that recomputation (`tollgate db check`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, delete, func, insert, literal_column, select, union_all
from sqlalchemy.exc import DBAPIError

from tollgate.engines import core_connection, driver_cursor
from tollgate.errors import InvalidInput

REFINE_AFTER = 64
"""A bucket holding more events than this is split into the buckets of the next level."""
LEVEL_NAMES = ("day", "hour", "minute", "second", "millisecond", "microsecond")
LAST = len(LEVEL_NAMES) - 1
"""A microsecond is the resolution of event times: no window's edge cuts one, so no scan of events is
ever needed inside a refined millisecond, however many events share it."""
_SIZE = (timedelta(days=1), timedelta(hours=1), timedelta(minutes=1), timedelta(seconds=1),
         timedelta(milliseconds=1), timedelta(microseconds=1))
_TEXT_CUT = (10, 13, 16, 19, 23, 26)
"""How much of a stored time text (`2026-11-21 06:25:33.123456`) names its bucket at each level."""
_TEXT_PAD = (" 00:00:00.000000", ":00:00.000000", ":00.000000", ".000000", "000", "")
MAX_DAY_MICROS = 2**62 - 1
"""The most (and, negated, the least) one customer's usage of one feature may add up to in one UTC day,
in millionths (4,611,686,018,427 units): twice it still fits a signed 64-bit integer."""
MAX_DAY_UNITS = MAX_DAY_MICROS // 1_000_000
OPEN_START = datetime(1, 1, 1)
OPEN_END = datetime(9999, 12, 31, 23, 59, 59, 999999)


def _tables() -> tuple[Any, Any]:
    from tollgate import tables

    return tables.usage_rollup, tables.usage_event


# -- buckets ---------------------------------------------------------------------------------------------


def floor(moment: datetime, level: int) -> datetime:
    """The start of the level's UTC bucket holding `moment` (naive UTC)."""
    if level == 0:
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if level == 1:
        return moment.replace(minute=0, second=0, microsecond=0)
    if level == 2:
        return moment.replace(second=0, microsecond=0)
    if level == 3:
        return moment.replace(microsecond=0)
    if level == 4:
        return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)
    return moment


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


# -- writing ---------------------------------------------------------------------------------------------


Event = tuple  # (customer_id, feature_id, occurred_at (datetime, or SQLite's stored text), quantity_micros)


def add_events(db: Any, events: Sequence[Event]) -> dict[tuple[int, int, datetime], int]:
    """Count `events` (already inserted into usage_event, in this transaction) in the rollups. Returns
    what they added per (customer, feature, UTC day).

    Raises InvalidInput when a day's total of one customer's feature would pass MAX_DAY_MICROS either
    way (the caller's transaction rolls back: nothing is recorded)."""
    if not events:
        return {}
    conn = core_connection(db)
    groups = _add_at_level(conn, 0, events)
    return {(c, f, _as_datetime(day)): group[0] for (c, f, day), group in groups.items()}


def _add_at_level(conn: Any, level: int, events: Sequence[Event]) -> dict[tuple, list]:
    groups = _group(events, level, text=conn.dialect.name == "sqlite")
    _settle(conn, level, {key: (group[0], group[1]) for key, group in groups.items()}, None,
            lambda key: groups[key][2])
    return groups


def _settle(conn: Any, level: int, sums: dict[tuple, tuple[int, int]], before: dict[tuple, tuple[int, int]] | None,
            members_of: Callable[[tuple], Sequence[Event]]) -> None:
    """Add each bucket's (micros, events) in `sums`, by (customer, feature, start), to the level's
    buckets, and carry on where a bucket is (or just became) refined: the bucket's new events
    (`members_of`) go one level down, or its children are built. `before`: each bucket's figures
    before, when already read (SQLite's bulk path); else the upsert returns them."""
    for key, (micros, _) in sums.items():
        if not -MAX_DAY_MICROS <= micros <= MAX_DAY_MICROS:
            _refuse_overflow(conn, key, level)
    rows = [(key[0], key[1], level, key[2], micros, count) for key, (micros, count) in sums.items()]
    if before is None:
        before = _add_to_buckets(conn, level, rows)
    else:
        rows.sort()
        with driver_cursor(conn) as cursor:
            cursor.executemany(_UPSERT_SQLITE_MANY, rows)
    deeper: list[Event] = []
    for key, (micros, count) in sums.items():
        old_total, old_count = before.get(key, (0, 0))
        if not -MAX_DAY_MICROS <= old_total + micros <= MAX_DAY_MICROS:  # any bucket: --set goes below 0
            _refuse_overflow(conn, key, level)
        if level < LAST and old_count + count > REFINE_AFTER:
            if old_count > REFINE_AFTER:
                deeper.extend(members_of(key))
            else:  # it just passed the threshold: its children, from its events (these included)
                _refine(conn, key[0], key[1], level, _as_datetime(key[2]))
    if deeper:
        _add_at_level(conn, level + 1, deeper)


def add_new_events_sqlite(conn: Any, after_id: int) -> dict[tuple[int, int, datetime], int] | None:
    """SQLite's batch path of `add_events`: count the events whose id is above `after_id` (those this
    transaction has just inserted: SQLite has one writer, and new ids only grow) in the rollups,
    grouped by day and read with each day's figures before in one statement run by SQLite itself (a
    million-row import spends no Python time per event here). Returns what they added per (customer,
    feature, UTC day), or None when SQLite cannot sum a day (integer overflow): the caller then counts
    the rows with `add_events`, which refuses them with its sentence."""
    import sqlite3

    with driver_cursor(conn) as cursor:
        try:
            found = cursor.execute(_NEW_DAYS_SQLITE, (after_id,)).fetchall()
        except sqlite3.OperationalError as exc:
            if "overflow" not in str(exc):
                raise
            return None

    def members_of(key: tuple) -> list[Event]:
        end = (_as_datetime(key[2]) + _SIZE[0]).isoformat(" ", "microseconds")
        with driver_cursor(conn) as cursor:
            return cursor.execute(_NEW_IN_DAY_SQLITE, (after_id, key[0], key[1], key[2], end)).fetchall()

    _settle(conn, 0, {(c, f, day): (micros, count) for c, f, day, micros, count, _, _ in found},
            {(c, f, day): (total, events) for c, f, day, _, _, total, events in found if events is not None},
            members_of)
    return {(c, f, _as_datetime(day)): micros for c, f, day, micros, _, _, _ in found}


def _group(events: Sequence[Event], level: int, *, text: bool) -> dict[tuple, list]:
    """The events by (customer, feature, bucket start): [micros, count, members]. The start is
    SQLite's stored text with `text`, else a datetime."""
    groups: dict[tuple, list] = {}
    cut = _TEXT_CUT[level]
    for event in events:
        at = event[2]
        if text:
            at = (at if type(at) is str else at.isoformat(" ", "microseconds"))[:cut]
        else:
            at = floor(_as_datetime(at), level)
        key = (event[0], event[1], at)
        group = groups.get(key)
        if group is None:
            groups[key] = [event[3], 1, [event]]
        else:
            group[0] += event[3]
            group[1] += 1
            group[2].append(event)
    if text:
        pad = _TEXT_PAD[level]
        groups = {(c, f, at + pad): group for (c, f, at), group in groups.items()}
    return groups


def _add_to_buckets(conn: Any, level: int, rows: list[tuple]) -> dict[tuple, tuple[int, int]]:
    """Add (customer, feature, level, start, micros, events) rows to their buckets; returns each
    bucket's (total, events) before, by (customer, feature, start).

    The upsert comes first and returns the new figures (then before = new - added): on PostgreSQL the
    bucket's row lock is thus held before anything is decided (another writer of the bucket waits for
    this one's COMMIT); on SQLite, one writer at a time, it is one statement per bucket on the driver."""
    rows.sort(key=lambda row: (row[0], row[1], row[2], str(row[3])))  # one lock order for every writer
    if conn.dialect.name != "postgresql":
        before = {}
        with driver_cursor(conn) as cursor:
            for row in rows:
                total, count = cursor.execute(_UPSERT_SQLITE, row).fetchone()
                before[(row[0], row[1], row[3])] = (total - row[4], count - row[5])
        return before
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    rollup, _ = _tables()
    new = pg_insert(rollup)
    upsert = new.on_conflict_do_update(
        index_elements=[rollup.c.customer_id, rollup.c.feature_id, rollup.c.level, rollup.c.start],
        set_={"total_micros": rollup.c.total_micros + new.excluded.total_micros,
              "events": rollup.c.events + new.excluded.events},
    ).returning(rollup.c.total_micros, rollup.c.events, sort_by_parameter_order=True)
    result = conn.execute(upsert, [dict(zip(_ROLLUP_COLUMNS, row)) for row in rows])
    return {(r[0], r[1], r[3]): (total - r[4], count - r[5]) for r, (total, count) in zip(rows, result.all())}


_ROLLUP_COLUMNS = ("customer_id", "feature_id", "level", "start", "total_micros", "events")


def _refuse_overflow(conn: Any, key: tuple, level: int = 0) -> None:
    from tollgate import tables

    customer = conn.execute(select(tables.customer.c.identifier).where(tables.customer.c.id == key[0])).scalar()
    feature = conn.execute(select(tables.feature.c.identifier).where(tables.feature.c.id == key[1])).scalar()
    start = _as_datetime(key[2])
    when = f"on {start.date().isoformat()}" if level == 0 else f"in the {LEVEL_NAMES[level]} from {start.isoformat(sep=' ')}"
    raise InvalidInput(
        f"That would bring the usage of '{feature}' by '{customer}' {when} (UTC) past ±{MAX_DAY_UNITS:,} units, "
        "the most tollgate keeps for one customer's feature in one day (or any part of one).",
        hint="Check the quantities (a unit mix-up?); nothing was recorded.",
    )


_UPSERT_SQLITE = (
    "INSERT INTO usage_rollup (customer_id, feature_id, level, start, total_micros, events) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (customer_id, feature_id, level, start) DO UPDATE SET "
    "total_micros = usage_rollup.total_micros + excluded.total_micros, "
    "events = usage_rollup.events + excluded.events RETURNING total_micros, events"
)
"""Fixed text, bound values, straight to the driver: SQLAlchemy's per-statement handling would cost
more than the upsert itself in a million-row import."""
_UPSERT_SQLITE_MANY = _UPSERT_SQLITE.removesuffix(" RETURNING total_micros, events")
_NEW_DAYS_SQLITE = (
    "SELECT g.c, g.f, g.start, g.micros, g.n, r.total_micros, r.events FROM ("
    "SELECT customer_id AS c, feature_id AS f, substr(occurred_at, 1, 10) || ' 00:00:00.000000' AS start, "
    "sum(quantity_micros) AS micros, count(*) AS n FROM usage_event NOT INDEXED WHERE id > ? GROUP BY 1, 2, 3) AS g "
    "LEFT JOIN usage_rollup AS r ON r.customer_id = g.c AND r.feature_id = g.f AND r.level = 0 AND r.start = g.start"
)
"""The day buckets of the events past an id (their sum and count) with each bucket's figures before
(NULL: a new bucket); stored times are `2026-11-21 06:25:33.000000` text, so the day is its first ten
characters (_TEXT_CUT). NOT INDEXED: the rows are read by rowid range (only this chunk's); left to
itself SQLite scans the covering index (customer, feature, time, quantity) for its order, i.e. every
event in the table for every chunk (an import's cost then grows with the square of its size)."""
_NEW_IN_DAY_SQLITE = (
    "SELECT customer_id, feature_id, occurred_at, quantity_micros FROM usage_event "
    "WHERE id > ? AND customer_id = ? AND feature_id = ? AND occurred_at >= ? AND occurred_at < ?"
)


def _refine(conn: Any, customer_id: int, feature_id: int, level: int, start: datetime) -> None:
    """Build every child bucket of a bucket that just passed REFINE_AFTER events (recursively, for
    children that hold more than that too), from its events: a scan of a few more than REFINE_AFTER."""
    _, event = _tables()
    end = start + _SIZE[level]
    members = [
        (customer_id, feature_id, _as_datetime(at), micros)
        for at, micros in conn.execute(
            select(event.c.occurred_at, event.c.quantity_micros).where(
                event.c.customer_id == customer_id, event.c.feature_id == feature_id,
                event.c.occurred_at >= start, event.c.occurred_at < end)
        )
    ]
    rows: list[tuple] = []
    _subtree(members, level + 1, rows)
    for row in rows:
        if not -MAX_DAY_MICROS <= row[4] <= MAX_DAY_MICROS:
            _refuse_overflow(conn, (row[0], row[1], row[3]), row[2])
    if rows:
        conn.execute(insert(_tables()[0]), [dict(zip(_ROLLUP_COLUMNS, row)) for row in rows])


def _subtree(members: Sequence[Event], level: int, rows: list[tuple]) -> None:
    """The bucket rows at `level` and below for events (times as datetimes) that all lie in one bucket
    of `level - 1`."""
    groups: dict[Any, list] = {}
    for member in members:
        start = floor(member[2], level)
        group = groups.setdefault(start, [0, []])
        group[0] += member[3]
        group[1].append(member)
    for start, (micros, inside) in groups.items():
        rows.append((members[0][0], members[0][1], level, start, micros, len(inside)))
        if level < LAST and len(inside) > REFINE_AFTER:
            _subtree(inside, level + 1, rows)


# -- reading ---------------------------------------------------------------------------------------------


_BUCKETS = None
_EVENTS = None
_WINDOW = None


def _queries() -> tuple[Any, Any]:
    """The two statements of the read path below a day, built once (SQLAlchemy caches their compiled form)."""
    global _BUCKETS, _EVENTS
    if _BUCKETS is None:
        rollup, event = _tables()
        _BUCKETS = select(rollup.c.start, rollup.c.total_micros, rollup.c.events).where(
            rollup.c.customer_id == bindparam("c"), rollup.c.feature_id == bindparam("f"),
            rollup.c.level == bindparam("level"), rollup.c.start >= bindparam("lo"),
            rollup.c.start < bindparam("hi"),
        )
        _EVENTS = select(event.c.quantity_micros).where(
            event.c.customer_id == bindparam("c"), event.c.feature_id == bindparam("f"),
            event.c.occurred_at >= bindparam("lo"), event.c.occurred_at < bindparam("hi"),
        )
    return _BUCKETS, _EVENTS


def _window_query() -> Any:
    """A window's usage in one statement, in rows labelled by what they are (no times to parse): its
    day buckets, 0 a day inside the window, 1 its partial first day, 2 its partial last day (these
    with their count of events); then 3 and 4, the sum of the events inside the window on the first
    and the last partial day, of at most REFINE_AFTER + 1 of them (a bounded read of the covering
    index): exact when that day holds REFINE_AFTER events or fewer, and not used for a denser day,
    which is read from its refined buckets instead."""
    global _WINDOW
    if _WINDOW is None:
        rollup, event = _tables()
        constant = literal_column  # written into the statement: fewer parameters to process on every call
        part = case((rollup.c.start == bindparam("day1"), constant("1")),
                    (rollup.c.start == bindparam("day2"), constant("2")), else_=constant("0"))
        days = select(part, rollup.c.total_micros, rollup.c.events).where(
            rollup.c.customer_id == bindparam("c"), rollup.c.feature_id == bindparam("f"),
            rollup.c.level == constant("0"), rollup.c.start >= bindparam("lo"), rollup.c.start < bindparam("hi"))

        def small_edge(label: int, lo: str, hi: str) -> Any:  # at most REFINE_AFTER + 1 events read
            events = select(event.c.quantity_micros).where(
                event.c.customer_id == bindparam("c"), event.c.feature_id == bindparam("f"),
                event.c.occurred_at >= bindparam(lo), event.c.occurred_at < bindparam(hi),
            ).limit(constant(str(REFINE_AFTER + 1))).offset(constant("0")).subquery()  # SQLite: no bound OFFSET
            return select(constant(str(label)), func.sum(events.c.quantity_micros), constant("0"))

        _WINDOW = union_all(days, small_edge(3, "edge1_lo", "edge1_hi"), small_edge(4, "day2", "hi"))
    return _WINDOW


def window_total(db: Any, *, customer_id: int, feature_id: int, start: datetime | None,
                 end: datetime | None) -> int:
    """The exact sum, in millionths, of a customer's usage of a feature in [start, end) (None: open),
    voids included, read from the rollups (see the module docstring for the cost)."""
    lo = start or OPEN_START
    hi = end or OPEN_END
    if hi <= lo:
        return 0
    conn = core_connection(db)
    first, last = floor(lo, 0), floor(hi, 0)
    edges = partial_days(lo, hi)
    edge1 = edges.get(1, (None, None))
    params = {"c": customer_id, "f": feature_id, "lo": first, "hi": hi, "day1": first if 1 in edges else None,
              "day2": last if 2 in edges else None,  # None: no such edge (and no events read for it)
              "edge1_lo": edge1[0], "edge1_hi": edge1[1]}
    total = 0
    counts: dict[int, int] = {}
    small: dict[int, int] = {}
    try:
        rows = conn.execute(_window_query(), params).all()
    except DBAPIError as exc:
        if not sqlite_overflow(conn, exc):
            raise
        return range_total(conn, customer_id, feature_id, 0, lo, hi)  # the same window, added up in Python
    for part, micros, count in rows:
        if part == 0:
            total += int(micros)  # PostgreSQL: NUMERIC, as the union's SUM columns make it
        elif part <= 2:
            counts[part] = count
        elif micros is not None:
            small[part - 2] = int(micros)
    for part, count in counts.items():
        if count > REFINE_AFTER:  # a dense partial day: its refined buckets
            total += range_total(conn, customer_id, feature_id, 1, *edges[part])
        else:
            total += small.get(part, 0)
    return total


def sqlite_overflow(conn: Any, exc: DBAPIError) -> bool:
    """Whether a statement failed because SQLite's SUM passed 2**63 (PostgreSQL's is NUMERIC). Only
    buckets are bounded (the module docstring), not any stretch of a day (a --set's negative change
    may come later that day) nor several days: a window summed in SQL is then added up in Python."""
    return conn.dialect.name == "sqlite" and "overflow" in str(exc.orig)


def partial_days(lo: datetime, hi: datetime) -> dict[int, tuple[datetime, datetime]]:
    """The parts of [lo, hi) (hi > lo) in days it covers only partly: 1 the first day's, 2 the last
    day's (when another); the days between are whole."""
    first, last = floor(lo, 0), floor(hi, 0)
    if first == last:  # inside one day
        return {1: (lo, hi)}
    edges = {1: (lo, first + _SIZE[0])} if lo != first else {}
    if hi != last:
        edges[2] = (last, hi)
    return edges


def range_total(conn: Any, customer_id: int, feature_id: int, level: int, lo: datetime, hi: datetime) -> int:
    buckets, events = _queries()
    size = _SIZE[level]
    total = 0
    params = {"c": customer_id, "f": feature_id, "level": level, "lo": floor(lo, level), "hi": hi}
    for start, micros, count in conn.execute(buckets, params).all():
        start = _as_datetime(start)
        if start >= lo and hi - start >= size:
            total += micros
            continue
        part_lo, part_hi = max(lo, start), (hi if hi - start < size else start + size)
        if count > REFINE_AFTER and level < LAST:
            total += range_total(conn, customer_id, feature_id, level + 1, part_lo, part_hi)
        else:
            total += sum(q for (q,) in conn.execute(events, {"c": customer_id, "f": feature_id, "lo": part_lo,
                                                             "hi": part_hi}))
    return total


def day_totals(db: Any, *, customer_id: int, start: datetime, end: datetime,
               feature_id: int | None = None) -> Iterator[tuple[int, datetime, int]]:
    """(feature id, UTC day, total in millionths) of each day with usage in [start, end), which are
    whole UTC days: the day buckets themselves."""
    rollup, _ = _tables()
    where = [rollup.c.customer_id == customer_id, rollup.c.level == 0, rollup.c.start >= start,
             rollup.c.start < end]
    if feature_id is not None:
        where.append(rollup.c.feature_id == feature_id)
    for fid, day, micros in core_connection(db).execute(
        select(rollup.c.feature_id, rollup.c.start, rollup.c.total_micros).where(*where)
    ):
        yield fid, _as_datetime(day), micros


# -- rebuilding and checking -----------------------------------------------------------------------------


def expected_rows(db: Any) -> Iterator[tuple[int, int, int, datetime, int, int]]:
    """Every rollup row the events call for, recomputed from the events alone (streamed one customer's
    feature-day at a time): (customer, feature, level, start, total, events)."""
    _, event = _tables()
    conn = core_connection(db)
    stream = conn.execute(  # streamed (a server-side cursor on PostgreSQL); options on the statement only
        select(event.c.customer_id, event.c.feature_id, event.c.occurred_at, event.c.quantity_micros)
        .order_by(event.c.customer_id, event.c.feature_id, event.c.occurred_at)
        .execution_options(stream_results=True, yield_per=10_000)
    )
    day_key: tuple[int, int, datetime] = (0, 0, OPEN_START)
    members: list[Event] = []

    def finish() -> Iterator[tuple]:
        rows: list[tuple] = []
        rows.append((day_key[0], day_key[1], 0, day_key[2], sum(m[3] for m in members), len(members)))
        if len(members) > REFINE_AFTER:
            _subtree(members, 1, rows)
        return iter(rows)

    for customer_id, feature_id, occurred_at, micros in stream:
        occurred_at = _as_datetime(occurred_at)
        key = (customer_id, feature_id, floor(occurred_at, 0))
        if key != day_key:
            if members:
                yield from finish()
            day_key, members = key, []
        members.append((customer_id, feature_id, occurred_at, micros))
    if members:
        yield from finish()


def rebuild(db: Any, *, batch: int = 5_000) -> int:
    """Replace every rollup with one recomputed from the events (in the caller's transaction). Returns
    the number of rows written."""
    rollup, _ = _tables()
    conn = core_connection(db)
    conn.execute(delete(rollup))
    written = 0
    pending: list[dict[str, Any]] = []
    for row in expected_rows(conn):
        if not -(2**63) < row[4] < 2**63:  # only a database edited by hand holds such a day
            from tollgate.errors import StorageError

            raise StorageError(
                f"The usage of customer id {row[0]}, feature id {row[1]} in the UTC {LEVEL_NAMES[row[2]]} from "
                f"{row[3].isoformat(sep=' ')} adds up to more than tollgate can hold; nothing was changed.",
                hint="Void some of those events (or restore the database from a backup), then try again.")
        pending.append(dict(zip(_ROLLUP_COLUMNS, row)))
        if len(pending) >= batch:
            conn.execute(insert(rollup), pending)
            written += len(pending)
            pending = []
    if pending:
        conn.execute(insert(rollup), pending)
        written += len(pending)
    return written


def differences(db: Any, *, limit: int = 20) -> tuple[int, list[str]]:
    """Compare the stored rollups with the events: (how many rows differ, up to `limit` descriptions)."""
    rollup, _ = _tables()
    conn = core_connection(db)
    expected = {(c, f, lv, s): (t, n) for c, f, lv, s, t, n in expected_rows(conn)}
    count = 0
    shown: list[str] = []

    def note(text: str) -> None:
        nonlocal count
        count += 1
        if len(shown) < limit:
            shown.append(text)

    for c, f, lv, s, t, n in conn.execute(
        select(rollup.c.customer_id, rollup.c.feature_id, rollup.c.level, rollup.c.start, rollup.c.total_micros,
               rollup.c.events)
    ):
        key = (c, f, lv, _as_datetime(s))
        want = expected.pop(key, None)
        where = f"customer id {c}, feature id {f}, {LEVEL_NAMES[lv]} {key[3].isoformat(sep=' ')}"
        if want is None:
            note(f"{where}: stored {t} millionths in {n} event(s), but no event lies there")
        elif want != (t, n):
            note(f"{where}: stored {t} millionths in {n} event(s), the events sum to {want[0]} in {want[1]}")
    for (c, f, lv, s), (t, n) in expected.items():
        note(f"customer id {c}, feature id {f}, {LEVEL_NAMES[lv]} {s.isoformat(sep=' ')}: missing "
             f"(the events sum to {t} millionths in {n} event(s))")
    return count, shown
