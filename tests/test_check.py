"""`check` (and `check --consume`) through the CLI, and `Tollgate.check` / `Tollgate.consume` through the library."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from tollgate.errors import Conflict, InvalidInput, NotFound
from conftest import ok

CHECK_KEYS = {"allowed", "feature", "type", "value", "limit", "used", "remaining", "reset_at", "hard", "source",
              "reason"}


@pytest.fixture
def shop(cli):
    ok(cli("product", "create", "ai-studio"))
    ok(cli("feature", "create", "--name", "API calls", "--type", "metered", "--id", "api-calls", "--unit", "call"))
    ok(cli("feature", "create", "--name", "Tokens", "--type", "metered", "--id", "tokens"))
    ok(cli("feature", "create", "--name", "SSO", "--type", "boolean", "--id", "sso"))
    ok(cli("feature", "create", "--name", "Region", "--type", "config", "--id", "region"))
    ok(cli("plan", "create", "pro", "--product", "ai-studio", "--price", "49.00", "--currency", "USD",
           "--interval", "month", "--feature", "api-calls=100", "--hard", "api-calls", "--feature", "tokens=1000",
           "--alert", "tokens=50", "--alert", "tokens=90", "--feature", "sso=true", "--feature", "region=eu"))
    ok(cli("customer", "add", "Acme", "--id", "acme"))
    ok(cli("sub", "add", "acme", "pro"))
    return cli


def test_allowed_exit_0_with_the_json_shape(shop):
    data = ok(shop("check", "acme", "api-calls", "--quantity", "5", "--json")).json()
    assert CHECK_KEYS <= set(data)
    assert data["allowed"] is True and data["reason"] is None
    assert (data["limit"], data["used"], data["remaining"], data["hard"]) == ("100", "0", "100", True)
    assert data["source"] == "plan:pro" and data["reset_at"].endswith("Z") and data["type"] == "metered"
    assert data["recorded"] is False  # a check records nothing
    assert ok(shop("check", "acme", "api-calls", "--json")).json()["used"] == "0"


def test_hard_limit_denies_with_exit_1_and_a_reason(shop):
    ok(shop("check", "acme", "api-calls", "--quantity", "100", "--consume"))
    result = ok(shop("check", "acme", "api-calls", "--json"), 1)
    data = result.json()
    assert data["allowed"] is False and data["remaining"] == "0" and data["used"] == "100"
    assert "hard limit of 100" in data["reason"] and "resets at" in data["reason"]
    text = ok(shop("check", "acme", "api-calls"), 1)
    assert text.stdout.startswith("denied: The hard limit")


def test_consume_records_and_then_denies_past_the_hard_limit(shop):
    first = ok(shop("check", "acme", "api-calls", "--quantity", "60", "--consume", "--json")).json()
    assert first["recorded"] is True and first["used"] == "60" and first["remaining"] == "40"
    denied = ok(shop("check", "acme", "api-calls", "--quantity", "41", "--consume", "--json"), 1).json()
    assert denied["recorded"] is False and denied["used"] == "60"
    last = ok(shop("check", "acme", "api-calls", "--quantity", "40", "--consume"))
    assert "recorded 40" in last.stdout and "100 of 100 used, 0 remaining" in last.stdout
    assert "notice:" in last.stderr and "reached its hard limit" in last.stderr


def test_soft_limit_allows_and_reports_the_overage(shop):
    ok(shop("check", "acme", "tokens", "--quantity", "900", "--consume"))
    check = ok(shop("check", "acme", "tokens", "--quantity", "300", "--json"))
    data = check.json()
    assert data["allowed"] is True and data["hard"] is False and data["overage"] == "200"
    assert "would be over the soft limit of 1000" in check.stderr and "by 200" in check.stderr
    consumed = ok(shop("check", "acme", "tokens", "--quantity", "300", "--consume", "--json"))
    data = consumed.json()
    assert (data["used"], data["remaining"], data["overage"], data["recorded"]) == ("1200", "0", "200", True)
    assert "is over the soft limit" in consumed.stderr


def test_crossing_alert_thresholds_notifies_and_journals(shop):
    result = ok(shop("check", "acme", "tokens", "--quantity", "950", "--consume"))
    assert result.stderr.count("notice:") == 2 and "50%" in result.stderr and "90%" in result.stderr
    log = ok(shop("log", "--customer", "acme", "--json")).json()
    alerts = [entry for entry in log if entry["action"] == "usage.alert"]
    assert sorted(entry["details"]["percent"] for entry in alerts) == [50, 90]
    quiet = ok(shop("check", "acme", "tokens", "--quantity", "10", "--consume"))
    assert "notice:" not in quiet.stderr


def test_consume_key_is_idempotent(shop):
    first = ok(shop("check", "acme", "api-calls", "--quantity", "7", "--consume", "--key", "req-1", "--json")).json()
    again = ok(shop("check", "acme", "api-calls", "--quantity", "7", "--consume", "--key", "req-1", "--json")).json()
    assert first["recorded"] is True and again["recorded"] is False and again["used"] == "7"
    clash = shop("check", "acme", "api-calls", "--quantity", "8", "--consume", "--key", "req-1")
    assert clash.exit_code == 1 and "already used for a different event" in clash.stderr


def test_boolean_and_config_checks(shop):
    sso = ok(shop("check", "acme", "sso", "--json")).json()
    assert sso["allowed"] is True and sso["value"] is True and sso["limit"] is None
    region = ok(shop("check", "acme", "region", "--json")).json()
    assert region["allowed"] is True and region["value"] == "eu"
    assert ok(shop("check", "acme", "region")).stdout.strip() == "allowed: region for acme = eu (plan:pro)"


def test_a_boolean_false_override_removes_access(shop):
    ok(shop("override", "set", "acme", "sso", "false"))
    data = ok(shop("check", "acme", "sso", "--json"), 1).json()
    assert data["allowed"] is False and data["source"] == "override" and data["value"] is False


def test_a_feature_nothing_grants_is_denied(shop):
    ok(shop("feature", "create", "--name", "Extra", "--type", "boolean", "--id", "extra"))
    data = ok(shop("check", "acme", "extra", "--json"), 1).json()
    assert data["allowed"] is False and data["source"] is None and "not included" in data["reason"]


def test_archived_customer_is_denied(shop):
    sub_id = ok(shop("sub", "list", "--json")).json()[0]["id"]
    ok(shop("sub", "cancel", sub_id, "--yes"))
    ok(shop("customer", "archive", "acme", "--yes"))
    data = ok(shop("check", "acme", "sso", "--json"), 1).json()
    assert data["allowed"] is False and "archived" in data["reason"]
    assert ok(shop("check", "acme", "api-calls", "--consume"), 1).stdout.startswith("denied:")


@pytest.mark.parametrize("args", [
    ["ghost", "sso"],
    ["acme", "no-such-feature"],
    ["acme", "api-calls", "--quantity", "0"],
    ["acme", "api-calls", "--quantity", "-3"],
    ["acme", "api-calls", "--quantity", "1e3"],
    ["acme", "api-calls", "--quantity", "lots"],
    ["acme", "api-calls", "--quantity", "0.0000001"],
    ["acme", "sso", "--consume"],
    ["acme", "api-calls", "--consume", "--at", "2030-01-01"],
    ["acme", "api-calls", "--key", "k"],
    ["acme", "api-calls", "--at", "last tuesday"],
])
def test_bad_usage_exits_2_and_records_nothing(shop, args):
    result = shop("check", *args)
    assert result.exit_code == 2, result
    assert result.stdout == "" and result.stderr.startswith("error: ")
    assert ok(shop("check", "acme", "api-calls", "--json")).json()["used"] == "0"


def test_decimal_quantities_are_exact(shop):
    ok(shop("check", "acme", "tokens", "--quantity", "0.1", "--consume"))
    ok(shop("check", "acme", "tokens", "--quantity", "0.2", "--consume"))
    assert ok(shop("check", "acme", "tokens", "--json")).json()["used"] == "0.3"


# -- the library ----------------------------------------------------------------------------------------


@pytest.fixture
def lib(shop, tg):
    return tg


def test_library_check_is_a_frozen_dataclass_with_a_json_shape(lib):
    result = lib.check("acme", "api-calls", 5)
    assert result.allowed and bool(result) and result.limit == Decimal(100) and result.used == Decimal(0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.allowed = False  # type: ignore[misc]
    data = result.to_dict()
    assert CHECK_KEYS <= set(data) and data["quantity"] == "5" and data["limit"] == "100"


def test_library_consume_returns_the_denied_result_past_a_hard_limit(lib):
    assert lib.consume("acme", "api-calls", 99).allowed
    denied = lib.consume("acme", "api-calls", 2)
    assert not denied.allowed and not denied.recorded and denied.used == Decimal(99)
    assert lib.consume("acme", "api-calls", Decimal("1")).remaining == Decimal(0)
    assert lib.entitlement("acme", "api-calls").used == Decimal(100)


def test_library_consume_key_retry_and_conflict(lib):
    assert lib.consume("acme", "tokens", "2.5", key="job-42").recorded
    retry = lib.consume("acme", "tokens", "2.5", key="job-42")
    assert retry.allowed and not retry.recorded and retry.used == Decimal("2.5")
    with pytest.raises(Conflict):
        lib.consume("acme", "tokens", "3", key="job-42")


def test_library_rejects_floats_and_unknowns(lib):
    with pytest.raises(InvalidInput, match="floating-point"):
        lib.check("acme", "tokens", 0.1)
    with pytest.raises(NotFound):
        lib.consume("ghost", "tokens")
    with pytest.raises(NotFound):
        lib.check("acme", "ghost-feature")


def test_library_feature_cache_still_sees_new_features(lib):
    with pytest.raises(NotFound):
        lib.check("acme", "later")
    lib.create_feature("Later", type="boolean", identifier="later")
    assert not lib.check("acme", "later").allowed
    lib.set_override("acme", "later", True)
    assert lib.check("acme", "later").allowed


def test_each_check_reads_a_fresh_snapshot_of_what_others_committed(lib, isolated_db):
    from tollgate import Tollgate

    assert lib.check("acme", "api-calls").used == 0
    with Tollgate(isolated_db) as other:
        other.consume("acme", "api-calls", 5)
        other.set_override("acme", "api-calls", "7", hard=True)
    result = lib.check("acme", "api-calls", 3)
    assert (result.used, result.limit, result.allowed, result.source) == (Decimal(5), Decimal(7), False, "override")


def test_check_from_many_threads_of_one_handle(lib):
    from concurrent.futures import ThreadPoolExecutor

    lib.consume("acme", "api-calls", 10)
    with ThreadPoolExecutor(max_workers=4) as pool:
        used = list(pool.map(lambda _: lib.check("acme", "api-calls").used, range(200)))
    assert used == [Decimal(10)] * 200


def test_a_closed_handle_reopens_on_the_next_check(lib):
    assert lib.check("acme", "sso").allowed
    lib.close()
    assert lib.check("acme", "sso").allowed
    assert lib.consume("acme", "api-calls", 1).recorded


def test_a_denied_check_past_a_hard_limit_warns_of_no_soft_limit(shop):
    """Issue #14, item 15: usage past a hard limit (reported, never dropped), then a check: denied,
    exit 1, and no 'over the soft limit ... (allowed; ...)' warning beside the denial."""
    ok(shop("usage", "report", "acme", "api-calls", "150"))
    denied = ok(shop("check", "acme", "api-calls"), 1)
    assert denied.stdout.startswith("denied:")
    assert "soft limit" not in denied.stderr and "allowed" not in denied.stderr
    consumed = ok(shop("check", "acme", "api-calls", "--consume"), 1)
    assert "soft limit" not in consumed.stderr


@pytest.mark.parametrize("key", ["void:evt-1", "", " ", "x" * 201, "tab\there"])
def test_consume_takes_keys_through_the_one_key_parser(shop, key):
    """Issue #14, item 14: consume had a weaker copy of the key rule; `void:` keys are reserved for voids."""
    result = ok(shop("check", "acme", "tokens", "--consume", "--key", key), 2)
    assert "key" in result.stderr.lower() or "reserved for voids" in result.stderr
    assert ok(shop("check", "acme", "tokens", "--json")).json()["used"] == "0"  # nothing was recorded
    ok(shop("usage", "report", "acme", "tokens", "1", "--id", "evt-1"))
    ok(shop("usage", "void", "evt-1", "--reason", "sent twice", "--yes"))  # its void key was never taken
