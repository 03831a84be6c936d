"""The usage report read model (`usage show`, `Tollgate.usage`, the profile's usage): a customer's
usage per UTC calendar day, week (ISO, from Monday) or month for each metered feature, from the
rollups, with the current period against the allowance and the corrections (voids) in the range.
Runs on a Core Connection: the read path loads no sqlmodel.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from tollgate import tables
from tollgate.clock import parse_moment, rfc3339, utcnow
from tollgate.errors import InvalidInput
from tollgate.periods import Period, calendar_period
from tollgate.usage.limits import period_usage
from tollgate.usage.lookups import customer_row, metered_feature
from tollgate.usage.values import ZERO, decimal_text

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlmodel import Session

F = tables.feature
E = tables.usage_event
_SUBSCRIPTION = tables.subscription
_OVERRIDE = tables.override
PERIODS = ("day", "week", "month")
MAX_PERIODS = 1000
MIDNIGHT = time()


def _calendar(by: str, day: date) -> Period:
    """The UTC calendar period `by` (day, week from Monday, month) holding `day`: periods.calendar_period,
    the one definition of calendar periods. OverflowError past either end of the calendar."""
    period = calendar_period(by, datetime.combine(day, MIDNIGHT))
    if period.start is None or period.end is None:
        raise OverflowError(f"the {by} of {day} reaches past the calendar")
    return period


def period_start(day: date, by: str) -> date:
    """The first day of the `by` period containing `day`."""
    start = _calendar(by, day).start
    assert start is not None  # _calendar refuses an open period
    return start.date()


def next_period(start: date, by: str) -> date:
    """The first day of the `by` period after the one containing `start`."""
    end = _calendar(by, start).end
    assert end is not None  # _calendar refuses an open period
    return end.date()


def period_label(start: date, by: str) -> str:
    if by == "day":
        return start.isoformat()
    if by == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{start.year:04d}-{start.month:02d}"


DEFAULT_SPAN = {"day": 30, "week": 12, "month": 12}
"""How many periods `usage show` covers when --from is not given (ending with the current one)."""


def _as_date(value: date | datetime | str | None, what: str) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        from tollgate.clock import to_utc_naive

        return to_utc_naive(value).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return parse_moment(value, what=what).date()
    raise InvalidInput(f"{what} must be a date like 2026-11-21.")


def periods(by: str, start: date | datetime | str | None, end: date | datetime | str | None,
            *, today: date) -> list[date]:
    """The first day of each period shown: from the period containing `start` to the one containing
    `end` (both included; default: the last DEFAULT_SPAN[by] periods up to today)."""
    if by not in PERIODS:
        raise InvalidInput(f"--by must be one of {', '.join(PERIODS)}, not {by!r}.")
    last_day, first_day = _as_date(end, "--to") or today, _as_date(start, "--from")
    try:
        last = period_start(last_day, by)
        if first_day is None:
            first = last
            for _ in range(DEFAULT_SPAN[by] - 1):
                first = period_start(first - timedelta(days=1), by)
        else:
            first = period_start(first_day, by)
        if first > last:
            raise InvalidInput("--from is after --to.", hint="Give --from DATE earlier than --to DATE.")
        out = [first]
        while out[-1] < last:
            if len(out) >= MAX_PERIODS:
                raise InvalidInput(f"That is more than {MAX_PERIODS} periods.",
                                   hint="Narrow --from/--to, or count by week or month (--by).")
            out.append(next_period(out[-1], by))
        next_period(out[-1], by)  # the last period's end must be a date too
    except (OverflowError, ValueError):  # the edge of the calendar: datetime holds the years 1 to 9999
        raise InvalidInput("Those periods reach past the first or the last day of the calendar (years 1 to 9999).",
                           hint="Choose dates further from either end (without --from, the periods shown start "
                           "30 days, 12 weeks or 12 months before --to).") from None
    return out


def _metered_entitlements(session: Any, customer: Any, now: datetime) -> list[Any]:  # a Session or a Connection
    """The customer's metered effective entitlements. A customer with no subscription and no override
    at all (usage tracked without a plan) has none: two indexed lookups answer that without loading
    the entitlement machinery (a tenth of a second of start-up for `usage show`)."""
    if customer.status == "archived":
        return []
    if not any(
        session.execute(select(t.c.customer_id).where(t.c.customer_id == customer.id).limit(1)).first()
        for t in (_SUBSCRIPTION, _OVERRIDE)
    ):
        return []
    from tollgate.entitlements import effective_entitlements

    return [e for e in effective_entitlements(session, customer=customer.identifier, at=now) if e.type == "metered"]


@dataclass(frozen=True)
class FeatureUsage:
    """One metered feature's usage for one customer: the series over the periods shown, and the
    current usage period against the allowance (calendar month when nothing grants the feature)."""

    feature: str
    name: str
    unit: str | None
    series: tuple[Decimal, ...]
    total: Decimal
    corrections: Decimal
    used: Decimal
    limit: Decimal | None
    granted: bool
    hard: bool
    reset: str | None
    period_start: datetime | None
    reset_at: datetime | None
    source: str | None

    @property
    def percent_used(self) -> Decimal | None:
        if self.limit is None or self.limit == 0:
            return None
        return (self.used * 100 / self.limit).quantize(Decimal("0.1"))

    @property
    def remaining(self) -> Decimal | None:
        return None if self.limit is None else max(self.limit - self.used, ZERO)


@dataclass(frozen=True)
class Correction:
    key: str
    voids: str
    feature: str
    quantity: Decimal
    at: datetime
    recorded_at: datetime
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "voids": self.voids, "feature": self.feature, "quantity": decimal_text(self.quantity),
                "at": rfc3339(self.at), "recorded_at": rfc3339(self.recorded_at), "reason": self.reason}


@dataclass(frozen=True)
class UsageReport:
    customer: str
    by: str
    starts: tuple[date, ...]
    features: tuple[FeatureUsage, ...]
    corrections: tuple[Correction, ...]
    at: datetime

    @property
    def start(self) -> datetime:
        return datetime.combine(self.starts[0], datetime.min.time())

    @property
    def end(self) -> datetime:
        return datetime.combine(next_period(self.starts[-1], self.by), datetime.min.time())

    def labels(self) -> list[str]:
        return [period_label(s, self.by) for s in self.starts]

    def to_dict(self) -> dict[str, Any]:
        """The `usage show --json` shape: series per feature (exact decimal strings), the current
        period against the allowance, and the corrections (voids) of events in the range."""
        labels = self.labels()
        starts = [rfc3339(datetime.combine(s, datetime.min.time())) for s in self.starts]
        return {
            "customer": self.customer,
            "by": self.by,
            "from": rfc3339(self.start),
            "to": rfc3339(self.end),
            "features": [
                {
                    "feature": f.feature,
                    "name": f.name,
                    "unit": f.unit,
                    "series": [{"period": label, "start": start, "quantity": decimal_text(value)}
                               for label, start, value in zip(labels, starts, f.series)],
                    "total": decimal_text(f.total),
                    "corrections": decimal_text(f.corrections),
                    "used": decimal_text(f.used),
                    "limit": decimal_text(f.limit),
                    "unlimited": f.granted and f.limit is None,
                    "remaining": decimal_text(f.remaining),
                    "percent_used": decimal_text(f.percent_used),
                    "hard": f.hard,
                    "reset": f.reset,
                    "period_start": rfc3339(f.period_start),
                    "reset_at": rfc3339(f.reset_at),
                    "source": f.source,
                }
                for f in self.features
            ],
            "corrections": [c.to_dict() for c in self.corrections],
        }


def usage_report(
    session: Session | Connection,
    *,
    customer: str,
    feature: str | None = None,
    by: str = "day",
    start: date | datetime | str | None = None,
    end: date | datetime | str | None = None,
    now: datetime | None = None,
) -> UsageReport:
    """A customer's usage per period (`by` day, week or month, UTC calendar) for every metered feature
    they used in the range or are entitled to (or just `feature`), with the current period's usage
    against the allowance. Works for archived customers too (their history stays)."""
    from tollgate.money import from_micros
    from tollgate.usage.rollups import day_totals

    now = now or utcnow()
    starts = periods(by, start, end, today=now.date())
    row = customer_row(session, customer)
    only = metered_feature(session, feature) if feature is not None else None
    begin = datetime.combine(starts[0], datetime.min.time())
    finish = datetime.combine(next_period(starts[-1], by), datetime.min.time())

    sums: dict[int, dict[date, int]] = {}
    for fid, day, micros in day_totals(session, customer_id=row.id, start=begin, end=finish,
                                       feature_id=only.id if only is not None else None):
        bucket = starts[bisect_right(starts, day.date()) - 1]  # the period holding the day (starts are sorted)
        per_feature = sums.setdefault(fid, {})
        per_feature[bucket] = per_feature.get(bucket, 0) + micros
    where = [E.c.customer_id == row.id, E.c.occurred_at >= begin, E.c.occurred_at < finish]
    if only is not None:
        where.append(E.c.feature_id == only.id)

    corrections = [
        Correction(r.key, r.voids, r.feature, from_micros(r.quantity_micros), r.occurred_at, r.recorded_at, r.reason)
        for r in session.execute(
            select(E.c.key, E.c.voids, E.c.quantity_micros, E.c.occurred_at, E.c.recorded_at, E.c.reason,
                   F.c.identifier.label("feature"))
            .join(F, F.c.id == E.c.feature_id)
            .where(*where, E.c.voids.is_not(None))
            .order_by(E.c.occurred_at, E.c.id)
        )
    ]

    entitled = {
        e.feature_id: e
        for e in _metered_entitlements(session, row, now)
        if only is None or e.feature_id == only.id
    }
    wanted = set(sums) | set(entitled)
    if only is not None:
        wanted.add(only.id)
    info = {
        r.id: r
        for r in session.execute(select(F.c.id, F.c.identifier, F.c.name, F.c.unit).where(F.c.id.in_(wanted)))
    } if wanted else {}
    corrected: dict[str, Decimal] = {}
    for c in corrections:
        corrected[c.feature] = corrected.get(c.feature, ZERO) + c.quantity

    features = []
    for fid in sorted(wanted, key=lambda i: info[i].identifier):
        meta = info[fid]
        per = sums.get(fid, {})
        series = tuple(from_micros(per.get(s, 0)) for s in starts)
        e = entitled.get(fid)
        if e is not None:
            used, limit, hard, reset = e.used, e.limit, e.hard, e.reset
            p_start, p_end, source = e.period_start, e.reset_at, e.source
        else:
            period = calendar_period("month", now)
            used = from_micros(period_usage(session, row.id, fid, period))
            limit, hard, reset, p_start, p_end, source = None, False, "month", period.start, period.end, None
        features.append(FeatureUsage(
            feature=meta.identifier, name=meta.name, unit=meta.unit, series=series,
            total=from_micros(sum(per.values())), corrections=corrected.get(meta.identifier, ZERO), used=used,
            limit=limit, granted=e is not None, hard=hard, reset=reset, period_start=p_start, reset_at=p_end,
            source=source,
        ))
    return UsageReport(customer=row.identifier, by=by, starts=tuple(starts), features=tuple(features),
                       corrections=tuple(corrections), at=now)
