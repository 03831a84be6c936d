"""Exact money and quantities: ISO 4217 currencies, strict decimal parsing, minor units, micros.

Money is never a float (spec rule 7). Values come in as strings (`"19.99"`) or integers, are held as
`Decimal`, stored as integers (minor units for money, millionths for quantities) and written back as
plain decimal strings. Every bad value raises `InvalidInput`, naming where it came from when a
`path` is given.
"""

from __future__ import annotations

import re
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)

from tollgate.errors import InvalidInput

# ISO 4217 list one (published 2026-01-01): code -> number of minor-unit digits. Entries whose minor
# unit is "N.A." (XDR, XUA, XSU, the bond-market units, precious metals, XTS, XXX) are left out: they
# are not currencies anything is sold in. Withdrawn codes (HRK, BGN, ANG, CUC, SLL, ZWL) are refused.
CURRENCY_EXPONENTS: dict[str, int] = {
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2, "AZN": 2,
    "BAM": 2, "BBD": 2, "BDT": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2, "BOB": 2, "BOV": 2,
    "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2,
    "CAD": 2, "CDF": 2, "CHE": 2, "CHF": 2, "CHW": 2, "CLF": 4, "CLP": 0, "CNY": 2, "COP": 2,
    "COU": 2, "CRC": 2, "CUP": 2, "CVE": 2, "CZK": 2,
    "DJF": 0, "DKK": 2, "DOP": 2, "DZD": 2,
    "EGP": 2, "ERN": 2, "ETB": 2, "EUR": 2,
    "FJD": 2, "FKP": 2,
    "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2, "GNF": 0, "GTQ": 2, "GYD": 2,
    "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2,
    "IDR": 2, "ILS": 2, "INR": 2, "IQD": 3, "IRR": 2, "ISK": 0,
    "JMD": 2, "JOD": 3, "JPY": 0,
    "KES": 2, "KGS": 2, "KHR": 2, "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2, "KZT": 2,
    "LAK": 2, "LBP": 2, "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3,
    "MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2,
    "MVR": 2, "MWK": 2, "MXN": 2, "MXV": 2, "MYR": 2, "MZN": 2,
    "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2, "NPR": 2, "NZD": 2,
    "OMR": 3,
    "PAB": 2, "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2, "PLN": 2, "PYG": 0,
    "QAR": 2,
    "RON": 2, "RSD": 2, "RUB": 2, "RWF": 0,
    "SAR": 2, "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2, "SLE": 2, "SOS": 2,
    "SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2,
    "THB": 2, "TJS": 2, "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2,
    "UAH": 2, "UGX": 0, "USD": 2, "USN": 2, "UYI": 0, "UYU": 2, "UYW": 4, "UZS": 2,
    "VED": 2, "VES": 2, "VND": 0, "VUV": 0,
    "WST": 2,
    "XAD": 2, "XAF": 0, "XCD": 2, "XCG": 2, "XOF": 0, "XPF": 0,
    "YER": 2,
    "ZAR": 2, "ZMW": 2, "ZWG": 2,
}  # fmt: skip

MAX_MAGNITUDE = Decimal(10**12)
"""The largest value `parse_decimal` accepts (one trillion); its micros still fit in 64 bits."""
MAX_PLACES = 12
"""The most decimal places `parse_decimal` accepts (rates such as "0.000000000001")."""
QUANTITY_SCALE = 10**6
"""Quantities are stored as integer millionths."""
QUANTITY_PLACES = 6
_MAX_TEXT = 64  # longer strings are refused before any parsing
_INT64_MAX = 2**63 - 1
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")

WIDE = Context(prec=200, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])
"""A context wide enough for any sum or product of parsed values; rounds only when asked to."""
EXACT = WIDE.copy()
EXACT.traps[Inexact] = True
"""Like WIDE, but an arithmetic result that would need rounding raises `decimal.Inexact`."""


def minor_digits(currency: str) -> int:
    """The number of minor-unit digits of `currency` (USD 2, JPY 0, KWD 3)."""
    return CURRENCY_EXPONENTS[validate_currency(currency)]


def validate_currency(code: object, *, path: str | None = None) -> str:
    """Return `code` as an upper-case ISO 4217 code ("usd" -> "USD"); anything else is InvalidInput."""
    if isinstance(code, str) and code.upper() in CURRENCY_EXPONENTS:
        return code.upper()
    raise InvalidInput(
        f"{_show(code)} is not a currency tollgate knows; use a three-letter ISO 4217 code such as "
        "USD, EUR or JPY.",
        path=path,
    )


def parse_decimal(
    value: object, *, path: str | None = None, what: str = "quantity", allow_negative: bool = False
) -> Decimal:
    """Parse an exact decimal from a string, an int or a Decimal, and return it in plain form.

    Accepted: an optional "-" then ASCII digits, optionally "." and more digits ("19.99", "15000");
    surrounding whitespace is ignored. At most `MAX_PLACES` (12) significant decimal places, a
    magnitude of at most `MAX_MAGNITUDE` (10**12), strings of at most 64 characters. Refused: floats
    (not exact), bools, NaN, infinities, exponents ("1e5"), separators ("1,000", "1_000"), ".5",
    "5.", empty text, and negatives unless `allow_negative`. Never raises anything but InvalidInput.
    """
    number = _to_decimal(value, path=path, what=what)
    if not number.is_finite():
        raise InvalidInput(f"{what} must be a finite number, not {_show(value)}.", path=path)
    if number.copy_abs() > MAX_MAGNITUDE:
        raise InvalidInput(
            f"{what} {_show(value)} is too large; "
            f"the largest accepted is {format_decimal(MAX_MAGNITUDE)}.",
            path=path,
        )
    if decimal_places(number) > MAX_PLACES:
        raise InvalidInput(
            f"{what} {_show(value)} has more than {MAX_PLACES} decimal places.", path=path
        )
    if number < 0 and not allow_negative:
        raise InvalidInput(f"{what} must not be negative, got {_show(value)}.", path=path)
    return _plain(number)


def parse_amount(value: object, currency: str, *, path: str | None = None) -> Decimal:
    """Parse a price in `currency`: non-negative, no more decimals than its minor unit ("19.99" USD).

    Returned with exactly the currency's minor digits: "10" USD -> Decimal("10.00").
    """
    digits = minor_digits(currency)
    amount = parse_decimal(value, path=path, what="amount")
    if decimal_places(amount) > digits:
        raise InvalidInput(
            f"amount {_show(value)} has more decimal places than {currency.upper()} allows ({digits}).",
            path=path,
        )
    return quantize_money(amount, currency)


def parse_rate(value: object, *, path: str | None = None) -> Decimal:
    """Parse a unit price: non-negative, up to 12 decimal places, so it may be below the minor unit."""
    return parse_decimal(value, path=path, what="unit price")


def quantize_money(amount: Decimal, currency: str) -> Decimal:
    """Round `amount` half-even to the currency's minor unit (JPY 2.5 -> 2, 3.5 -> 4)."""
    exponent = Decimal(1).scaleb(-minor_digits(currency))
    return amount.quantize(exponent, rounding=ROUND_HALF_EVEN, context=WIDE)


def to_minor(amount: Decimal, currency: str) -> int:
    """Decimal("19.99") USD -> 1999. An amount finer than the minor unit is InvalidInput, not rounded."""
    digits = minor_digits(currency)
    if not amount.is_finite() or decimal_places(amount) > digits:
        raise InvalidInput(
            f"amount {format_decimal(amount) if amount.is_finite() else amount} is not a whole number "
            f"of {currency.upper()} minor units; round it first."
        )
    return int(amount.scaleb(digits, context=WIDE))


def from_minor(minor: int, currency: str) -> Decimal:
    """1999 USD -> Decimal("19.99"); 500 JPY -> Decimal("500")."""
    return Decimal(minor).scaleb(-minor_digits(currency), context=WIDE)


def format_money(amount: Decimal, currency: str) -> str:
    """Exactly the minor digits, no separators: "150.00" USD, "4" JPY, "1.500" KWD.

    A finer amount is rounded half-even first; negative zero is written "0.00".
    """
    rounded = quantize_money(amount, currency)
    return format(rounded.copy_abs() if rounded == 0 else rounded, "f")


def format_rate(rate: Decimal, currency: str) -> str:
    """A unit price with at least the currency's minor digits: "0.10", "0.007" USD, "0.5" JPY."""
    if decimal_places(rate) <= minor_digits(currency):
        return format_money(rate, currency)
    return format_decimal(rate)


def format_decimal(number: Decimal) -> str:
    """Any finite Decimal in plain notation without trailing zeros: "2.5", "1000000000000", "0"."""
    if not number.is_finite():
        raise ValueError(f"cannot format {number} as a plain decimal")
    return format(_plain(number), "f")


def decimal_places(number: Decimal) -> int:
    """Significant decimal places of a finite Decimal: "2.50" -> 1, "15000" -> 0, "1E-7" -> 7."""
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int), "decimal_places needs a finite Decimal"
    if number.is_zero():
        return 0
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -exponent - trailing_zeros)


def to_micros(quantity: Decimal | int) -> int:
    """A quantity as integer millionths for storage: Decimal("2.5") -> 2_500_000.

    More than 6 decimal places, or a value beyond a 64-bit integer, is InvalidInput.
    """
    number = Decimal(quantity)
    if not number.is_finite() or decimal_places(number) > QUANTITY_PLACES:
        raise InvalidInput(
            f"quantity {_show(quantity)} has more than {QUANTITY_PLACES} decimal places; "
            "tollgate counts to the millionth of a unit."
        )
    micros = int(number.scaleb(QUANTITY_PLACES, context=WIDE))
    if abs(micros) > _INT64_MAX:
        raise InvalidInput(f"quantity {format_decimal(number)} is too large to store.")
    return micros


def from_micros(micros: int) -> Decimal:
    """Integer millionths back to a plain Decimal: 15_000_000_000 -> Decimal("15000"), not 1.5E+4."""
    return _plain(Decimal(micros).scaleb(-QUANTITY_PLACES, context=WIDE))


def _to_decimal(value: object, *, path: str | None, what: str) -> Decimal:
    """The Decimal a str / int / Decimal stands for, or InvalidInput naming what was wrong."""
    if isinstance(value, float):
        raise InvalidInput(
            f"{what} {_show(value)} is a floating-point number, which is not exact; "
            'write it as a string, like "19.99".',
            path=path,
        )
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise InvalidInput(
            f'{what} must be a number written as a string, like "19.99", not {_show(value)}.', path=path
        )
    if isinstance(value, int):
        if abs(value) > MAX_MAGNITUDE:  # compared before conversion: huge ints are slow to convert
            largest = format_decimal(MAX_MAGNITUDE)
            raise InvalidInput(f"{what} is too large; the largest accepted is {largest}.", path=path)
        return Decimal(value)
    if isinstance(value, Decimal):
        return value
    return _decimal_from_text(value, path=path, what=what)


def _decimal_from_text(text: str, *, path: str | None, what: str) -> Decimal:
    stripped = text.strip()
    if not stripped:
        raise InvalidInput(f'{what} is empty; write a number such as "19.99".', path=path)
    if len(stripped) > _MAX_TEXT:
        raise InvalidInput(
            f"{what} {_show(text)} is too long to be a number tollgate accepts.", path=path
        )
    if not _NUMBER.fullmatch(stripped):
        hint = " Exponents are not accepted: write all the digits." if "e" in stripped.lower() else ""
        raise InvalidInput(
            f"{what} {_show(text)} is not a decimal number; write digits with an optional "
            f'decimal point, like "19.99".{hint}',
            path=path,
        )
    return Decimal(stripped)


def _plain(number: Decimal) -> Decimal:
    """The same value without a positive exponent or trailing fractional zeros; zero is 0."""
    if number.is_zero():
        return Decimal(0)
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    while exponent < 0 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    if exponent > 0:
        digits, exponent = digits + (0,) * exponent, 0
    return Decimal((sign, digits, exponent))


def _show(value: object) -> str:
    """A short, safe rendering of an arbitrary input value for an error message."""
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "…")
    if isinstance(value, Decimal) and value.is_finite():  # as written, never Decimal('1E-7')
        text = format_decimal(value)
        return text if len(text) <= 40 else text[:40] + "…"
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
        return text if len(text) <= 40 else text[:40] + "…"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a value that cannot be shown must not hide the real error
        return f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:40] + "…"
