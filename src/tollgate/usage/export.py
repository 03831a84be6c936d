"""Usage events read back: one event by its key (what `usage void` asks about) and the export
(`usage export`), streamed in the order they were recorded, in the columns `usage report --file`
reads (usage.file.COLUMNS), with each event's key and exact time and quantity, so re-importing an
export records nothing: every row is a duplicate of its event.

Voids (`void:KEY`) are not exported: they are corrections with a negative quantity, which no usage
file may carry; `usage show` lists them and the journal keeps them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

from sqlalchemy import select

from tollgate import tables
from tollgate.clock import rfc3339
from tollgate.errors import NotFound
from tollgate.money import format_decimal, from_micros
from tollgate.usage.file import COLUMNS
from tollgate.usage.lookups import customer_row, metered_feature

C = tables.customer
F = tables.feature
E = tables.usage_event
STREAM_ROWS = 2_000
"""Rows fetched at a time (a server-side cursor on PostgreSQL), so memory stays bounded."""


def _query() -> Any:
    return (select(C.c.identifier, F.c.identifier, E.c.quantity_micros, E.c.occurred_at, E.c.key)
            .join(C, C.c.id == E.c.customer_id).join(F, F.c.id == E.c.feature_id))


@dataclass(frozen=True, slots=True)
class ExportedEvent:
    """One recorded event as `usage export` writes it; `to_dict()` is its row (usage.file.COLUMNS)."""

    customer: str
    feature: str
    quantity: Decimal
    timestamp: datetime
    id: str

    @classmethod
    def of(cls, found: Any) -> ExportedEvent:
        customer, feature, micros, occurred, key = found
        return cls(customer, feature, from_micros(micros), occurred, key)

    def to_dict(self) -> dict[str, Any]:
        return dict(zip(COLUMNS, (self.customer, self.feature, format_decimal(self.quantity),
                                  rfc3339(self.timestamp), self.id)))


def event(conn: Any, key: str) -> ExportedEvent:
    """One event by key. Unknown key: NotFound."""
    found = conn.execute(_query().where(E.c.key == key)).first()
    if found is None:
        raise NotFound(f"No usage event has the key '{key}'.", hint="See `tollgate usage export --customer C`.")
    return ExportedEvent.of(found)


def export(conn: Any, *, customer: str | None = None, feature: str | None = None,
           start: datetime | None = None, end: datetime | None = None) -> Iterator[ExportedEvent]:
    """The recorded events (not voids) of a customer and/or feature from `start` (inclusive) to `end`
    (exclusive), oldest recorded first, streamed. Unknown identifiers raise before the first row."""
    query = _query().where(E.c.voids.is_(None))
    if customer is not None:
        query = query.where(E.c.customer_id == customer_row(conn, customer).id)
    if feature is not None:
        query = query.where(E.c.feature_id == metered_feature(conn, feature).id)
    if start is not None:
        query = query.where(E.c.occurred_at >= start)
    if end is not None:
        query = query.where(E.c.occurred_at < end)
    result = conn.execution_options(yield_per=STREAM_ROWS).execute(query.order_by(E.c.id))
    return (ExportedEvent.of(found) for found in result)


def write(events: Iterator[ExportedEvent], handle: TextIO, fmt: str) -> int:
    """Write events as CSV (with its header) or JSON lines; returns how many."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(handle, COLUMNS, lineterminator="\n")
        writer.writeheader()
        for count, event in enumerate(events, 1):
            writer.writerow(event.to_dict())
    else:
        for count, event in enumerate(events, 1):
            handle.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
    return count
