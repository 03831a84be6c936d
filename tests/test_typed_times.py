"""Dates people type (clock.parse_moment, the one time parser): now, today, yesterday, tomorrow and
spans like 2h, 7d, 4w wherever a date or time is taken (`+7d` / `in 7d` ahead, `-7d` / `7d ago`
back, a bare `7d` the way the option faces: an expiry or a trial end ahead, the rest back);
`log --since/--until/--action/--csv`."""

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


WEEK, HOURS = timedelta(days=7), timedelta(hours=2)


@pytest.mark.parametrize("text, ahead, back", [
    ("7d", NOW + WEEK, NOW - WEEK), ("2h", NOW + HOURS, NOW - HOURS),
    ("+7d", NOW + WEEK, NOW + WEEK), ("in 7d", NOW + WEEK, NOW + WEEK), ("+ 2h", NOW + HOURS, NOW + HOURS),
    ("In 30MIN", NOW + timedelta(minutes=30), NOW + timedelta(minutes=30)),
    ("-7d", NOW - WEEK, NOW - WEEK), ("7d ago", NOW - WEEK, NOW - WEEK), ("2h  AGO", NOW - HOURS, NOW - HOURS),
    ("tomorrow", datetime(2026, 11, 22), datetime(2026, 11, 22)), ("today", datetime(2026, 11, 21), datetime(2026, 11, 21)),
    ("yesterday", datetime(2026, 11, 20), datetime(2026, 11, 20)), ("now", NOW, NOW),
    ("2026-11-01", datetime(2026, 11, 1), datetime(2026, 11, 1)),
])
def test_a_bare_span_faces_the_options_way_a_signed_one_says_its_own(text, ahead, back):
    assert parse_moment(text, now=NOW, future=True) == ahead
    assert parse_moment(text, now=NOW) == back


@pytest.mark.parametrize("text", ["7", "d7", "7 days", "1m", "99999999d", "", "+7d ago", "in -7d", "in7d", "-7d ago",
                                  "+-7d", "next week", "in 7d ago"])
@pytest.mark.parametrize("future", [False, True])
def test_what_is_not_a_time_says_which_forms_are(text, future):
    with pytest.raises(InvalidInput, match="7d") as refused:
        parse_moment(text, now=NOW, future=future)
    assert str(refused.value).count(". ") == 0 and "from now" in str(refused.value)


@pytest.mark.parametrize("what, sentence", [
    ("expiry date", "'soon' is not an expiry date;"), ("trial end", "'soon' is not a trial end;"),
    ("--at time", "'soon' is not an --at time;"), ("date", "'soon' is not a date;"),
])
def test_the_article_follows_the_word(what, sentence):
    with pytest.raises(InvalidInput, match=sentence):
        parse_moment("soon", what=what)


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


# -- the options whose time is ahead: every --expires, --trial-end --------------------------------------


def _near(text: str | None, expected: datetime) -> bool:
    return text is not None and abs(datetime.fromisoformat(text.rstrip("Z")) - expected) < timedelta(minutes=1)


@pytest.fixture
def shop(tg):
    from tollgate.catalog import LicensePolicy

    tg.create_product("App", identifier="app")
    tg.create_feature("SSO", type="boolean", identifier="sso")
    tg.create_plan("basic", product="app", prices=[("month", "USD", "9.00")], license=LicensePolicy(3, "never"))
    tg.add_customer("Acme", identifier="acme")
    return tg


AHEAD = [("7d", WEEK), ("+7d", WEEK), ("in 7d", WEEK), ("2h", HOURS)]


@pytest.mark.parametrize("text, span", AHEAD)
def test_license_edit_expires_ahead(shop, cli, text, span):
    shop.add_subscription("acme", "basic")
    [key] = [lic.key for lic in shop.licenses(customer="acme")]
    edited = cli("license", "edit", key, "--expires", text, "--json")
    assert edited.exit_code == 0, edited
    assert _near(edited.json()["expires_at"], utcnow() + span) and edited.json()["status"] == "active"
    assert cli("license", "validate", key).exit_code == 0


@pytest.mark.parametrize("text, span", AHEAD)
def test_override_expires_ahead(shop, cli, text, span):
    done = cli("override", "set", "acme", "sso", "true", "--expires", text, "--json")
    assert done.exit_code == 0, done
    assert _near(done.json()["expires_at"], utcnow() + span)


@pytest.mark.parametrize("text, span", AHEAD)
def test_sub_trial_end_ahead(shop, cli, text, span):
    added = cli("sub", "add", "acme", "basic", "--start", "yesterday", "--trial-end", text, "--json")
    assert added.exit_code == 0, added
    data = added.json()
    assert _near(data["trial_end"], utcnow() + span) and data["status"] == "trialing"
    assert data["start"].startswith((utcnow() - timedelta(days=1)).date().isoformat())
    moved = cli("sub", "edit", data["id"], "--trial-end", "14d", "--json")
    assert moved.exit_code == 0 and _near(moved.json()["trial_end"], utcnow() + timedelta(days=14))


def test_tomorrow_and_the_library_face_the_same_way(shop):
    sub = shop.add_subscription("acme", "basic", trial_end="tomorrow")
    tomorrow = datetime.combine(utcnow().date() + timedelta(days=1), datetime.min.time())
    assert sub.trial_end == tomorrow
    assert shop.edit_subscription(sub.id, trial_end="3d").trial_end > utcnow() + timedelta(days=2)
    assert shop.set_override("acme", "sso", True, expires="7d").expires_at > utcnow() + timedelta(days=6)
    [lic] = shop.licenses(customer="acme")
    assert shop.edit_license(lic.key, expires="in 30d").expires_at > utcnow() + timedelta(days=29)
    assert shop.edit_license(lic.key, expires="7d ago").expires_at < utcnow() - timedelta(days=6)


def test_past_facing_options_still_count_back(shop, cli):
    added = cli("sub", "add", "acme", "basic", "--start", "7d", "--json").json()
    assert _near(added["start"], utcnow() - timedelta(days=7))
    assert cli("log", "--since", "-1h", "--json").json() != []
    assert cli("log", "--since", "in 1h", "--json").json() == []
    assert cli("log", "--until", "1h ago", "--json").json() == []
    assert cli("entitlements", "acme", "--at", "+2d", "--json").exit_code == 0
    assert cli("check", "acme", "sso", "--at", "tomorrow").exit_code in (0, 1)


@pytest.mark.parametrize("args", [
    ("override", "set", "acme", "sso", "true", "--expires", "in 7d ago"),
    ("override", "set", "acme", "sso", "true", "--expires", "fortnight"),
    ("sub", "add", "acme", "basic", "--trial-end", "+7"),
    ("sub", "add", "acme", "basic", "--start", "next week"),
])
def test_bad_times_exit_2_in_one_sentence_and_write_nothing(shop, cli, args):
    before = len(shop.journal())
    refused = cli(*args)
    assert refused.exit_code == 2, refused
    message = refused.stderr.strip().splitlines()[0]
    assert "7d" in message and message.count(". ") == 0
    assert len(shop.journal()) == before and shop.subscriptions() == [] and shop.overrides() == []
