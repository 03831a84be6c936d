"""Rating usage under the five charge models, and the catalog shape of a usage charge."""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollgate.catalog_dump import _key, _value  # here: its first import (the models) broke a deadline
from tollgate.errors import InvalidInput
from tollgate.money import CURRENCY_EXPONENTS, EXACT, from_minor, quantize_money
from tollgate.rating import (
    MODELS,
    RatedCharge,
    Tier,
    TierLine,
    UsageCharge,
    charge_from_dict,
    charge_to_dict,
    rate,
)

D = Decimal
PATH = "plans.pro.usage_charges[0]"

FLAT = {"model": "flat", "unit_price": "0.01"}
PACKAGE = {"model": "package", "package_size": 100, "package_price": "10.00"}
TIERED = {
    "model": "tiered",
    "tiers": [{"up_to": 1000, "unit_price": "0.10"}, {"up_to": 5000, "unit_price": "0.05"}, {"unit_price": "0.01"}],
}
VOLUME = {"model": "volume", "tiers": [{"up_to": 100000, "unit_price": "0.01"}, {"unit_price": "0.007"}]}
STAIR_STEP = {
    "model": "stair-step",
    "tiers": [{"up_to": 10000, "flat_price": "50.00"}, {"up_to": 50000, "flat_price": "150.00"}],
}


def charge(fields: dict, *, currency: str = "USD", **extra: object) -> UsageCharge:
    return charge_from_dict({"feature": "ai-tokens", "currency": currency, **fields, **extra}, path=PATH)


def amount(fields: dict, quantity: Decimal | int, **extra: object) -> str:
    """The rated amount as text, so the number of digits is checked too."""
    return str(rate(charge(fields, **extra), quantity).amount)


# --- the worked examples of the spec -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "quantity", "expected"),
    [
        (FLAT, 15000, "150.00"),
        (PACKAGE, 205, "30.00"),
        (TIERED, 3500, "225.00"),
        (VOLUME, 120000, "840.00"),
        (STAIR_STEP, 12000, "150.00"),
    ],
    ids=MODELS,
)
def test_worked_examples(fields: dict, quantity: int, expected: str) -> None:
    assert amount(fields, quantity) == expected


def test_the_catalog_snippet_of_the_spec_rates_as_documented() -> None:
    catalog = tomllib.loads(
        """
        [[plans.pro.usage_charges]]
        feature = "ai-tokens"
        currency = "USD"
        model = "tiered"
        included = 0
        tiers = [ { up_to = 1000, unit_price = "0.10" }, { up_to = 5000, unit_price = "0.05" }, { unit_price = "0.01" } ]
        """
    )
    parsed = charge_from_dict(catalog["plans"]["pro"]["usage_charges"][0], path=PATH)
    assert parsed.tiers == (Tier(D(1000), D("0.10")), Tier(D(5000), D("0.05")), Tier(None, D("0.01")))
    assert rate(parsed, D(3500)).amount == D("225.00")


def test_tiered_breakdown() -> None:
    rated = rate(charge(TIERED), 3500)
    assert rated.tiers == (
        TierLine(start=D(0), up_to=D(1000), quantity=D(1000), unit_price=D("0.10"), flat_price=None, amount=D(100)),
        TierLine(start=D(1000), up_to=D(5000), quantity=D(2500), unit_price=D("0.05"), flat_price=None, amount=D(125)),
    )
    assert rated.exact_amount == D(225)


def test_volume_breakdown_prices_every_unit_at_the_tier_reached() -> None:
    (line,) = rate(charge(VOLUME), 120000).tiers
    assert (line.start, line.up_to, line.quantity, line.unit_price, line.amount) == (
        D(100000), None, D(120000), D("0.007"), D(840)
    )


def test_stair_step_breakdown() -> None:
    (line,) = rate(charge(STAIR_STEP), 12000).tiers
    assert (line.start, line.up_to, line.quantity, line.flat_price, line.amount) == (
        D(10000), D(50000), D(12000), D(150), D(150)
    )


def test_package_counts_partial_packages_as_whole() -> None:
    rated = rate(charge(PACKAGE), 205)
    assert rated.packages == 3
    assert rated.tiers == ()


def test_flat_has_no_breakdown() -> None:
    rated = rate(charge(FLAT), 15000)
    assert (rated.tiers, rated.packages, rated.billable) == ((), None, D(15000))


# --- edges ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "quantity", "expected"),
    [
        (TIERED, 0, "0.00"), (TIERED, 1, "0.10"), (TIERED, 999, "99.90"), (TIERED, 1000, "100.00"),
        (TIERED, 1001, "100.05"), (TIERED, 5000, "300.00"), (TIERED, 5001, "300.01"),
        (VOLUME, 0, "0.00"), (VOLUME, 100000, "1000.00"), (VOLUME, 100001, "700.01"),
        (STAIR_STEP, 0, "0.00"), (STAIR_STEP, 1, "50.00"), (STAIR_STEP, 10000, "50.00"),
        (STAIR_STEP, 10001, "150.00"), (STAIR_STEP, 50000, "150.00"),
        (STAIR_STEP, 60000, "150.00"),  # above the last step: the last step's price
        (PACKAGE, 0, "0.00"), (PACKAGE, 1, "10.00"), (PACKAGE, 100, "10.00"), (PACKAGE, 200, "20.00"),
        (PACKAGE, 201, "30.00"),
        (FLAT, 0, "0.00"), (FLAT, 1, "0.01"),
    ],
)  # fmt: skip
def test_boundaries(fields: dict, quantity: int, expected: str) -> None:
    assert amount(fields, quantity) == expected


@pytest.mark.parametrize("fields", [TIERED, VOLUME, STAIR_STEP, PACKAGE, FLAT], ids=MODELS)
def test_zero_usage_costs_nothing_and_has_no_breakdown(fields: dict) -> None:
    rated = rate(charge(fields), 0)
    assert (rated.amount, rated.exact_amount, rated.tiers) == (D(0), D(0), ())


def test_stair_step_may_end_with_an_open_step() -> None:
    fields = {"model": "stair-step", "tiers": [{"up_to": 10000, "flat_price": "50.00"}, {"flat_price": "500.00"}]}
    assert amount(fields, 10000) == "50.00"
    assert amount(fields, 10**9) == "500.00"


def test_included_allowance_is_free() -> None:
    rated = rate(charge(TIERED, included=500), 3500)
    assert (rated.quantity, rated.included, rated.billable) == (D(3500), D(500), D(3000))
    assert rated.amount == D("200.00")  # 1000 x 0.10 + 2000 x 0.05


def test_included_allowance_larger_than_usage() -> None:
    rated = rate(charge(FLAT, included=1000), 100)
    assert (rated.billable, rated.amount) == (D(0), D(0))
    assert rate(charge(STAIR_STEP, included="10.5"), D("10.5")).amount == D(0)


def test_yen_rounds_half_even_to_whole_yen() -> None:
    half_yen = {"model": "flat", "unit_price": "0.5"}
    assert amount(half_yen, 5, currency="JPY") == "2"  # 2.5 -> 2
    assert amount(half_yen, 7, currency="JPY") == "4"  # 3.5 -> 4
    assert amount(half_yen, 9, currency="JPY") == "4"  # 4.5 -> 4


def test_yen_package_price_has_no_minor_unit() -> None:
    assert amount({"model": "package", "package_size": 10, "package_price": "500"}, 11, currency="JPY") == "1000"
    with pytest.raises(InvalidInput, match="JPY"):
        charge({"model": "package", "package_size": 10, "package_price": "500.5"}, currency="JPY")


def test_kuwaiti_dinar_has_three_digits() -> None:
    fils = {"model": "flat", "unit_price": "0.0015"}
    assert amount(fils, 3, currency="KWD") == "0.004"  # 0.0045 -> 0.004
    assert amount(fils, 5, currency="KWD") == "0.008"  # 0.0075 -> 0.008
    assert amount(fils, 1000, currency="KWD") == "1.500"


def test_fractional_quantities() -> None:
    assert amount({"model": "flat", "unit_price": "0.10"}, D("2.5")) == "0.25"
    assert amount(TIERED, D("1000.5")) == "100.02"  # 100.025 -> 100.02
    assert amount(VOLUME, D("2.5")) == "0.02"  # 0.025 -> 0.02
    assert amount(STAIR_STEP, D("10000.5")) == "150.00"
    rated = rate(charge(PACKAGE), D("2.5"))
    assert (rated.packages, rated.amount) == (1, D(10))


def test_a_trillion_units_are_exact() -> None:
    trillion = 10**12
    assert amount({"model": "flat", "unit_price": "0.007"}, trillion) == "7000000000.00"
    assert amount(TIERED, trillion) == "10000000250.00"  # 100 + 200 + (10**12 - 5000) x 0.01
    assert amount(VOLUME, trillion) == "7000000000.00"
    assert amount(PACKAGE, trillion) == "100000000000.00"
    assert amount(FLAT, trillion + D("0.000001")) == "10000000000.00"  # 10000000000.00000001


def test_products_wider_than_the_default_decimal_context_are_exact() -> None:
    quantity = D("999999999999.999999")
    price = "999999999999.999999999999"
    rated = rate(charge({"model": "flat", "unit_price": price}), quantity)
    assert Fraction(rated.exact_amount) == Fraction(price) * Fraction(str(quantity))
    # (10**12 - 10**-12) x (10**12 - 10**-6) = 10**24 - 10**6 - 1 + 10**-18
    assert rated.exact_amount == D("999999999999999998999999.000000000000000001")
    assert rated.amount == D("999999999999999998999999.00")


def test_tier_flat_fees() -> None:
    fee_tiers = {
        "model": "tiered",
        "tiers": [{"up_to": 1000, "unit_price": "0.10"}, {"unit_price": "0.05", "flat_price": "5.00"}],
    }
    assert amount(fee_tiers, 1000) == "100.00"  # the second tier is not entered
    assert amount(fee_tiers, 1001) == "105.05"
    fee_volume = {
        "model": "volume",
        "tiers": [{"up_to": 100, "unit_price": "1.00", "flat_price": "10.00"}, {"unit_price": "0.50", "flat_price": "20.00"}],
    }
    assert amount(fee_volume, 0) == "0.00"
    assert amount(fee_volume, 100) == "110.00"
    assert amount(fee_volume, 150) == "95.00"


def test_rate_refuses_negative_quantities_and_floats() -> None:
    with pytest.raises(InvalidInput, match="zero or more"):
        rate(charge(FLAT), -1)
    with pytest.raises(InvalidInput):
        rate(charge(FLAT), D("NaN"))
    with pytest.raises(TypeError):
        rate(charge(FLAT), 1.5)  # type: ignore[arg-type]


# --- validation of the catalog shape -------------------------------------------------------------


def with_tiers(model: str, *tiers: dict) -> dict:
    return {"model": model, "tiers": list(tiers)}


@pytest.mark.parametrize(
    ("fields", "where", "says"),
    [
        ({"model": "flat", "unit_price": 0.01}, "unit_price", 'strings in quotes, like "10.00"'),
        ({"model": "flat", "unit_price": 1}, "unit_price", "strings in quotes"),
        ({"model": "flat", "unit_price": "-0.01"}, "unit_price", "negative"),
        ({"model": "flat", "unit_price": "1e-2"}, "unit_price", "not a decimal number"),
        ({"model": "flat", "unit_price": "0.0000000000001"}, "unit_price", "12 decimal places"),
        ({"model": "graduated", "unit_price": "0.01"}, "model", "flat, package, tiered, volume, stair-step"),
        ({"unit_price": "0.01"}, "model", "missing"),
        ({"model": ["flat"], "unit_price": "0.01"}, "model", "not text"),
        ({"model": "flat"}, "unit_price", "missing"),
        ({"model": "flat", "unit_price": "0.01", "tiers": []}, "tiers", "does not apply to the flat model"),
        ({**PACKAGE, "unit_price": "0.01"}, "unit_price", "does not apply to the package model"),
        ({**FLAT, "discount": "5%"}, "discount", "unknown key"),
        ({**FLAT, "included": -1}, "included", "negative"),
        ({**FLAT, "included": 1.5}, "included", "floating-point"),
        ({**FLAT, "included": "0.0000001"}, "included", "6 decimal places"),
        ({**FLAT, "currency": "XYZ"}, "currency", "ISO 4217"),
        ({**FLAT, "feature": "AI Tokens"}, "feature", "feature identifier"),
        ({**FLAT, "feature": 5}, "feature", "feature identifier"),
        ({"model": "package", "package_price": "10.00"}, "package_size", "missing"),
        ({**PACKAGE, "package_size": 0}, "package_size", "greater than zero"),
        ({**PACKAGE, "package_size": -100}, "package_size", "greater than zero"),
        ({**PACKAGE, "package_size": 2.5}, "package_size", "whole number"),
        ({**PACKAGE, "package_size": "100"}, "package_size", "whole number"),
        ({**PACKAGE, "package_size": True}, "package_size", "whole number"),
        ({**PACKAGE, "package_price": "10.001"}, "package_price", "USD allows"),
        ({**PACKAGE, "package_price": 10}, "package_price", "strings in quotes"),
        ({"model": "tiered"}, "tiers", "missing"),
        ({"model": "tiered", "tiers": []}, "tiers", "non-empty list"),
        ({"model": "tiered", "tiers": "0.10"}, "tiers", "non-empty list"),
        ({"model": "tiered", "tiers": ["0.10"]}, "tiers[0]", "must be a table"),
        (with_tiers("tiered", {"up_to": 1000, "unit_price": "0.1"}, {"up_to": 1000, "unit_price": "0.05"},
                    {"unit_price": "0.01"}), "tiers[1].up_to", "greater than the previous tier's (1000)"),
        (with_tiers("volume", {"up_to": 5000, "unit_price": "0.1"}, {"up_to": 1000, "unit_price": "0.05"},
                    {"unit_price": "0.01"}), "tiers[1].up_to", "greater than the previous"),
        (with_tiers("tiered", {"unit_price": "0.1"}, {"unit_price": "0.05"}), "tiers[0].up_to", "only the last"),
        (with_tiers("tiered", {"up_to": 1000, "unit_price": "0.1"}), "tiers[0].up_to", "every quantity has a price"),
        (with_tiers("volume", {"up_to": 0, "unit_price": "0.1"}, {"unit_price": "0.05"}), "tiers[0].up_to",
         "greater than zero"),
        (with_tiers("tiered", {"up_to": 1000.5, "unit_price": "0.1"}, {"unit_price": "0.05"}), "tiers[0].up_to",
         "floating-point"),
        (with_tiers("tiered", {"up_to": 1000}, {"unit_price": "0.05"}), "tiers[0].unit_price", "missing"),
        (with_tiers("tiered", {"up_to": 9, "unit_price": "0.1", "price": "1"}, {"unit_price": "0.05"}),
         "tiers[0].price", "unknown key"),
        (with_tiers("stair-step", {"up_to": 10000, "unit_price": "0.1"}), "tiers[0].unit_price", "unknown key"),
        (with_tiers("stair-step", {"up_to": 10000}), "tiers[0].flat_price", "missing"),
        (with_tiers("stair-step", {"flat_price": "50.001"}), "tiers[0].flat_price", "USD allows"),
        (with_tiers("stair-step", {"flat_price": 50}), "tiers[0].flat_price", "strings in quotes"),
    ],
)  # fmt: skip
def test_invalid_charges_name_the_toml_path(fields: dict, where: str, says: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        charge(fields)
    message = str(caught.value)
    assert message.startswith(f"{PATH}.{where}: "), message
    assert says in message, message


@pytest.mark.parametrize("missing", ["feature", "currency"])
def test_feature_and_currency_are_required(missing: str) -> None:
    data = {"feature": "ai-tokens", "currency": "USD", **FLAT}
    del data[missing]
    with pytest.raises(InvalidInput, match="missing") as caught:
        charge_from_dict(data, path=PATH)
    assert str(caught.value).startswith(f"{PATH}.{missing}: ")


@pytest.mark.parametrize("data", [[], "flat", None, {1: "flat"}])
def test_a_charge_must_be_a_table_with_text_keys(data: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        charge_from_dict(data, path=PATH)
    assert str(caught.value).startswith(f"{PATH}: ")


def test_currency_is_normalised_to_upper_case() -> None:
    assert charge(FLAT, currency="usd").currency == "USD"


# --- properties ----------------------------------------------------------------------------------

CURRENCIES = ["USD", "JPY", "KWD", "CLF", "EUR"]
quantities = st.decimals(min_value=0, max_value=10**9, places=6)
rates = st.builds(lambda n, places: D(n).scaleb(-places), st.integers(0, 10**7), st.integers(0, 12))


@st.composite
def charges(draw: st.DrawFn, models: tuple[str, ...] = MODELS) -> UsageCharge:
    """Valid usage charges, built directly (not through charge_from_dict)."""
    currency = draw(st.sampled_from(CURRENCIES))
    money = st.integers(0, 10**9).map(lambda minor: from_minor(minor, currency))
    model = draw(st.sampled_from(models))
    common = {"feature": "ai-tokens", "currency": currency, "model": model, "included": draw(quantities)}
    if model == "flat":
        return UsageCharge(**common, unit_price=draw(rates))
    if model == "package":
        return UsageCharge(**common, package_size=draw(st.integers(1, 10**6)), package_price=draw(money))
    bounds = sorted(draw(st.lists(st.decimals(min_value="0.000001", max_value=10**9, places=6), unique=True,
                                  max_size=5)))
    if model == "stair-step":
        tiers = [Tier(bound, flat_price=draw(money)) for bound in bounds]
        if not tiers or draw(st.booleans()):
            tiers.append(Tier(None, flat_price=draw(money)))
    else:
        fees = st.none() | money
        tiers = [Tier(bound, draw(rates), draw(fees)) for bound in [*bounds, None]]
    return UsageCharge(**common, tiers=tuple(tiers))


@st.composite
def small_integer_tiered(draw: st.DrawFn) -> UsageCharge:
    """Tiered charges with integer bounds and cent prices, small enough to price unit by unit."""
    bounds = sorted(draw(st.lists(st.integers(1, 60), unique=True, max_size=4)))
    price = st.integers(0, 300).map(lambda cents: from_minor(cents, "USD"))
    fee = st.none() | price
    tiers = tuple(Tier(None if bound is None else D(bound), draw(price), draw(fee)) for bound in [*bounds, None])
    return UsageCharge(feature="ai-tokens", currency="USD", model="tiered", tiers=tiers)


def walk(value: object):
    """Every leaf value inside (nested) dataclasses, tuples, lists and dicts."""
    if dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            yield from walk(getattr(value, field.name))
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from walk(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    else:
        yield value


@given(charges(), quantities)
def test_results_are_exact_decimals(usage_charge: UsageCharge, quantity: Decimal) -> None:
    rated = rate(usage_charge, quantity)
    leaves = list(walk(rated))
    assert not any(isinstance(leaf, float) for leaf in leaves)
    for number in (rated.quantity, rated.included, rated.billable, rated.exact_amount, rated.amount):
        assert type(number) is Decimal
    for line in rated.tiers:
        assert all(type(number) is Decimal for number in (line.start, line.quantity, line.amount))
    assert rated.amount == quantize_money(rated.exact_amount, usage_charge.currency)
    assert -rated.amount.as_tuple().exponent == CURRENCY_EXPONENTS[usage_charge.currency]


@given(charges(models=("tiered", "volume", "stair-step")), quantities)
def test_tier_lines_add_up_to_the_exact_amount(usage_charge: UsageCharge, quantity: Decimal) -> None:
    rated = rate(usage_charge, quantity)
    with localcontext(EXACT):  # added up exactly: Python's default context keeps 28 digits, and a
        # tier line of 11 whole digits and tiny unit prices needs more (hypothesis found one)
        assert sum((line.amount for line in rated.tiers), D(0)) == rated.exact_amount
        assert sum((line.quantity for line in rated.tiers), D(0)) == rated.billable


def test_tier_lines_of_more_than_28_digits_add_up_exactly() -> None:
    """The example hypothesis found: the exact amount has 33 significant digits."""
    charge = UsageCharge(feature="ai-tokens", currency="USD", model="tiered", included=D("0"), unit_price=None,
                         package_size=None, package_price=None,
                         tiers=(Tier(up_to=D("5325586.046460"), unit_price=D(2014).scaleb(-12), flat_price=None),
                                Tier(up_to=None, unit_price=D("6727"), flat_price=None)))
    rated = rate(charge, D("20191053.565412"))
    assert rated.exact_amount == D("100000000000.000829730297570440")
    with localcontext(EXACT):
        assert sum((line.amount for line in rated.tiers), D(0)) == rated.exact_amount


@given(charges(models=("tiered",)), quantities, quantities)
def test_tiered_is_monotonic(usage_charge: UsageCharge, first: Decimal, second: Decimal) -> None:
    low, high = sorted((first, second))
    assert rate(usage_charge, low).exact_amount <= rate(usage_charge, high).exact_amount
    assert rate(usage_charge, low).amount <= rate(usage_charge, high).amount


@given(charges(), quantities)
def test_included_units_are_taken_off_before_rating(usage_charge: UsageCharge, quantity: Decimal) -> None:
    without_allowance = dataclasses.replace(usage_charge, included=D(0))
    billable = max(quantity - usage_charge.included, D(0))
    assert rate(usage_charge, quantity).exact_amount == rate(without_allowance, billable).exact_amount


@given(small_integer_tiered(), st.integers(0, 80))
def test_tiered_matches_unit_by_unit_pricing(usage_charge: UsageCharge, quantity: int) -> None:
    tiers = usage_charge.tiers

    def tier_of(unit: int) -> int:
        return next(i for i, tier in enumerate(tiers) if tier.up_to is None or unit <= tier.up_to)

    entered = {tier_of(unit) for unit in range(1, quantity + 1)}
    expected = sum((tiers[tier_of(unit)].unit_price for unit in range(1, quantity + 1)), D(0))
    expected += sum((tiers[i].flat_price or D(0) for i in entered), D(0))
    assert rate(usage_charge, quantity).exact_amount == expected


@given(small_integer_tiered(), st.integers(0, 80))
def test_volume_and_stair_step_price_the_tier_the_total_reaches(tiered: UsageCharge, quantity: int) -> None:
    volume = dataclasses.replace(tiered, model="volume")
    stair_step = dataclasses.replace(
        tiered, model="stair-step", tiers=tuple(Tier(t.up_to, flat_price=t.unit_price) for t in tiered.tiers)
    )
    reached = next(t for t in tiered.tiers if t.up_to is None or quantity <= t.up_to)
    if quantity == 0:
        assert rate(volume, 0).exact_amount == rate(stair_step, 0).exact_amount == 0
    else:
        assert rate(volume, quantity).exact_amount == quantity * reached.unit_price + (reached.flat_price or 0)
        assert rate(stair_step, quantity).exact_amount == reached.unit_price


@given(charges())
def test_charge_to_dict_round_trips(usage_charge: UsageCharge) -> None:
    data = charge_to_dict(usage_charge)
    assert charge_from_dict(data, path=PATH) == usage_charge
    assert not any(isinstance(leaf, float) for leaf in walk(data))


@given(charges())
def test_charge_to_dict_survives_toml(usage_charge: UsageCharge) -> None:
    """Written the way `catalog export` writes a usage charge (catalog_dump's TOML writer)."""
    data = charge_to_dict(usage_charge)
    text = "[[charge]]\n" + "".join(f"{_key(key)} = {_value(value)}\n" for key, value in data.items())
    assert tomllib.loads(text)["charge"] == [data]


def test_charge_to_dict_is_canonical() -> None:
    assert charge_to_dict(charge(TIERED, included="2.50")) == {
        "feature": "ai-tokens",
        "currency": "USD",
        "model": "tiered",
        "included": "2.5",
        "tiers": [{"up_to": 1000, "unit_price": "0.10"}, {"up_to": 5000, "unit_price": "0.05"}, {"unit_price": "0.01"}],
    }
    assert list(charge_to_dict(charge(PACKAGE, included=1000))) == [
        "feature", "currency", "model", "included", "package_size", "package_price"
    ]  # fmt: skip
    assert charge_to_dict(charge(PACKAGE))["package_price"] == "10.00"
    assert "included" not in charge_to_dict(charge(FLAT, included=0))


KEYS = ["feature", "currency", "model", "included", "unit_price", "package_size", "package_price", "tiers",
        "up_to", "flat_price", "price", ""]  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.decimals(), st.text(max_size=8),
    st.sampled_from(["USD", "jpy", "XYZ", "flat", "tiered", "volume", "stair-step", "package", "ai-tokens",
                     "0.10", "10.00", "1000", "-1", "0", "1e3", "NaN", " 5 "]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4),
                                                                      children, max_size=5),
    max_leaves=12,
)


plausible = st.sampled_from(
    ["0.05", "12.00", "7", 500, 2500, "2.5", "eur", "api-calls", "flat", "volume", "stair-step",
     [{"unit_price": "0.02"}], [{"up_to": 10, "flat_price": "3.00"}, {"flat_price": "9.00"}]]
).map(copy.deepcopy)  # fmt: skip  (copies: the mangling below edits tiers in place)


@st.composite
def mangled_charges(draw: st.DrawFn) -> dict:
    """A valid charge in catalog shape with one to three keys (of the charge or a tier) replaced or removed."""
    data = charge_to_dict(draw(charges()))
    for _ in range(draw(st.integers(1, 3))):
        target = data
        if isinstance(data.get("tiers"), list) and data["tiers"] and draw(st.booleans()):
            target = draw(st.sampled_from(data["tiers"]))
        if not isinstance(target, dict):
            break
        key = draw(st.sampled_from(KEYS))
        if key in target and draw(st.booleans()):
            del target[key]
        else:
            target[key] = draw(values | plausible)
    return data


def check_parses_or_refuses(data: object) -> None:
    try:
        parsed = charge_from_dict(data, path=PATH)
    except InvalidInput as error:
        assert str(error).startswith(PATH)
    else:  # whatever validates can be rated and exported
        assert isinstance(rate(parsed, D("1234.5")), RatedCharge)
        assert charge_from_dict(charge_to_dict(parsed), path=PATH) == parsed


@pytest.mark.slow  # 1,000 examples: CI (-m slow)
@settings(max_examples=1000)
@given(mangled_charges())
def test_charge_from_dict_raises_only_invalid_input_on_mangled_charges(data: dict) -> None:
    check_parses_or_refuses(data)


@pytest.mark.slow  # 1,000 examples: CI (-m slow)
@settings(max_examples=1000)
@given(values)
def test_charge_from_dict_raises_only_invalid_input_on_anything(data: object) -> None:
    check_parses_or_refuses(data)


def test_mangled_charges_do_get_through_sometimes() -> None:
    """Guards the fuzzing above: it must reach the valid path, not only the first check (about 1.5%
    of its examples do; `find` stops at the first, and fails with NoSuchExample if 1,000 hold none)."""
    from hypothesis import find

    def parses(data: dict) -> bool:
        try:
            charge_from_dict(data, path=PATH)
        except InvalidInput:
            return False
        return True

    assert parses(find(mangled_charges(), parses, settings=settings(max_examples=1000, database=None)))
