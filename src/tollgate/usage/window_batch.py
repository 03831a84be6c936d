"""The usage of many windows at once (a bill run's batch), from the rollups, in three grouped statements.

The windows go into a temporary table (private to the connection, never in the schema); then one
statement sums each window's whole days from the day buckets, one reads the buckets of its partial
first and last days, and one sums the events of those partial days that are small (REFINE_AFTER
events or fewer). A dense partial day is summed from its refined buckets (rollups.range_total), as a
single window's is. The cost follows the number of windows, not the number of events.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Integer, MetaData, Table, and_, func, literal_column, select, union_all
from sqlalchemy.exc import DBAPIError

from tollgate.coltypes import UtcDateTime
from tollgate.engines import core_connection, driver_cursor
from tollgate.usage.rollups import (OPEN_END, OPEN_START, REFINE_AFTER, _tables, floor, partial_days, range_total,
                                    sqlite_overflow, window_total)
from tollgate.usage.store import time_encoder

_WINDOWS = Table(
    "tollgate_usage_window",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("c", Integer, nullable=False),
    Column("f", Integer, nullable=False),
    Column("day1", UtcDateTime, nullable=True),  # the partial first day (None: none): [lo1, whole_lo) of it
    Column("lo1", UtcDateTime, nullable=True),
    Column("whole_lo", UtcDateTime, nullable=False),  # the whole days: [whole_lo, whole_hi)
    Column("whole_hi", UtcDateTime, nullable=False),  # also the partial last day: [whole_hi, hi2) of it
    Column("hi2", UtcDateTime, nullable=True),  # None: no partial last day
    prefixes=["TEMPORARY"],
)
_INSERT = {  # filled straight through the driver (executemany): Core's per-row parameter work cost more
    "qmark": "INSERT INTO tollgate_usage_window (id, c, f, day1, lo1, whole_lo, whole_hi, hi2)"
             " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "format": "INSERT INTO tollgate_usage_window (id, c, f, day1, lo1, whole_lo, whole_hi, hi2)"
              " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
}
_INSERT["pyformat"] = _INSERT["format"]


_STATEMENTS: tuple[Any, Any, Any] | None = None


def _statements() -> tuple[Any, Any, Any]:
    """(whole days per window, partial days' buckets, small partial days' events), built once."""
    global _STATEMENTS
    if _STATEMENTS is None:
        rollup, event = _tables()
        w = _WINDOWS.c
        of_window = (rollup.c.customer_id == w.c, rollup.c.feature_id == w.f, rollup.c.level == 0)
        whole = (select(w.id, func.sum(rollup.c.total_micros))
                 .select_from(_WINDOWS.join(rollup, and_(*of_window, rollup.c.start >= w.whole_lo,
                                                         rollup.c.start < w.whole_hi)))
                 .group_by(w.id))

        def day(part: int) -> Any:  # the bucket of the window's partial first or last day
            if part == 1:
                return and_(*of_window, rollup.c.start == w.day1)
            return and_(*of_window, rollup.c.start == w.whole_hi, w.hi2.is_not(None))

        inside = {1: (w.lo1, w.whole_lo), 2: (w.whole_hi, w.hi2)}  # each partial day's part in the window

        edge_days = union_all(*(select(w.id, literal_column(str(part)), rollup.c.events)
                                .select_from(_WINDOWS.join(rollup, day(part))) for part in (1, 2)))
        edge_events = union_all(*(
            select(w.id, func.sum(event.c.quantity_micros))
            .select_from(_WINDOWS.join(rollup, and_(day(part), rollup.c.events <= REFINE_AFTER))
                         .join(event, and_(event.c.customer_id == w.c, event.c.feature_id == w.f,
                                           event.c.occurred_at >= inside[part][0], event.c.occurred_at < inside[part][1])))
            .group_by(w.id)
            for part in (1, 2)))
        _STATEMENTS = (whole, edge_days, edge_events)
    return _STATEMENTS


def window_totals(db: Any, windows: Iterable[tuple[Any, int, int, datetime | None, datetime | None]]) -> dict[Any, int]:
    """The usage (millionths) of each window (key, customer id, feature id, start, end; None: open),
    summed per key: what rollups.window_total gives each, for the whole batch at once."""
    conn = core_connection(db)
    encode = time_encoder(conn)
    out: dict[Any, int] = {}
    rows: list[tuple[Any, ...]] = []
    spans: list[tuple[Any, int, int, dict[int, tuple[datetime, datetime]], datetime, datetime]] = []
    for key, customer_id, feature_id, start, end in windows:
        out.setdefault(key, 0)
        lo, hi = start or OPEN_START, end or OPEN_END
        if hi <= lo:
            continue
        edges = partial_days(lo, hi)
        first, last = floor(lo, 0), floor(hi, 0)
        whole_lo = edges[1][1] if 1 in edges else first
        rows.append((len(rows), customer_id, feature_id, encode(first) if 1 in edges else None,
                     encode(lo) if 1 in edges else None, encode(whole_lo), encode(max(last, whole_lo)),
                     encode(hi) if 2 in edges else None))
        spans.append((key, customer_id, feature_id, edges, lo, hi))
    if not rows:
        return out
    whole, edge_days, edge_events = _statements()
    _WINDOWS.create(conn, checkfirst=True)
    try:
        with driver_cursor(conn) as cursor:
            cursor.executemany(_INSERT[conn.dialect.paramstyle], rows)
        for window, micros in conn.execute(whole):
            out[spans[window][0]] += int(micros or 0)
        for window, micros in conn.execute(edge_events):
            out[spans[window][0]] += int(micros or 0)
        for window, part, count in conn.execute(edge_days).all():
            if count > REFINE_AFTER:  # a dense partial day: its refined buckets
                key, customer_id, feature_id, edges, _, _ = spans[window]
                out[key] += range_total(conn, customer_id, feature_id, 1, *edges[int(part)])
    except DBAPIError as exc:
        if not sqlite_overflow(conn, exc):
            raise
        out = dict.fromkeys(out, 0)
        for key, customer_id, feature_id, _, lo, hi in spans:  # each window alone, its parts added up in Python
            out[key] += window_total(conn, customer_id=customer_id, feature_id=feature_id, start=lo, end=hi)
    finally:
        _WINDOWS.drop(conn)
    return out
