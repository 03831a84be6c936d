"""Dates people type (clock.parse_moment, the one time parser): now, today, yesterday and ages like
2h, 7d, 4w wherever a date or time is taken; `log --since/--until/--action/--csv`."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest

from tollgate.clock import parse_moment, utcnow
from tollgate.errors import InvalidInput

NOW = datetime(2026, 11, 21, 15, 30, 45, 123456)


@pytest.mark.parametrize("text, moment", [
    ("now", NOW), ("today", datetime(2026, 11, 21)), ("yesterday", datetime(2026, 11, 20)),
    ("90s", NOW - timedelta(seconds=90)), ("30min", NOW - timedelta(minutes=30)), ("2h", NOW - timedelta(hours=2)),
    ("7d", NOW - timedelta(days=7)), ("4w", NOW - timedelta(weeks=4)), (" 7D ", NOW - timedelta(days=7)),
    ("2026-11-01", datetime(2026, 11, 1)), ("2026-11-01T10:00:00+02:00", datetime(2026, 11, 1, 8)),
])
def test_typed_times(text, moment):
    assert parse_moment(text, now=NOW) == moment


@pytest.mark.parametrize("text", ["7", "d7", "-7d", "7 days", "1m", "tomorrow", "99999999d", "7d ago", ""])
def test_what_is_not_a_time_says_which_forms_are(text):
    with pytest.raises(InvalidInput, match="7d"):
        parse_moment(text, now=NOW)


def test_a_file_row_never_means_a_moment_relative_to_the_import():
    with pytest.raises(InvalidInput):
        parse_moment("yesterday", relative=False)
    assert parse_moment("2026-11-01", relative=False) == datetime(2026, 11, 1)


def test_relative_times_on_the_command_line(cli, tg):
    tg.create_product("App", identifier="app")
    tg.create_feature("Calls", type="metered", identifier="calls")
    tg.create_plan("basic", product="app", feature_values=["calls=100"])
    tg.add_customer("Acme", identifier="acme")
    tg.add_subscription("acme", "basic", start=utcnow() - timedelta(days=40))
    done = cli("usage", "report", "acme", "calls", "3", "--at", "2h", "--id", "e1", "--json")
    assert done.exit_code == 0, done
    at = datetime.fromisoformat(done.json()["at"].rstrip("Z"))
    assert abs(at - (utcnow() - timedelta(hours=2))) < timedelta(minutes=1)
    shown = cli("usage", "show", "acme", "--from", "30d", "--json")
    assert shown.exit_code == 0 and shown.json()["from"] <= (utcnow() - timedelta(days=29)).date().isoformat()
    assert cli("usage", "export", "--from", "3h", "--format", "jsonl").stdout.count('"e1"') == 1
    assert cli("usage", "export", "--from", "1h", "--format", "jsonl").stdout == ""
    bad = cli("usage", "show", "acme", "--from", "fortnight")
    assert bad.exit_code == 2 and "7d" in bad.stderr


def test_log_since_until_action_and_csv(cli, tg):
    tg.add_customer("Acme", identifier="acme")
    tg.add_customer("Globex", identifier="globex")
    tg.archive_customer("globex")
    assert [e["action"] for e in cli("log", "--since", "1h", "--json").json()] == [
        "customer.create", "customer.create", "customer.archive"]
    assert cli("log", "--until", "1h", "--json").json() == []
    assert cli("log", "--since", "today", "--until", "now", "--json").json() != []
    assert [e["object"] for e in cli("log", "--action", "customer.archive", "--json").json()] == ["globex"]
    assert len(cli("log", "--action", "customer", "--json").json()) == 3
    assert cli("log", "--action", "custom", "--json").json() == []  # a family is a whole word
    rows = list(csv.reader(io.StringIO(cli("log", "--csv", "--action", "customer.archive").stdout)))
    assert rows[0] == ["at", "actor", "action", "object", "details"] and rows[1][2:4] == ["customer.archive", "globex"]
