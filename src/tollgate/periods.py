"""Period arithmetic: billing periods and usage-reset periods. Pure functions over naive UTC datetimes.

Two kinds of periods:
- **anniversary** periods follow an anchor (a subscription's start): a subscription started on
  2026-01-15 10:30 has monthly periods 01-15 10:30 -> 02-15 10:30 -> 03-15 10:30 ... Month-based
  steps (month, quarter, half-year, year) are counted from the anchor each time, never chained, so an
  anchor on the 31st gives Jan 31 -> Feb 28 (29 in a leap year) -> Mar 31 -> Apr 30 -> May 31: the
  day rolls to the month's last day when the month is shorter, and comes back when it is not.
  Day-based steps (day, week, 28d) are exact multiples of 24 hours from the anchor.
- **calendar** periods in UTC (used when no subscription anchors them): a day starts at 00:00, a
  week on Monday 00:00 (ISO weeks), a month on the 1st, a quarter on Jan/Apr/Jul/Oct 1st, a year on
  Jan 1st; 28-day periods are counted from Monday 1970-01-05.

`never` (a reset cadence) and `once` (a billing interval: a one-time purchase) have one period that
starts at the anchor and never ends (`end` is None); without an anchor it is all of time.

For any anchor and cadence, the periods tile time: every moment lies in exactly one period, and each
period's end is the next one's start (tests/test_periods.py checks this with hypothesis).
"""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass
from datetime import datetime, timedelta

MONTH_STEPS = {"month": 1, "quarter": 3, "half-year": 6, "year": 12}
DAY_STEPS = {"day": 1, "week": 7, "28d": 28}
ENDLESS = ("never", "once")
CADENCES = (*DAY_STEPS, *MONTH_STEPS, *ENDLESS)

CALENDAR_EPOCH = datetime(1970, 1, 1)
WEEK_EPOCH = datetime(1970, 1, 5)  # a Monday: weeks and 28-day periods start on Mondays
FREE_PLAN_INTERVAL = "month"
"""The billing cycle of a subscription that has no interval (a free plan): monthly anniversaries."""


@dataclass(frozen=True)
class Period:
    """[start, end): `start` None = since the beginning of time, `end` None = never ends."""

    start: datetime | None
    end: datetime | None

    def __contains__(self, moment: datetime) -> bool:
        return (self.start is None or self.start <= moment) and (self.end is None or moment < self.end)


def _check(cadence: str) -> None:
    if cadence not in CADENCES:
        raise ValueError(f"unknown cadence {cadence!r}: use one of {', '.join(CADENCES)}")


def shift_months(anchor: datetime, months: int) -> datetime:
    """`anchor` moved by a whole number of months; the day is clamped to the target month's last day."""
    total = anchor.year * 12 + (anchor.month - 1) + months
    year, month0 = divmod(total, 12)
    month = month0 + 1
    return anchor.replace(year=year, month=month, day=min(anchor.day, monthrange(year, month)[1]))


def boundary(anchor: datetime, cadence: str, n: int) -> datetime:
    """The start of the n-th period after the one starting at `anchor` (n may be negative).

    Raises OverflowError/ValueError past the years datetime can hold (1..9999)."""
    _check(cadence)
    if cadence in DAY_STEPS:
        return anchor + timedelta(days=DAY_STEPS[cadence] * n)
    if cadence in MONTH_STEPS:
        return shift_months(anchor, MONTH_STEPS[cadence] * n)
    if n == 0:
        return anchor
    raise ValueError(f"a {cadence!r} period has no next boundary")


def _index(anchor: datetime, cadence: str, moment: datetime) -> int:
    """n such that boundary(n) <= moment < boundary(n + 1)."""
    if cadence in DAY_STEPS:
        return (moment - anchor) // timedelta(days=DAY_STEPS[cadence])
    step = MONTH_STEPS[cadence]
    n = ((moment.year - anchor.year) * 12 + (moment.month - anchor.month)) // step
    while boundary(anchor, cadence, n) > moment:
        n -= 1
    while boundary(anchor, cadence, n + 1) <= moment:
        n += 1
    return n


def _safe_boundary(anchor: datetime, cadence: str, n: int) -> datetime | None:
    try:
        return boundary(anchor, cadence, n)
    except (OverflowError, ValueError):
        return None


def anniversary_period(anchor: datetime, cadence: str, moment: datetime) -> Period:
    """The period of `cadence`, anchored at `anchor`, that contains `moment` (before the anchor too)."""
    _check(cadence)
    if cadence in ENDLESS:
        return Period(anchor, None)
    try:
        n = _index(anchor, cadence, moment)
    except (OverflowError, ValueError):  # at the very edge of datetime's range
        return Period(None, None)
    return Period(_safe_boundary(anchor, cadence, n), _safe_boundary(anchor, cadence, n + 1))


def calendar_period(cadence: str, moment: datetime) -> Period:
    """The UTC calendar period of `cadence` containing `moment` (`never`: all of time)."""
    _check(cadence)
    if cadence in ENDLESS:
        return Period(None, None)
    epoch = WEEK_EPOCH if cadence in ("week", "28d") else CALENDAR_EPOCH
    return anniversary_period(epoch, cadence, moment)


def reset_period(reset: str, moment: datetime, *, anchor: datetime | None) -> Period:
    """The usage period of a reset cadence: anniversary of `anchor` when given, else calendar (UTC)."""
    if anchor is None:
        return calendar_period(reset, moment)
    return anniversary_period(anchor, reset, moment)


def billing_period(start: datetime, interval: str | None, moment: datetime) -> Period:
    """A subscription's billing period containing `moment` (clamped to its first period before `start`).

    `once` (a one-time purchase) has one period that never ends; no interval (a free plan) is monthly."""
    cadence = interval or FREE_PLAN_INTERVAL
    return anniversary_period(start, cadence, max(moment, start))


