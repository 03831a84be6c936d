"""Voids: `void_usage` records a reversing event (the negative quantity, at the original's time, so it
lands in the same period) under the key `void:<key>`, with `voids` = the key and the reason. The
original stays. A void can't be voided and an event can't be voided twice. Keys starting with
`void:` are reserved for this (usage.values.parse_key refuses them). Journaled as `usage.void`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from tollgate import tables
from tollgate.clock import rfc3339, utcnow
from tollgate.errors import InvalidInput, NotFound, RuleViolation
from tollgate.usage.values import VOID_PREFIX, decimal_text, micros_text

if TYPE_CHECKING:
    from sqlmodel import Session

C = tables.customer
F = tables.feature
E = tables.usage_event
MAX_REASON = 500


@dataclass(frozen=True)
class VoidResult:
    key: str  # the void's own key (void:<voided>)
    voids: str
    customer: str
    feature: str
    quantity: Decimal  # negative: the voided quantity reversed
    at: datetime  # the voided event's time (so the void lands in the same period)
    recorded_at: datetime
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "voids": self.voids,
            "customer": self.customer,
            "feature": self.feature,
            "quantity": decimal_text(self.quantity),
            "at": rfc3339(self.at),
            "recorded_at": rfc3339(self.recorded_at),
            "reason": self.reason,
        }


def _reason(text: Any) -> str:
    value = text.strip() if isinstance(text, str) else ""
    if not value:
        raise InvalidInput("A void needs a reason (--reason TEXT): it is kept with the correction.")
    if len(value) > MAX_REASON or not value.isprintable():
        raise InvalidInput(f"The reason is at most {MAX_REASON} printable characters on one line.")
    return value


def void_usage(session: Session, *, key: str, reason: str, now: datetime | None = None) -> VoidResult:
    """Reverse one recorded event (see the module docstring). Unknown key: NotFound; a void, or an
    event already voided: RuleViolation. Allowed for archived customers (it corrects history)."""
    from tollgate.locks import locked
    from tollgate.usage.store import insert_event

    reason = _reason(reason)
    now = now or utcnow()
    session.execute(locked(session, select(E.c.id).where(E.c.key == key)))  # PostgreSQL: one void at a time
    original = session.execute(
        select(E.c.key, E.c.customer_id, E.c.feature_id, E.c.quantity_micros, E.c.occurred_at, E.c.voids,
               C.c.identifier.label("customer"), F.c.identifier.label("feature"))
        .join(C, C.c.id == E.c.customer_id).join(F, F.c.id == E.c.feature_id)
        .where(E.c.key == key)
    ).first()
    if original is None:
        raise NotFound(f"No usage event has the key '{key}'.", hint="See `tollgate usage show CUSTOMER --json`.")
    if original.voids is not None:
        raise RuleViolation(f"'{key}' is itself a void (of '{original.voids}'); a void can't be voided.",
                            hint="Report the usage again instead.")
    void_key = VOID_PREFIX + key
    earlier = session.execute(select(E.c.recorded_at, E.c.reason).where(E.c.key == void_key)).first()
    if earlier is not None:
        raise RuleViolation(f"The usage event '{key}' was already voided at {rfc3339(earlier.recorded_at)} "
                            f"({earlier.reason}).")
    insert_event(session, key=void_key, customer_id=original.customer_id, feature_id=original.feature_id,
                 quantity_micros=-original.quantity_micros, occurred_at=original.occurred_at, recorded_at=now,
                 voids=key, reason=reason)
    from tollgate import journal

    journal.record(session, action="usage.void", object_type="usage", object_id=key,
                   customer_id=original.customer_id,
                   details={"void_key": void_key, "feature": original.feature, "reason": reason,
                            "voided_quantity": micros_text(original.quantity_micros),
                            "quantity": micros_text(-original.quantity_micros), "at": rfc3339(original.occurred_at)},
                   at=now)
    from tollgate.money import from_micros

    return VoidResult(key=void_key, voids=key, customer=original.customer, feature=original.feature,
                      quantity=from_micros(-original.quantity_micros), at=original.occurred_at, recorded_at=now,
                      reason=reason)

