"""`usage report` for one event: exact quantities, idempotency keys, --set, periods at the
subscription's anniversary, limits and alerts (Rules 4-6), voids. CLI through the `cli` fixture,
library through `tg`."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from tollgate.clock import utcnow
from tollgate.errors import Conflict, InvalidInput, NotFound, RuleViolation


@pytest.fixture
def acme(tg):
    """A customer and a metered feature, no subscription (calendar-month periods)."""
    tg.add_customer("Acme, Inc.")
    tg.create_feature("API calls", type="metered", identifier="api-calls", unit="call")
    return tg


@pytest.fixture
def subscribed(acme):
    """acme-inc on a plan: 100 api-calls a month (hard, alerts at 75% and 90%), since 2026-01-15 10:30."""
    acme.create_product("API", identifier="api")
    acme.create_plan("pro", product="api", feature_values=["api-calls=100"], hard=["api-calls"],
                     alerts=["api-calls=75", "api-calls=90"])
    acme.add_subscription("acme-inc", "pro", start="2026-01-15T10:30:00Z")
    return acme


def total(tg, customer="acme-inc", feature="api-calls", at=None):
    """Usage in the period containing `at` (default now): from `check` when a plan grants the
    feature, else (calendar month) from the events themselves."""
    used = tg.check(customer, feature, at=at).used
    if used is not None:
        return used
    moment = datetime.fromisoformat(at.replace("Z", "")) if at else utcnow()
    first = moment.replace(day=1).date()
    report = tg.usage(customer, feature=feature, by="month", start=first, end=first)
    return report.features[0].series[0]


# -- one event -------------------------------------------------------------------------------------------


def test_report_records_and_prints_the_generated_key(cli, acme):
    result = cli("usage", "report", "acme-inc", "api-calls", "250", "--json")
    assert result.exit_code == 0, result
    data = result.json()
    assert data["recorded"] is True and data["duplicate"] is False and data["generated_key"] is True
    assert data["quantity"] == "250" and data["customer"] == "acme-inc" and data["feature"] == "api-calls"
    assert data["key"].startswith("use_")
    assert data["limit"] is None  # nothing grants it: recorded anyway, calendar month
    assert data["period_start"].endswith("-01T00:00:00Z")
    plain = cli("usage", "report", "acme-inc", "api-calls", "1")
    assert plain.exit_code == 0
    assert "Recorded 1 api-calls for acme-inc" in plain.stdout
    assert "was generated" in plain.stderr  # the generated key is announced


def test_same_key_again_is_already_recorded_and_counts_once(cli, acme):
    first = cli("usage", "report", "acme-inc", "api-calls", "5", "--id", "req-1", "--at", "2026-11-01T10:00:00Z")
    assert first.exit_code == 0, first
    again = cli("usage", "report", "acme-inc", "api-calls", "5", "--id", "req-1", "--at", "2026-11-01T10:00:00Z")
    assert again.exit_code == 0
    assert "Already recorded" in again.stdout and "nothing changed" in again.stdout
    as_json = cli("usage", "report", "acme-inc", "api-calls", "5", "--id", "req-1", "--at", "2026-11-01T10:00:00Z",
                  "--json").json()
    assert as_json["recorded"] is False and as_json["duplicate"] is True
    assert acme.usage("acme-inc", feature="api-calls", start="2026-11-01", end="2026-11-01").features[0].total == 5


def test_a_retry_without_a_time_is_the_same_event(acme):
    first = acme.report_usage("acme-inc", "api-calls", 3, key="no-time")
    retry = acme.report_usage("acme-inc", "api-calls", 3, key="no-time")  # a moment later: another "now"
    assert first.recorded and not retry.recorded
    assert retry.at == first.at


@pytest.mark.parametrize(
    "change",
    [
        ["acme-inc", "api-calls", "6", "--at", "2026-11-01T10:00:00Z"],  # another quantity
        ["acme-inc", "api-calls", "5", "--at", "2026-11-01T10:00:01Z"],  # another time
        ["globex", "api-calls", "5", "--at", "2026-11-01T10:00:00Z"],  # another customer
    ],
)
def test_same_key_for_a_different_event_is_refused(cli, acme, change):
    acme.add_customer("Globex")
    assert cli("usage", "report", "acme-inc", "api-calls", "5", "--id", "k", "--at",
               "2026-11-01T10:00:00Z").exit_code == 0
    result = cli("usage", "report", *change, "--id", "k")
    assert result.exit_code == 1
    assert "already used for a different event" in result.stderr
    with pytest.raises(Conflict):
        acme.report_usage(change[0], change[1], change[2], at=change[4], key="k")


def test_decimal_quantities_sum_exactly(acme):
    for _ in range(10):
        acme.report_usage("acme-inc", "api-calls", "0.1")
    assert total(acme) == Decimal("1")
    acme.report_usage("acme-inc", "api-calls", Decimal("0.000001"))
    assert total(acme) == Decimal("1.000001")


@pytest.mark.parametrize(
    "quantity, message",
    [
        ("0", "more than zero"),
        ("abc", "not a decimal number"),
        ("1e3", "Exponents"),
        ("0.0000001", "6 decimal places"),
        ("1,5", "not a decimal number"),
        ("10000000000000", "too large"),
    ],
)
def test_bad_quantities_are_refused_with_exit_2(cli, acme, quantity, message):
    result = cli("usage", "report", "acme-inc", "api-calls", quantity)
    assert result.exit_code == 2
    assert message in result.stderr
    assert acme.usage("acme-inc").features == ()


def test_floats_and_negatives_are_refused_by_the_library(acme):
    with pytest.raises(InvalidInput, match="floating-point"):
        acme.report_usage("acme-inc", "api-calls", 0.1)
    with pytest.raises(InvalidInput, match="void"):
        acme.report_usage("acme-inc", "api-calls", "-5")


def test_unknown_archived_and_non_metered(cli, acme):
    acme.create_feature("SSO", type="boolean", identifier="sso")
    assert cli("usage", "report", "ghost", "api-calls", "1").exit_code == 2
    assert cli("usage", "report", "acme-inc", "nope", "1").exit_code == 2
    not_metered = cli("usage", "report", "acme-inc", "sso", "1")
    assert not_metered.exit_code == 2 and "only metered features" in not_metered.stderr
    acme.add_customer("Gone Ltd")
    acme.archive_customer("gone-ltd")
    archived = cli("usage", "report", "gone-ltd", "api-calls", "1")
    assert archived.exit_code == 1 and "archived" in archived.stderr
    with pytest.raises(RuleViolation):
        acme.report_usage("gone-ltd", "api-calls", 1)


@pytest.mark.parametrize(
    "at, stored",
    [
        ("2026-11-01", "2026-11-01T00:00:00Z"),
        ("2026-11-01T10:00:00", "2026-11-01T10:00:00Z"),  # no offset: UTC
        ("2026-11-01T10:00:00Z", "2026-11-01T10:00:00Z"),
        ("2026-11-01T12:00:00+02:00", "2026-11-01T10:00:00Z"),
        ("2026-11-01T05:30:00-04:30", "2026-11-01T10:00:00Z"),
        ("2026-11-01T10:00:00.250000Z", "2026-11-01T10:00:00.250000Z"),
    ],
)
def test_at_accepts_rfc3339_and_dates(cli, acme, at, stored):
    result = cli("usage", "report", "acme-inc", "api-calls", "1", "--at", at, "--json")
    assert result.exit_code == 0, result
    assert result.json()["at"] == stored


def test_bad_and_future_times_are_refused(cli, acme):
    bad = cli("usage", "report", "acme-inc", "api-calls", "1", "--at", "last tuesday")
    assert bad.exit_code == 2 and "not a timestamp" in bad.stderr
    ahead = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    future = cli("usage", "report", "acme-inc", "api-calls", "1", "--at", ahead)
    assert future.exit_code == 2 and "future" in future.stderr
    soon = (utcnow() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # clock skew is fine
    assert cli("usage", "report", "acme-inc", "api-calls", "1", "--at", soon).exit_code == 0


@pytest.mark.parametrize("key", ["", " padded", "x" * 201, "tab\there", "void:abc"])
def test_bad_keys_are_refused(cli, acme, key):
    result = cli("usage", "report", "acme-inc", "api-calls", "1", "--id", key)
    assert result.exit_code == 2, result


def test_report_needs_its_arguments_or_a_file(cli, acme):
    assert cli("usage", "report", "acme-inc", "api-calls").exit_code == 2
    mixed = cli("usage", "report", "acme-inc", "--file", "x.csv")
    assert mixed.exit_code == 2 and "drop CUSTOMER" in mixed.stderr
    assert cli("usage", "report", "acme-inc", "api-calls", "1", "--skip-invalid").exit_code == 2


def test_report_is_journaled(acme):
    acme.report_usage("acme-inc", "api-calls", "2.5", key="j-1", at="2026-11-02T00:00:00Z")
    entries = [e for e in acme.journal(customer="acme-inc") if e.action == "usage.report"]
    assert len(entries) == 1
    assert entries[0].object_id == "j-1"
    assert entries[0].details == {"key": "j-1", "feature": "api-calls", "quantity": "2.5",
                                  "at": "2026-11-02T00:00:00Z"}


# -- --set -----------------------------------------------------------------------------------------------


def test_set_records_the_delta_to_the_period_total(cli, acme):
    acme.report_usage("acme-inc", "api-calls", 40)
    result = cli("usage", "report", "acme-inc", "api-calls", "150", "--set", "--json")
    assert result.exit_code == 0, result
    data = result.json()
    assert data["quantity"] == "110" and data["set_to"] == "150" and data["used"] == "150"
    down = cli("usage", "report", "acme-inc", "api-calls", "100.5", "--set", "--json").json()
    assert down["quantity"] == "-49.5" and down["used"] == "100.5"
    same = cli("usage", "report", "acme-inc", "api-calls", "100.5", "--set", "--json").json()
    assert same["quantity"] == "0" and same["used"] == "100.5"
    assert total(acme) == Decimal("100.5")


def test_set_with_a_key_is_idempotent_by_its_target(acme):
    acme.report_usage("acme-inc", "api-calls", 10)
    first = acme.report_usage("acme-inc", "api-calls", 50, set_total=True, key="gauge-1")
    acme.report_usage("acme-inc", "api-calls", 5)  # more usage arrives; then the set is retried
    retry = acme.report_usage("acme-inc", "api-calls", 50, set_total=True, key="gauge-1")
    assert first.recorded and first.quantity == 40
    assert not retry.recorded and retry.quantity == 40
    assert total(acme) == 55
    with pytest.raises(Conflict):
        acme.report_usage("acme-inc", "api-calls", 60, set_total=True, key="gauge-1")


def test_set_only_counts_the_current_period(acme):
    now = utcnow()
    last_month = (now.replace(day=1) - timedelta(days=3)).strftime("%Y-%m-%dT12:00:00Z")
    acme.report_usage("acme-inc", "api-calls", 500, at=last_month)
    result = acme.report_usage("acme-inc", "api-calls", 20, set_total=True)
    assert result.quantity == 20 and result.used == 20


# -- periods at the anniversary --------------------------------------------------------------------------


def test_periods_follow_the_subscription_anniversary(subscribed):
    tg = subscribed
    before = tg.report_usage("acme-inc", "api-calls", 30, at="2026-03-15T10:29:59Z", key="a")
    after = tg.report_usage("acme-inc", "api-calls", 7, at="2026-03-15T10:30:00Z", key="b")
    assert (before.period_start, before.reset_at) == (datetime(2026, 2, 15, 10, 30), datetime(2026, 3, 15, 10, 30))
    assert (after.period_start, after.reset_at) == (datetime(2026, 3, 15, 10, 30), datetime(2026, 4, 15, 10, 30))
    assert before.used == 30 and after.used == 7
    gauge = tg.report_usage("acme-inc", "api-calls", 10, at="2026-03-16T00:00:00Z", set_total=True)
    assert gauge.quantity == 3 and gauge.used == 10  # the 30 before the anniversary are another period
    assert total(tg, at="2026-03-15T10:29:59Z") == 30
    assert total(tg, at="2026-04-15T10:29:59Z") == 10


def test_without_a_subscription_periods_are_calendar_months(acme):
    end = acme.report_usage("acme-inc", "api-calls", 4, at="2026-02-28T23:59:59Z")
    start = acme.report_usage("acme-inc", "api-calls", 6, at="2026-03-01T00:00:00Z")
    assert (end.period_start, end.reset_at) == (datetime(2026, 2, 1), datetime(2026, 3, 1))
    assert (start.period_start, start.reset_at) == (datetime(2026, 3, 1), datetime(2026, 4, 1))
    assert (end.used, start.used) == (4, 6)


# -- limits and alerts (Rules 5 and 6) -------------------------------------------------------------------


def test_alerts_and_the_limit_notify_once_and_are_journaled(cli, subscribed):
    first = cli("usage", "report", "acme-inc", "api-calls", "70")
    assert first.exit_code == 0 and first.stderr.count("notice:") == 1  # the generated-key notice only
    crossing = cli("usage", "report", "acme-inc", "api-calls", "6", "--id", "cross-75")
    assert crossing.exit_code == 0
    assert "passed 75%" in crossing.stderr and "90%" not in crossing.stderr
    both = cli("usage", "report", "acme-inc", "api-calls", "30", "--id", "cross-90-100", "--json")
    assert both.exit_code == 0
    notices = both.json()["notices"]
    assert any("passed 90%" in n for n in notices) and any("hard limit" in n for n in notices)
    assert "past its hard limit" in both.stderr  # Rule 5: recorded, and a warning
    assert both.json()["recorded"] is True and both.json()["used"] == "106"
    again = cli("usage", "report", "acme-inc", "api-calls", "1", "--id", "over")
    assert again.exit_code == 0
    assert "notice: 'acme-inc' passed" not in again.stderr and "past its hard limit" in again.stderr
    actions = [e.action for e in subscribed.journal(customer="acme-inc")]
    assert actions.count("usage.alert") == 2 and actions.count("usage.limit") == 1
    assert total(subscribed) == 107


def test_a_duplicate_does_not_alert_again(subscribed):
    first = subscribed.report_usage("acme-inc", "api-calls", 80, key="big")
    again = subscribed.report_usage("acme-inc", "api-calls", 80, key="big")
    assert first.notices and not again.notices and not again.recorded


# -- voids -----------------------------------------------------------------------------------------------


def test_void_reverses_an_event_and_keeps_history(cli, acme):
    acme.report_usage("acme-inc", "api-calls", "12.5", key="oops", at="2026-11-02T08:00:00Z")
    result = cli("usage", "void", "oops", "--reason", "double-counted", "--yes", "--json")
    assert result.exit_code == 0, result
    data = result.json()
    assert data == {"key": "void:oops", "voids": "oops", "customer": "acme-inc", "feature": "api-calls",
                    "quantity": "-12.5", "at": "2026-11-02T08:00:00Z", "recorded_at": data["recorded_at"],
                    "reason": "double-counted"}
    assert total(acme, at="2026-11-03T00:00:00Z") == 0
    twice = cli("usage", "void", "oops", "--reason", "again", "--yes")
    assert twice.exit_code == 1 and "already voided" in twice.stderr
    void_of_void = cli("usage", "void", "void:oops", "--reason", "x", "--yes")
    assert void_of_void.exit_code == 1 and "can't be voided" in void_of_void.stderr
    assert cli("usage", "void", "nope", "--reason", "x", "--yes").exit_code == 2
    assert cli("usage", "void", "oops", "--reason", "  ", "--yes").exit_code == 2
    log = [(e.action, e.object_id) for e in acme.journal(customer="acme-inc") if e.action.startswith("usage.")]
    assert log == [("usage.report", "oops"), ("usage.void", "oops")]
    with pytest.raises(NotFound):
        acme.void_usage("missing", reason="x")


def test_a_voided_key_reported_again_is_still_a_duplicate(acme):
    acme.report_usage("acme-inc", "api-calls", 3, key="k", at="2026-11-02T08:00:00Z")
    acme.void_usage("k", reason="wrong")
    again = acme.report_usage("acme-inc", "api-calls", 3, key="k", at="2026-11-02T08:00:00Z")
    assert not again.recorded  # the key stays used: a voided event is history, not a free slot
    assert total(acme, at="2026-11-03T00:00:00Z") == 0
