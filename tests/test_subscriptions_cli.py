"""sub add / edit / cancel / list / show and the archive rule through the real CLI (exit codes, JSON, stderr)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import ok

SUBSCRIPTION_KEYS = ["id", "customer", "plan", "status", "interval", "currency", "start", "trial_end",
                     "current_period_start", "current_period_end", "canceled_at"]


@pytest.fixture
def shop(cli):
    """The catalog built with the real commands: pro (two prices, 14-day trial), basic, free, lifetime."""
    ok(cli("product", "create", "ai-studio", "--name", "AI Studio"))
    ok(cli("feature", "create", "--name", "API calls", "--type", "metered", "--id", "api-calls", "--unit", "call"))
    ok(cli("feature", "create", "--name", "SSO", "--type", "boolean", "--id", "sso"))
    ok(cli("plan", "create", "pro", "--product", "ai-studio", "--price", "49.00", "--currency", "USD", "--interval",
           "month", "--price", "470.00", "--currency", "USD", "--interval", "year", "--trial-days", "14",
           "--feature", "api-calls=1000", "--feature", "sso=true", "--hard", "api-calls"))
    ok(cli("plan", "create", "basic", "--product", "ai-studio", "--price", "9.00", "--currency", "USD",
           "--interval", "month", "--feature", "api-calls=100"))
    ok(cli("plan", "create", "lifetime", "--product", "ai-studio", "--price", "299.00", "--currency", "USD",
           "--interval", "once", "--feature", "sso=true"))
    ok(cli("customer", "add", "Acme, Inc."))
    return cli


def add(cli, *args):
    return ok(cli("sub", "add", *args, "--json")).json()


def test_sub_add_json_shape_and_message(shop):
    data = add(shop, "acme-inc", "pro", "--interval", "year", "--start", "2030-01-15")
    assert set(SUBSCRIPTION_KEYS) <= set(data) and list(data)[:4] == ["id", "customer", "plan", "status"]
    assert data["id"].startswith("sub_") and data["customer"] == "acme-inc" and data["plan"] == "pro"
    assert (data["status"], data["interval"], data["currency"], data["amount"]) == ("trialing", "year", "USD", "470.00")
    assert data["start"] == "2030-01-15T00:00:00Z" and data["trial_end"] == "2030-01-29T00:00:00Z"
    assert (data["current_period_start"], data["current_period_end"]) == ("2030-01-15T00:00:00Z", "2031-01-15T00:00:00Z")
    assert data["canceled_at"] is None
    text = ok(shop("sub", "add", "acme-inc", "basic"))
    assert text.stdout.startswith("Subscribed acme-inc to basic (9.00 USD / month): sub_") and text.stderr == ""


def test_sub_add_with_several_prices_lists_the_options_exit_2(shop):
    result = shop("sub", "add", "acme-inc", "pro")
    assert result.exit_code == 2 and result.stdout == ""
    assert "month USD 49.00" in result.stderr and "year USD 470.00" in result.stderr
    assert "--interval" in result.stderr
    assert ok(shop("sub", "list", "--json")).json() == []


def test_sub_add_refused_for_archived_customer_exit_1(shop):
    ok(shop("customer", "add", "Gone"))
    ok(shop("customer", "archive", "gone", "--yes"))
    result = shop("sub", "add", "gone", "basic")
    assert result.exit_code == 1 and "archived" in result.stderr


def test_sub_add_unknown_plan_or_customer_exit_2(shop):
    assert shop("sub", "add", "acme-inc", "nope").exit_code == 2
    assert shop("sub", "add", "ghost", "basic").exit_code == 2


def test_sub_add_feature_and_without(shop):
    data = add(shop, "acme-inc", "pro", "--interval", "month", "--feature", "api-calls=5000", "--without", "sso")
    assert {(a["feature"], a["excluded"], a["limit"]) for a in data["adjustments"]} == {
        ("api-calls", False, "5000"), ("sso", True, None)}
    shown = ok(shop("sub", "show", data["id"]))
    assert "Adjustments" in shown.stdout and "without" in shown.stdout and "5,000" in shown.stdout
    bad = shop("sub", "add", "acme-inc", "basic", "--without", "sso")
    assert bad.exit_code == 2 and "does not grant" in bad.stderr and "override" in bad.stderr


def test_trial_ending_flips_status_by_date(shop):
    sub_id = add(shop, "acme-inc", "pro", "--interval", "month", "--start", "2030-01-01")["id"]
    before = ok(shop("sub", "show", sub_id, "--at", "2030-01-14", "--json")).json()
    after = ok(shop("sub", "show", sub_id, "--at", "2030-01-15", "--json")).json()
    assert before["status"] == "trialing" and after["status"] == "active"
    listed = ok(shop("sub", "list", "--status", "active", "--at", "2030-02-01", "--json")).json()
    assert [s["id"] for s in listed] == [sub_id]
    assert ok(shop("sub", "list", "--status", "trialing", "--at", "2030-02-01", "--json")).json() == []


def test_sub_list_filters_and_table(shop):
    ok(shop("customer", "add", "Globex"))
    a = add(shop, "acme-inc", "basic")["id"]
    g = add(shop, "globex", "basic")["id"]
    assert [s["id"] for s in ok(shop("sub", "list", "--json")).json()] == [a, g]
    assert [s["id"] for s in ok(shop("sub", "list", "--customer", "globex", "--json")).json()] == [g]
    table = ok(shop("sub", "list")).stdout
    assert a in table and g in table and "9.00 USD / month" in table
    csv = ok(shop("sub", "list", "--csv")).stdout.splitlines()
    assert csv[0].startswith("id,customer,plan,status") and len(csv) == 3
    assert shop("sub", "list", "--status", "sleeping").exit_code == 2
    assert shop("sub", "list", "--customer", "ghost").exit_code == 2


def test_sub_edit_status_machine(shop):
    sub_id = add(shop, "acme-inc", "basic")["id"]
    assert ok(shop("sub", "edit", sub_id, "--status", "past_due", "--json")).json()["status"] == "past_due"
    assert ok(shop("sub", "edit", sub_id, "--status", "active", "--json")).json()["status"] == "active"
    refused = shop("sub", "edit", sub_id, "--status", "trialing")
    assert refused.exit_code == 1 and "can't become trialing" in refused.stderr
    assert shop("sub", "edit", sub_id).exit_code == 2  # nothing to change
    assert shop("sub", "edit", "sub_ghost", "--status", "active").exit_code == 2


def test_sub_edit_plan_and_trial_end(shop):
    sub_id = add(shop, "acme-inc", "pro", "--interval", "month", "--start", "2030-01-01")["id"]
    moved = ok(shop("sub", "edit", sub_id, "--trial-end", "2030-02-01", "--json")).json()
    assert moved["trial_end"] == "2030-02-01T00:00:00Z"
    changed = ok(shop("sub", "edit", sub_id, "--plan", "basic", "--json")).json()
    assert (changed["plan"], changed["amount"], changed["start"]) == ("basic", "9.00", "2030-01-01T00:00:00Z")
    text = ok(shop("sub", "edit", sub_id, "--feature", "api-calls=250"))
    assert text.stdout.startswith(f"Updated {sub_id}: basic")


def test_sub_cancel_needs_yes_off_a_terminal(shop):
    sub_id = add(shop, "acme-inc", "basic")["id"]
    refused = shop("sub", "cancel", sub_id)
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert ok(shop("sub", "show", sub_id, "--json")).json()["status"] == "active"


def test_sub_cancel_now_and_at_period_end(shop):
    now_id = add(shop, "acme-inc", "basic")["id"]
    later_id = add(shop, "acme-inc", "basic", "--another")["id"]
    canceled = ok(shop("sub", "cancel", now_id, "--yes", "--json")).json()
    assert canceled["status"] == "canceled" and canceled["canceled_at"]
    later = ok(shop("sub", "cancel", later_id, "--at-period-end", "--yes", "--json")).json()
    assert later["status"] == "active" and later["cancel_at"] == later["current_period_end"]
    assert later["cancel_at_period_end"] is True
    again = shop("sub", "cancel", now_id, "--yes")
    assert again.exit_code == 1 and "already canceled" in again.stderr
    text = ok(shop("sub", "list"))
    assert "(ends " in text.stdout


def test_one_time_purchase_cannot_cancel_at_period_end(shop):
    data = add(shop, "acme-inc", "lifetime")
    assert data["interval"] == "once" and data["current_period_end"] is None
    result = shop("sub", "cancel", data["id"], "--at-period-end", "--yes")
    assert result.exit_code == 1 and "one-time purchase" in result.stderr


def test_archive_refused_with_a_live_subscription_and_allowed_after_cancel(shop):
    sub_id = add(shop, "acme-inc", "basic")["id"]
    refused = shop("customer", "archive", "acme-inc", "--yes")
    assert refused.exit_code == 1 and sub_id in refused.stderr and "sub cancel" in refused.stderr
    ok(shop("sub", "cancel", sub_id, "--yes"))
    assert ok(shop("customer", "archive", "acme-inc", "--yes", "--json")).json()["status"] == "archived"


def test_archive_refused_while_canceled_at_period_end(shop):
    sub_id = add(shop, "acme-inc", "basic")["id"]
    ok(shop("sub", "cancel", sub_id, "--at-period-end", "--yes"))
    assert shop("customer", "archive", "acme-inc", "--yes").exit_code == 1


def test_customer_show_has_subscriptions_and_entitlements_with_usage_bars(shop):
    add(shop, "acme-inc", "basic")
    ok(shop("check", "acme-inc", "api-calls", "--quantity", "25", "--consume"))
    shown = ok(shop("customer", "show", "acme-inc"))
    assert "Subscriptions" in shown.stdout and "Entitlements" in shown.stdout
    assert "basic" in shown.stdout and "25%" in shown.stdout and "█" in shown.stdout and "░" in shown.stdout
    data = ok(shop("customer", "show", "acme-inc", "--json")).json()
    assert data["identifier"] == "acme-inc" and data["subscriptions"][0]["plan"] == "basic"
    assert data["entitlements"][0]["used"] == "25" and data["entitlements"][0]["remaining"] == "75"


def test_customer_show_without_subscriptions(shop):
    shown = ok(shop("customer", "show", "acme-inc"))
    assert "Subscriptions: none" in shown.stdout and "Entitlements: none" in shown.stdout


# -- undo: sub resume, customer unarchive; one live subscription per plan ---------------------------------


def test_a_second_live_subscription_to_one_plan_is_refused_unless_another(shop):
    first = add(shop, "acme-inc", "basic")["id"]
    refused = shop("sub", "add", "acme-inc", "basic")
    assert refused.exit_code == 1 and first in refused.stderr and "--another" in refused.stderr
    assert len(ok(shop("sub", "list", "--json")).json()) == 1
    second = add(shop, "acme-inc", "basic", "--another")["id"]
    ok(shop("sub", "cancel", first, "--yes"))
    ok(shop("sub", "cancel", second, "--yes"))
    add(shop, "acme-inc", "basic")  # the others have ended


def test_sub_resume_takes_back_a_scheduled_cancel_and_its_license_revocation(shop):
    sub_id = add(shop, "acme-inc", "basic")["id"]
    nothing = shop("sub", "resume", sub_id)
    assert nothing.exit_code == 1 and "no scheduled cancellation" in nothing.stderr
    ok(shop("sub", "cancel", sub_id, "--at-period-end", "--yes"))
    resumed = ok(shop("sub", "resume", sub_id, "--json")).json()
    assert resumed["cancel_at"] is None and resumed["canceled_at"] is None and resumed["status"] == "active"
    assert [e["action"] for e in ok(shop("log", "--action", "subscription", "--json")).json()] == [
        "subscription.create", "subscription.cancel", "subscription.resume"]
    ok(shop("sub", "cancel", sub_id, "--yes"))
    ended = shop("sub", "resume", sub_id)
    assert ended.exit_code == 1 and "already ended" in ended.stderr
    unknown = shop("sub", "resume", "sub_nope")
    assert unknown.exit_code == 2 and "sub_nope" in unknown.stderr


def test_resume_keeps_the_license_keys_valid(tg, shop):
    from tollgate.catalog import LicensePolicy

    tg.create_plan("desk", product="ai-studio", prices=[("month", "USD", "5.00")],
                   license=LicensePolicy(activation_limit=2))
    sub = tg.add_subscription("acme-inc", "desk")
    key = tg.licenses(customer="acme-inc")[0].key
    tg.cancel_subscription(sub.id, at_period_end=True)
    assert tg.license(key).revoked_at is not None
    ok(shop("sub", "resume", sub.id))
    assert tg.license(key).revoked_at is None
    assert tg.validate_license(key, at=tg.subscription(sub.id).current_period_end + timedelta(days=40)).valid


def test_customer_unarchive(shop):
    ok(shop("customer", "archive", "acme-inc", "--yes"))
    back = ok(shop("customer", "unarchive", "acme-inc", "--json")).json()
    assert back["status"] == "active" and back["archived_at"] is None
    again = shop("customer", "unarchive", "acme-inc")
    assert again.exit_code == 1 and "not archived" in again.stderr
    add(shop, "acme-inc", "basic")
    assert shop("customer", "unarchive", "nobody").exit_code == 2
