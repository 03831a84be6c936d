"""`usage show` (sparklines per feature, the per-period view, JSON series and corrections) and the
usage section of `customer show`."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollgate.cli.output import SPARKS
from tollgate.clock import utcnow


@pytest.fixture
def history(tg):
    """acme-inc with api-calls on 2026-10-05 (3 + 0.5), 10-06 (10, of which 4 voided later) and
    10-08 (1); ai-tokens on 10-20; globex has usage too (never shown for acme-inc)."""
    tg.add_customer("Acme, Inc.")
    tg.add_customer("Globex")
    tg.create_feature("API calls", type="metered", identifier="api-calls", unit="call")
    tg.create_feature("AI tokens", type="metered", identifier="ai-tokens", unit="token")
    tg.report_usage("acme-inc", "api-calls", 3, at="2026-10-05T08:00:00Z")
    tg.report_usage("acme-inc", "api-calls", "0.5", at="2026-10-05T23:59:59Z")
    tg.report_usage("acme-inc", "api-calls", 6, at="2026-10-06T00:00:00Z")
    tg.report_usage("acme-inc", "api-calls", 4, at="2026-10-06T12:00:00+02:00", key="wrong")
    tg.report_usage("acme-inc", "api-calls", 1, at="2026-10-08T10:00:00Z")
    tg.report_usage("acme-inc", "ai-tokens", 1000, at="2026-10-20T10:00:00Z")
    tg.report_usage("globex", "api-calls", 99, at="2026-10-05T10:00:00Z")
    tg.void_usage("wrong", reason="test traffic")
    return tg


def test_summary_has_a_sparkline_total_and_reset_per_feature(cli, history):
    result = cli("usage", "show", "acme-inc", "--from", "2026-10-01", "--to", "2026-10-10")
    assert result.exit_code == 0, result
    lines = result.stdout.splitlines()
    assert lines[0] == "Usage of acme-inc by day, 2026-10-01 to 2026-10-10 (UTC)"
    assert lines[1].split() == ["feature", "trend", "total", "this", "period", "allowance", "used", "resets"]
    api = next(line for line in lines if line.startswith("api-calls"))
    cells = api.split()
    spark = cells[1]
    assert len(spark) == 10 and set(spark) <= set(SPARKS)
    # 10-05: 3.5, 10-06: 6 (10 - 4 voided), 10-08: 1; the largest day is the full bar
    assert spark[5] == "█" and spark[4] == SPARKS[4] and spark[0] == SPARKS[0] and spark[7] == SPARKS[1]
    assert cells[2] == "10.5"
    assert not any(line.startswith("ai-tokens") for line in lines)  # no usage in the range, no allowance
    assert "corrections (voids) in this range: -4" in result.stdout


def test_one_feature_one_row_per_period_with_the_exact_figure(cli, history):
    result = cli("usage", "show", "acme-inc", "--feature", "api-calls", "--from", "2026-10-04", "--to", "2026-10-08")
    assert result.exit_code == 0, result
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[2:7]}
    assert list(rows) == ["2026-10-04", "2026-10-05", "2026-10-06", "2026-10-07", "2026-10-08"]
    assert [r[0] for r in rows.values()] == ["0", "3.5", "6", "0", "1"]
    assert rows["2026-10-06"][1] == "█" * 20 and rows["2026-10-05"][1].count("█") == 12
    assert "total: 10.5 (corrections: -4)" in result.stdout
    assert "allowance: none (no subscription grants it)" in result.stdout


def test_by_week_and_month(cli, history):
    weeks = cli("usage", "show", "acme-inc", "-f", "api-calls", "--by", "week", "--from", "2026-10-01",
                "--to", "2026-10-31", "--json")
    assert weeks.exit_code == 0
    series = weeks.json()["features"][0]["series"]
    assert [p["period"] for p in series] == ["2026-W40", "2026-W41", "2026-W42", "2026-W43", "2026-W44"]
    assert series[0]["start"] == "2026-09-28T00:00:00Z"  # ISO weeks start on Monday
    assert [p["quantity"] for p in series] == ["0", "10.5", "0", "0", "0"]
    months = cli("usage", "show", "acme-inc", "--by", "month", "--from", "2026-09-15", "--to", "2026-11-02", "--json")
    data = months.json()
    assert (data["from"], data["to"]) == ("2026-09-01T00:00:00Z", "2026-12-01T00:00:00Z")
    by_feature = {f["feature"]: [p["quantity"] for p in f["series"]] for f in data["features"]}
    assert by_feature == {"ai-tokens": ["0", "1000", "0"], "api-calls": ["0", "10.5", "0"]}


def test_json_gives_series_current_period_and_corrections(cli, history):
    now = utcnow()
    history.report_usage("acme-inc", "api-calls", 2)
    result = cli("usage", "show", "acme-inc", "--json")
    assert result.exit_code == 0, result
    data = result.json()
    assert data["customer"] == "acme-inc" and data["by"] == "day"
    api = next(f for f in data["features"] if f["feature"] == "api-calls")
    assert len(api["series"]) == 30 and api["series"][-1]["period"] == now.date().isoformat()
    assert api["series"][-1]["quantity"] == "2"
    assert api["used"] == "2" and api["limit"] is None and api["unlimited"] is False
    assert api["period_start"] == now.strftime("%Y-%m-01T00:00:00Z")
    assert api["unit"] == "call"
    october = cli("usage", "show", "acme-inc", "--from", "2026-10-01", "--to", "2026-10-31", "--json").json()
    assert october["corrections"] == [{
        "key": "void:wrong", "voids": "wrong", "feature": "api-calls", "quantity": "-4",
        "at": "2026-10-06T10:00:00Z", "recorded_at": october["corrections"][0]["recorded_at"],
        "reason": "test traffic",
    }]
    assert next(f for f in october["features"] if f["feature"] == "api-calls")["corrections"] == "-4"


def test_allowance_percent_and_reset_from_the_subscription(cli, history):
    history.create_product("API", identifier="api")
    history.create_plan("pro", product="api", feature_values=["api-calls=40"], hard=["api-calls"])
    start = utcnow() - timedelta(days=3)
    history.add_subscription("acme-inc", "pro", start=start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    history.report_usage("acme-inc", "api-calls", 10)
    data = cli("usage", "show", "acme-inc", "--json").json()
    api = next(f for f in data["features"] if f["feature"] == "api-calls")
    assert (api["limit"], api["used"], api["remaining"], api["percent_used"], api["hard"]) == (
        "40", "10", "30", "25", True)
    assert api["source"] == "plan:pro"
    text = cli("usage", "show", "acme-inc", "--from", "2026-09-01", "--to", "2026-09-30").stdout
    line = next(row for row in text.splitlines() if row.startswith("api-calls"))
    assert "40 / month (hard)" in line and "25.0%" in line
    assert line.split()[1] == SPARKS[0] * 30  # entitled, nothing in that range: listed, flat
    one = cli("usage", "show", "acme-inc", "-f", "api-calls").stdout
    assert "allowance: 40 / month (hard); used 10 (25.0%)" in one


def test_bad_ranges_and_features(cli, history):
    history.create_feature("SSO", type="boolean", identifier="sso")
    backwards = cli("usage", "show", "acme-inc", "--from", "2026-10-10", "--to", "2026-10-01")
    assert backwards.exit_code == 2 and "--from is after --to" in backwards.stderr
    huge = cli("usage", "show", "acme-inc", "--from", "2000-01-01", "--to", "2026-01-01")
    assert huge.exit_code == 2 and "more than 1000 periods" in huge.stderr
    assert cli("usage", "show", "acme-inc", "--by", "year").exit_code == 2
    assert cli("usage", "show", "acme-inc", "--from", "soon").exit_code == 2
    assert cli("usage", "show", "ghost").exit_code == 2
    assert cli("usage", "show", "acme-inc", "-f", "sso").exit_code == 2
    assert cli("usage", "show", "acme-inc", "-f", "nope").exit_code == 2


def test_a_customer_without_usage_and_an_archived_one(cli, history):
    history.add_customer("Initech")
    empty = cli("usage", "show", "initech")
    assert empty.exit_code == 0 and "no metered usage or allowance" in empty.stdout
    assert cli("usage", "show", "initech", "--json").json()["features"] == []
    history.archive_customer("globex")
    archived = cli("usage", "show", "globex", "--from", "2026-10-01", "--to", "2026-10-31", "--json")
    assert archived.exit_code == 0 and archived.json()["features"][0]["total"] == "99"


def test_customer_show_has_the_usage_section(cli, history):
    history.report_usage("acme-inc", "api-calls", 5)
    result = cli("customer", "show", "acme-inc")
    assert result.exit_code == 0, result
    assert "Usage" in result.stdout
    line = next(row for row in result.stdout.splitlines() if row.startswith("api-calls"))
    assert any(ch in line for ch in SPARKS)


def test_customer_show_json_has_the_usage_of_usage_show(cli, history):
    """The JSON holds what the table's "Usage (last 30 days, UTC)" section shows: `usage show --json`
    for the same window, under `usage`, after the entitlements."""
    history.report_usage("acme-inc", "api-calls", 5)
    data = cli("customer", "show", "acme-inc", "--json").json()
    usage = cli("usage", "show", "acme-inc", "--json").json()
    assert data["usage"] == usage
    assert [f["feature"] for f in usage["features"]] == ["api-calls"] and len(usage["features"][0]["series"]) == 30
    keys = list(data)
    assert keys[keys.index("entitlements") + 1:] == ["usage", "licenses", "downloads", "links"]
    history.add_customer("Initech")
    assert cli("customer", "show", "initech", "--json").json()["usage"]["features"] == []


@pytest.mark.parametrize("width, folded", [(70, True), (200, False)])
def test_a_narrow_terminal_gets_one_line_per_sparkline(cli, history, monkeypatch, width, folded):
    from tollgate.cli import output

    monkeypatch.setattr(output, "is_terminal", lambda stream=None: True)
    monkeypatch.setenv("TOLLGATE_PAGER", "")  # a pager would write to the real terminal, past CliRunner
    monkeypatch.setenv("COLUMNS", str(width))
    output._consoles.clear()
    result = cli("usage", "show", "acme-inc", "--from", "2026-10-01", "--to", "2026-10-30")
    output._consoles.clear()
    assert result.exit_code == 0, result
    spark_lines = [line for line in result.stdout.splitlines() if any(ch in line for ch in SPARKS)]
    assert len(spark_lines) == 2  # api-calls and ai-tokens, each sparkline whole on one line
    assert all(len([ch for ch in line if ch in SPARKS]) == 30 for line in spark_lines)
    assert ("  total 10.5 · this period" in result.stdout) is folded


_dates = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))


@settings(max_examples=300, deadline=None)
@given(by=st.sampled_from(["day", "week", "month"]), first=_dates, days=st.integers(0, 400))
def test_the_periods_shown_are_the_utc_calendar_periods(by, first, days):
    """The report's periods come from periods.calendar_period (one definition of a calendar period):
    a day, an ISO week from Monday, a month from the 1st; consecutive; refused past the calendar."""
    from tollgate.errors import InvalidInput
    from tollgate.usage.report import next_period, periods

    def start_of(day: date) -> date:  # the plain calendar arithmetic, as an oracle
        return day if by == "day" else day - timedelta(days=day.weekday()) if by == "week" else day.replace(day=1)

    try:
        last = first + timedelta(days=days)
    except OverflowError:
        return
    try:
        shown = periods(by, first, last, today=last)
    except InvalidInput as exc:
        assert "calendar" in exc.message or "more than 1000 periods" in exc.message
        return
    assert shown[0] == start_of(first) and shown[-1] == start_of(last)
    for earlier, later in zip(shown, shown[1:]):
        assert next_period(earlier, by) == later and start_of(later) == later
