"""Effective entitlements through the library (spec Rules 2-4): combining subscriptions, adjustments,
overrides, usage periods. Plans are built with the real catalog methods; times are injected (`at`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from tollgate.errors import NotFound

D = datetime


@pytest.fixture
def shop(tg):
    """A product, four features and plans: pro (hard 1000 calls), addon (hard 500), soft (soft 200),
    free (unlimited calls); customers acme and globex."""
    tg.create_product("AI Studio", identifier="ai")
    tg.create_feature("API calls", type="metered", identifier="api-calls", unit="call")
    tg.create_feature("Single sign-on", type="boolean", identifier="sso")
    tg.create_feature("Max projects", type="config", identifier="max-projects")
    tg.create_feature("Region", type="config", identifier="region")
    tg.create_plan("pro", product="ai", prices=[("month", "USD", "49.00")],
                   feature_values=["api-calls=1000", "sso=true", "max-projects=10", "region=eu"], hard=["api-calls"])
    tg.create_plan("addon", product="ai", prices=[("month", "USD", "10.00")],
                   feature_values=["api-calls=500", "max-projects=25", "region=us", "sso=false"], hard=["api-calls"])
    tg.create_plan("soft", product="ai", prices=[("month", "USD", "5.00")], feature_values=["api-calls=200"])
    tg.create_plan("free", product="ai", feature_values=["api-calls=unlimited"])
    tg.add_customer("Acme", identifier="acme")
    tg.add_customer("Globex", identifier="globex")
    return tg


def by_feature(entitlements):
    return {e.feature: e for e in entitlements}


def record(tg, customer, feature, quantity, at, key=None):
    """One usage event at `at`, through the real idempotent insert."""
    from tollgate.catalog import get_feature
    from tollgate.customers import get_customer
    from tollgate.money import to_micros
    from tollgate.usage.store import insert_event

    with tg.db.write() as session:
        insert_event(session, key=key or f"{customer}-{feature}-{at.isoformat()}-{quantity}",
                     customer_id=get_customer(session, customer).id, feature_id=get_feature(session, feature).id,
                     quantity_micros=to_micros(Decimal(quantity)), occurred_at=at, recorded_at=at)


def test_one_subscription_grants_the_plans_entitlements(shop):
    sub = shop.add_subscription("acme", "pro", start="2030-01-15")
    got = by_feature(shop.entitlements("acme", at="2030-02-01"))
    assert set(got) == {"api-calls", "sso", "max-projects", "region"}
    calls = got["api-calls"]
    assert (calls.limit, calls.hard, calls.reset, calls.used, calls.remaining) == (Decimal(1000), True, "month", 0, 1000)
    assert (calls.period_start, calls.reset_at) == (D(2030, 1, 15), D(2030, 2, 15))
    assert calls.source == "plan:pro" and calls.unit == "call"
    assert got["sso"].value is True and got["max-projects"].value == 10 and got["region"].value == "eu"
    assert sub.status == "active"


def test_nothing_before_the_start_or_without_a_subscription(shop):
    shop.add_subscription("acme", "pro", start="2030-01-15")
    assert shop.entitlements("acme", at="2030-01-14") == []
    assert shop.entitlements("globex", at="2030-02-01") == []
    assert shop.entitlement("globex", "api-calls", at="2030-02-01") is None


def test_stacking_two_subscriptions_adds_metered_allowances(shop):
    shop.add_subscription("acme", "pro", start="2030-01-15")
    shop.add_subscription("acme", "addon", start="2030-01-20")
    calls = by_feature(shop.entitlements("acme", at="2030-02-01"))["api-calls"]
    assert calls.limit == Decimal(1500)
    assert calls.hard is True  # every source is hard
    assert calls.source == "plan:pro+plan:addon"
    # the oldest live subscription that grants the feature anchors the period
    assert (calls.period_start, calls.reset_at) == (D(2030, 1, 15), D(2030, 2, 15))


def test_stacked_allowance_is_hard_only_if_every_source_is_hard(shop):
    shop.add_subscription("acme", "pro", start="2030-01-15")
    shop.add_subscription("acme", "soft", start="2030-01-16")
    calls = by_feature(shop.entitlements("acme", at="2030-02-01"))["api-calls"]
    assert (calls.limit, calls.hard) == (Decimal(1200), False)


def test_unlimited_wins_when_stacked(shop):
    shop.add_subscription("acme", "pro", start="2030-01-15")
    shop.add_subscription("acme", "free", start="2030-01-16")
    calls = by_feature(shop.entitlements("acme", at="2030-02-01"))["api-calls"]
    assert calls.limit is None and calls.unlimited and calls.hard is False and calls.remaining is None


def test_boolean_any_config_number_largest_config_text_newest(shop):
    shop.add_subscription("acme", "pro", start="2030-01-15")  # sso on, 10 projects, eu
    shop.add_subscription("acme", "addon", start="2030-01-20")  # sso off, 25 projects, us
    got = by_feature(shop.entitlements("acme", at="2030-02-01"))
    assert got["sso"].value is True and got["sso"].source == "plan:pro"
    assert got["max-projects"].value == 25 and got["max-projects"].source == "plan:addon"
    assert got["region"].value == "us" and got["region"].source == "plan:addon"


def test_config_text_comes_from_the_newest_subscription_even_if_created_first(shop):
    shop.add_subscription("acme", "addon", start="2030-02-01")  # created first, starts later: newer
    shop.add_subscription("acme", "pro", start="2030-01-15")
    assert by_feature(shop.entitlements("acme", at="2030-02-10"))["region"].value == "us"


def test_subscription_adjustments_win_over_the_plan(shop):
    sub = shop.add_subscription("acme", "pro", start="2030-01-15",
                                features={"api-calls": "20000", "max-projects": "3", "sso": False})
    got = by_feature(shop.entitlements("acme", at="2030-02-01"))
    assert got["api-calls"].limit == Decimal(20000) and got["api-calls"].hard is True
    assert got["api-calls"].source == f"sub:{sub.id}"
    assert got["max-projects"].value == 3 and got["sso"].value is False
    assert got["region"].source == "plan:pro"  # not adjusted


def test_without_removes_a_plan_feature_from_that_subscription_only(shop):
    first = shop.add_subscription("acme", "pro", start="2030-01-15", without=["sso", "api-calls"])
    shop.add_subscription("globex", "pro", start="2030-01-15")
    acme = by_feature(shop.entitlements("acme", at="2030-02-01"))
    assert "sso" not in acme and "api-calls" not in acme and "region" in acme
    assert not shop.check("acme", "sso", at="2030-02-01").allowed
    assert shop.check("globex", "sso", at="2030-02-01").allowed  # the plan is untouched
    # a second subscription of the same plan grants what the first one left out
    shop.add_subscription("acme", "pro", start="2030-01-20", another=True)
    acme = by_feature(shop.entitlements("acme", at="2030-02-01"))
    assert acme["api-calls"].limit == Decimal(1000) and acme["sso"].value is True
    assert [a.feature for a in shop.subscription(first.id).adjustments] == ["api-calls", "sso"]


def test_an_override_beats_every_subscription(shop):
    shop.add_subscription("acme", "pro", start="2030-01-15", another=True)
    shop.add_subscription("acme", "addon", start="2030-01-20")
    shop.set_override("acme", "api-calls", "5000", note="launch week")
    shop.set_override("acme", "region", "ap")
    got = by_feature(shop.entitlements("acme", at="2030-02-01"))
    assert got["api-calls"].limit == Decimal(5000) and got["api-calls"].source == "override"
    assert got["api-calls"].hard is True  # kept from the plans when the override does not say
    assert got["api-calls"].period_start == D(2030, 1, 15)  # the subscription's anniversary stays
    assert got["region"].value == "ap" and got["region"].source == "override"


def test_an_override_can_set_the_limit_kind(shop):
    shop.add_subscription("acme", "pro", start="2030-01-15")
    shop.set_override("acme", "api-calls", "5000", hard=False)
    assert by_feature(shop.entitlements("acme", at="2030-02-01"))["api-calls"].hard is False


def test_an_expired_override_no_longer_applies(shop):
    shop.add_subscription("acme", "pro", start="2030-01-15")
    shop.set_override("acme", "api-calls", "5000", expires="2098-01-01")
    assert by_feature(shop.entitlements("acme", at="2097-12-31T23:59:59Z"))["api-calls"].limit == Decimal(5000)
    after = by_feature(shop.entitlements("acme", at="2098-01-01"))["api-calls"]
    assert after.limit == Decimal(1000) and after.source == "plan:pro"
    assert [o.expired for o in shop.overrides("acme", at="2098-01-02")] == [True]


def test_a_boolean_false_override_removes_access(shop):
    shop.add_subscription("acme", "pro", start="2030-01-15")
    shop.set_override("acme", "sso", False)
    sso = by_feature(shop.entitlements("acme", at="2030-02-01"))["sso"]
    assert sso.value is False and sso.source == "override"
    result = shop.check("acme", "sso", at="2030-02-01")
    assert not result.allowed and result.source == "override" and "turned off" in result.reason


def test_an_override_grants_a_feature_no_plan_grants_with_calendar_periods(shop):
    shop.set_override("globex", "api-calls", "300")
    shop.set_override("globex", "sso", "true")
    got = by_feature(shop.entitlements("globex", at="2030-03-20T10:00:00Z"))
    calls = got["api-calls"]
    assert (calls.limit, calls.hard, calls.reset, calls.source) == (Decimal(300), False, "month", "override")
    assert (calls.period_start, calls.reset_at) == (D(2030, 3, 1), D(2030, 4, 1))  # calendar month, UTC
    assert got["sso"].value is True


def test_an_override_only_feature_follows_the_customers_subscription_anniversary(shop):
    tg = shop
    tg.create_feature("Tokens", type="metered", identifier="tokens")
    tg.add_subscription("acme", "pro", start="2030-01-15")
    tg.set_override("acme", "tokens", "100")
    tokens = by_feature(tg.entitlements("acme", at="2030-03-20"))["tokens"]
    assert (tokens.period_start, tokens.reset_at) == (D(2030, 3, 15), D(2030, 4, 15))


def test_usage_counts_only_the_current_anniversary_period(shop):
    shop.add_subscription("acme", "soft", start="2030-01-15")
    record(shop, "acme", "api-calls", "40", D(2030, 2, 14, 23, 59))  # previous period
    record(shop, "acme", "api-calls", "2.5", D(2030, 2, 15))  # first moment of the period
    record(shop, "acme", "api-calls", "10", D(2030, 3, 1))
    record(shop, "acme", "api-calls", "7", D(2030, 3, 15))  # next period
    calls = by_feature(shop.entitlements("acme", at="2030-03-01"))["api-calls"]
    assert (calls.period_start, calls.reset_at) == (D(2030, 2, 15), D(2030, 3, 15))
    assert calls.used == Decimal("12.5") and calls.remaining == Decimal("187.5")
    assert by_feature(shop.entitlements("acme", at="2030-02-01"))["api-calls"].used == Decimal(40)


def test_usage_past_a_soft_limit_is_reported_as_overage(shop):
    shop.add_subscription("acme", "soft", start="2030-01-15")
    record(shop, "acme", "api-calls", "250", D(2030, 1, 20))
    calls = shop.entitlement("acme", "api-calls", at="2030-01-21")
    assert (calls.used, calls.remaining, calls.overage) == (Decimal(250), Decimal(0), Decimal(50))
    assert calls.to_dict()["overage"] == "50"


def test_reset_cadence_follows_the_anniversary(shop):
    tg = shop
    tg.create_feature("Emails", type="metered", identifier="emails")
    tg.create_plan("mail", product="ai", feature_values=["emails=10"], resets=["emails=day"])
    tg.add_subscription("acme", "mail", start="2030-01-15T09:00:00Z")
    record(tg, "acme", "emails", "3", D(2030, 1, 20, 8, 59))
    record(tg, "acme", "emails", "4", D(2030, 1, 20, 9, 0))
    emails = tg.entitlement("acme", "emails", at="2030-01-20T12:00:00Z")
    assert (emails.period_start, emails.reset_at, emails.used) == (D(2030, 1, 20, 9), D(2030, 1, 21, 9), Decimal(4))


def test_a_plan_change_keeps_the_periods_usage_and_uses_the_new_limits(shop):
    sub = shop.add_subscription("acme", "pro", start="2030-01-15")
    record(shop, "acme", "api-calls", "300", D(2030, 1, 20))
    assert shop.entitlement("acme", "api-calls", at="2030-01-21").remaining == Decimal(700)
    moved = shop.edit_subscription(sub.id, plan="soft")
    assert moved.plan == "soft" and moved.start == D(2030, 1, 15)
    calls = shop.entitlement("acme", "api-calls", at="2030-01-21")
    assert (calls.limit, calls.used, calls.hard, calls.overage) == (Decimal(200), Decimal(300), False, Decimal(100))
    assert calls.period_start == D(2030, 1, 15)


def test_canceled_subscriptions_stop_granting_and_past_moments_still_see_them(shop):
    sub = shop.add_subscription("acme", "pro", start="2030-01-15")
    shop.cancel_subscription(sub.id)
    assert shop.entitlements("acme", at="2030-02-01") == []
    assert shop.subscription(sub.id).status == "canceled"


def test_cancel_at_period_end_keeps_access_until_then(shop, tg):
    from tollgate.clock import utcnow

    sub = shop.add_subscription("acme", "pro")
    canceled = shop.cancel_subscription(sub.id, at_period_end=True)
    end = canceled.current_period_end
    assert canceled.cancel_at == end and canceled.status == "active" and canceled.cancel_at_period_end
    assert shop.entitlement("acme", "sso").value is True
    assert shop.entitlements("acme", at=end) == []
    assert shop.subscription(sub.id, at=end).status == "canceled"
    assert end > utcnow()


def test_archived_customer_has_no_entitlements_and_every_check_is_denied(shop):
    shop.set_override("acme", "sso", "true")
    shop.archive_customer("acme")
    assert shop.entitlements("acme") == []
    result = shop.check("acme", "sso")
    assert not result.allowed and "archived" in result.reason


def test_unknown_customer_or_feature_raise_not_found(shop):
    with pytest.raises(NotFound):
        shop.entitlements("ghost")
    with pytest.raises(NotFound):
        shop.check("ghost", "sso")
    with pytest.raises(NotFound):
        shop.check("acme", "no-such-feature")


def test_entitlement_json_shape(shop):
    shop.add_subscription("acme", "pro", start="2030-01-15")
    data = by_feature(shop.entitlements("acme", at="2030-02-01"))["api-calls"].to_dict()
    for key in ("feature", "type", "value", "limit", "used", "remaining", "reset_at", "hard", "source"):
        assert key in data
    assert data["limit"] == "1000" and data["used"] == "0" and data["remaining"] == "1000"
    assert data["reset_at"] == "2030-02-15T00:00:00Z" and data["hard"] is True and data["value"] is None
    sso = by_feature(shop.entitlements("acme", at="2030-02-01"))["sso"].to_dict()
    assert sso["value"] is True and sso["limit"] is None and sso["used"] is None
