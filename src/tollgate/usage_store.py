"""The lowest layer of usage: idempotent event inserts and period sums. Shared by `usage report`,
batch ingest and `check --consume`.

An event's key is its identity: `INSERT ... ON CONFLICT (key) DO NOTHING`, then, if nothing was
inserted, the stored event is compared: the same payload is a harmless duplicate (a retry), a
different payload under the same key is an error, never a silent skip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from tollgate.errors import Conflict
from tollgate.models import UsageEvent

EVENT = UsageEvent.__table__
PAYLOAD = ("customer_id", "feature_id", "quantity_micros", "occurred_at")


def _insert_ignoring_duplicates(session: Session):
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(EVENT).on_conflict_do_nothing(index_elements=["key"])


@dataclass(frozen=True)
class StoredEvent:
    key: str
    customer_id: int
    feature_id: int
    quantity_micros: int
    occurred_at: datetime


def stored_event(session: Session, key: str) -> StoredEvent | None:
    row = session.execute(
        select(EVENT.c.key, *(EVENT.c[name] for name in PAYLOAD)).where(EVENT.c.key == key)
    ).first()
    return StoredEvent(*row) if row else None


def insert_event(
    session: Session,
    *,
    key: str,
    customer_id: int,
    feature_id: int,
    quantity_micros: int,
    occurred_at: datetime,
    recorded_at: datetime,
    voids: str | None = None,
    reason: str | None = None,
) -> bool:
    """Record one event. True if inserted; False if the same event was already recorded under `key`.

    Raises Conflict if `key` is taken by an event with a different customer, feature, quantity or time.
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
    inserted = session.execute(_insert_ignoring_duplicates(session), values).rowcount == 1
    if not inserted:
        existing = stored_event(session, key)
        if existing is None or not same_payload(existing, values):
            raise Conflict(
                f"The usage key '{key}' was already used for a different event.",
                hint="Each event needs its own key; re-send an event only with exactly the same values.",
            )
    return inserted


def same_payload(existing: StoredEvent, values: dict[str, Any]) -> bool:
    return all(getattr(existing, name) == values[name] for name in PAYLOAD)


def insert_events(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Set-based insert of many events (executemany); duplicates by key are skipped. Returns how many
    were inserted. The caller checks skipped keys' payloads (see `conflicting_keys`)."""
    if not rows:
        return 0
    return session.execute(_insert_ignoring_duplicates(session), list(rows)).rowcount


def period_total(
    session: Session, *, customer_id: int, feature_id: int, start: datetime | None, end: datetime | None = None
) -> int:
    """The sum of a customer's usage of a feature in [start, end), in millionths (voids included)."""
    stmt = select(func.coalesce(func.sum(EVENT.c.quantity_micros), 0)).where(
        EVENT.c.customer_id == customer_id, EVENT.c.feature_id == feature_id
    )
    if start is not None:
        stmt = stmt.where(EVENT.c.occurred_at >= start)
    if end is not None:
        stmt = stmt.where(EVENT.c.occurred_at < end)
    return int(session.execute(stmt).scalar_one())
