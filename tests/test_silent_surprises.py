"""No silent surprises: a command that keeps no write (a read, a report, a dry run, the public key)
on a database that does not exist says so and creates nothing, wherever the location came from;
an invoice with usage on a feature its plan does not charge says so in a note."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("args", [["customer", "list"], ["log"], ["check", "acme", "sso"], ["entitlements", "acme"],
                                  ["usage", "show", "acme"], ["usage", "export"], ["customer", "show", "acme"],
                                  ["invoice", "preview", "acme"], ["invoice", "preview", "--all"],
                                  ["license", "list"]])
def test_a_read_of_a_missing_db_file_creates_nothing(cli, tmp_path, args):
    missing = tmp_path / "typo.db"
    result = cli("--db", str(missing), *args)
    assert result.exit_code == 2 and f"There is no database at {missing}" in result.stderr, result
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


REPO = Path(__file__).resolve().parent.parent
NOT_WRITING = [  # commands that write nothing that stays: none may create the database
    ["db", "info"], ["db", "check"], ["db", "backup", "{tmp}/backup.db"], ["license", "public-key"],
    ["license", "public-key", "--all", "--json"], ["customer", "list"],
]
DRY_RUNS = [  # (command, what its answer says): each answers for an empty database, and creates nothing
    (["catalog", "import", str(REPO / "sample-catalog.toml"), "--dry-run"], "would create 20"),
    (["customer", "import", str(REPO / "examples" / "customers.csv"), "--dry-run"], "Would create 4 customer(s)"),
]


def _refused_creating_nothing(result, missing: Path) -> None:
    assert result.exit_code == 2, result
    assert result.stderr.startswith(f"error: There is no database at {missing}; nothing was created.")
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert not missing.parent.exists()  # not the file, its -wal/-shm, signing-keys/ or the folder


@pytest.fixture
def events(tmp_path) -> Path:
    (tmp_path / "events.csv").write_text("customer,feature,quantity,id\nacme,calls,1,e1\n")
    return tmp_path / "events.csv"


@pytest.mark.parametrize("args", NOT_WRITING, ids=" ".join)
def test_a_command_that_writes_nothing_creates_no_database_given_by_db(cli, tmp_path, events, args):
    missing = tmp_path / "x" / "nope" / "m.db"
    result = cli("--db", str(missing), *(a.format(tmp=tmp_path) for a in args))
    _refused_creating_nothing(result, missing)
    assert not (tmp_path / "backup.db").exists()


@pytest.mark.parametrize("args", NOT_WRITING, ids=" ".join)
def test_the_same_rule_holds_for_tollgate_db(cli, tmp_path, events, monkeypatch, args):
    missing = tmp_path / "x" / "missing.db"
    monkeypatch.setenv("TOLLGATE_DB", str(missing))
    _refused_creating_nothing(cli(*(a.format(tmp=tmp_path) for a in args)), missing)


@pytest.mark.parametrize("args, answer", DRY_RUNS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
@pytest.mark.parametrize("given_by", ["--db", "TOLLGATE_DB"])
def test_a_dry_run_on_a_missing_database_answers_for_an_empty_one_and_creates_nothing(
        cli, tmp_path, monkeypatch, args, answer, given_by):
    missing = tmp_path / "x" / "nope" / "m.db"
    if given_by == "TOLLGATE_DB":
        monkeypatch.setenv("TOLLGATE_DB", str(missing))
    result = cli(*(["--db", str(missing)] if given_by == "--db" else []), *args)
    assert result.exit_code == 0 and answer in result.stdout, result
    assert not missing.parent.exists()


def test_a_usage_file_dry_run_on_a_missing_database_reports_its_rows(cli, tmp_path, events):
    missing = tmp_path / "x" / "m.db"
    result = cli("--db", str(missing), "usage", "report", "--file", str(events), "--dry-run")
    assert result.exit_code == 2 and "acme" in result.stderr and "There is no database" not in result.stderr
    assert not missing.parent.exists()


def test_the_default_location_is_not_created_by_a_read(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("TOLLGATE_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "fresh-machine"))
    location = Path(cli("db", "path").stdout.strip())
    assert location.is_relative_to(tmp_path / "fresh-machine")
    for args in (["customer", "list"], ["db", "info"], ["license", "public-key"]):
        _refused_creating_nothing(cli(*args), location)
    assert not (tmp_path / "fresh-machine").exists()
    assert cli("customer", "add", "Acme").exit_code == 0 and location.exists()  # a write creates it


def test_a_real_process_given_tollgate_db_creates_nothing(tmp_path):
    missing = tmp_path / "x" / "missing.db"
    env = dict(os.environ, TOLLGATE_DB=str(missing))
    for args in (["customer", "list"], ["db", "info"], ["db", "check"]):
        proc = subprocess.run([sys.executable, "-m", "tollgate", *args], capture_output=True, text=True, env=env)
        assert proc.returncode == 2 and proc.stderr.startswith(f"error: There is no database at {missing};"), proc
    assert not missing.parent.exists()


def test_the_library_still_creates_its_database_on_first_use(tmp_path):
    from tollgate import Tollgate

    tg = Tollgate(tmp_path / "lib.db")
    try:
        assert tg.customers() == [] and (tmp_path / "lib.db").exists()
    finally:
        tg.close()


def test_a_write_with_db_still_creates_it(cli, tmp_path):
    fresh = tmp_path / "new.db"
    assert cli("--db", str(fresh), "customer", "add", "Acme").exit_code == 0
    assert cli("--db", str(fresh), "customer", "list", "--json").json()[0]["identifier"] == "acme"


def test_usage_on_a_feature_without_a_usage_charge_is_noted(cli, tg):
    tg.create_product("App", identifier="app")
    tg.create_feature("Calls", type="metered", identifier="calls", unit="call")
    tg.create_feature("Storage", type="metered", identifier="storage", unit="GB")
    tg.create_plan("pro", product="app", feature_values=["calls=100", "storage=10"],
                   prices=[("month", "USD", "10.00")])
    tg.set_usage_charge("pro", {"feature": "calls", "currency": "USD", "model": "flat", "unit_price": "0.01"})
    tg.add_customer("Acme", identifier="acme")
    tg.add_subscription("acme", "pro")
    tg.report_usage("acme", "calls", 5, key="c1")
    quiet = cli("invoice", "preview", "acme", "--json").json()
    assert quiet["notes"] == []
    tg.report_usage("acme", "storage", "2.5", key="s1")
    data = cli("invoice", "preview", "acme", "--json").json()
    assert len(data["notes"]) == 1 and "2.5 GB of 'storage'" in data["notes"][0] and "not billed" in data["notes"][0]
    shown = cli("invoice", "preview", "acme")
    assert "no usage charge for 'storage'" in shown.stderr
    run = cli("invoice", "preview", "--all")  # the bill run's summary says it too, naming the customer
    assert run.exit_code == 0 and "acme: " in run.stderr and "no usage charge for 'storage'" in run.stderr


def test_log_says_why_an_action_matched_nothing_and_refuses_a_glob(cli, tg):
    tg.add_customer("Acme", identifier="acme")
    nothing = cli("log", "--action", "nosuch.action")
    assert nothing.exit_code == 0 and "No journal entry has the action 'nosuch.action'" in nothing.stderr
    assert "families: customer" in nothing.stderr
    assert cli("log", "--action", "nosuch", "--json").json() == []  # scripts get their empty list
    for glob in ("customer.*", "Customer", "customer%"):
        refused = cli("log", "--action", glob)
        assert refused.exit_code == 2 and "is not an action" in refused.stderr, (glob, refused.stderr)
    assert "--action customer" in cli("log", "--action", "customer.*").stderr
