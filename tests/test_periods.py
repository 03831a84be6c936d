"""Period arithmetic: anniversaries (month-end rolling), calendar periods, and tiling (hypothesis)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollgate.periods import (
    CADENCES,
    Period,
    anniversary_period,
    billing_period,
    boundary,
    calendar_period,
    reset_period,
    shift_months,
)

D = datetime


def periods_between(anchor: datetime | None, cadence: str, start: datetime, end: datetime) -> list[Period]:
    """The periods (anniversary of `anchor`, or calendar when None) that overlap [start, end), in order:
    the tiling the tests check reset_period against."""
    if end <= start:
        return []
    out: list[Period] = []
    moment = start
    while True:
        period = reset_period(cadence, moment, anchor=anchor)
        out.append(period)
        if period.end is None or period.end >= end:
            return out
        moment = period.end


@pytest.mark.parametrize("months, expected", [
    (0, D(2026, 1, 31)), (1, D(2026, 2, 28)), (2, D(2026, 3, 31)), (3, D(2026, 4, 30)), (4, D(2026, 5, 31)),
    (13, D(2027, 2, 28)), (25, D(2028, 2, 29)), (-1, D(2025, 12, 31)), (-11, D(2025, 2, 28)),
])
def test_the_31st_rolls_to_the_months_last_day_and_comes_back(months, expected):
    assert shift_months(D(2026, 1, 31), months) == expected


def test_monthly_anniversaries_are_counted_from_the_anchor_not_chained():
    anchor = D(2026, 1, 31, 9, 30)
    starts = [boundary(anchor, "month", n) for n in range(5)]
    assert starts == [D(2026, 1, 31, 9, 30), D(2026, 2, 28, 9, 30), D(2026, 3, 31, 9, 30), D(2026, 4, 30, 9, 30),
                      D(2026, 5, 31, 9, 30)]


def test_a_subscription_started_on_the_15th_resets_on_the_15th():
    period = anniversary_period(D(2026, 1, 15), "month", D(2026, 3, 20, 12))
    assert period == Period(D(2026, 3, 15), D(2026, 4, 15))
    assert anniversary_period(D(2026, 1, 15), "month", D(2026, 3, 15)) == Period(D(2026, 3, 15), D(2026, 4, 15))
    assert anniversary_period(D(2026, 1, 15), "month", D(2026, 3, 14, 23, 59)) == Period(D(2026, 2, 15), D(2026, 3, 15))


@pytest.mark.parametrize("anchor, cadence, moment, expected", [
    (D(2025, 11, 30), "quarter", D(2026, 6, 1), Period(D(2026, 5, 30), D(2026, 8, 30))),
    (D(2025, 11, 30), "quarter", D(2026, 5, 29), Period(D(2026, 2, 28), D(2026, 5, 30))),
    (D(2025, 8, 31), "half-year", D(2026, 9, 1), Period(D(2026, 8, 31), D(2027, 2, 28))),
    (D(2025, 8, 31), "half-year", D(2026, 8, 30), Period(D(2026, 2, 28), D(2026, 8, 31))),
    (D(2024, 2, 29), "year", D(2028, 3, 1), Period(D(2028, 2, 29), D(2029, 2, 28))),
    (D(2025, 12, 31), "28d", D(2026, 2, 1), Period(D(2026, 1, 28), D(2026, 2, 25))),
    (D(2025, 12, 31), "week", D(2025, 12, 30), Period(D(2025, 12, 24), D(2025, 12, 31))),
    (D(2025, 12, 31, 6), "day", D(2026, 1, 1, 3), Period(D(2025, 12, 31, 6), D(2026, 1, 1, 6))),
])
def test_other_cadences_from_an_anchor(anchor, cadence, moment, expected):
    assert anniversary_period(anchor, cadence, moment) == expected


def test_year_from_leap_day():
    anchor = D(2024, 2, 29)
    assert [boundary(anchor, "year", n) for n in range(5)] == [
        D(2024, 2, 29), D(2025, 2, 28), D(2026, 2, 28), D(2027, 2, 28), D(2028, 2, 29)]


@pytest.mark.parametrize("cadence, moment, expected", [
    ("day", D(2026, 3, 4, 15, 2), Period(D(2026, 3, 4), D(2026, 3, 5))),
    ("week", D(2026, 3, 4, 15), Period(D(2026, 3, 2), D(2026, 3, 9))),  # Monday to Monday
    ("week", D(2026, 3, 2), Period(D(2026, 3, 2), D(2026, 3, 9))),
    ("month", D(2026, 2, 28, 23, 59, 59), Period(D(2026, 2, 1), D(2026, 3, 1))),
    ("quarter", D(2026, 5, 4), Period(D(2026, 4, 1), D(2026, 7, 1))),
    ("quarter", D(2026, 12, 31, 23), Period(D(2026, 10, 1), D(2027, 1, 1))),
    ("year", D(2026, 7, 1), Period(D(2026, 1, 1), D(2027, 1, 1))),
    ("never", D(2026, 7, 1), Period(None, None)),
])
def test_calendar_periods_in_utc(cadence, moment, expected):
    assert calendar_period(cadence, moment) == expected


def test_28_day_calendar_periods_start_on_mondays():
    period = calendar_period("28d", D(2026, 3, 4))
    assert period.start.weekday() == 0 and period.end - period.start == timedelta(days=28)
    assert D(2026, 3, 4) in period


def test_never_and_once_have_no_end():
    assert anniversary_period(D(2026, 1, 15), "never", D(2030, 1, 1)) == Period(D(2026, 1, 15), None)
    assert billing_period(D(2026, 1, 15), "once", D(2030, 1, 1)) == Period(D(2026, 1, 15), None)
    assert reset_period("never", D(2030, 1, 1), anchor=None) == Period(None, None)


def test_billing_period_of_a_free_plan_is_monthly_and_clamped_before_the_start():
    assert billing_period(D(2026, 1, 15), None, D(2026, 2, 20)) == Period(D(2026, 2, 15), D(2026, 3, 15))
    assert billing_period(D(2026, 1, 15), "month", D(2025, 6, 1)) == Period(D(2026, 1, 15), D(2026, 2, 15))


def test_reset_period_uses_the_anchor_when_there_is_one():
    moment = D(2026, 3, 20)
    assert reset_period("month", moment, anchor=D(2026, 1, 15)) == Period(D(2026, 3, 15), D(2026, 4, 15))
    assert reset_period("month", moment, anchor=None) == Period(D(2026, 3, 1), D(2026, 4, 1))


def test_periods_between_lists_the_overlapping_periods():
    got = periods_between(D(2026, 1, 31), "month", D(2026, 2, 10), D(2026, 4, 30))
    assert got == [Period(D(2026, 1, 31), D(2026, 2, 28)), Period(D(2026, 2, 28), D(2026, 3, 31)),
                   Period(D(2026, 3, 31), D(2026, 4, 30))]
    assert periods_between(None, "month", D(2026, 2, 1), D(2026, 2, 1)) == []


def test_unknown_cadence_is_refused():
    with pytest.raises(ValueError):
        anniversary_period(D(2026, 1, 1), "fortnight", D(2026, 2, 1))


# -- properties -----------------------------------------------------------------------------------------

moments = st.datetimes(min_value=D(1950, 1, 1), max_value=D(2150, 12, 31))
periodic = st.sampled_from([c for c in CADENCES if c not in ("never", "once")])


@settings(max_examples=400, deadline=None)
@given(anchor=moments, cadence=periodic, moment=moments)
def test_the_period_containing_a_moment_contains_it_and_its_neighbours_touch(anchor, cadence, moment):
    period = anniversary_period(anchor, cadence, moment)
    assert period.start <= moment < period.end
    before = anniversary_period(anchor, cadence, period.start - timedelta(microseconds=1))
    after = anniversary_period(anchor, cadence, period.end)
    assert before.end == period.start  # no gap, no overlap
    assert after.start == period.end


@settings(max_examples=300, deadline=None)
@given(anchor=moments, cadence=periodic, n=st.integers(min_value=-300, max_value=300))
def test_boundaries_are_strictly_increasing_and_each_starts_its_period(anchor, cadence, n):
    start, end = boundary(anchor, cadence, n), boundary(anchor, cadence, n + 1)
    assert start < end
    assert anniversary_period(anchor, cadence, start) == Period(start, end)
    assert anniversary_period(anchor, cadence, end - timedelta(microseconds=1)) == Period(start, end)


@settings(max_examples=300, deadline=None)
@given(anchor=moments, cadence=st.sampled_from(["month", "quarter", "half-year", "year"]),
       n=st.integers(min_value=-500, max_value=500))
def test_month_steps_keep_the_anchor_day_when_the_month_has_it(anchor, cadence, n):
    from calendar import monthrange

    moved = boundary(anchor, cadence, n)
    assert moved.day == min(anchor.day, monthrange(moved.year, moved.month)[1])
    assert moved.time() == anchor.time()


@settings(max_examples=200, deadline=None)
@given(anchor=st.one_of(st.none(), moments), cadence=periodic, start=moments,
       length=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=800)))
def test_periods_between_tile_the_range(anchor, cadence, start, length):
    end = start + length
    found = periods_between(anchor, cadence, start, end)
    if end <= start:
        assert found == []
        return
    assert found[0].start <= start and found[-1].end >= end
    for earlier, later in zip(found, found[1:]):
        assert earlier.end == later.start


@settings(max_examples=200, deadline=None)
@given(cadence=st.sampled_from(["day", "week", "month", "quarter", "year"]), moment=moments)
def test_calendar_periods_start_at_midnight_on_the_calendar_boundary(cadence, moment):
    period = calendar_period(cadence, moment)
    assert period.start <= moment < period.end
    assert period.start.time() == datetime.min.time()
    if cadence == "week":
        assert period.start.weekday() == 0
    if cadence in ("month", "quarter", "year"):
        assert period.start.day == 1
    if cadence == "quarter":
        assert period.start.month in (1, 4, 7, 10)
    if cadence == "year":
        assert (period.start.month, period.start.day) == (1, 1)
