"""Which billing periods an invoice preview covers, and each subscription's terms as billing sees
them: the selection (a month, or the period containing a moment), the periods of a subscription in
it (anniversaries, 28-day steps, one-time purchases by calendar month), and the arithmetic of
chargeable time (overlaps, what remains after the time others charge, a part's share of a period).
invoices.py states the decisions in words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from tollgate.clock import parse_moment, rfc3339, to_utc_naive, utcnow
from tollgate.errors import InvalidInput
from tollgate.money import CURRENCY_EXPONENTS, WIDE
from tollgate.statuses import LIVE_STATUSES
from tollgate.periods import (
    DAY_STEPS,
    FREE_PLAN_INTERVAL,
    MONTH_STEPS,
    Period,
    anniversary_period,
    boundary,
    calendar_period,
)

_FOREVER = datetime.max
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


# -- what is selected ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which billing periods a preview covers: those starting in the month `period` ("2026-03"), or
    the one containing `at`. `start`/`end`: the month (for `at`, the calendar month containing it)."""

    period: str | None
    at: datetime | None
    start: datetime
    end: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"period": self.period, "at": rfc3339(self.at)}


def select_periods(*, period: str | None = None, at: datetime | str | None = None,
                   now: datetime | None = None) -> Selection:
    """A Selection from `period` ("YYYY-MM") or `at` (a datetime or RFC 3339 text); neither: now."""
    if period is not None and at is not None:
        raise InvalidInput("Give --period or --at, not both.",
                           hint="--period 2026-03 bills the periods starting in March; --at 2026-03-20 the ones containing that day.")
    if period is not None:
        match = _MONTH.match(period.strip()) if isinstance(period, str) else None
        year, month = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
        if not match or not 1 <= month <= 12 or not 1 <= year <= 9998:
            raise InvalidInput(f"'{period}' is not a month; write it as YYYY-MM, like 2026-03.")
        start = datetime(year, month, 1)
        end = datetime(year + month // 12, month % 12 + 1, 1)
        return Selection(f"{year:04d}-{month:02d}", None, start, end)
    if at is None:
        moment = now or utcnow()
    elif isinstance(at, datetime):
        moment = to_utc_naive(at)
    else:
        moment = parse_moment(at, what="date")
    calendar_month = calendar_period("month", moment)
    return Selection(None, moment, calendar_month.start or datetime.min, calendar_month.end or _FOREVER)


# -- subscriptions as billing sees them ------------------------------------------------------------


@dataclass(slots=True)
class Terms:
    """What billing needs of a subscription (a row of the subscription table), with its spans worked out:
    `access` [start, end of access) and `chargeable` [end of the trial, end of access) (None: never)."""

    id: int
    public_id: str
    customer_id: int
    version_id: int  # the plan version it bills under (its usage charges)
    plan: str
    status: str
    interval: str | None
    currency: str | None
    amount_minor: int | None
    start_at: datetime
    trial_end: datetime | None
    cancel_at: datetime | None
    next_version_id: int | None  # a move scheduled at a period boundary (sub_versions.py)
    next_version_at: datetime | None
    next_amount_minor: int | None
    access_end: datetime | None = field(init=False)
    access: Period = field(init=False)
    chargeable: Period | None = field(init=False)
    price: Decimal | None = field(init=False)

    def __post_init__(self) -> None:
        # Every ended subscription has `cancel_at` (when access ended); one with an ended status and
        # none (not written by tollgate) never had access.
        if self.cancel_at is not None:
            self.access_end = self.cancel_at
        else:
            self.access_end = None if self.status in LIVE_STATUSES else self.start_at
        self.access = Period(self.start_at, self.access_end)
        start = self.start_at
        if self.trial_end is not None and self.trial_end > start:
            start = self.trial_end
        end = self.access_end
        self.chargeable = None if end is not None and end <= start else Period(start, end)
        self.price = None
        if self.amount_minor is not None and self.currency is not None:
            self.price = Decimal(self.amount_minor).scaleb(-CURRENCY_EXPONENTS[self.currency], context=WIDE)


def billing_periods(terms: Terms, selection: Selection) -> list[Period]:
    """The subscription's billing periods the selection covers that overlap its access, in order."""
    access = terms.access
    assert access.start is not None  # a subscription's access starts at its start
    if access.end is not None and access.end <= access.start:
        return []
    if terms.interval == "once":
        found = _once_periods(terms.start_at, selection)
    elif selection.period is not None:
        found = _periods_starting_in(terms.start_at, terms.interval or FREE_PLAN_INTERVAL,
                                     selection.start, selection.end)
    else:
        at = selection.at
        assert at is not None  # a selection is a period or a moment
        found = [] if at < terms.start_at else [anniversary_period(terms.start_at, terms.interval or FREE_PLAN_INTERVAL, at)]
    return [p for p in found if p.start is not None and _overlaps(p, access)]


def _periods_starting_in(anchor: datetime, cadence: str, start: datetime, end: datetime) -> list[Period]:
    """The anniversary periods of `anchor` (none before it) whose start lies in [start, end).

    The same periods as periods.anniversary_period, found from the first boundary at or after `start`
    (periods.boundary: a couple of date computations per subscription, which a bill run does 10,000s
    of times) instead of by locating a moment; tests check that both agree."""
    out = []
    try:
        n, begin = _first_boundary(anchor, cadence, start)
        while begin < end:
            finish = boundary(anchor, cadence, n + 1)
            out.append(Period(begin, finish))
            n, begin = n + 1, finish
    except (OverflowError, ValueError):  # past the years datetime can hold
        pass
    return out


def _first_boundary(anchor: datetime, cadence: str, moment: datetime) -> tuple[int, datetime]:
    """The smallest n >= 0 with boundary(anchor, cadence, n) >= moment, and that boundary."""
    if moment <= anchor:
        return 0, anchor
    if cadence in DAY_STEPS:
        step = timedelta(days=DAY_STEPS[cadence])
        n = -((anchor - moment) // step)  # ceiling of (moment - anchor) / step
        return n, anchor + step * n
    # Month steps: n = whole steps between the months is the boundary in `moment`'s month or before
    # it, and the one before that is a whole step earlier, so only moving up can be needed.
    n = ((moment.year - anchor.year) * 12 + moment.month - anchor.month) // MONTH_STEPS[cadence]
    found = boundary(anchor, cadence, n)
    while found < moment:
        n += 1
        found = boundary(anchor, cadence, n)
    return n, found


def _once_periods(purchase: datetime, selection: Selection) -> list[Period]:
    """A one-time purchase: calendar months, the first one starting at the purchase."""
    if selection.at is not None and selection.at < purchase:
        return []
    if purchase >= selection.end:
        return []
    return [Period(max(selection.start, purchase), selection.end)]


def overlap(a: Period, b: Period) -> Period | None:
    """The common part of two periods (`a` itself when `b` covers it), or None."""
    a_start, a_end = a.start or datetime.min, a.end or _FOREVER
    b_start, b_end = b.start or datetime.min, b.end or _FOREVER
    if b_start <= a_start and a_end <= b_end:
        return a
    start, end = max(a_start, b_start), min(a_end, b_end)
    if end <= start:
        return None
    return Period(start, None if end == _FOREVER else end)


def _overlaps(a: Period, b: Period) -> bool:
    return (a.start or datetime.min) < (b.end or _FOREVER) and (b.start or datetime.min) < (a.end or _FOREVER)


def subtract(window: Period, taken: Sequence[Period]) -> list[Period]:
    """The parts of `window` that none of `taken` covers, in order."""
    pieces = [window]
    for cut in taken:
        cut_start, cut_end = cut.start or datetime.min, cut.end or _FOREVER
        next_pieces = []
        for piece in pieces:
            p_start, p_end = piece.start or datetime.min, piece.end or _FOREVER
            if cut_end <= p_start or p_end <= cut_start:
                next_pieces.append(piece)
                continue
            if p_start < cut_start:
                next_pieces.append(Period(piece.start, cut_start))
            if cut_end < p_end:
                next_pieces.append(Period(cut_end, piece.end))
        pieces = next_pieces
    return pieces


def time_share(part: Period, whole: Period) -> Fraction:
    """How much of `whole` `part` is, exactly (both finite)."""
    tick = timedelta(microseconds=1)
    assert part.start is not None and part.end is not None and whole.start is not None and whole.end is not None
    return Fraction((part.end - part.start) // tick, (whole.end - whole.start) // tick)
