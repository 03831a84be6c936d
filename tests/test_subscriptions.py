"""Subscriptions through the library: prices, trials, the status machine, cancel, plan changes,
adjustments, and the archive rule. Plans are built with the real catalog methods."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from tollgate.errors import InvalidInput, NotFound, RuleViolation

D = datetime


@pytest.fixture
def shop(tg):
    tg.create_product("AI Studio", identifier="ai")
    tg.create_feature("API calls", type="metered", identifier="api-calls")
    tg.create_feature("Single sign-on", type="boolean", identifier="sso")
    tg.create_feature("Max projects", type="config", identifier="max-projects")
    tg.create_plan("pro", product="ai", trial_days=14,
                   prices=[("month", "USD", "49.00"), ("year", "USD", "470.00"), ("month", "EUR", "45.00")],
                   feature_values=["api-calls=1000", "sso=true", "max-projects=10"], hard=["api-calls"])
    tg.create_plan("basic", product="ai", prices=[("month", "USD", "9.00")], feature_values=["api-calls=100"])
    tg.create_plan("free", product="ai", feature_values=["api-calls=50"])
    tg.create_plan("lifetime", product="ai", prices=[("once", "USD", "299.00")], feature_values=["sso=true"])
    tg.add_customer("Acme", identifier="acme")
    return tg


# -- prices ---------------------------------------------------------------------------------------------


def test_a_single_price_is_chosen(shop):
    sub = shop.add_subscription("acme", "basic")
    assert (sub.interval, sub.currency, sub.amount) == ("month", "USD", Decimal("9.00"))
    assert sub.id.startswith("sub_") and len(sub.id) > 10
    assert sub.to_dict()["amount"] == "9.00"


def test_several_prices_need_a_choice_and_the_error_lists_them(shop):
    with pytest.raises(InvalidInput) as caught:
        shop.add_subscription("acme", "pro")
    message = str(caught.value)
    assert "month USD 49.00" in message and "year USD 470.00" in message and "month EUR 45.00" in message
    with pytest.raises(InvalidInput):
        shop.add_subscription("acme", "pro", interval="month")  # USD and EUR both monthly
    assert shop.subscriptions() == []


def test_interval_and_currency_choose_a_price(shop):
    assert shop.add_subscription("acme", "pro", interval="year").amount == Decimal("470.00")
    eur = shop.add_subscription("acme", "pro", interval="month", currency="eur", another=True)
    assert (eur.currency, eur.amount) == ("EUR", Decimal("45.00"))


def test_a_price_the_plan_does_not_have_is_refused(shop):
    with pytest.raises(InvalidInput, match="no price for year EUR"):
        shop.add_subscription("acme", "pro", interval="year", currency="EUR", another=True)
    with pytest.raises(InvalidInput, match="billing interval"):
        shop.add_subscription("acme", "pro", interval="weekly", another=True)


def test_a_free_plan_needs_no_price_and_refuses_a_currency(shop):
    sub = shop.add_subscription("acme", "free", start="2030-01-15")
    assert (sub.interval, sub.currency, sub.amount) == (None, None, None)
    assert (sub.current_period_start, sub.current_period_end) == (D(2030, 1, 15), D(2030, 2, 15))  # monthly
    with pytest.raises(InvalidInput, match="free"):
        shop.add_subscription("acme", "free", currency="USD", another=True)
    assert shop.add_subscription("acme", "free", interval="year", another=True).interval == "year"


# -- trials and status by date -----------------------------------------------------------------------------


def test_the_trial_defaults_to_the_plans_and_ends_by_date(shop):
    sub = shop.add_subscription("acme", "pro", interval="year", start="2030-01-01")
    assert sub.trial_end == D(2030, 1, 15) and sub.status == "trialing"
    assert shop.subscription(sub.id, at="2030-01-14T23:59:59Z").status == "trialing"
    assert shop.subscription(sub.id, at="2030-01-15").status == "active"
    assert [s.id for s in shop.subscriptions(status="trialing", at="2030-01-10")] == [sub.id]
    assert [s.id for s in shop.subscriptions(status="active", at="2030-01-20")] == [sub.id]
    assert shop.subscriptions(status="trialing", at="2030-01-20") == []


def test_trial_days_and_trial_end_options(shop):
    assert shop.add_subscription("acme", "pro", interval="year", trial_days=0, another=True).trial_end is None
    sub = shop.add_subscription("acme", "pro", interval="year", start="2030-01-01", trial_days=3, another=True)
    assert sub.trial_end == D(2030, 1, 4)
    sub = shop.add_subscription("acme", "pro", interval="year", start="2030-01-01", trial_end="2030-02-01", another=True)
    assert sub.trial_end == D(2030, 2, 1)
    with pytest.raises(InvalidInput, match="not both"):
        shop.add_subscription("acme", "pro", interval="year", trial_days=3, trial_end="2030-02-01", another=True)
    with pytest.raises(InvalidInput, match="after the start"):
        shop.add_subscription("acme", "pro", interval="year", start="2030-01-01", trial_end="2029-12-01", another=True)


def test_a_plan_without_trial_starts_active(shop):
    sub = shop.add_subscription("acme", "basic")
    assert sub.status == "active" and sub.trial_end is None


def test_the_start_defaults_to_now_in_whole_seconds(shop):
    from tollgate.clock import utcnow

    sub = shop.add_subscription("acme", "basic")
    assert sub.start.microsecond == 0 and abs(utcnow() - sub.start) < timedelta(seconds=5)


def test_archived_customers_and_plans_get_no_new_subscriptions(shop):
    shop.archive_plan("basic")
    with pytest.raises(RuleViolation, match="archived"):
        shop.add_subscription("acme", "basic")
    shop.add_customer("Gone", identifier="gone")
    shop.archive_customer("gone")
    with pytest.raises(RuleViolation, match="archived"):
        shop.add_subscription("gone", "free")
    with pytest.raises(NotFound):
        shop.add_subscription("ghost", "free")
    with pytest.raises(NotFound):
        shop.add_subscription("acme", "no-plan")


# -- the status machine -------------------------------------------------------------------------------------


def test_ending_a_trial_early_makes_it_active_now(shop):
    sub = shop.add_subscription("acme", "pro", interval="year")
    from tollgate.clock import utcnow

    edited = shop.edit_subscription(sub.id, status="active")
    assert edited.status == "active" and edited.trial_end <= utcnow()
    assert edited.trial_end < sub.trial_end
    assert shop.subscription(sub.id, at=sub.start + timedelta(days=1)).status == "active"


@pytest.mark.parametrize("path, refused", [
    (["past_due", "active"], "trialing"),
    (["active"], "trialing"),
    (["canceled"], "active"),
    (["expired"], "past_due"),
])
def test_status_transitions(shop, path, refused):
    sub = shop.add_subscription("acme", "basic")
    for status in path:
        assert shop.edit_subscription(sub.id, status=status).status == status
    with pytest.raises(RuleViolation):
        shop.edit_subscription(sub.id, status=refused)


def test_past_due_keeps_access(shop):
    sub = shop.add_subscription("acme", "basic")
    shop.edit_subscription(sub.id, status="past_due")
    assert shop.check("acme", "api-calls").allowed


def test_expired_ends_access_like_cancel(shop):
    sub = shop.add_subscription("acme", "basic")
    ended = shop.edit_subscription(sub.id, status="expired")
    assert ended.status == "expired" and ended.canceled_at is not None
    assert shop.entitlements("acme") == []
    with pytest.raises(RuleViolation, match="can't change"):
        shop.edit_subscription(sub.id, features=["api-calls=5"])


def test_moving_the_trial_end(shop):
    sub = shop.add_subscription("acme", "pro", interval="year", start="2030-01-01")
    moved = shop.edit_subscription(sub.id, trial_end="2030-03-01")
    assert moved.trial_end == D(2030, 3, 1)
    assert shop.subscription(sub.id, at="2030-02-01").status == "trialing"
    paid = shop.add_subscription("acme", "basic")
    with pytest.raises(RuleViolation, match="not in a trial"):
        shop.edit_subscription(paid.id, trial_end="2031-01-01")


def test_nothing_to_change_is_bad_input(shop):
    sub = shop.add_subscription("acme", "basic")
    with pytest.raises(InvalidInput, match="Nothing to change"):
        shop.edit_subscription(sub.id)
    with pytest.raises(NotFound):
        shop.edit_subscription("sub_nope", status="active")


# -- cancel ----------------------------------------------------------------------------------------------------


def test_cancel_now(shop):
    sub = shop.add_subscription("acme", "basic")
    canceled = shop.cancel_subscription(sub.id)
    assert canceled.status == "canceled" and canceled.canceled_at and canceled.cancel_at == canceled.canceled_at
    with pytest.raises(RuleViolation, match="already canceled"):
        shop.cancel_subscription(sub.id)


def test_cancel_at_period_end_then_immediately(shop):
    sub = shop.add_subscription("acme", "basic")
    later = shop.cancel_subscription(sub.id, at_period_end=True)
    assert later.status == "active" and later.cancel_at == later.current_period_end
    with pytest.raises(RuleViolation, match="already set to end"):
        shop.cancel_subscription(sub.id, at_period_end=True)
    assert shop.cancel_subscription(sub.id).status == "canceled"


def test_a_one_time_purchase_never_ends_by_period(shop):
    sub = shop.add_subscription("acme", "lifetime", start="2030-01-01")
    assert sub.interval == "once" and sub.current_period_end is None
    assert shop.subscription(sub.id, at="2090-01-01").status == "active"
    assert shop.check("acme", "sso", at="2090-01-01").allowed
    with pytest.raises(RuleViolation, match="one-time purchase"):
        shop.cancel_subscription(sub.id, at_period_end=True)


def test_current_period_follows_the_anniversary(shop):
    sub = shop.add_subscription("acme", "basic", start="2030-01-31")
    view = shop.subscription(sub.id, at="2030-03-05")
    assert (view.current_period_start, view.current_period_end) == (D(2030, 2, 28), D(2030, 3, 31))


# -- plan changes and adjustments ----------------------------------------------------------------------------------


def test_plan_change_takes_the_new_plans_price_and_drops_adjustments_it_cannot_apply(shop):
    sub = shop.add_subscription("acme", "pro", interval="month", currency="USD",
                                features={"api-calls": "5000", "max-projects": "3"}, without=["sso"])
    moved = shop.edit_subscription(sub.id, plan="basic")
    assert (moved.plan, moved.interval, moved.currency, moved.amount) == ("basic", "month", "USD", Decimal("9.00"))
    assert [(a.feature, a.limit) for a in moved.adjustments] == [("api-calls", Decimal(5000))]
    entry = [e for e in shop.journal() if e.action == "subscription.update"][-1]
    assert entry.details["plan"] == ["pro", "basic"]
    assert sorted(entry.details["dropped_adjustments"]) == ["max-projects", "sso"]


def test_plan_change_to_a_plan_with_several_prices_needs_a_choice(shop):
    sub = shop.add_subscription("acme", "free")
    with pytest.raises(InvalidInput, match="say which one"):
        shop.edit_subscription(sub.id, plan="pro")
    moved = shop.edit_subscription(sub.id, plan="pro", interval="year")
    assert (moved.interval, moved.currency, moved.amount) == ("year", "USD", Decimal("470.00"))


def test_plan_change_to_an_archived_plan_is_refused(shop):
    sub = shop.add_subscription("acme", "basic")
    shop.archive_plan("free")
    with pytest.raises(RuleViolation, match="archived"):
        shop.edit_subscription(sub.id, plan="free")


def test_adjustments_must_name_features_the_plan_grants(shop):
    with pytest.raises(InvalidInput, match="does not grant 'sso'"):
        shop.add_subscription("acme", "basic", features=["sso=true"])
    with pytest.raises(InvalidInput, match="does not grant"):
        shop.add_subscription("acme", "basic", without=["sso"])
    with pytest.raises(InvalidInput, match="twice"):
        shop.add_subscription("acme", "basic", features=["api-calls=5"], without=["api-calls"])
    with pytest.raises(InvalidInput):
        shop.add_subscription("acme", "basic", features=["api-calls=lots"])
    with pytest.raises(InvalidInput, match="FEATURE=VALUE"):
        shop.add_subscription("acme", "basic", features=["api-calls"])
    assert shop.subscriptions() == []


def test_edit_adjustments_and_restore(shop):
    sub = shop.add_subscription("acme", "basic")
    shop.edit_subscription(sub.id, features=["api-calls=unlimited"])
    assert shop.entitlement("acme", "api-calls").unlimited
    shop.edit_subscription(sub.id, restore=["api-calls"])
    assert shop.entitlement("acme", "api-calls").limit == Decimal(100)
    assert shop.subscription(sub.id).adjustments == ()


def test_every_change_is_journaled(shop):
    sub = shop.add_subscription("acme", "basic")
    shop.edit_subscription(sub.id, status="past_due")
    shop.cancel_subscription(sub.id)
    actions = [e.action for e in shop.journal(customer="acme") if e.object_id == sub.id]
    assert actions == ["subscription.create", "subscription.update", "subscription.cancel"]


# -- the archive rule ------------------------------------------------------------------------------------------


def test_archive_refused_with_a_live_subscription_and_allowed_after_cancel(shop):
    sub = shop.add_subscription("acme", "basic")
    with pytest.raises(RuleViolation, match="live subscription"):
        shop.archive_customer("acme")
    shop.cancel_subscription(sub.id)
    assert shop.archive_customer("acme").status == "archived"


def test_archive_refused_for_a_scheduled_subscription(shop):
    shop.add_subscription("acme", "basic", start="2090-01-01")
    with pytest.raises(RuleViolation, match="live subscription"):
        shop.archive_customer("acme")


def test_archive_waits_for_a_cancellation_at_period_end(shop):
    from tollgate import customers

    sub = shop.add_subscription("acme", "basic")
    end = shop.cancel_subscription(sub.id, at_period_end=True).cancel_at
    with pytest.raises(RuleViolation):
        shop.archive_customer("acme")
    with shop.db.write() as session:
        archived = customers.archive_customer(session, identifier="acme", now=end)
    assert archived.status == "archived"
