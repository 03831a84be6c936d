"""One usage event reported (`usage report CUSTOMER FEATURE QUANTITY`, `Tollgate.report_usage`), in
the caller's write transaction; it raises TollgateError subclasses and never prints: notices (alert
thresholds, limits) and warnings (past a hard limit) are returned (spec: usage event, Rules 4-6).

- The quantity is an exact decimal, stored as integer millionths, more than zero (usage.values); a
  correction is a void (usage.voids). `--set` records the delta, positive or negative, that makes
  the period's total equal the given figure.
- The key is the event's identity (usage.store): the same key with the same event is "already
  recorded" (a retry, harmless), the same key for a different event is refused. An event reported
  without a time is compared without its time (a retry a second later is the same event). A `--set`
  event is compared by its target, not its delta (the delta of a retry would be 0).
- The period of an event is its entitlement's usage period at the event's time (the subscription's
  anniversary, see entitlements.py); with nothing granting the feature, the UTC calendar month
  (usage.limits). Usage is never refused for a limit (Rule 5): past a hard limit it is recorded and
  a warning is returned. Crossing an alert threshold or the allowance is journaled
  (`usage.alert`/`usage.limit`) and returned as a notice (Rule 6).
- A single report is journaled (`usage.report`); the events table is itself the ledger of every event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from tollgate import tables
from tollgate.clock import rfc3339, utcnow
from tollgate.errors import Conflict, InvalidInput
from tollgate.usage.limits import event_period, limit_messages, period_usage
from tollgate.usage.lookups import customer_row, metered_feature
from tollgate.usage.values import (
    MAX_MICROS,
    MAX_UNITS,
    ZERO,
    decimal_micros,
    decimal_text,
    event_time,
    micros_text,
    parse_key,
    quantity_micros,
)

if TYPE_CHECKING:
    from sqlmodel import Session

    from tollgate.periods import Period
    from tollgate.usage.store import StoredEvent

E = tables.usage_event


@dataclass(frozen=True)
class ReportResult:
    """What `usage report` did. `recorded` False: the key was already recorded (nothing changed)."""

    key: str
    customer: str
    feature: str
    quantity: Decimal
    at: datetime
    recorded: bool
    generated_key: bool = False
    set_to: Decimal | None = None
    used: Decimal = ZERO
    limit: Decimal | None = None
    hard: bool = False
    period_start: datetime | None = None
    reset_at: datetime | None = None
    unit: str | None = None
    notices: tuple[str, ...] = field(default=(), compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def duplicate(self) -> bool:
        return not self.recorded

    def to_dict(self) -> dict[str, Any]:
        remaining = None if self.limit is None else max(self.limit - self.used, ZERO)
        return {
            "key": self.key,
            "customer": self.customer,
            "feature": self.feature,
            "quantity": decimal_text(self.quantity),
            "at": rfc3339(self.at),
            "recorded": self.recorded,
            "duplicate": self.duplicate,
            "generated_key": self.generated_key,
            "set_to": decimal_text(self.set_to),
            "used": decimal_text(self.used),
            "limit": decimal_text(self.limit),
            "remaining": decimal_text(remaining),
            "hard": self.hard,
            "period_start": rfc3339(self.period_start),
            "reset_at": rfc3339(self.reset_at),
            "notices": list(self.notices),
            "warnings": list(self.warnings),
        }


def _set_marker(target_micros: int) -> str:
    return f"set total to {micros_text(target_micros)}"


def report_usage(
    session: Session,
    *,
    customer: str,
    feature: str,
    quantity: Any,
    at: datetime | str | None = None,
    key: str | None = None,
    set_total: bool = False,
    now: datetime | None = None,
) -> ReportResult:
    """Record one usage event (or, with `set_total`, the delta that makes the period's total equal
    `quantity`). Returns the result with any notices and warnings to show; see the module docstring."""
    from tollgate import identifiers
    from tollgate.money import from_micros
    from tollgate.usage.store import insert_event, stored_event

    now = now or utcnow()
    if set_total:
        micros = decimal_micros(quantity, path=None, allow_zero=True, what="total")
    else:
        micros = quantity_micros(quantity)
    occurred = event_time(at, now=now) if at is not None else now
    timed = at is not None
    generated = key is None
    key = identifiers.public_id("use", 20) if key is None else parse_key(key)
    row = customer_row(session, customer, doing="report usage")
    ref = metered_feature(session, feature)
    marker = _set_marker(micros) if set_total else None

    existing = None if generated else stored_event(session, key)
    if existing is not None:
        same = (existing.customer_id, existing.feature_id) == (row.id, ref.id) and (
            not timed or existing.occurred_at == occurred
        )
        if set_total:
            same = same and _stored_reason(session, key) == marker
        else:
            same = same and existing.quantity_micros == micros
        if not same:
            raise Conflict(
                f"The usage key '{key}' was already used for a different event.",
                hint="Each event needs its own key; re-send an event only with exactly the same values.",
            )
        return _already_recorded(session, key, row, ref, existing, set_to=micros if set_total else None)

    from tollgate.locks import lock_customer_feature

    lock_customer_feature(session, row.id, ref.id)  # PostgreSQL: the total read below stays the total
    entitlement, period = event_period(session, customer=row.identifier, feature=ref, at=occurred)
    before = period_usage(session, row.id, ref.id, period)
    delta = micros - before if set_total else micros
    if set_total and abs(delta) > MAX_MICROS:
        raise InvalidInput(f"Setting the total to {micros_text(micros)} would record a change of "
                           f"{micros_text(delta)}, more than {MAX_UNITS:,} units at once.",
                           hint="Report the usage in smaller steps.")
    if not insert_event(session, key=key, customer_id=row.id, feature_id=ref.id, quantity_micros=delta,
                        occurred_at=occurred, recorded_at=now, reason=marker, compare_time=timed):
        # the same event, reported at the same moment by someone else, committed between the lookup
        # above and this insert (PostgreSQL's READ COMMITTED; on SQLite, BEGIN IMMEDIATE rules it out)
        return _already_recorded(session, key, row, ref, stored_event(session, key),
                                 set_to=micros if set_total else None)
    after = before + delta
    notices, warnings = limit_messages(session, entitlement, customer=row.identifier, customer_id=row.id,
                                       before=from_micros(before), after=from_micros(after), now=now)
    details = {"key": key, "feature": ref.identifier, "quantity": micros_text(delta), "at": rfc3339(occurred)}
    if set_total:
        details["set_to"] = micros_text(micros)
    from tollgate import journal

    journal.record(session, action="usage.report", object_type="usage", object_id=key, customer_id=row.id,
                   details=details, at=now)
    return _result(key, row, ref, delta, occurred, True, entitlement, period, used=after,
                   set_to=micros if set_total else None, generated=generated, notices=notices, warnings=warnings)


def _stored_reason(session: Session, key: str) -> str | None:
    return session.execute(select(E.c.reason).where(E.c.key == key)).scalar()


def _already_recorded(session: Session, key: str, row: Any, ref: Any, existing: StoredEvent | None, *,
                      set_to: int | None) -> ReportResult:
    """The result for a key already recorded with the same event (nothing changed)."""
    assert existing is not None  # insert_event found it the same event (else Conflict) in this transaction
    entitlement, period = event_period(session, customer=row.identifier, feature=ref, at=existing.occurred_at)
    return _result(key, row, ref, existing.quantity_micros, existing.occurred_at, False, entitlement, period,
                   used=period_usage(session, row.id, ref.id, period), set_to=set_to)


def _result(key: str, row: Any, ref: Any, micros: int, occurred: datetime, recorded: bool, entitlement: Any,
            period: Period, *, used: int, set_to: int | None = None, generated: bool = False,
            notices: tuple[str, ...] = (), warnings: tuple[str, ...] = ()) -> ReportResult:
    from tollgate.money import from_micros

    return ReportResult(
        key=key, customer=row.identifier, feature=ref.identifier, quantity=from_micros(micros), at=occurred,
        recorded=recorded, generated_key=generated, set_to=None if set_to is None else from_micros(set_to),
        used=from_micros(used), limit=entitlement.limit if entitlement else None,
        hard=bool(entitlement.hard) if entitlement else False, period_start=period.start, reset_at=period.end,
        unit=ref.unit, notices=tuple(notices), warnings=tuple(warnings),
    )

