"""Plan versions at the command line: `catalog import --dry-run` names the plans that would get a new
version, `plan versions`, `plan show --version`, and `plan migrate` (its dry run, its confirmation:
asked on a terminal, --yes off one, unknown names reported before any question); catalog export stays
the current version and round-trips byte for byte; the schema-3 fixture lands every subscription on
version 1."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import ok
from test_confirm import in_terminal
from test_plan_versions import CATALOG, V1, V2, started

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def shop(cli, tmp_path):
    (tmp_path / "v1.toml").write_text(CATALOG.format(**V1))
    (tmp_path / "v2.toml").write_text(CATALOG.format(**V2))
    ok(cli("catalog", "import", str(tmp_path / "v1.toml")))
    ok(cli("customer", "add", "Acme", "--id", "acme"))
    sub = ok(cli("sub", "add", "acme", "pro", "--start", started(3), "--trial-days", "0", "--json")).json()["id"]
    return {"v2": str(tmp_path / "v2.toml"), "sub": sub, "tmp": tmp_path}


def test_import_dry_run_says_which_plans_get_a_new_version(cli, shop):
    planned = ok(cli("catalog", "import", shop["v2"], "--dry-run"))
    assert "Plan pro would get version 2; 1 subscription(s) stay on version 1." in planned.stdout
    as_json = ok(cli("catalog", "import", shop["v2"], "--dry-run", "--json")).json()
    assert as_json["new_versions"] == [{"plan": "pro", "version": 2, "subscribers_staying": 1}]
    assert [v["version"] for v in ok(cli("plan", "versions", "pro", "--json")).json()] == [1]
    done = ok(cli("catalog", "import", shop["v2"]))
    assert "Plan pro got version 2; 1 subscription(s) stay on version 1." in done.stdout


def test_plan_versions_and_show_version(cli, shop):
    ok(cli("catalog", "import", shop["v2"]))
    versions = ok(cli("plan", "versions", "pro", "--json")).json()
    assert [(v["version"], v["changes"], v["subscribers"], v["current"]) for v in versions] == [
        (1, [], 1, False), (2, ["prices", "entitlements", "usage_charges"], 0, True)]
    table = ok(cli("plan", "versions", "pro")).stdout
    assert "prices, entitlements, usage_charges" in table and "2 (current)" in table
    old = ok(cli("plan", "show", "pro", "--version", "1", "--json")).json()
    assert old["version"] == 1 and old["prices"][0]["amount"] == "10.00"
    assert "version      2" in ok(cli("plan", "show", "pro")).stdout
    missing = cli("plan", "show", "pro", "--version", "9")
    assert missing.exit_code == 2 and "no version 9" in missing.stderr and missing.stdout == ""
    assert "plan version    1\n" in ok(cli("sub", "show", shop["sub"])).stdout
    assert ok(cli("sub", "show", shop["sub"], "--json")).json()["plan_version"] == 1


def test_migrate_off_a_terminal_needs_yes_and_names_unknowns_first(cli, shop):
    ok(cli("catalog", "import", shop["v2"]))
    refused = cli("plan", "migrate", "pro", "--to", "2")
    assert refused.exit_code == 2 and "--yes" in refused.stderr and refused.stdout == ""
    for args, unknown in ((["nope", "--to", "2"], "nope"), (["pro", "--to", "7"], "no version 7"),
                          (["pro", "--to", "2", "--customer", "nobody"], "nobody"),
                          (["pro", "--to", "2", "--at", "later"], "--at")):
        found = cli("plan", "migrate", *args)
        assert found.exit_code == 2 and unknown in found.stderr and "--yes" not in found.stderr, found.stderr
    assert ok(cli("sub", "show", shop["sub"], "--json")).json()["plan_version"] == 1
    planned = ok(cli("plan", "migrate", "pro", "--to", "2", "--dry-run"))
    assert "10.00 USD" in planned.stdout and "12.00 USD" in planned.stdout and "Would move 1" in planned.stdout
    assert "seats 5 -> 10" in planned.stdout
    moved = ok(cli("plan", "migrate", "pro", "--to", "2", "--yes", "--json")).json()
    assert [m["to_version"] for m in moved["moves"]] == [2] and not moved["dry_run"]
    assert ok(cli("sub", "show", shop["sub"], "--json")).json()["plan_version"] == 2
    assert ok(cli("log", "--json")).json()[-1]["action"] == "subscription.migrate"


def test_migrate_on_a_terminal_asks_and_no_writes_nothing(cli, shop):
    ok(cli("catalog", "import", shop["v2"]))
    code, shown = in_terminal("plan", "migrate", "pro", "--to", "2", answer="n")
    assert code == 1, shown
    assert "Move 1 live subscription(s) of pro to version 2 (now)?" in shown and "Not migrated" in shown
    assert ok(cli("sub", "show", shop["sub"], "--json")).json()["plan_version"] == 1
    code, shown = in_terminal("plan", "migrate", "pro", "--to", "2", "--at", "period-end", answer="y")
    assert code == 0 and "Scheduled 1 subscription(s)" in shown, shown
    assert ok(cli("sub", "show", shop["sub"], "--json")).json()["next_version"] == 2


def test_migrate_with_nothing_to_move_asks_nothing(cli, shop):
    ok(cli("catalog", "import", shop["v2"]))
    code, shown = in_terminal("plan", "migrate", "pro", "--to", "1", answer="y")  # every one is on 1
    assert code == 0 and "Nothing to move" in shown and "?" not in shown, shown
    piped = ok(cli("plan", "migrate", "pro", "--to", "1"))  # off a terminal, without --yes: nothing to confirm
    assert "Nothing to move" in piped.stdout
    assert ok(cli("sub", "show", shop["sub"], "--json")).json()["plan_version"] == 1


def test_export_writes_the_current_version_and_round_trips(cli, shop, tmp_path):
    ok(cli("catalog", "import", shop["v2"]))
    first = ok(cli("catalog", "export")).stdout
    assert 'amount = "12.00"' in first and 'amount = "10.00"' not in first
    (tmp_path / "again.toml").write_text(first)
    assert "Nothing to change" in ok(cli("catalog", "import", str(tmp_path / "again.toml"))).stdout
    assert ok(cli("catalog", "export")).stdout == first


@pytest.mark.sqlite_only("the released fixtures are SQLite files")
def test_the_schema_3_fixture_lands_every_subscription_on_version_1(cli, tmp_path):
    copy = tmp_path / "schema-3.sqlite"
    shutil.copy(FIXTURES / "schema-3.sqlite", copy)
    subs = ok(cli("--db", str(copy), "sub", "list", "--json")).json()
    assert subs and {s["plan_version"] for s in subs} == {1}
    for plan in ok(cli("--db", str(copy), "plan", "list", "--all", "--json")).json():
        assert plan["version"] == 1
        assert [v["version"] for v in ok(cli("--db", str(copy), "plan", "versions", plan["identifier"], "--json")).json()] == [1]
    pro = ok(cli("--db", str(copy), "plan", "show", "pro", "--json")).json()
    assert pro["trial_days"] == 14 and pro["prices"] and pro["entitlements"]  # moved onto version 1 intact
