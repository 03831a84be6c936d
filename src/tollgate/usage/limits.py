"""Where an event lands and what it crosses: the usage period of an event (its entitlement's, or the
UTC calendar month when nothing grants the feature), the usage in a period (from the rollups), and
the alert thresholds and limits crossed by a report or a file, journaled (Rule 6) and returned as
notices; past a hard limit, a warning (Rule 5: usage is never refused for a limit)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select

from tollgate import tables
from tollgate.usage.values import decimal_text

if TYPE_CHECKING:
    from tollgate.periods import Period

E = tables.usage_event
_SUBSCRIPTION = tables.subscription
_OVERRIDE = tables.override
_DAY = timedelta(days=1)

AddedByDay = Mapping[tuple[int, int], Mapping[datetime, int]]
"""What an ingest added, per (customer id, feature id), per UTC day, in millionths."""


def event_period(conn: Any, *, customer: str, feature: Any, at: datetime) -> tuple[Any, Period]:
    """(effective entitlement or None, the usage period containing `at`)."""
    from tollgate.entitlements import effective_entitlement
    from tollgate.periods import Period, calendar_period

    entitlement = effective_entitlement(conn, customer=customer, feature=feature, at=at, with_usage=False)
    if entitlement is None:
        return None, calendar_period("month", at)
    return entitlement, Period(entitlement.period_start, entitlement.reset_at)


def period_usage(conn: Any, customer_id: int, feature_id: int, period: Period) -> int:
    """The usage of one customer's feature in `period`, in millionths (voids included)."""
    from tollgate.usage.rollups import window_total

    return window_total(conn, customer_id=customer_id, feature_id=feature_id, start=period.start, end=period.end)


def limit_messages(
    session: Any, entitlement: Any, *, customer: str, customer_id: int, before: Decimal, after: Decimal,
    now: datetime,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(notices, warnings) for usage going from `before` to `after` in the entitlement's period: each
    alert threshold or limit crossed is journaled (Rule 6); past a hard limit, a warning (Rule 5)."""
    if entitlement is None or entitlement.limit is None:
        return (), ()
    from tollgate.entitlements import _record_crossings  # the one place crossings are journaled

    notices = _record_crossings(session, entitlement, customer=customer, customer_id=customer_id,
                                before=before, after=after, now=now)
    warnings: tuple[str, ...] = ()
    if entitlement.hard and after > entitlement.limit and after > before:
        warnings = (
            f"'{customer}' is past its hard limit for '{entitlement.feature}': {decimal_text(after)} of "
            f"{decimal_text(entitlement.limit)} used. The usage was recorded (usage report never drops what "
            "happened); gate access with `tollgate check --consume`.",
        )
    return notices, warnings


def crossings_after_ingest(
    session: Any, touched: set[tuple[int, int]], customers: dict[str, int], added_by_day: AddedByDay,
    now: datetime,
) -> tuple[list[str], list[str]]:
    """(notices, warnings) for the alert thresholds / limits an ingest crossed in each touched
    customer's current period: before = the period's total less what the ingest recorded in it. Only
    customers with a subscription or an override can have an allowance; one entitlement lookup per
    such customer, then the periods' totals in one batch (usage.window_batch), and the partial days'
    additions with one prepared statement: a file touches thousands of customers' features."""
    from tollgate.entitlements import effective_entitlements
    from tollgate.money import from_micros
    from tollgate.usage.window_batch import window_totals

    by_customer: dict[int, set[int]] = {}
    for cid, fid in touched:
        by_customer.setdefault(cid, set()).add(fid)
    with_terms = {cid for (cid,) in session.execute(
        select(_SUBSCRIPTION.c.customer_id).union(select(_OVERRIDE.c.customer_id)))}
    customer_names = {cid: ident for ident, cid in customers.items()}
    crossing: list[tuple[int, str, Any, int]] = []  # (customer id, identifier, entitlement, micros added)
    for cid in sorted(by_customer.keys() & with_terms):
        name = customer_names[cid]
        for entitlement in effective_entitlements(session, customer=name, at=now, with_usage=False):
            if entitlement.feature_id not in by_customer[cid] or entitlement.type != "metered" \
                    or entitlement.limit is None:
                continue
            added = _added_in(session, added_by_day, cid, entitlement.feature_id, entitlement.period_start,
                              entitlement.reset_at, now)
            if added:
                crossing.append((cid, name, entitlement, added))
    totals = window_totals(session, ((i, cid, e.feature_id, e.period_start, e.reset_at)
                                     for i, (cid, _, e, _) in enumerate(crossing)))
    notices: list[str] = []
    warnings: list[str] = []
    for i, (cid, name, entitlement, added) in enumerate(crossing):
        after = totals[i]
        crossed, past = limit_messages(
            session, entitlement, customer=name, customer_id=cid,
            before=from_micros(after - added), after=from_micros(after), now=now,
        )
        notices.extend(crossed)
        warnings.extend(past)
    return notices, warnings


@cache
def _added_in_part() -> Any:
    """An ingest's own events (recorded at `now`) in [lo, hi) of one customer's feature, summed (int():
    PostgreSQL's sum of a bigint is a numeric). Built once: SQLAlchemy reuses its compiled form."""
    return select(func.coalesce(func.sum(E.c.quantity_micros), 0)).where(
        E.c.customer_id == bindparam("c"), E.c.feature_id == bindparam("f"), E.c.occurred_at >= bindparam("lo"),
        E.c.occurred_at < bindparam("hi"), E.c.recorded_at == bindparam("now"))


def _added_in(session: Any, added_by_day: AddedByDay, customer_id: int, feature_id: int,
              start: datetime | None, end: datetime | None, now: datetime) -> int:
    """What an ingest added to [start, end): its sums per UTC day for the days inside, and for a
    day cut by an edge, its own events there (recorded_at = now: a bounded scan of one day)."""
    from tollgate.usage.rollups import OPEN_END, OPEN_START

    lo, hi = start or OPEN_START, end or OPEN_END
    total = 0
    for day, micros in added_by_day.get((customer_id, feature_id), {}).items():
        if day >= hi or day + _DAY <= lo:
            continue
        if day >= lo and hi - day >= _DAY:
            total += micros
            continue
        total += int(session.execute(_added_in_part(), {"c": customer_id, "f": feature_id, "lo": max(lo, day),
                                                        "hi": min(hi, day + _DAY), "now": now}).scalar_one())
    return total
