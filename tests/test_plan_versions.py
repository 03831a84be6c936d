"""Plan versions (plan_versions.py, plan_migrate.py), through the library on both engines: a change to
what a plan sells while anyone is on it makes a new version (subscribers keep their prices,
entitlements and charges; new subscriptions get the new ones), a plan nobody is on is edited in place,
name and description never version, and `migrate` moves subscriptions on purpose: its dry run shows
exactly what the move then does (entitlements and the invoice preview), `period-end` takes effect at
the boundary, and every move is journaled."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tollgate.clock import rfc3339, utcnow
from tollgate.errors import InvalidInput, NotFound, RuleViolation

CATALOG = """
version = 1

[products.app]
name = "App"

[features.api-calls]
name = "API calls"
type = "metered"

[features.seats]
name = "Seats"
type = "config"

[plans.pro]
product = "app"
name = "{name}"
trial_days = {trial}
prices = [{{ interval = "month", currency = "USD", amount = "{price}" }}]

[plans.pro.entitlements]
seats = {seats}
api-calls = {{ limit = 1000, reset = "month" }}

[[plans.pro.usage_charges]]
feature = "api-calls"
currency = "USD"
model = "flat"
included = 1000
unit_price = "{unit}"
"""
V1 = {"name": "Pro", "trial": 7, "price": "10.00", "seats": 5, "unit": "0.01"}
V2 = {"name": "Pro", "trial": 7, "price": "12.00", "seats": 10, "unit": "0.02"}


def catalog(tg, tmp_path, values: dict, *, dry_run: bool = False):
    path = tmp_path / f"catalog-{len(list(tmp_path.glob('catalog-*')))}.toml"
    path.write_text(CATALOG.format(**values))
    return tg.import_catalog(path, dry_run=dry_run)


def started(days: int) -> str:
    return rfc3339((utcnow() - timedelta(days=days)).replace(microsecond=0))


@pytest.fixture
def shop(tg, tmp_path):
    catalog(tg, tmp_path, V1)
    tg.add_customer("Acme", identifier="acme")
    tg.add_customer("Globex", identifier="globex")
    old = tg.add_subscription("acme", "pro", start=started(10), trial_days=0)
    tg.report_usage("acme", "api-calls", "1500", at=rfc3339(utcnow() - timedelta(minutes=5)), key="u1")
    return {"tg": tg, "tmp": tmp_path, "old": old.id}


def seats(tg, customer: str, at=None):
    return {e.feature: e for e in tg.entitlements(customer, at=at)}["seats"].value


def sub_total(tg, customer: str, sub: str, at=None) -> dict:
    from tollgate.invoices import subscription_totals

    return subscription_totals(tg.invoice_preview(customer, at=at), sub)


def test_subscribers_keep_what_they_bought_and_new_subscriptions_get_the_new_version(shop):
    tg, old = shop["tg"], shop["old"]
    before = sub_total(tg, "acme", old)
    result = catalog(tg, shop["tmp"], V2)
    assert result.new_versions == [{"plan": "pro", "version": 2, "subscribers_staying": 1}]
    assert seats(tg, "acme") == 5 and sub_total(tg, "acme", old) == before  # price 10.00 + 500 x 0.01
    assert before == {"USD": "15.00"}
    assert tg.subscription(old).to_dict()["plan_version"] == 1 and tg.subscription(old).to_dict()["amount"] == "10.00"
    new = tg.add_subscription("globex", "pro", trial_days=0)
    assert new.to_dict()["plan_version"] == 2 and new.to_dict()["amount"] == "12.00"
    assert seats(tg, "globex") == 10
    assert tg.plan("pro").version == 2 and tg.plan("pro").to_dict()["prices"][0]["amount"] == "12.00"
    assert tg.plan("pro", version=1).prices[0].amount == Decimal("10.00")
    assert [(v.version, v.changes, v.subscribers) for v in tg.versions("pro")] == [
        (1, (), 1), (2, ("prices", "entitlements", "usage_charges"), 1)]


def test_a_plan_charge_versions_too_and_a_plan_nobody_is_on_is_edited_in_place(shop):
    tg = shop["tg"]
    tg.create_plan("solo", product="app", prices=[("month", "USD", "5.00")], feature_values=["api-calls=10"])
    tg.set_usage_charge("solo", {"feature": "api-calls", "currency": "USD", "model": "flat", "unit_price": "0.50"})
    assert [v.version for v in tg.versions("solo")] == [1]  # nobody on it: in place
    assert tg.plan("solo").usage_charges[0].unit_price == Decimal("0.50")
    tg.set_usage_charge("pro", {"feature": "api-calls", "currency": "USD", "model": "flat", "unit_price": "0.05"})
    assert [v.version for v in tg.versions("pro")] == [1, 2]
    assert tg.plan("pro", version=1).to_dict()["usage_charges"][0]["unit_price"] == "0.01"
    assert sub_total(tg, "acme", shop["old"]) == {"USD": "15.00"}


def test_name_and_description_never_version_and_a_dry_run_writes_nothing(shop):
    tg = shop["tg"]
    assert catalog(tg, shop["tmp"], {**V1, "name": "Pro Plus"}).new_versions == []
    assert tg.plan("pro").name == "Pro Plus" and [v.version for v in tg.versions("pro")] == [1]
    planned = catalog(tg, shop["tmp"], V2, dry_run=True)
    assert planned.to_dict()["new_versions"] == [{"plan": "pro", "version": 2, "subscribers_staying": 1}]
    assert [v.version for v in tg.versions("pro")] == [1] and tg.plan("pro").prices[0].amount == Decimal("10.00")


def test_the_dry_run_equals_what_the_migration_then_does(shop):
    tg, old = shop["tg"], shop["old"]
    catalog(tg, shop["tmp"], V2)
    log_before = len(tg.journal())
    planned = tg.migrate("pro", to=2, dry_run=True)
    assert len(tg.journal()) == log_before and tg.subscription(old).to_dict()["plan_version"] == 1
    [move] = planned.moves
    assert (move.subscription, move.customer, move.from_version, move.to_version) == (old, "acme", 1, 2)
    assert (move.current_amount, move.new_amount, move.currency) == ("15.00", "22.00", "USD")
    assert [(c["feature"], c["from"]["value"], c["to"]["value"]) for c in move.entitlements] == [("seats", 5, 10)]
    done = tg.migrate("pro", to=2)
    assert [m.new_amount for m in done.moves] == ["22.00"]
    assert sub_total(tg, "acme", old) == {"USD": move.new_amount}
    after = {e.feature: e.to_dict() for e in tg.entitlements("acme")}
    for change in move.entitlements:
        assert {k: v for k, v in after[change["feature"]].items() if k in change["to"]} == change["to"]
    view = tg.subscription(old).to_dict()
    assert view["plan_version"] == 2 and view["amount"] == "12.00"
    [entry] = tg.journal(action="subscription.migrate")
    assert (entry.object_id, entry.customer, entry.details["from_version"], entry.details["to_version"]) == (
        old, "acme", 1, 2)
    assert tg.migrate("pro", to=2).moves == ()  # nobody left to move


def test_at_period_end_takes_effect_at_the_boundary(shop):
    tg, old = shop["tg"], shop["old"]
    catalog(tg, shop["tmp"], V2)
    result = tg.migrate("pro", to=2, at="period-end")
    boundary = result.moves[0].effective_at
    view = tg.subscription(old).to_dict()
    assert rfc3339(boundary) == view["current_period_end"] == view["next_version_at"]
    assert view["plan_version"] == 1 and view["next_version"] == 2 and view["amount"] == "10.00"
    just_before = boundary - timedelta(microseconds=1)
    assert seats(tg, "acme", at=just_before) == 5 and seats(tg, "acme", at=boundary) == 10
    at_boundary = tg.subscription(old, at=boundary).to_dict()
    assert (at_boundary["plan_version"], at_boundary["amount"], at_boundary["next_version"]) == (2, "12.00", None)
    assert sub_total(tg, "acme", old) == {"USD": "15.00"}  # this period: still version 1
    assert sub_total(tg, "acme", old, at=boundary) == {"USD": "12.00"}  # the next: version 2's price, no usage yet
    assert [(v.version, v.subscribers, v.scheduled) for v in tg.versions("pro")] == [(1, 1, 0), (2, 0, 1)]


def test_migrate_filters_and_refusals(shop):
    tg, old = shop["tg"], shop["old"]
    catalog(tg, shop["tmp"], V2)
    other = tg.add_subscription("globex", "pro", trial_days=0, another=True)
    catalog(tg, shop["tmp"], {**V2, "price": "14.00"})
    assert [v.version for v in tg.versions("pro")] == [1, 2, 3]
    assert [m.subscription for m in tg.migrate("pro", to=3, from_=2, dry_run=True).moves] == [other.id]
    assert [m.subscription for m in tg.migrate("pro", to=3, customers=["acme"], dry_run=True).moves] == [old]
    with pytest.raises(NotFound, match="no version 9"):
        tg.migrate("pro", to=9)
    with pytest.raises(NotFound):
        tg.migrate("pro", to=2, customers=["nobody"])
    with pytest.raises(NotFound):
        tg.migrate("nope", to=1)
    with pytest.raises(InvalidInput, match="--at"):
        tg.migrate("pro", to=3, at="tomorrow")
    tg.cancel_subscription(other.id)
    assert [m.subscription for m in tg.migrate("pro", to=3).moves] == [old]  # ended ones stay


def test_a_one_time_purchase_has_no_period_end_to_migrate_at(tg, tmp_path):
    catalog(tg, tmp_path, V1)
    tg.create_plan("lifetime", product="app", prices=[("once", "USD", "99.00")], feature_values=["api-calls=10"])
    tg.add_customer("Acme", identifier="acme")
    sub = tg.add_subscription("acme", "lifetime")
    tg.set_usage_charge("lifetime", {"feature": "api-calls", "currency": "USD", "model": "flat", "unit_price": "1"})
    with pytest.raises(RuleViolation, match="one-time purchase"):
        tg.migrate("lifetime", to=2, at="period-end")
    assert tg.subscription(sub.id).to_dict()["plan_version"] == 1 and tg.subscription(sub.id).to_dict()["next_version"] is None
    assert [m.to_version for m in tg.migrate("lifetime", to=2).moves] == [2]


def test_a_later_move_starts_from_a_scheduled_move_that_took_effect(shop):
    from tollgate import plan_migrate

    tg, old = shop["tg"], shop["old"]
    catalog(tg, shop["tmp"], V2)
    boundary = tg.migrate("pro", to=2, at="period-end").moves[0].effective_at
    assert catalog(tg, shop["tmp"], {**V2, "price": "14.00"}).new_versions[0]["version"] == 3  # v2 has a move to it
    later = boundary + timedelta(hours=1)
    with tg.db.write() as session:
        [move] = plan_migrate.migrate(session, plan="pro", to=3, at="period-end", now=later).moves
    assert (move.from_version, move.to_version) == (2, 3)
    view = tg.subscription(old, at=later).to_dict()
    assert (view["plan_version"], view["amount"], view["next_version"]) == (2, "12.00", 3)


def test_trial_and_license_policy_version_too(tg, tmp_path):
    from tollgate.catalog import LicensePolicy

    tg.create_product("Desk", identifier="desk")
    tg.create_feature("Export", type="boolean", identifier="export")
    tg.create_plan("app", product="desk", prices=[("month", "USD", "5.00")], trial_days=7,
                   feature_values=["export=true"], license=LicensePolicy(activation_limit=2))
    tg.add_customer("Acme", identifier="acme")
    old = tg.add_subscription("acme", "app")
    exported = tg.export_catalog()
    assert "trial_days = 7" in exported and "activation_limit = 2" in exported
    changed = tmp_path / "changed.toml"
    changed.write_text(exported.replace("trial_days = 7", "trial_days = 30").replace("activation_limit = 2",
                                                                                    "activation_limit = 5"))
    assert tg.import_catalog(changed).new_versions == [{"plan": "app", "version": 2, "subscribers_staying": 1}]
    assert tg.versions("app")[1].changes == ("trial_days", "license")
    tg.add_customer("Globex", identifier="globex")
    new = tg.add_subscription("globex", "app")
    assert (new.trial_end - new.start).days == 30 and (old.trial_end - old.start).days == 7
    keys = {lic.customer: lic.activation_limit for lic in tg.licenses()}
    assert keys == {"acme": 2, "globex": 5}
    assert tg.plan("app", version=1).license.activation_limit == 2
