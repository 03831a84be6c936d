"""No silent surprises: a read command given a --db path that names nothing says so and creates
nothing; an invoice with usage on a feature its plan does not charge says so in a note."""

from __future__ import annotations

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
