"""License keys: issue on purchase, validate, activate, deactivate, regenerate, revoke, edit, and
revocation when a subscription's access ends. Subscriptions are created through their real API."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollgate.catalog import LicensePolicy
from tollgate.clock import utcnow

KEY = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){4}$")


def catalog(tg, *, limit=3, expires="never", interval="once"):
    """A product with a licensed plan (`app`) and a plan without keys (`plain`)."""
    tg.create_product("Editor", identifier="editor")
    tg.create_plan("app", product="editor", prices=[(interval, "USD", "39.00")],
                   license=LicensePolicy(limit, expires))
    tg.create_plan("plain", product="editor", prices=[("month", "USD", "5.00")])
    tg.add_customer("Acme", identifier="acme")
    tg.add_customer("Globex", identifier="globex")


def buy(tg, customer="acme", plan="app", **kwargs):
    sub = tg.add_subscription(customer, plan, **kwargs)
    keys = [lic for lic in tg.licenses(customer=customer) if lic.subscription == sub.id]
    return sub, (keys[0].key if keys else None)


@pytest.fixture
def shop(tg):
    catalog(tg)
    return tg


# -- issuing ---------------------------------------------------------------------------------------------


def test_a_purchase_of_a_licensed_plan_issues_one_key(shop):
    sub, key = buy(shop)
    assert KEY.match(key)
    [lic] = shop.licenses()
    shape = lic.to_dict()
    assert list(shape)[:8] == ["key", "customer", "plan", "subscription", "status", "activation_limit",
                               "activations", "expires_at"]
    assert shape == {**shape, "key": key, "customer": "acme", "plan": "app", "subscription": sub.id,
                     "status": "active", "activation_limit": 3, "activations": [], "expires_at": None}


def test_a_plan_without_a_license_policy_issues_no_key(shop):
    buy(shop, plan="plain")
    assert shop.licenses() == []


def test_each_purchase_gets_its_own_key(shop):
    _, first = buy(shop)
    _, second = buy(shop, another=True)
    _, third = buy(shop, customer="globex")
    assert len({first, second, third}) == 3
    assert [lic.key for lic in shop.licenses(customer="acme")] == [first, second]


def test_issuing_writes_the_journal(shop):
    _, key = buy(shop)
    issued = [e for e in shop.journal(customer="acme") if e.action == "license.issue"]
    assert [e.object_id for e in issued] == [key]


def test_keys_are_random_with_more_than_100_bits():
    from tollgate import licenses

    assert licenses.KEY_BITS >= 100 and len(licenses.KEY_ALPHABET) == 32
    keys = {licenses.generate_key() for _ in range(2000)}
    assert len(keys) == 2000 and all(KEY.match(k) for k in keys)
    # every position takes many values (no fixed part, no counter)
    for position in range(29):
        if position % 6 != 5:
            assert len({k[position] for k in keys}) > 25


def test_keys_come_from_the_secrets_module(monkeypatch):
    from tollgate import licenses

    monkeypatch.setattr(licenses.secrets, "randbits", lambda bits: 0)
    assert licenses.generate_key() == "00000-00000-00000-00000-00000"


def test_expiry_counts_from_the_purchase(tg):
    catalog(tg, expires="30d")
    start = datetime(2026, 1, 31, 12, 0)
    _, key = buy(tg, start=start)
    assert tg.license(key).expires_at == datetime(2026, 3, 2, 12)


@pytest.mark.parametrize("duration, expected", [
    ("30d", datetime(2026, 3, 2, 12)),
    ("1m", datetime(2026, 2, 28, 12)),  # the day is clamped to the month's end
    ("6m", datetime(2026, 7, 31, 12)),
    ("1y", datetime(2027, 1, 31, 12)),
    ("never", None),
])
def test_durations(duration, expected):
    from tollgate.licenses import add_duration

    assert add_duration(datetime(2026, 1, 31, 12), duration) == expected


# -- key spelling ------------------------------------------------------------------------------------------


def test_keys_are_read_forgivingly(shop):
    _, key = buy(shop)
    sloppy = key.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert shop.validate_license(sloppy).valid
    assert shop.validate_license(sloppy) and not shop.validate_license("AAAAA-BBBBB-CCCCC-DDDDD-EEEEE")
    assert shop.license(key.replace("-", "")).key == key


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_normalize_key_never_raises_and_is_canonical(text):
    from tollgate.licenses import normalize_key

    result = normalize_key(text)
    assert result is None or KEY.match(result)


# -- validate ------------------------------------------------------------------------------------------------


def test_validate_a_good_key_exits_0(shop, cli):
    _, key = buy(shop)
    result = cli("license", "validate", key, "--json")
    assert result.exit_code == 0, result
    data = result.json()
    assert data["valid"] is True and data["reason"] is None and data["key"] == key
    assert data["customer"] == "acme" and data["plan"] == "app" and data["status"] == "active"
    plain = cli("license", "validate", key)
    assert plain.exit_code == 0 and plain.stdout.startswith("valid: ")


def test_validate_an_unknown_key_is_an_answer_exit_1(shop, cli):
    result = cli("license", "validate", "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE", "--json")
    assert result.exit_code == 1
    assert result.json()["reason"] == "unknown" and result.json()["valid"] is False
    plain = cli("license", "validate", "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE")
    assert plain.exit_code == 1 and "invalid (unknown)" in plain.stdout


@pytest.mark.parametrize("text", ["hello", "AAAAA-BBBBB-CCCCC-DDDDD", "AAAAA-BBBBB-CCCCC-DDDDD-EEEEU", "", "x" * 500])
def test_validate_a_malformed_key_is_invalid_exit_1(shop, cli, text):
    result = cli("license", "validate", text, "--json")
    assert result.exit_code == 1
    assert result.json()["reason"] == "malformed"


def test_validate_with_an_instance(shop, cli):
    _, key = buy(shop)
    activation = shop.activate_license(key, "laptop")
    assert cli("license", "validate", key, "--instance", activation.instance_id).exit_code == 0
    missing = cli("license", "validate", key, "--instance", "inst_nothere", "--json")
    assert missing.exit_code == 1 and missing.json()["reason"] == "instance_not_activated"
    shop.deactivate_license(key, activation.instance_id)
    gone = cli("license", "validate", key, "--instance", activation.instance_id, "--json")
    assert gone.exit_code == 1 and gone.json()["reason"] == "instance_not_activated"


def test_an_expired_key_is_invalid(tg, cli):
    catalog(tg, expires="30d")
    _, key = buy(tg, start=utcnow() - timedelta(days=31))
    result = cli("license", "validate", key, "--json")
    assert result.exit_code == 1 and result.json()["reason"] == "expired"
    assert tg.license(key).status == "expired"
    refused = cli("license", "activate", key, "--name", "laptop")
    assert refused.exit_code == 1 and "expired" in refused.stderr


def test_a_key_expires_at_its_moment(tg):
    catalog(tg, expires="30d")
    start = utcnow() - timedelta(days=1)
    _, key = buy(tg, start=start)
    end = start + timedelta(days=30)
    assert tg.validate_license(key, at=end - timedelta(seconds=1)).valid
    assert tg.validate_license(key, at=end).reason == "expired"


# -- activate / deactivate ----------------------------------------------------------------------------------------


def test_activate_returns_an_instance_id(shop, cli):
    _, key = buy(shop)
    result = cli("license", "activate", key, "--name", "build-server-1", "--json")
    assert result.exit_code == 0, result
    data = result.json()
    assert data["instance_id"].startswith("inst_") and data["name"] == "build-server-1" and data["key"] == key
    assert data["activated_at"].endswith("Z") and data["created"] is True
    shown = shop.license(key).to_dict()["activations"]
    assert shown == [{"instance_id": data["instance_id"], "name": "build-server-1", "activated_at": data["activated_at"]}]
    assert "license.activate" in [e.action for e in shop.journal(customer="acme")]


def test_activation_limit_reached_is_refused_with_exit_1(shop, cli):
    _, key = buy(shop)
    for name in ("a", "b", "c"):
        assert cli("license", "activate", key, "--name", name).exit_code == 0
    result = cli("license", "activate", key, "--name", "d")
    assert result.exit_code == 1
    assert "activation limit is reached" in result.stderr and result.stdout == ""
    assert len(shop.license(key).activations) == 3


def test_activating_the_same_name_again_uses_no_seat(shop, cli):
    _, key = buy(shop)
    first = cli("license", "activate", key, "--name", "laptop", "--json").json()
    again = cli("license", "activate", key, "--name", "laptop", "--json").json()
    assert again["instance_id"] == first["instance_id"] and again["created"] is False
    assert len(shop.license(key).activations) == 1


def test_deactivating_frees_a_seat(shop, cli):
    _, key = buy(shop)
    ids = [shop.activate_license(key, name).instance_id for name in ("a", "b", "c")]
    result = cli("license", "deactivate", key, "--instance", ids[0], "--json")
    assert result.exit_code == 0 and result.json()["deactivated_at"].endswith("Z")
    assert cli("license", "activate", key, "--name", "d").exit_code == 0
    assert [a.name for a in shop.license(key).activations] == ["b", "c", "d"]
    twice = cli("license", "deactivate", key, "--instance", ids[0])
    assert twice.exit_code == 1 and "already deactivated" in twice.stderr
    unknown = cli("license", "deactivate", key, "--instance", "inst_nothere")
    assert unknown.exit_code == 2 and "no instance" in unknown.stderr


def test_an_instance_name_is_required(shop, cli):
    _, key = buy(shop)
    assert cli("license", "activate", key, "--name", "  ").exit_code == 2
    assert cli("license", "activate", key, "--name", "evil\x1b[31m").exit_code == 2
    assert cli("license", "activate", key).exit_code == 2  # Click: missing option


def test_unlimited_activations(tg):
    catalog(tg, limit=None)
    _, key = buy(tg)
    for n in range(12):
        tg.activate_license(key, f"machine-{n}")
    assert tg.license(key).activation_limit is None  # unlimited
    assert len(tg.license(key).activations) == 12


@pytest.mark.slow
def test_concurrent_activations_never_pass_the_limit(shop, db_path):
    _, key = buy(shop)
    env = dict(os.environ, TOLLGATE_DB=str(db_path), TOLLGATE_BUSY_TIMEOUT_MS="30000")
    procs = [subprocess.Popen([sys.executable, "-m", "tollgate", "license", "activate", key, "--name", f"m{n}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for n in range(6)]
    codes = sorted(p.wait(timeout=120) for p in procs)
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert codes == [0, 0, 0, 1, 1, 1]
    assert len(shop.license(key).activations) == 3


# -- regenerate / revoke ---------------------------------------------------------------------------------


def test_regenerated_old_key_and_its_activations_stop_working(shop, cli):
    sub, old = buy(shop)
    instance = shop.activate_license(old, "laptop").instance_id
    result = cli("license", "regenerate", old, "--yes", "--json")
    assert result.exit_code == 0, result
    new = result.json()
    assert new["key"] != old and KEY.match(new["key"])
    assert new["customer"] == "acme" and new["subscription"] == sub.id and new["activation_limit"] == 3
    assert new["activations"] == [] and new["status"] == "active"
    stale = cli("license", "validate", old, "--instance", instance, "--json")
    assert stale.exit_code == 1 and stale.json()["reason"] == "revoked"
    assert "replaced_by" not in stale.json() and new["key"] not in stale.stdout  # validate never leaks the new key
    assert cli("license", "validate", new["key"]).exit_code == 0
    assert shop.license(old).replaced_by == new["key"]
    assert cli("license", "activate", old, "--name", "other").exit_code == 1
    again = cli("license", "regenerate", old, "--yes")
    assert again.exit_code == 1 and "revoked" in again.stderr


def test_revoke(shop, cli):
    _, key = buy(shop)
    result = cli("license", "revoke", key, "--yes", "--json")
    assert result.exit_code == 0 and result.json()["status"] == "revoked"
    checked = cli("license", "validate", key, "--json")
    assert checked.exit_code == 1 and checked.json()["reason"] == "revoked"
    twice = cli("license", "revoke", key, "--yes")
    assert twice.exit_code == 1 and "already revoked" in twice.stderr
    refused = cli("license", "activate", key, "--name", "x")
    assert refused.exit_code == 1 and "revoked" in refused.stderr
    assert "license.revoke" in [e.action for e in shop.journal(customer="acme")]


# -- edit -----------------------------------------------------------------------------------------------


def test_edit_the_activation_limit_and_expiry(shop, cli):
    _, key = buy(shop)
    other_key = buy(shop, another=True)[1]
    result = cli("license", "edit", key, "--activation-limit", "5", "--json")
    assert result.exit_code == 0 and result.json()["activation_limit"] == 5
    assert cli("license", "edit", key, "--activation-limit", "unlimited", "--json").json()["activation_limit"] == "unlimited"
    expired = cli("license", "edit", key, "--expires", "2020-01-01", "--json").json()
    assert expired["expires_at"] == "2020-01-01T00:00:00Z" and expired["status"] == "expired"
    assert cli("license", "validate", key).exit_code == 1
    back = cli("license", "edit", key, "--expires", "never", "--json").json()
    assert back["expires_at"] is None and back["status"] == "active"
    assert shop.license(other_key).activation_limit == 3  # per customer: the plan and other keys are untouched
    assert shop.plan("app").license.activation_limit == 3
    assert "license.edit" in [e.action for e in shop.journal(customer="acme")]


def test_lowering_the_limit_below_the_seats_in_use_warns(shop, cli):
    _, key = buy(shop)
    for name in ("a", "b", "c"):
        shop.activate_license(key, name)
    result = cli("license", "edit", key, "--activation-limit", "1")
    assert result.exit_code == 0 and "more than the new limit" in result.stderr
    assert cli("license", "activate", key, "--name", "d").exit_code == 1


@pytest.mark.parametrize("args", [
    ["--activation-limit", "0"], ["--activation-limit", "-1"], ["--activation-limit", "many"],
    ["--expires", "someday"], ["--expires", "+7d ago"], [],
])
def test_edit_refuses_bad_values_with_exit_2(shop, cli, args):
    _, key = buy(shop)
    result = cli("license", "edit", key, *args)
    assert result.exit_code == 2, result
    assert shop.license(key).activation_limit == 3


def test_a_revoked_key_cannot_be_edited(shop, cli):
    _, key = buy(shop)
    shop.revoke_license(key)
    assert cli("license", "edit", key, "--expires", "never").exit_code == 1


# -- show / list ------------------------------------------------------------------------------------------


def test_show_and_list(shop, cli):
    _, key = buy(shop)
    buy(shop, customer="globex")
    shown = cli("license", "show", key)
    assert shown.exit_code == 0 and key in shown.stdout and "acme" in shown.stdout
    assert cli("license", "show", key, "--json").json()["key"] == key
    assert [row["customer"] for row in cli("license", "list", "--json").json()] == ["acme", "globex"]
    assert [row["key"] for row in cli("license", "list", "--customer", "acme", "--json").json()] == [key]
    table = cli("license", "list")
    assert table.exit_code == 0 and "0 / 3" in table.stdout
    csv_out = cli("license", "list", "--csv").stdout.splitlines()
    assert csv_out[0].startswith("key,customer,plan") and len(csv_out) == 3


def test_show_unknown_or_malformed_key_is_exit_2(shop, cli):
    unknown = cli("license", "show", "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE")
    assert unknown.exit_code == 2 and "No license has the key" in unknown.stderr
    malformed = cli("license", "show", "not-a-key")
    assert malformed.exit_code == 2 and "is not a license key" in malformed.stderr
    assert cli("license", "list", "--customer", "ghost").exit_code == 2


# -- subscriptions ending ----------------------------------------------------------------------------------


def test_an_immediate_cancel_revokes_the_keys_now(shop, cli):
    sub, key = buy(shop)
    result = cli("sub", "cancel", sub.id, "--yes")
    assert result.exit_code == 0, result
    checked = cli("license", "validate", key, "--json")
    assert checked.exit_code == 1 and checked.json()["reason"] == "revoked"
    assert shop.license(key).status == "revoked"


def test_cancel_at_period_end_revokes_the_keys_when_the_period_ends(tg, cli):
    catalog(tg, interval="month")
    start = utcnow().replace(microsecond=0) - timedelta(days=3)
    sub, key = buy(tg, start=start)
    instance = tg.activate_license(key, "laptop").instance_id
    canceled = tg.cancel_subscription(sub.id, at_period_end=True)
    end = canceled.cancel_at
    assert end > utcnow()
    lic = tg.license(key)
    assert lic.status == "active" and lic.revoked_at == canceled.cancel_at
    assert cli("license", "validate", key, "--instance", instance).exit_code == 0  # still paid for
    assert "revoked at" in cli("license", "show", key).stdout
    assert tg.validate_license(key, instance=instance, at=end - timedelta(seconds=1)).valid
    after = tg.validate_license(key, instance=instance, at=end)
    assert after.valid is False and after.reason == "revoked"
    assert tg.license(key, at=end).status == "revoked"


def test_cancel_at_period_end_then_now_revokes_now(tg):
    catalog(tg, interval="month")
    sub, key = buy(tg)
    tg.cancel_subscription(sub.id, at_period_end=True)
    assert tg.validate_license(key).valid
    tg.cancel_subscription(sub.id)
    assert tg.validate_license(key).reason == "revoked"


def test_a_regenerated_key_keeps_the_scheduled_revoke(tg):
    catalog(tg, interval="month")
    sub, key = buy(tg)
    end = tg.cancel_subscription(sub.id, at_period_end=True).cancel_at
    new = tg.regenerate_license(key).key
    assert tg.validate_license(new).valid
    assert tg.validate_license(new, at=end).reason == "revoked"


def test_expiring_a_subscription_revokes_its_keys(shop):
    sub, key = buy(shop)
    shop.edit_subscription(sub.id, status="expired")
    assert shop.validate_license(key).reason == "revoked"


def test_canceling_one_purchase_leaves_the_other_keys_alone(shop):
    sub, key = buy(shop)
    _, other = buy(shop, another=True)
    shop.cancel_subscription(sub.id)
    assert shop.validate_license(key).reason == "revoked"
    assert shop.validate_license(other).valid


def test_a_plan_change_to_a_licensed_plan_issues_a_key(shop):
    sub, key = buy(shop, plan="plain")
    assert key is None
    shop.edit_subscription(sub.id, plan="app")
    [lic] = shop.licenses(customer="acme")
    assert lic.subscription == sub.id and lic.plan == "app" and lic.status == "active"
    shop.edit_subscription(sub.id, plan="plain")
    shop.edit_subscription(sub.id, plan="app")
    assert [x.key for x in shop.licenses(customer="acme")] == [lic.key]  # one key per purchase


def test_a_key_issued_after_a_scheduled_cancel_ends_with_it(tg):
    catalog(tg, interval="month")
    tg.create_plan("plain-monthly", product="editor", prices=[("month", "USD", "7.00")])
    sub, _ = buy(tg, plan="plain-monthly")
    end = tg.cancel_subscription(sub.id, at_period_end=True).cancel_at
    tg.edit_subscription(sub.id, plan="app")
    [lic] = tg.licenses(customer="acme")
    assert tg.validate_license(lic.key).valid
    assert tg.validate_license(lic.key, at=end).reason == "revoked"


# -- customer show --------------------------------------------------------------------------------------


def test_customer_show_lists_the_keys(shop, cli):
    _, key = buy(shop)
    data = cli("customer", "show", "acme", "--json").json()
    assert [lic["key"] for lic in data["licenses"]] == [key]
    text = cli("customer", "show", "acme").stdout
    assert "License keys" in text and key in text
    assert "License keys: none" in cli("customer", "show", "globex").stdout


def test_every_at_of_the_library_takes_what_the_others_take(shop):
    """One time coercion (api._moment): RFC 3339 text, aware or naive datetimes, alike everywhere."""
    from datetime import timezone

    _, key = buy(shop)
    for at in ("2030-01-01", "2030-01-01T00:00:00Z", datetime(2030, 1, 1, tzinfo=timezone.utc), datetime(2030, 1, 1)):
        assert shop.license(key, at=at).key == key
        assert shop.licenses(customer="acme", at=at)[0].key == key
        assert shop.validate_license(key, at=at) is not None
        assert shop.deliverables("acme", at=at) is not None
        assert shop.entitlements("acme", at=at) is not None
    with pytest.raises(Exception) as refused:
        shop.license(key, at="next tuesday")
    assert "next tuesday" in str(refused.value) and type(refused.value).__name__ == "InvalidInput"
