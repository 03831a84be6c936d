"""Invoice previews through the real path: a catalog imported from TOML, subscriptions through the
subscriptions API, usage through `report_usage`, and `tollgate invoice preview ... --json`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from tollgate.clock import utcnow

D = Decimal

FEATURES = """
[features.ai-tokens]
name = "AI tokens"
type = "metered"
unit = "token"

[features.api-calls]
name = "API calls"
type = "metered"
unit = "call"

[features.images]
name = "Images"
type = "metered"
unit = "image"

[features.emails]
name = "Emails"
type = "metered"

[features.gb-hours]
name = "GB-hours"
type = "metered"
unit = "GB-hour"

[features.sso]
name = "SSO"
type = "boolean"
"""

CHARGES = {
    "flat": 'model = "flat"\nunit_price = "0.01"',
    "package": 'model = "package"\npackage_size = 100\npackage_price = "10.00"',
    "tiered": 'model = "tiered"\ntiers = [ { up_to = 1000, unit_price = "0.10" }, { up_to = 5000, unit_price = "0.05" }, '
              '{ unit_price = "0.01" } ]',
    "volume": 'model = "volume"\ntiers = [ { up_to = 100000, unit_price = "0.01" }, { unit_price = "0.007" } ]',
    "stair-step": 'model = "stair-step"\ntiers = [ { up_to = 10000, flat_price = "50.00" }, '
                  '{ up_to = 50000, flat_price = "150.00" } ]',
}


def write_catalog(tmp_path: Path, plans: str, name: str = "catalog.toml") -> Path:
    path = tmp_path / name
    path.write_text(f'version = 1\n\n[products.ai]\nname = "AI"\n{FEATURES}\n{plans}', encoding="utf-8")
    return path


def plan_toml(
    identifier: str,
    *,
    prices: str = '{ interval = "month", currency = "USD", amount = "49.00" }',
    charges: list[tuple[str, str, str]] = (),
    trial_days: int | None = None,
    entitlements: str | None = None,
) -> str:
    """A plan table; `charges` are (feature, currency, body) for [[plans.X.usage_charges]]."""
    features = sorted({feature for feature, _, _ in charges})
    grants = entitlements or "\n".join(f'{feature} = {{ limit = "unlimited" }}' for feature in features)
    text = f'[plans.{identifier}]\nproduct = "ai"\nname = "{identifier}"\nprices = [ {prices} ]\n'
    if trial_days:
        text += f"trial_days = {trial_days}\n"
    text += f"\n[plans.{identifier}.entitlements]\n{grants}\n"
    for feature, currency, body in charges:
        text += f'\n[[plans.{identifier}.usage_charges]]\nfeature = "{feature}"\ncurrency = "{currency}"\n{body}\n'
    return text + "\n"


def setup_catalog(tg, tmp_path: Path, *plans: str) -> None:
    tg.import_catalog(write_catalog(tmp_path, "".join(plans)))


def subscribe(tg, customer: str, plan: str, **options) -> str:
    """A subscription through the real API; returns its id."""
    try:
        tg.customer(customer)
    except Exception:
        tg.add_customer(customer.title(), identifier=customer)
    return tg.add_subscription(customer, plan, **options).to_dict()["id"]


def report(tg, customer: str, feature: str, quantity, at: str) -> None:
    """One usage event through `Tollgate.report_usage` (or, where that API is not there, the usage store
    it writes through: the same table, the same idempotent insert)."""
    if hasattr(tg, "report_usage"):
        tg.report_usage(customer, feature, quantity, at=at)
        return
    from tollgate import identifiers
    from tollgate.clock import parse_moment
    from tollgate.customers import get_customer
    from tollgate.entitlements import lookup_feature
    from tollgate.money import parse_decimal, to_micros
    from tollgate.usage.store import insert_event

    with tg.db.write() as session:
        customer_id = get_customer(session, customer).id
        insert_event(session, key=identifiers.public_id("use", 20), customer_id=customer_id,
                     feature_id=lookup_feature(session, feature).id,
                     quantity_micros=to_micros(parse_decimal(quantity)), occurred_at=parse_moment(at),
                     recorded_at=utcnow())


def preview(cli, customer: str, *args: str) -> dict:
    result = cli("invoice", "preview", customer, *args, "--json")
    assert result.exit_code == 0, result
    assert result.stderr == ""
    return result.json()


def usage_lines(data: dict, feature: str | None = None) -> list[dict]:
    return [line for line in data["lines"] if line["kind"] == "usage" and feature in (None, line["feature"])]


def base_lines(data: dict) -> list[dict]:
    return [line for line in data["lines"] if line["kind"] == "base"]


# -- the worked examples of the spec, through the whole path -------------------------------------------


@pytest.mark.parametrize(
    ("model", "feature", "quantity", "expected", "tiers"),
    [
        ("flat", "api-calls", 15000, "150.00", []),
        ("package", "images", 205, "30.00", []),
        ("tiered", "ai-tokens", 3500, "225.00", [("0", "1000", "1000", "0.10", "100.00"),
                                                 ("1000", "5000", "2500", "0.05", "125.00")]),
        ("volume", "api-calls", 120000, "840.00", [("100000", None, "120000", "0.007", "840.00")]),
        ("stair-step", "emails", 12000, "150.00", [("10000", "50000", "12000", "150.00", "150.00")]),
    ],
)
def test_worked_examples_of_the_spec(cli, tg, tmp_path, model, feature, quantity, expected, tiers):
    setup_catalog(tg, tmp_path, plan_toml("pro", charges=[(feature, "USD", CHARGES[model])]))
    sub = subscribe(tg, "acme", "pro", start="2026-03-01")
    report(tg, "acme", feature, quantity, "2026-03-10T12:00:00Z")
    data = preview(cli, "acme", "--period", "2026-03")

    assert data["customer"] == "acme"
    assert (data["period"], data["at"]) == ("2026-03", None)
    assert (data["period_start"], data["period_end"]) == ("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")
    [base] = base_lines(data)
    assert (base["subscription"], base["plan"], base["feature"], base["amount"], base["currency"]) == (
        sub, "pro", None, "49.00", "USD")
    [line] = usage_lines(data)
    assert line["subscription"] == sub and line["plan"] == "pro" and line["feature"] == feature
    assert (line["quantity"], line["included"], line["billable"]) == (str(quantity), "0", str(quantity))
    assert (line["currency"], line["amount"], line["model"]) == ("USD", expected, model)
    assert [(t["from"], t["up_to"], t["quantity"], t["unit_price"] or t["flat_price"], t["amount"])
            for t in line["tiers"]] == tiers
    assert data["totals"] == {"USD": str(D("49.00") + D(expected))}
    if model == "package":
        assert (line["packages"], line["package_size"], line["package_price"]) == (3, 100, "10.00")


def test_tier_boundaries_exactly_at_the_edges(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml("pro", charges=[("ai-tokens", "USD", CHARGES["tiered"])]))
    subscribe(tg, "edge-1000", "pro", start="2026-03-01")
    subscribe(tg, "edge-1001", "pro", start="2026-03-01")
    subscribe(tg, "edge-5000", "pro", start="2026-03-01")
    subscribe(tg, "edge-5001", "pro", start="2026-03-01")
    for customer, quantity in (("edge-1000", 1000), ("edge-1001", 1001), ("edge-5000", 5000), ("edge-5001", 5001)):
        report(tg, customer, "ai-tokens", quantity, "2026-03-05")

    at_1000 = usage_lines(preview(cli, "edge-1000", "--period", "2026-03"))[0]
    assert at_1000["amount"] == "100.00"
    assert [(t["quantity"], t["amount"]) for t in at_1000["tiers"]] == [("1000", "100.00")]

    at_1001 = usage_lines(preview(cli, "edge-1001", "--period", "2026-03"))[0]
    assert at_1001["amount"] == "100.05"
    assert [(t["from"], t["quantity"], t["amount"]) for t in at_1001["tiers"]] == [
        ("0", "1000", "100.00"), ("1000", "1", "0.05")]

    at_5000 = usage_lines(preview(cli, "edge-5000", "--period", "2026-03"))[0]
    assert at_5000["amount"] == "300.00" and len(at_5000["tiers"]) == 2
    at_5001 = usage_lines(preview(cli, "edge-5001", "--period", "2026-03"))[0]
    assert at_5001["amount"] == "300.01"
    assert at_5001["tiers"][-1] == {"from": "5000", "up_to": None, "quantity": "1", "unit_price": "0.01",
                                    "flat_price": None, "amount": "0.01"}


def test_zero_usage_is_a_zero_line(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml("pro", charges=[("ai-tokens", "USD", CHARGES["tiered"]),
                                                          ("emails", "USD", CHARGES["stair-step"])]))
    subscribe(tg, "acme", "pro", start="2026-03-01")
    data = preview(cli, "acme", "--period", "2026-03")
    lines = usage_lines(data)
    assert [(line["feature"], line["quantity"], line["billable"], line["amount"], line["tiers"]) for line in lines] == [
        ("ai-tokens", "0", "0", "0.00", []), ("emails", "0", "0", "0.00", [])]
    assert data["totals"] == {"USD": "49.00"}


def test_an_allowance_larger_than_the_usage_bills_nothing(cli, tg, tmp_path):
    body = CHARGES["flat"] + "\nincluded = 20000"
    setup_catalog(tg, tmp_path, plan_toml("pro", charges=[("api-calls", "USD", body)]))
    subscribe(tg, "acme", "pro", start="2026-03-01")
    report(tg, "acme", "api-calls", 15000, "2026-03-02")
    [line] = usage_lines(preview(cli, "acme", "--period", "2026-03"))
    assert (line["quantity"], line["included"], line["billable"], line["amount"]) == ("15000", "20000", "0", "0.00")

    report(tg, "acme", "api-calls", 5001, "2026-03-03")  # one past the allowance
    [line] = usage_lines(preview(cli, "acme", "--period", "2026-03"))
    assert (line["quantity"], line["billable"], line["amount"]) == ("20001", "1", "0.01")


def test_a_jpy_plan_has_no_minor_digits_and_rounds_half_even(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml(
        "jp", prices='{ interval = "month", currency = "JPY", amount = "4900" }',
        charges=[("api-calls", "JPY", 'model = "flat"\nunit_price = "0.5"')]))
    subscribe(tg, "tanaka", "jp", start="2026-03-01")
    subscribe(tg, "sato", "jp", start="2026-03-01")
    report(tg, "tanaka", "api-calls", 5, "2026-03-02")  # 2.5 yen -> 2 (half to even)
    report(tg, "sato", "api-calls", 7, "2026-03-02")  # 3.5 yen -> 4
    tanaka = preview(cli, "tanaka", "--period", "2026-03")
    assert [line["amount"] for line in tanaka["lines"]] == ["4900", "2"]
    assert usage_lines(tanaka)[0]["exact_amount"] == "2.5"
    assert tanaka["totals"] == {"JPY": "4902"}
    sato = preview(cli, "sato", "--period", "2026-03")
    assert [line["amount"] for line in sato["lines"]] == ["4900", "4"]
    assert sato["totals"] == {"JPY": "4904"}


def test_fractional_quantities(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml("cloud", charges=[("gb-hours", "USD", 'model = "flat"\nunit_price = "0.05"')]))
    subscribe(tg, "acme", "cloud", start="2026-03-01")
    report(tg, "acme", "gb-hours", "1.25", "2026-03-02")
    report(tg, "acme", "gb-hours", "1.25", "2026-03-03")
    [line] = usage_lines(preview(cli, "acme", "--period", "2026-03"))
    # 2.5 GB-hours x 0.05 = 0.125 exactly, rounded half-even once, at the line total
    assert (line["quantity"], line["exact_amount"], line["amount"]) == ("2.5", "0.125", "0.12")


def test_very_large_quantities_stay_exact(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml("big", charges=[
        ("api-calls", "USD", 'model = "flat"\nunit_price = "0.000001"'),
        ("ai-tokens", "USD", CHARGES["tiered"]),
    ]))
    subscribe(tg, "acme", "big", start="2026-03-01")
    report(tg, "acme", "api-calls", 10**12, "2026-03-02")
    report(tg, "acme", "api-calls", "0.000001", "2026-03-03")
    report(tg, "acme", "ai-tokens", 10**12, "2026-03-02")
    data = preview(cli, "acme", "--period", "2026-03")
    calls, tokens = usage_lines(data, "api-calls")[0], usage_lines(data, "ai-tokens")[0]
    assert (calls["quantity"], calls["amount"]) == ("1000000000000.000001", "1000000.00")
    assert calls["exact_amount"] == "1000000.000000000001"
    # 100 + 200 + (10**12 - 5000) x 0.01
    assert tokens["amount"] == "10000000250.00"
    assert data["totals"] == {"USD": "10001000299.00"}


# -- periods -----------------------------------------------------------------------------------------


def test_period_follows_the_anniversary(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml("pro", charges=[("api-calls", "USD", CHARGES["flat"])]))
    subscribe(tg, "acme", "pro", start="2026-01-15T10:30:00Z")
    report(tg, "acme", "api-calls", 100, "2026-03-15T10:29:59Z")  # the February period
    report(tg, "acme", "api-calls", 1000, "2026-03-15T10:30:00Z")  # the first moment of March's
    report(tg, "acme", "api-calls", 10000, "2026-04-15T10:29:59Z")  # its last second
    report(tg, "acme", "api-calls", 7, "2026-04-15T10:30:00Z")  # April's

    march = preview(cli, "acme", "--period", "2026-03")
    assert (march["period_start"], march["period_end"]) == ("2026-03-15T10:30:00Z", "2026-04-15T10:30:00Z")
    assert usage_lines(march)[0]["quantity"] == "11000"
    assert preview(cli, "acme", "--at", "2026-04-01") == {**march, "period": None, "at": "2026-04-01T00:00:00Z"}
    assert usage_lines(preview(cli, "acme", "--period", "2026-02"))[0]["quantity"] == "100"
    assert usage_lines(preview(cli, "acme", "--at", "2026-04-15T10:30:00Z"))[0]["quantity"] == "7"
    assert preview(cli, "acme", "--period", "2025-12")["lines"] == []


def test_a_month_can_hold_two_28_day_periods(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml(
        "four", prices='{ interval = "28d", currency = "USD", amount = "10.00" }',
        charges=[("api-calls", "USD", CHARGES["flat"])]))
    subscribe(tg, "acme", "four", start="2026-03-01")
    report(tg, "acme", "api-calls", 100, "2026-03-05")
    report(tg, "acme", "api-calls", 300, "2026-03-30")
    data = preview(cli, "acme", "--period", "2026-03")
    assert [(line["kind"], line["period_start"][:10], line["period_end"][:10], line["amount"]) for line in data["lines"]] == [
        ("base", "2026-03-01", "2026-03-29", "10.00"),
        ("usage", "2026-03-01", "2026-03-29", "1.00"),
        ("base", "2026-03-29", "2026-04-26", "10.00"),
        ("usage", "2026-03-29", "2026-04-26", "3.00"),
    ]
    assert data["totals"] == {"USD": "24.00"}


def test_a_yearly_subscription_is_billed_in_its_anniversary_month(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml("annual", prices='{ interval = "year", currency = "EUR", amount = "470.00" }'))
    subscribe(tg, "acme", "annual", start="2025-06-10")
    assert preview(cli, "acme", "--period", "2026-06")["totals"] == {"EUR": "470.00"}
    assert preview(cli, "acme", "--period", "2026-05")["lines"] == []
    at = preview(cli, "acme", "--at", "2026-01-01")
    assert (at["period_start"], at["period_end"], at["totals"]) == (
        "2025-06-10T00:00:00Z", "2026-06-10T00:00:00Z", {"EUR": "470.00"})


def test_default_is_the_current_period(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml("pro"))
    subscribe(tg, "acme", "pro")  # starts now
    data = preview(cli, "acme")
    assert data["period"] is None and data["at"] is not None
    assert data["totals"] == {"USD": "49.00"}
    [base] = base_lines(data)
    moment = datetime.fromisoformat(data["at"][:-1])
    assert datetime.fromisoformat(base["period_start"][:-1]) <= moment < datetime.fromisoformat(base["period_end"][:-1])


def test_a_one_time_purchase_is_charged_in_the_month_it_happened(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml(
        "lifetime", prices='{ interval = "once", currency = "USD", amount = "99.00" }',
        charges=[("api-calls", "USD", CHARGES["flat"])]))
    subscribe(tg, "acme", "lifetime", start="2026-03-20")
    report(tg, "acme", "api-calls", 500, "2026-03-25")
    report(tg, "acme", "api-calls", 800, "2026-04-02")
    march = preview(cli, "acme", "--period", "2026-03")
    assert [(line["kind"], line["amount"], line["period_start"][:10], line["period_end"][:10])
            for line in march["lines"]] == [("base", "99.00", "2026-03-20", "2026-04-01"),
                                            ("usage", "5.00", "2026-03-20", "2026-04-01")]
    april = preview(cli, "acme", "--period", "2026-04")
    assert [(line["kind"], line["amount"]) for line in april["lines"]] == [("usage", "8.00")]
    assert preview(cli, "acme", "--at", "2026-04-30")["totals"] == {"USD": "8.00"}
    assert preview(cli, "acme", "--period", "2026-02")["lines"] == []


def test_a_free_plan_has_no_base_line_but_its_usage_charges_bill(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml("payg", prices="", charges=[("api-calls", "USD", CHARGES["flat"])]))
    subscribe(tg, "acme", "payg", start="2026-03-01")
    report(tg, "acme", "api-calls", 250, "2026-03-02")
    data = preview(cli, "acme", "--period", "2026-03")
    assert [(line["kind"], line["amount"]) for line in data["lines"]] == [("usage", "2.50")]
    assert data["totals"] == {"USD": "2.50"}


# -- trials, proration, cancellations ------------------------------------------------------------------


def test_a_trial_is_not_charged(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml("pro", charges=[("api-calls", "USD", CHARGES["flat"])], trial_days=60))
    sub = subscribe(tg, "acme", "pro", start="2026-03-01")
    report(tg, "acme", "api-calls", 1000, "2026-03-10")
    data = preview(cli, "acme", "--period", "2026-03")
    [base] = base_lines(data)
    assert (base["amount"], base["billable"], base["price"]) == ("0.00", "0", "49.00")
    assert "trial" in base["note"]
    [usage] = usage_lines(data)
    assert (usage["quantity"], usage["amount"]) == ("0", "0.00")
    assert data["totals"] == {"USD": "0.00"}
    assert tg.subscription(sub).to_dict()["trial_end"] == "2026-04-30T00:00:00Z"


def test_a_trial_ending_mid_period_prorates_the_fee_and_frees_the_usage_before_it(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml("pro", prices='{ interval = "month", currency = "USD", amount = "30.00" }',
                                          charges=[("api-calls", "USD", CHARGES["flat"])]))
    subscribe(tg, "acme", "pro", start="2026-04-01", trial_end="2026-04-11")
    report(tg, "acme", "api-calls", 1000, "2026-04-10T23:59:59Z")  # in the trial: free
    report(tg, "acme", "api-calls", 300, "2026-04-11T00:00:00Z")
    data = preview(cli, "acme", "--period", "2026-04")
    [base] = base_lines(data)
    # 20 of the period's 30 days are charged: 30.00 x 2/3
    assert (base["amount"], base["proration"], base["charged_from"]) == ("20.00", "2/3", "2026-04-11T00:00:00Z")
    [usage] = usage_lines(data)
    assert (usage["quantity"], usage["amount"]) == ("300", "3.00")
    assert data["totals"] == {"USD": "23.00"}
    may = preview(cli, "acme", "--period", "2026-05")
    assert base_lines(may)[0]["amount"] == "30.00" and base_lines(may)[0]["proration"] is None


def test_proration_rounds_half_even_once_at_the_line_total(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml("pro"))  # 49.00 a month
    subscribe(tg, "acme", "pro", start="2026-03-01", trial_end="2026-03-15")
    [base] = base_lines(preview(cli, "acme", "--period", "2026-03"))
    share = Fraction(17, 31)  # March 15 -> April 1 of March's 31 days
    assert base["proration"] == "17/31"
    assert D(base["amount"]) == D(round(4900 * share)) / 100 == D("26.87")

    subscribe(tg, "half", "pro", start="2026-02-01T00:00:00Z", trial_end="2026-02-15T00:00:00Z")
    tg.create_plan("pro-odd", product="ai", prices=[("month", "USD", "0.05")])
    subscribe(tg, "odd", "pro-odd", start="2026-02-01T00:00:00Z", trial_end="2026-02-15T00:00:00Z")
    # February 2026 has 28 days: half of 0.05 is 0.025 -> 0.02 (half to even, not up)
    assert base_lines(preview(cli, "odd", "--period", "2026-02"))[0]["amount"] == "0.02"
    assert base_lines(preview(cli, "half", "--period", "2026-02"))[0]["amount"] == "24.50"


def test_cancel_at_period_end_pays_the_whole_period(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml("pro"))
    start = utcnow().replace(microsecond=0) - timedelta(days=3)
    sub = subscribe(tg, "acme", "pro", start=start)
    view = tg.cancel_subscription(sub, at_period_end=True).to_dict()
    data = preview(cli, "acme")
    assert base_lines(data)[0]["amount"] == "49.00"
    after = preview(cli, "acme", "--at", view["cancel_at"])
    assert after["lines"] == []


def test_an_immediate_cancel_pays_up_to_the_cancellation(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml("pro", charges=[("api-calls", "USD", CHARGES["flat"])]))
    start = utcnow().replace(microsecond=0) - timedelta(days=3)
    sub = subscribe(tg, "acme", "pro", start=start)
    report(tg, "acme", "api-calls", 200, (start + timedelta(days=1)).isoformat())
    view = tg.cancel_subscription(sub).to_dict()
    data = preview(cli, "acme", "--at", start.isoformat())
    [base] = base_lines(data)
    period_start = datetime.fromisoformat(base["period_start"][:-1])
    period_end = datetime.fromisoformat(base["period_end"][:-1])
    cancel_at = datetime.fromisoformat(view["canceled_at"][:-1])
    share = Fraction((cancel_at - period_start) // timedelta(microseconds=1),
                     (period_end - period_start) // timedelta(microseconds=1))
    assert base["proration"] == f"{share.numerator}/{share.denominator}"
    assert base["amount"] == str((D(round(4900 * share)) / 100).quantize(D("0.01")))
    assert base["charged_to"] == view["canceled_at"]
    assert usage_lines(data)[0]["quantity"] == "200"


# -- attribution ---------------------------------------------------------------------------------------


def test_usage_is_charged_once_when_two_subscriptions_charge_the_feature(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path,
                  plan_toml("pro", charges=[("api-calls", "USD", CHARGES["flat"])]),
                  plan_toml("addon", prices='{ interval = "month", currency = "USD", amount = "5.00" }',
                            charges=[("api-calls", "USD", 'model = "flat"\nunit_price = "0.02"')]))
    older = subscribe(tg, "acme", "pro", start="2026-03-01")
    younger = subscribe(tg, "acme", "addon", start="2026-03-10")
    report(tg, "acme", "api-calls", 1000, "2026-03-05")
    report(tg, "acme", "api-calls", 2000, "2026-03-20")
    data = preview(cli, "acme", "--period", "2026-03")
    by_sub = {line["subscription"]: line for line in usage_lines(data)}
    assert by_sub[older]["quantity"] == "3000" and by_sub[older]["amount"] == "30.00"
    assert by_sub[younger]["quantity"] == "0" and by_sub[younger]["amount"] == "0.00"


def test_a_younger_subscription_charges_what_the_older_one_no_longer_covers(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path,
                  plan_toml("pro", charges=[("api-calls", "USD", CHARGES["flat"])]),
                  plan_toml("addon", prices='{ interval = "month", currency = "USD", amount = "5.00" }',
                            charges=[("api-calls", "USD", 'model = "flat"\nunit_price = "0.02"')]))
    older = subscribe(tg, "acme", "pro", start="2026-03-01", trial_end="2026-03-20")  # in trial until the 20th
    younger = subscribe(tg, "acme", "addon", start="2026-03-10")
    report(tg, "acme", "api-calls", 100, "2026-03-05")  # nobody charges it: free
    report(tg, "acme", "api-calls", 1000, "2026-03-15")  # the older one is in its trial: the younger charges
    report(tg, "acme", "api-calls", 2000, "2026-03-25")  # the older one charges it
    data = preview(cli, "acme", "--period", "2026-03")
    by_sub = {line["subscription"]: line for line in usage_lines(data)}
    assert by_sub[older]["quantity"] == "2000"
    assert by_sub[younger]["quantity"] == "1000" and by_sub[younger]["amount"] == "20.00"


def test_a_charge_in_another_currency_is_left_out_with_a_note(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml(
        "pro", prices='{ interval = "month", currency = "USD", amount = "49.00" }, '
                      '{ interval = "month", currency = "EUR", amount = "45.00" }',
        charges=[("api-calls", "USD", CHARGES["flat"]), ("ai-tokens", "USD", CHARGES["tiered"]),
                 ("ai-tokens", "EUR", 'model = "flat"\nunit_price = "0.02"')]))
    subscribe(tg, "acme", "pro", start="2026-03-01", currency="EUR")
    report(tg, "acme", "api-calls", 100, "2026-03-02")
    report(tg, "acme", "ai-tokens", 100, "2026-03-02")
    data = preview(cli, "acme", "--period", "2026-03")
    assert [(line["kind"], line["feature"], line["currency"], line["amount"]) for line in data["lines"]] == [
        ("base", None, "EUR", "45.00"), ("usage", "ai-tokens", "EUR", "2.00")]
    assert data["totals"] == {"EUR": "47.00"}
    [note] = data["notes"]
    assert "'api-calls' only in USD: not charged" in note
    table = cli("invoice", "preview", "acme", "--period", "2026-03")
    assert table.exit_code == 0 and "api-calls" not in table.stdout
    assert table.stderr.startswith("notice: ") and "'api-calls' only in USD: not charged" in table.stderr


def test_totals_are_per_currency(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path,
                  plan_toml("pro", charges=[("api-calls", "USD", CHARGES["flat"])]),
                  plan_toml("jp", prices='{ interval = "month", currency = "JPY", amount = "1000" }'))
    subscribe(tg, "acme", "pro", start="2026-03-01")
    subscribe(tg, "acme", "jp", start="2026-03-02")
    report(tg, "acme", "api-calls", 333, "2026-03-05")
    data = preview(cli, "acme", "--period", "2026-03")
    assert data["totals"] == {"JPY": "1000", "USD": "52.33"}


def test_a_feature_left_out_of_the_subscription_is_not_charged(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml("pro", charges=[("api-calls", "USD", CHARGES["flat"]),
                                                          ("ai-tokens", "USD", CHARGES["tiered"])]))
    subscribe(tg, "acme", "pro", start="2026-03-01", without=["ai-tokens"])
    data = preview(cli, "acme", "--period", "2026-03")
    assert [line["feature"] for line in usage_lines(data)] == ["api-calls"]


# -- the bill run ----------------------------------------------------------------------------------------


def bill_run_setup(tg, tmp_path) -> None:
    setup_catalog(tg, tmp_path,
                  plan_toml("pro", charges=[("ai-tokens", "USD", CHARGES["tiered"])]),
                  plan_toml("jp", prices='{ interval = "month", currency = "JPY", amount = "1000" }',
                            charges=[("api-calls", "JPY", 'model = "flat"\nunit_price = "0.5"')]))
    for i in range(7):
        customer = f"c{i}"
        subscribe(tg, customer, "pro" if i % 2 else "jp", start=f"2026-0{1 + i % 3}-{10 + i}")
        report(tg, customer, "ai-tokens" if i % 2 else "api-calls", 1000 * i + 1, f"2026-03-{20 + i}")
    tg.add_customer("No Subscription", identifier="nobody")


def test_bill_run_json_is_the_array_of_every_customers_preview(cli, tg, tmp_path):
    bill_run_setup(tg, tmp_path)
    result = cli("invoice", "preview", "--all", "--period", "2026-03", "--json")
    assert result.exit_code == 0, result
    run = result.json()
    assert [p["customer"] for p in run] == [f"c{i}" for i in range(7)]  # "nobody" has nothing to bill
    for found in run:
        assert found == preview(cli, found["customer"], "--period", "2026-03")


def test_bill_run_batches_give_the_same_previews(tg, tmp_path):
    bill_run_setup(tg, tmp_path)
    whole = [p.to_dict() for p in tg.invoice_previews(period="2026-03")]
    assert [p.to_dict() for p in tg.invoice_previews(period="2026-03", batch_size=2)] == whole
    assert [p.to_dict() for p in tg.invoice_previews(period="2026-03", batch_size=1)] == whole
    assert len(whole) == 7


def test_bill_run_csv_has_one_row_per_line(cli, tg, tmp_path):
    bill_run_setup(tg, tmp_path)
    result = cli("invoice", "preview", "--all", "--period", "2026-03", "--csv")
    assert result.exit_code == 0, result
    rows = result.stdout.splitlines()
    assert rows[0] == "customer,subscription,plan,kind,feature,period_start,period_end,quantity,included,billable,currency,amount"
    lines = [line for p in cli("invoice", "preview", "--all", "--period", "2026-03", "--json").json()
             for line in p["lines"]]
    assert len(rows) == 1 + len(lines)
    c6 = [row.split(",") for row in rows if row.startswith("c6,") and ",usage," in row]
    assert c6 and c6[0][7:] == ["6001", "0", "6001", "JPY", "3000"]  # 3000.5 yen -> 3000 (half to even)


def test_bill_run_summary_on_a_terminal_less_output(cli, tg, tmp_path):
    bill_run_setup(tg, tmp_path)
    result = cli("invoice", "preview", "--all", "--period", "2026-03")
    assert result.exit_code == 0, result
    out = result.stdout.splitlines()
    assert out[0].split() == ["customer", "lines", "totals"]
    assert out[-1].startswith("7 customer(s) to bill; total ")
    assert "JPY" in out[-1] and "USD" in out[-1]


def test_an_empty_bill_run_is_an_empty_array(cli, empty_db):
    result = cli("invoice", "preview", "--all", "--json")
    assert result.exit_code == 0, result
    assert result.json() == []


# -- the command -------------------------------------------------------------------------------------


def test_table_shows_lines_tiers_and_totals(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml("pro", charges=[("ai-tokens", "USD", CHARGES["tiered"])]))
    subscribe(tg, "acme", "pro", start="2026-03-01")
    report(tg, "acme", "ai-tokens", 3500, "2026-03-10")
    result = cli("invoice", "preview", "acme", "--period", "2026-03")
    assert result.exit_code == 0, result
    out = result.stdout
    assert "Invoice preview for acme" in out and "starting in 2026-03" in out
    assert "pro: base fee" in out and "49.00" in out
    assert "pro: ai-tokens (token)" in out and "225.00" in out
    assert "1,000 × 0.10" in out and "2,500 × 0.05" in out
    total = [line for line in out.splitlines() if line.startswith("total")]
    assert total and total[0].split()[-2:] == ["274.00", "USD"]


def test_nothing_to_bill_says_so(cli, tg):
    tg.add_customer("Acme", identifier="acme")
    result = cli("invoice", "preview", "acme", "--period", "2026-03")
    assert result.exit_code == 0, result
    assert "Nothing to bill" in result.stdout
    data = preview(cli, "acme", "--period", "2026-03")
    assert (data["lines"], data["totals"]) == ([], {})
    assert (data["period_start"], data["period_end"]) == ("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("acme", "--period", "2026-13"), "is not a month"),
        (("acme", "--period", "March"), "is not a month"),
        (("acme", "--period", "2026-03", "--at", "2026-03-01"), "not both"),
        (("acme", "--at", "last tuesday"), "is not a date"),
        (("nobody",), "No customer has the identifier 'nobody'"),
        ((), "or pass --all"),
        (("acme", "--all"), "or pass --all"),
        (("acme", "--json", "--csv"), "not both"),
    ],
)
def test_bad_input_is_exit_2_with_one_sentence(cli, tg, args, message):
    tg.add_customer("Acme", identifier="acme")
    result = cli("invoice", "preview", *args)
    assert result.exit_code == 2, result
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and message in result.stderr


def test_help_has_an_example(cli):
    result = cli("invoice", "preview", "--help")
    assert result.exit_code == 0
    assert "Example: tollgate invoice preview acme-inc --period 2026-03 --json" in result.stdout


def test_library_preview_returns_exact_decimals(tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml("pro", charges=[("ai-tokens", "USD", CHARGES["tiered"])]))
    subscribe(tg, "acme", "pro", start="2026-03-01")
    report(tg, "acme", "ai-tokens", 3500, "2026-03-10")
    found = tg.invoice_preview("acme", period="2026-03")
    assert found.totals == {"USD": D("274.00")}
    assert [line.amount for line in found.lines] == [D("49.00"), D("225.00")]
    assert all(isinstance(line.amount, Decimal) for line in found.lines)
    assert json.loads(json.dumps(found.to_dict()))["totals"] == {"USD": "274.00"}


def test_a_one_time_purchase_with_a_trial_is_charged_when_the_trial_ends(cli, tg, tmp_path):
    setup_catalog(tg, tmp_path, plan_toml(
        "lifetime", prices='{ interval = "once", currency = "USD", amount = "99.00" }', trial_days=14))
    subscribe(tg, "acme", "lifetime", start="2026-03-25")
    march = preview(cli, "acme", "--period", "2026-03")
    [base] = base_lines(march)
    assert (base["amount"], base["billable"]) == ("0.00", "0")
    assert "charged when the trial ends" in base["note"]
    april = preview(cli, "acme", "--period", "2026-04")
    assert [(line["kind"], line["amount"], line["charged_from"]) for line in april["lines"]] == [
        ("base", "99.00", "2026-04-08T00:00:00Z")]
    assert preview(cli, "acme", "--period", "2026-05")["lines"] == []


def test_the_direct_json_is_the_json_of_the_dict(tg, tmp_path):
    """InvoicePreview.to_json (the bill run's fast path) writes exactly json.dumps(to_dict())."""
    from tollgate.clock import utcnow as now
    from tollgate.models import Customer

    setup_catalog(tg, tmp_path,
                  plan_toml("pro", charges=[(f, "USD", CHARGES[m]) for m, f in
                                            (("tiered", "ai-tokens"), ("package", "images"), ("stair-step", "emails"),
                                             ("flat", "api-calls"))]),
                  plan_toml("eur", prices='{ interval = "month", currency = "EUR", amount = "9.99" }',
                            charges=[("ai-tokens", "USD", CHARGES["flat"])]))
    stamp = now()
    with tg.db.write() as session:  # a name the validators would refuse: the writer must still escape it
        session.add(Customer(identifier="odd", billing_id="cus_odd", name='Ünï "Quoted" \\ Ltd\u2028\x1b',
                             search_text="odd", created_at=stamp, updated_at=stamp))
    subscribe(tg, "odd", "pro", start="2026-03-03T10:20:30.5Z", trial_end="2026-03-09T00:00:00Z")
    subscribe(tg, "odd", "eur", start="2026-03-04")
    report(tg, "odd", "ai-tokens", "1234.000001", "2026-03-10")
    report(tg, "odd", "images", 101, "2026-03-10")
    report(tg, "odd", "emails", 60000, "2026-03-10")
    for selection in ({"period": "2026-03"}, {"at": "2026-03-05"}, {"period": "2026-01"}):
        found = tg.invoice_preview("odd", **selection)
        assert found.to_json() == json.dumps(found.to_dict(), ensure_ascii=False)
        assert json.loads(found.to_json())["name"] == 'Ünï "Quoted" \\ Ltd\u2028\x1b'
    assert found.lines == () and found.to_json() == json.dumps(found.to_dict(), ensure_ascii=False)
    assert len(tg.invoice_preview("odd", period="2026-03").notes) == 1


def test_a_bill_run_reads_usage_from_the_rollups_never_summing_the_events(tg, tmp_path):
    from sqlalchemy import event

    bill_run_setup(tg, tmp_path)  # 7 customers with a subscription, 2 features each at most
    for i in range(7):
        report(tg, f"c{i}", "ai-tokens" if i % 2 else "api-calls", 5, f"2026-03-{20 + i}T01:00:00Z")
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    engine = tg.db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        run = list(tg.invoice_previews(period="2026-03", batch_size=3))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(run) == 7
    assert any("usage_rollup" in s for s in statements)
    unbounded = [s for s in statements if "usage_event" in s and "usage_rollup.events <=" not in s
                 and "quantity_micros" in s and "INSERT" not in s]
    assert unbounded == []  # events are read only inside a small day bucket cut by a window's edge
    assert sum("tollgate_usage_window" in s and "SELECT" in s for s in statements) == 3 * 3  # 3 batches
