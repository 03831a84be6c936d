"""Exact money: currencies, strict decimal parsing, minor units, quantities as micros."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollgate.errors import InvalidInput
from tollgate.money import (
    CURRENCY_EXPONENTS,
    QUANTITY_SCALE,
    format_decimal,
    format_money,
    format_rate,
    from_micros,
    from_minor,
    parse_amount,
    parse_decimal,
    parse_rate,
    quantize_money,
    to_micros,
    to_minor,
    validate_currency,
)

D = Decimal
CURRENCIES = sorted(CURRENCY_EXPONENTS)

# Anything a TOML file, a CSV cell, JSON or a careless caller could hand to a parser.
any_value = st.one_of(
    st.text(),
    st.text(alphabet="0123456789.-+eE_, \t", max_size=20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.integers(min_value=-(10**5000), max_value=10**5000),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.binary(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    st.from_type(type).flatmap(st.from_type),
)


# --- currencies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "digits"),
    [
        ("JPY", 0), ("KRW", 0), ("CLP", 0), ("ISK", 0), ("VND", 0), ("XOF", 0), ("UGX", 0),
        ("USD", 2), ("EUR", 2), ("GBP", 2), ("CHF", 2), ("INR", 2),
        ("KWD", 3), ("BHD", 3), ("JOD", 3), ("OMR", 3), ("TND", 3), ("IQD", 3), ("LYD", 3),
        ("CLF", 4), ("UYW", 4),
    ],
)  # fmt: skip
def test_minor_units_follow_iso_4217(code: str, digits: int) -> None:
    assert CURRENCY_EXPONENTS[code] == digits


def test_currency_table_is_the_active_list() -> None:
    assert len(CURRENCY_EXPONENTS) >= 150
    assert all(re.fullmatch(r"[A-Z]{3}", code) for code in CURRENCY_EXPONENTS)
    assert set(CURRENCY_EXPONENTS.values()) == {0, 2, 3, 4}
    for withdrawn_or_not_money in ("HRK", "ZWL", "SLL", "XAU", "XDR", "XTS", "XXX"):
        assert withdrawn_or_not_money not in CURRENCY_EXPONENTS


def test_validate_currency_accepts_any_case() -> None:
    assert validate_currency("usd") == "USD"
    assert validate_currency("Jpy") == "JPY"


@pytest.mark.parametrize("code", ["US", "XYZ", "", "USDD", " USD", 840, None])
def test_validate_currency_refuses_unknown_codes(code: object) -> None:
    with pytest.raises(InvalidInput, match="ISO 4217") as caught:
        validate_currency(code, path="plans.pro.prices[0].currency")
    assert str(caught.value).startswith("plans.pro.prices[0].currency: ")


# --- parse_decimal -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("19.99", D("19.99")),
        ("15000", D(15000)),
        (15000, D(15000)),
        (D("2.5"), D("2.5")),
        ("  7 ", D(7)),
        ("0", D(0)),
        ("-0", D(0)),
        ("007.50", D("7.5")),
        ("1000000000000", D(10**12)),
        (10**12, D(10**12)),
        ("0.000000000001", D("1E-12")),
        ("1.0000000000000000", D(1)),  # 16 places written, none significant
    ],
)
def test_parse_decimal_accepts(value: object, expected: Decimal) -> None:
    assert parse_decimal(value) == expected


def test_parse_decimal_returns_plain_decimals() -> None:
    assert str(parse_decimal("2.50")) == "2.5"
    assert str(parse_decimal(D("1.5E+4"))) == "15000"
    assert str(parse_decimal("-0.0", allow_negative=True)) == "0"


def test_parse_decimal_negative_only_when_allowed() -> None:
    assert parse_decimal("-3.5", allow_negative=True) == D("-3.5")
    with pytest.raises(InvalidInput, match="negative"):
        parse_decimal("-3.5")
    with pytest.raises(InvalidInput, match="negative"):
        parse_decimal(-1)


def test_parse_decimal_refuses_floats_and_says_to_quote_them() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_decimal(19.99, path="plans.pro.prices[0].amount", what="amount")
    message = str(caught.value)
    assert message.startswith("plans.pro.prices[0].amount: amount 19.99")
    assert "floating-point" in message and 'string, like "19.99"' in message


@pytest.mark.parametrize(
    "value",
    [
        True, False, None, [], {}, b"1", 1.0, float("nan"),
        "", "   ", "\n", "NaN", "nan", "Infinity", "-inf", "sNaN",
        "1e5", "1E5", "1e-3", "0x10", "1,000", "1_000", "1 000", "+5", ".5", "5.", "--1", "1.2.3",
        "١٢", "５", "12abc", "1" * 65,
        "1000000000000.000001", "1000000000001", 10**12 + 1, -(10**12) - 1, pytest.param(10**5000, id="huge-int"),
        "0.0000000000001", D("1E-13"), D("NaN"), D("sNaN"), D("Infinity"), D("-Infinity"), D("1E+13"),
    ],
)  # fmt: skip
def test_parse_decimal_refuses(value: object) -> None:
    with pytest.raises(InvalidInput):
        parse_decimal(value, allow_negative=True)


def test_parse_decimal_explains_exponents() -> None:
    with pytest.raises(InvalidInput, match="Exponents are not accepted"):
        parse_decimal("1e5")


@settings(max_examples=1000)
@given(any_value)
def test_parse_decimal_raises_only_invalid_input(value: object) -> None:
    try:
        result = parse_decimal(value, path="x", allow_negative=True)
    except InvalidInput as error:
        assert str(error).startswith("x: ")
    else:
        assert type(result) is Decimal and result.is_finite()


@settings(max_examples=1000)
@given(st.from_regex(r"-?[0-9]{1,14}(\.[0-9]{1,14})?", fullmatch=True))
def test_parse_decimal_agrees_with_an_independent_check(text: str) -> None:
    integer, _, fraction = text.lstrip("-").partition(".")
    value = D(text)
    acceptable = abs(value) <= 10**12 and len(fraction.rstrip("0")) <= 12
    if acceptable:
        assert parse_decimal(text, allow_negative=True) == value
    else:
        with pytest.raises(InvalidInput):
            parse_decimal(text, allow_negative=True)


# --- amounts and rates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("19.99", "USD", "19.99"),
        ("19.990", "USD", "19.99"),
        ("10", "usd", "10.00"),
        (49, "EUR", "49.00"),
        ("500", "JPY", "500"),
        ("1.5", "KWD", "1.500"),
        ("0.0001", "CLF", "0.0001"),
        ("0", "USD", "0.00"),
    ],
)
def test_parse_amount_accepts(value: object, currency: str, expected: str) -> None:
    amount = parse_amount(value, currency)
    assert amount == D(expected)
    assert str(amount) == expected


@pytest.mark.parametrize(
    ("value", "currency"),
    [("19.999", "USD"), ("1.5", "JPY"), ("0.1", "KRW"), ("1.0005", "KWD"), ("-1", "USD"), (19.99, "USD")],
)
def test_parse_amount_refuses(value: object, currency: str) -> None:
    with pytest.raises(InvalidInput, match=r"^plans\.pro\.prices\[0\]\.amount: "):
        parse_amount(value, currency, path="plans.pro.prices[0].amount")


def test_parse_amount_names_the_currency_limit() -> None:
    with pytest.raises(InvalidInput, match="USD allows"):
        parse_amount("19.999", "USD")


def test_parse_amount_refuses_an_unknown_currency() -> None:
    with pytest.raises(InvalidInput):
        parse_amount("1", "XYZ")


@settings(max_examples=1000)
@given(any_value, st.sampled_from(["USD", "JPY", "KWD", "CLF"]))
def test_parse_amount_raises_only_invalid_input(value: object, currency: str) -> None:
    try:
        amount = parse_amount(value, currency)
    except InvalidInput:
        return
    assert type(amount) is Decimal and amount >= 0
    assert -amount.as_tuple().exponent == CURRENCY_EXPONENTS[currency]


def test_parse_rate_allows_sub_minor_precision() -> None:
    assert parse_rate("0.007") == D("0.007")
    assert parse_rate("0.000000000001") == D("1E-12")
    for bad in ("0.0000000000001", "-0.01", 0.01):
        with pytest.raises(InvalidInput):
            parse_rate(bad)


# --- minor units, rounding, formatting -----------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("19.99", "USD", 1999), ("0", "USD", 0), ("500", "JPY", 500), ("1.5", "KWD", 1500),
     ("1.2345", "CLF", 12345), ("1000000000000", "USD", 100000000000000), ("-2.50", "EUR", -250)],
)  # fmt: skip
def test_to_minor_and_back(amount: str, currency: str, minor: int) -> None:
    assert to_minor(D(amount), currency) == minor
    assert from_minor(minor, currency) == D(amount)


def test_from_minor_keeps_the_minor_digits() -> None:
    assert str(from_minor(1999, "USD")) == "19.99"
    assert str(from_minor(15000, "USD")) == "150.00"
    assert str(from_minor(4, "JPY")) == "4"
    assert str(from_minor(1500, "KWD")) == "1.500"


def test_to_minor_refuses_to_round() -> None:
    with pytest.raises(InvalidInput, match="round it first"):
        to_minor(D("19.999"), "USD")
    with pytest.raises(InvalidInput):
        to_minor(D("2.5"), "JPY")


@given(st.sampled_from(CURRENCIES), st.integers(min_value=-(10**18), max_value=10**18))
def test_minor_units_round_trip(currency: str, minor: int) -> None:
    amount = from_minor(minor, currency)
    assert to_minor(amount, currency) == minor
    assert amount * 10 ** CURRENCY_EXPONENTS[currency] == minor


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("2.5", "JPY", "2"), ("3.5", "JPY", "4"), ("-2.5", "JPY", "-2"), ("2.51", "JPY", "3"),
        ("0.125", "USD", "0.12"), ("0.135", "USD", "0.14"), ("0.1251", "USD", "0.13"),
        ("1.0005", "KWD", "1.000"), ("1.0015", "KWD", "1.002"), ("0.00005", "CLF", "0.0000"),
        ("150", "USD", "150.00"),
    ],
)  # fmt: skip
def test_quantize_money_rounds_half_even(amount: str, currency: str, expected: str) -> None:
    result = quantize_money(D(amount), currency)
    assert result == D(expected)
    assert str(result) == expected


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("150", "USD", "150.00"), ("4", "JPY", "4"), ("1.5", "KWD", "1.500"), ("0", "USD", "0.00"),
        ("1234567.891", "USD", "1234567.89"), ("-0.001", "USD", "0.00"), ("-12.5", "EUR", "-12.50"),
        ("1E+12", "USD", "1000000000000.00"), ("3.5", "JPY", "4"),
    ],
)  # fmt: skip
def test_format_money(amount: str, currency: str, expected: str) -> None:
    assert format_money(D(amount), currency) == expected


@pytest.mark.parametrize(
    ("rate", "currency", "expected"),
    [("0.1", "USD", "0.10"), ("0.007", "USD", "0.007"), ("0.5", "JPY", "0.5"), ("10", "USD", "10.00"),
     ("0.0125", "KWD", "0.0125"), ("2", "KWD", "2.000")],
)  # fmt: skip
def test_format_rate_shows_at_least_the_minor_digits(rate: str, currency: str, expected: str) -> None:
    assert format_rate(D(rate), currency) == expected


@pytest.mark.parametrize(
    ("number", "expected"),
    [("2.50", "2.5"), ("1E+12", "1000000000000"), ("1.5E+4", "15000"), ("0", "0"), ("0E-8", "0"),
     ("-0", "0"), ("1E-7", "0.0000001"), ("-3.000", "-3"), ("100", "100"), ("0.010", "0.01")],
)  # fmt: skip
def test_format_decimal_is_plain(number: str, expected: str) -> None:
    assert format_decimal(D(number)) == expected


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_format_decimal_is_exact_and_never_scientific(number: Decimal) -> None:
    text = format_decimal(number)
    assert re.fullmatch(r"-?[0-9]+(\.[0-9]*[1-9])?", text)
    assert D(text) == number


# --- quantities as micros ------------------------------------------------------------------------


def test_quantity_scale_is_a_million() -> None:
    assert QUANTITY_SCALE == 1_000_000


@pytest.mark.parametrize(
    ("quantity", "micros"),
    [("2.5", 2_500_000), ("15000", 15_000_000_000), ("0", 0), ("0.000001", 1), ("-1.25", -1_250_000),
     ("1000000000000", 10**18)],
)  # fmt: skip
def test_to_micros(quantity: str, micros: int) -> None:
    assert to_micros(D(quantity)) == micros


def test_to_micros_accepts_ints() -> None:
    assert to_micros(7) == 7_000_000


@pytest.mark.parametrize("quantity", [D("0.0000001"), D("1.2345678"), D("1E+13"), D("NaN"), D("Infinity")])
def test_to_micros_refuses_what_it_cannot_store_exactly(quantity: Decimal) -> None:
    with pytest.raises(InvalidInput):
        to_micros(quantity)


def test_from_micros_is_plain() -> None:
    assert str(from_micros(15_000_000_000)) == "15000"
    assert str(from_micros(2_500_000)) == "2.5"
    assert str(from_micros(1)) == "0.000001"
    assert str(from_micros(0)) == "0"
    assert str(from_micros(-1_250_000)) == "-1.25"


@given(st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1))
def test_micros_round_trip_from_integers(micros: int) -> None:
    quantity = from_micros(micros)
    assert to_micros(quantity) == micros
    assert "E" not in str(quantity)


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=6))
def test_micros_round_trip_from_decimals(quantity: Decimal) -> None:
    assert from_micros(to_micros(quantity)) == quantity
    assert to_micros(quantity) == quantity * QUANTITY_SCALE
