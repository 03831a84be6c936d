"""override set / unset / list and `entitlements` through the real CLI."""

from __future__ import annotations

import pytest
from conftest import ok


@pytest.fixture
def shop(cli):
    ok(cli("product", "create", "ai-studio"))
    ok(cli("feature", "create", "--name", "API calls", "--type", "metered", "--id", "api-calls", "--unit", "call"))
    ok(cli("feature", "create", "--name", "SSO", "--type", "boolean", "--id", "sso"))
    ok(cli("feature", "create", "--name", "Max projects", "--type", "config", "--id", "max-projects"))
    ok(cli("plan", "create", "pro", "--product", "ai-studio", "--price", "49.00", "--currency", "USD",
           "--interval", "month", "--feature", "api-calls=1000", "--hard", "api-calls", "--feature", "sso=true",
           "--feature", "max-projects=10"))
    ok(cli("plan", "create", "addon", "--product", "ai-studio", "--price", "5.00", "--currency", "USD",
           "--interval", "month", "--feature", "api-calls=500", "--hard", "api-calls"))
    ok(cli("customer", "add", "Acme", "--id", "acme"))
    return cli


def entitlements(cli, *args):
    return {e["feature"]: e for e in ok(cli("entitlements", "acme", *args, "--json")).json()}


def test_override_set_json_and_message(shop):
    data = ok(shop("override", "set", "acme", "api-calls", "50000", "--expires", "2099-01-01", "--note", "launch",
                   "--json")).json()
    assert (data["customer"], data["feature"], data["limit"], data["unlimited"]) == ("acme", "api-calls", "50000", False)
    assert data["expires_at"] == "2099-01-01T00:00:00Z" and data["note"] == "launch" and data["expired"] is False
    text = ok(shop("override", "set", "acme", "sso", "yes"))
    assert text.stdout.strip() == "Override for acme: sso = on."


def test_an_override_beats_both_stacked_subscriptions(shop):
    ok(shop("sub", "add", "acme", "pro"))
    ok(shop("sub", "add", "acme", "addon"))
    stacked = entitlements(shop)["api-calls"]
    assert (stacked["limit"], stacked["hard"], stacked["source"]) == ("1500", True, "plan:pro+plan:addon")
    ok(shop("override", "set", "acme", "api-calls", "unlimited"))
    over = entitlements(shop)["api-calls"]
    assert over["limit"] is None and over["unlimited"] is True and over["source"] == "override"
    ok(shop("override", "unset", "acme", "api-calls"))
    assert entitlements(shop)["api-calls"]["limit"] == "1500"


def test_setting_again_replaces_and_unset_restores(shop):
    ok(shop("sub", "add", "acme", "pro"))
    ok(shop("override", "set", "acme", "max-projects", "50"))
    ok(shop("override", "set", "acme", "max-projects", "75"))
    assert entitlements(shop)["max-projects"]["value"] == 75
    assert len(ok(shop("override", "list", "acme", "--json")).json()) == 1
    removed = ok(shop("override", "unset", "acme", "max-projects"))
    assert "was 75" in removed.stdout
    assert entitlements(shop)["max-projects"]["value"] == 10
    assert shop("override", "unset", "acme", "max-projects").exit_code == 2
    actions = [e["action"] for e in ok(shop("log", "--customer", "acme", "--json")).json()]
    assert actions.count("override.set") == 1 and "override.update" in actions and "override.unset" in actions


def test_an_expired_override_no_longer_applies(shop):
    ok(shop("sub", "add", "acme", "pro"))
    ok(shop("override", "set", "acme", "api-calls", "50000", "--expires", "2098-06-01"))
    assert entitlements(shop, "--at", "2098-05-31")["api-calls"]["limit"] == "50000"
    after = entitlements(shop, "--at", "2098-06-01")["api-calls"]
    assert after["limit"] == "1000" and after["source"] == "plan:pro"


def test_override_list_table_and_all_customers(shop):
    ok(shop("customer", "add", "Globex"))
    ok(shop("override", "set", "acme", "sso", "false", "--note", "security review"))
    ok(shop("override", "set", "globex", "api-calls", "10", "--hard"))
    everyone = ok(shop("override", "list", "--json")).json()
    assert [(o["customer"], o["feature"]) for o in everyone] == [("acme", "sso"), ("globex", "api-calls")]
    assert everyone[1]["hard"] is True
    table = ok(shop("override", "list")).stdout
    assert "security review" in table and "off" in table and "10 (hard)" in table and "never" in table
    assert ok(shop("override", "list", "globex", "--json")).json()[0]["feature"] == "api-calls"


@pytest.mark.parametrize("args, code, needle", [
    (["ghost", "sso", "true"], 2, "ghost"),
    (["acme", "nope", "true"], 2, "nope"),
    (["acme", "sso", "maybe"], 2, "true or false"),
    (["--", "acme", "api-calls", "-5"], 2, "allowance"),
    (["acme", "api-calls", "unlimited", "--hard"], 2, "hard limit needs an allowance"),
    (["acme", "sso", "true", "--hard"], 2, "metered"),
    (["acme", "sso", "true", "--expires", "2001-01-01"], 2, "already passed"),
    (["acme", "sso", "true", "--expires", "someday"], 2, "not an expiry date"),
])
def test_bad_overrides_are_refused(shop, args, code, needle):
    result = shop("override", "set", *args)
    assert result.exit_code == code, result
    assert needle in result.stderr
    assert ok(shop("override", "list", "--json")).json() == []


def test_override_for_an_archived_customer_is_refused(shop):
    ok(shop("customer", "archive", "acme", "--yes"))
    result = shop("override", "set", "acme", "sso", "true")
    assert result.exit_code == 1 and "archived" in result.stderr


def test_entitlements_table_and_empty_message(shop):
    empty = ok(shop("entitlements", "acme"))
    assert "no entitlements" in empty.stdout
    ok(shop("sub", "add", "acme", "pro"))
    ok(shop("check", "acme", "api-calls", "--quantity", "250", "--consume"))
    table = ok(shop("entitlements", "acme")).stdout
    assert "1,000 call / month" in table and "750" in table and "25%" in table and "hard" in table
    assert "plan:pro" in table
    assert shop("entitlements", "ghost").exit_code == 2
    assert shop("entitlements", "acme", "--at", "nonsense").exit_code == 2
