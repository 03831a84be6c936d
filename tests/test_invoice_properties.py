"""Properties of invoice previews (hypothesis): no floats anywhere, exact figures with the currency's
minor digits, lines that add up to the subtotals, tiered totals that never fall as usage grows, and
proration that is the exact share rounded half-even once. Each example is a new customer in one
shared database, going through the real catalog import, subscriptions API and usage reporting."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_invoice import CHARGES, plan_toml, report, write_catalog
from tollgate.rating import charge_from_dict, rate

D = Decimal
FEATURE_OF = {"flat": "api-calls", "package": "images", "tiered": "ai-tokens", "stair-step": "emails"}
MONEY = {"USD": re.compile(r"^-?\d+\.\d{2}$"), "JPY": re.compile(r"^-?\d+$")}
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_ids = itertools.count()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One database for every example: a USD plan charging four features (one per model but volume,
    whose feature would clash), a JPY plan, and a tiered-only plan."""
    from tollgate import Tollgate

    folder = tmp_path_factory.mktemp("invoice-properties")
    tg = Tollgate(folder / "tollgate.db")
    usd = [(feature, "USD", CHARGES[model]) for model, feature in FEATURE_OF.items()]
    usd.append(("gb-hours", "USD", 'model = "volume"\nincluded = "1.5"\n'
                                   'tiers = [ { up_to = 100, unit_price = "0.0333" }, { unit_price = "0.0125" } ]'))
    plans = (plan_toml("usd", charges=usd)
             + plan_toml("jpy", prices='{ interval = "month", currency = "JPY", amount = "4900" }',
                         charges=[("api-calls", "JPY", 'model = "flat"\nunit_price = "0.37"'),
                                  ("ai-tokens", "JPY", 'model = "tiered"\ntiers = [ { up_to = 1000, unit_price = "1.5" }, '
                                                       '{ unit_price = "0.75" } ]')])
             + plan_toml("tiers", prices='{ interval = "month", currency = "USD", amount = "10.00" }',
                         charges=[("ai-tokens", "USD", CHARGES["tiered"])]))
    tg.import_catalog(write_catalog(folder, plans))
    yield tg
    tg.close()


def new_customer(tg, plan: str, **options) -> str:
    identifier = f"p{next(_ids)}"
    tg.add_customer(identifier, identifier=identifier)
    tg.add_subscription(identifier, plan, **options)
    return identifier


def no_float(text: str):
    raise AssertionError(f"a float in the JSON output: {text}")


def walk(value):
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


quantities = st.decimals(min_value=0, max_value=10**7, places=6, allow_nan=False, allow_infinity=False)
positive = st.decimals(min_value=D("0.000001"), max_value=10**7, places=6, allow_nan=False, allow_infinity=False)
events = st.lists(
    st.tuples(st.sampled_from(["api-calls", "images", "ai-tokens", "emails", "gb-hours"]), positive,
              st.integers(min_value=0, max_value=30 * 24 * 3600 - 1)),
    max_size=8,
)


@SETTINGS
@given(plan=st.sampled_from(["usd", "jpy"]), happened=events)
def test_figures_are_exact_strings_and_lines_add_up_to_the_subtotals(shared, plan, happened):
    tg = shared
    customer = new_customer(tg, plan, start="2026-04-01")
    expected: dict[str, Decimal] = {}
    for feature, quantity, second in happened:
        report(tg, customer, feature, quantity, (datetime(2026, 4, 1) + timedelta(seconds=second)).isoformat())
        expected[feature] = expected.get(feature, D(0)) + quantity
    found = tg.invoice_preview(customer, period="2026-04")
    data = json.loads(json.dumps(found.to_dict()), parse_float=no_float)
    assert json.loads(found.to_json(), parse_float=no_float) == data
    assert found.to_json() == json.dumps(found.to_dict(), ensure_ascii=False)

    assert not any(isinstance(v, float) for v in walk(data))
    assert not any(isinstance(getattr(line, f.name), float) for line in found.lines for f in dataclasses.fields(line))
    sums: dict[str, Decimal] = {}
    for line in data["lines"]:
        assert MONEY[line["currency"]].match(line["amount"]), line
        assert D(line["amount"]) == D(line["amount"]).quantize(D(1).scaleb(-2 if line["currency"] == "USD" else 0))
        sums[line["currency"]] = sums.get(line["currency"], D(0)) + D(line["amount"])
        if line["kind"] == "usage":
            assert D(line["quantity"]) == expected.get(line["feature"], 0)
            assert D(line["billable"]) == max(D(line["quantity"]) - D(line["included"]), D(0))
            assert D(line["amount"]) == D(line["exact_amount"]).quantize(D(line["amount"]), rounding=ROUND_HALF_EVEN)
            if line["tiers"]:
                assert sum(D(t["amount"]) for t in line["tiers"]) == D(line["exact_amount"])
    for currency, total in data["totals"].items():
        assert MONEY[currency].match(total)
        assert D(total) == sums[currency]
    assert set(data["totals"]) == set(sums)
    assert found.totals == sums


@SETTINGS
@given(a=quantities, b=quantities)
def test_a_tiered_total_never_falls_as_usage_grows(shared, a, b):
    tg = shared
    low, high = sorted((a, b))
    amounts = []
    for quantity in (low, high):
        customer = new_customer(tg, "tiers", start="2026-04-01")
        if quantity:  # an event is never zero; no event is zero usage
            report(tg, customer, "ai-tokens", quantity, "2026-04-02")
        [line] = [x for x in tg.invoice_preview(customer, period="2026-04").lines if x.kind == "usage"]
        assert line.quantity == quantity
        amounts.append(line.amount)
    assert amounts[0] <= amounts[1]
    # the reference: graduated tiers computed with fractions, rounded half-even once
    exact = Fraction(min(high, 1000)) / 10 + Fraction(max(min(high, 5000) - 1000, 0)) / 20 \
        + Fraction(max(high - 5000, 0)) / 100
    assert amounts[1] == D(round(exact * 100)) / 100


prices = st.decimals(min_value=D("0.001"), max_value=D("9.999"), places=3)
tier_tables = st.lists(st.tuples(st.integers(min_value=1, max_value=10**6), prices), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(table=tier_tables, last=prices, a=quantities, b=quantities, currency=st.sampled_from(["USD", "JPY", "KWD"]))
def test_rated_tiered_totals_are_monotonic_for_any_tier_table(table, last, a, b, currency):
    bounds = sorted({up_to for up_to, _ in table})
    tiers = [{"up_to": up_to, "unit_price": str(price)} for up_to, (_, price) in zip(bounds, table)]
    charge = charge_from_dict({"feature": "x", "currency": currency, "model": "tiered",
                               "tiers": [*tiers, {"unit_price": str(last)}]}, path="t")
    low, high = sorted((a, b))
    assert rate(charge, low).amount <= rate(charge, high).amount
    assert rate(charge, low).exact_amount <= rate(charge, high).exact_amount


@SETTINGS
@given(trial_seconds=st.integers(min_value=1, max_value=30 * 24 * 3600 - 1),
       plan=st.sampled_from(["usd", "jpy"]))
def test_proration_is_the_exact_share_rounded_half_even_once(shared, trial_seconds, plan):
    tg = shared
    start = datetime(2026, 4, 1)
    trial_end = start + timedelta(seconds=trial_seconds)
    customer = new_customer(tg, plan, start=start, trial_end=trial_end)
    [base] = [line for line in tg.invoice_preview(customer, period="2026-04").to_dict()["lines"] if line["kind"] == "base"]
    share = Fraction(30 * 24 * 3600 - trial_seconds, 30 * 24 * 3600)  # April has 30 days
    price_minor = 4900  # 49.00 USD and 4900 JPY alike
    digits = 2 if plan == "usd" else 0
    assert base["proration"] == f"{share.numerator}/{share.denominator}"
    assert D(base["amount"]) == D(round(price_minor * share)).scaleb(-digits)
    assert 0 <= D(base["amount"]) <= D(base["price"])
    assert MONEY["USD" if plan == "usd" else "JPY"].match(base["amount"])


anchors = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31))
cadences = st.sampled_from(["month", "year", "28d", "quarter", "half-year"])
months = st.tuples(st.integers(min_value=1995, max_value=2045), st.integers(min_value=1, max_value=12))


@settings(max_examples=500, deadline=None)
@given(anchor=anchors, cadence=cadences, month=months)
def test_periods_starting_in_a_month_are_the_anniversary_periods_that_start_there(anchor, cadence, month):
    from tollgate.invoice_periods import _periods_starting_in
    from tollgate.periods import anniversary_period

    year, number = month
    start = datetime(year, number, 1)
    end = datetime(year + number // 12, number % 12 + 1, 1)
    expected = []
    period = anniversary_period(anchor, cadence, max(start - timedelta(days=400), anchor))
    while period.start < end:
        if period.start >= start and period.start >= anchor:
            expected.append(period)
        period = anniversary_period(anchor, cadence, period.end)
    assert _periods_starting_in(anchor, cadence, start, end) == expected


numbers = st.decimals(min_value=-(10**12), max_value=10**12, places=12, allow_nan=False, allow_infinity=False)


@settings(max_examples=500, deadline=None)
@given(value=numbers | st.decimals(allow_nan=False, allow_infinity=False, places=3, max_value=10**6, min_value=-(10**6))
       .map(lambda d: d * 1000), currency=st.sampled_from(["USD", "JPY", "KWD", "CLF"]))
def test_the_fast_formatters_write_what_money_writes(value, currency):
    from tollgate.invoice_lines import _money, _number, _rate
    from tollgate.money import format_decimal, format_money, format_rate, minor_digits

    digits = minor_digits(currency)
    assert _number(value) == format_decimal(value)
    assert _money(value, digits) == format_money(value, currency)
    assert _money(value.normalize(), digits) == format_money(value, currency)
    assert _rate(value, digits) == format_rate(value, currency)


@settings(max_examples=500, deadline=None)
@given(micros=st.integers(min_value=-(2**63 - 1), max_value=2**63 - 1))
def test_quantities_from_sums_are_money_from_micros(micros):
    from tollgate.invoices import _quantity
    from tollgate.money import from_micros

    assert str(_quantity(micros)) == str(from_micros(micros))
