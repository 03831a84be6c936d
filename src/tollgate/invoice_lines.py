"""What an invoice preview says: its lines (base fee and usage, with tiers, proration and notes), the
preview of one customer with subtotals per currency, and their JSON (written directly, at the speed
a bill run over many customers needs) and CSV forms.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

from tollgate.clock import rfc3339
from tollgate.money import CURRENCY_EXPONENTS, WIDE
from tollgate.invoice_periods import Selection
from tollgate.periods import Period



# -- lines and previews ----------------------------------------------------------------------------


@dataclass(slots=True)
class InvoiceLine:
    """One line of a preview. `charged` is the part of `period` that is charged (None: none of it).

    base: `price` is the full fee; `proration` the share charged when not all (an exact Fraction);
    `quantity`/`billable` are 1 (0 when nothing is charged), `included` 0.
    usage: `rated` is the rating.RatedCharge (quantity, included, billable, tier breakdown).
    """

    kind: str
    subscription: str
    plan: str
    feature: str | None
    interval: str | None
    period: Period
    charged: Period | None
    quantity: Decimal
    included: Decimal
    billable: Decimal
    currency: str
    amount: Decimal
    price: Decimal | None = None
    proration: Fraction | None = None
    rated: Any = None
    unit: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The line's JSON shape (every key on every line; null where it does not apply)."""
        digits = CURRENCY_EXPONENTS[self.currency]
        period, charged, rated = self.period, self.charged, self.rated
        quantity = _number(self.quantity)
        amount = _money(self.amount, digits)
        line = {
            "kind": self.kind,
            "subscription": self.subscription,
            "plan": self.plan,
            "feature": self.feature,
            "unit": self.unit,
            "interval": self.interval,
            "period_start": _time(period.start),
            "period_end": _time(period.end),
            "charged_from": _time(charged.start) if charged is not None else None,
            "charged_to": _time(charged.end) if charged is not None else None,
            "quantity": quantity,
            "included": _number(self.included) if self.included else "0",
            "billable": quantity if self.billable == self.quantity else _number(self.billable),
            "currency": self.currency,
            "amount": amount,
        }
        if rated is None:  # a base fee
            return line | {
                "exact_amount": amount,
                "price": _money(self.price, digits) if self.price is not None else None,
                "proration": _fraction_text(self.proration),
                "model": None,
                "unit_price": None,
                "package_size": None,
                "package_price": None,
                "packages": None,
                "tiers": [],
                "note": self.note,
            }
        model, unit_price, package_size, package_price = _charge_fields(rated.charge)
        return line | {
            "exact_amount": amount if rated.exact_amount == self.amount else _rate(rated.exact_amount, digits),
            "price": None,
            "proration": None,
            "model": model,
            "unit_price": unit_price,
            "package_size": package_size,
            "package_price": package_price,
            "packages": rated.packages,
            "tiers": [
                {
                    "from": _number(tier.start),
                    "up_to": _number(tier.up_to) if tier.up_to is not None else None,
                    "quantity": _number(tier.quantity),
                    "unit_price": _price(tier.unit_price, digits) if tier.unit_price is not None else None,
                    "flat_price": _price(tier.flat_price, digits, money=True) if tier.flat_price is not None else None,
                    "amount": _rate(tier.amount, digits),
                }
                for tier in rated.tiers
            ],
            "note": self.note,
        }


    def to_json(self) -> str:
        """`json.dumps(self.to_dict(), ensure_ascii=False)`, written directly: a bill run writes tens of
        thousands of lines and this is ~3x faster than building the dict and encoding it (tests check
        the two are the same text). Text that is not ours (identifiers, units, notes) goes through the
        JSON encoder; the figures and times tollgate formats need no escaping."""
        digits = CURRENCY_EXPONENTS[self.currency]
        period, charged, rated = self.period, self.charged, self.rated
        quantity = _number(self.quantity)
        amount = _money(self.amount, digits)
        billable = quantity if self.billable == self.quantity else _number(self.billable)
        included = _number(self.included) if self.included else "0"
        head = (
            f'{{"kind": {_text(self.kind)}, "subscription": {_text(self.subscription)}, "plan": {_text(self.plan)}, '
            f'"feature": {_text(self.feature)}, "unit": {_text(self.unit)}, "interval": {_text(self.interval)}, '
            f'"period_start": {_time_json(period.start)}, "period_end": {_time_json(period.end)}, '
            f'"charged_from": {_time_json(charged.start) if charged is not None else "null"}, '
            f'"charged_to": {_time_json(charged.end) if charged is not None else "null"}, '
            f'"quantity": "{quantity}", "included": "{included}", "billable": "{billable}", '
            f'"currency": {_text(self.currency)}, "amount": "{amount}", '
        )
        if rated is None:
            price = f'"{_money(self.price, digits)}"' if self.price is not None else "null"
            share = f'"{_fraction_text(self.proration)}"' if self.proration is not None else "null"
            return (f'{head}"exact_amount": "{amount}", "price": {price}, "proration": {share}, "model": null, '
                    f'"unit_price": null, "package_size": null, "package_price": null, "packages": null, '
                    f'"tiers": [], "note": {_text(self.note)}}}')
        exact = amount if rated.exact_amount == self.amount else _rate(rated.exact_amount, digits)
        model, unit_price, package_size, package_price = _charge_fields(rated.charge)
        tiers = ", ".join(
            f'{{"from": "{_number(tier.start)}", '
            f'"up_to": {_quoted(_number(tier.up_to)) if tier.up_to is not None else "null"}, '
            f'"quantity": "{_number(tier.quantity)}", '
            f'"unit_price": {_quoted(_price(tier.unit_price, digits)) if tier.unit_price is not None else "null"}, '
            f'"flat_price": {_quoted(_price(tier.flat_price, digits, money=True)) if tier.flat_price is not None else "null"}, '
            f'"amount": "{_rate(tier.amount, digits)}"}}'
            for tier in rated.tiers
        )
        return (f'{head}"exact_amount": "{exact}", "price": null, "proration": null, "model": {_text(model)}, '
                f'"unit_price": {_quoted(unit_price) if unit_price is not None else "null"}, '
                f'"package_size": {"null" if package_size is None else package_size}, '
                f'"package_price": {_quoted(package_price) if package_price is not None else "null"}, '
                f'"packages": {"null" if rated.packages is None else rated.packages}, '
                f'"tiers": [{tiers}], "note": {_text(self.note)}}}')


_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


@lru_cache(maxsize=4096)
def _text(value: str | None) -> str:
    """A JSON string (escaped by the json module) or null; remembered (identifiers repeat)."""
    return "null" if value is None else _encode(value)


def _quoted(figure: str) -> str:
    """A figure tollgate formatted (digits, '.', '-'): quoted as is."""
    return f'"{figure}"'


@lru_cache(maxsize=4096)
def _time_json(moment: datetime | None) -> str:
    return "null" if moment is None else f'"{rfc3339(moment)}"'


# The JSON of thousands of lines is written in a bill run: these are money.format_decimal /
# format_money / format_rate (the same text, tests/test_invoice_properties.py checks it) without
# re-validating the currency each time, and rfc3339 with a memory (lines share their periods).

_EXPONENT = {digits: Decimal(1).scaleb(-digits) for digits in set(CURRENCY_EXPONENTS.values())}
_time = lru_cache(maxsize=4096)(rfc3339)


@lru_cache(maxsize=1024)
def _price(value: Decimal, digits: int, money: bool = False) -> str:
    """A catalog price (few distinct values): _rate / _money, remembered."""
    return _money(value, digits) if money else _rate(value, digits)


def _charge_fields(charge: Any) -> tuple[str, str | None, int | None, str | None]:
    """(model, unit_price, package_size, package_price) of a usage charge, as its lines show them;
    remembered by identity (hashing a charge costs more than formatting it)."""
    entry = _CHARGE_FIELDS.get(id(charge))
    if entry is not None and entry[0] is charge:
        return entry[1]
    digits = CURRENCY_EXPONENTS[charge.currency]
    fields = (
        charge.model,
        _rate(charge.unit_price, digits) if charge.unit_price is not None else None,
        charge.package_size,
        _money(charge.package_price, digits) if charge.package_price is not None else None,
    )
    if len(_CHARGE_FIELDS) > 1024:
        _CHARGE_FIELDS.clear()
    _CHARGE_FIELDS[id(charge)] = (charge, fields)  # keeps the charge alive, so its id is not reused
    return fields


_CHARGE_FIELDS: dict[int, tuple[Any, tuple]] = {}


def _number(value: Decimal) -> str:
    """money.format_decimal: plain notation, no trailing fractional zeros ("2.5", "15000", "0")."""
    text = str(value)
    if text.isdigit():  # a whole number in plain notation: the usual quantity
        return text
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _money(value: Decimal, digits: int) -> str:
    """money.format_money: exactly `digits` decimals (rounded half-even if finer), never "-0.00"."""
    text = format(value, "f")
    point = text.find(".")
    if (len(text) - point - 1 if point >= 0 else 0) != digits:
        value = value.quantize(_EXPONENT[digits], rounding=ROUND_HALF_EVEN, context=WIDE)
        text = format(value, "f")
    return text[1:] if text[0] == "-" and not value else text


def _rate(value: Decimal, digits: int) -> str:
    """money.format_rate: at least `digits` decimals, more when the value has them ("0.007")."""
    text = _number(value)
    point = text.find(".")
    places = len(text) - point - 1 if point >= 0 else 0
    if places >= digits:
        return text
    return text + ("" if point >= 0 else ".") + "0" * (digits - places)


ZERO_MONEY = {digits: Decimal(0).scaleb(-digits) for digits in set(CURRENCY_EXPONENTS.values())}


def _fraction_text(share: Fraction | None) -> str | None:
    if share is None:
        return None
    return f"{share.numerator}/{share.denominator}"


@dataclass(slots=True)
class InvoicePreview:
    """A customer's preview: lines in subscription order, subtotals per currency, notes."""

    customer: str
    name: str
    selection: Selection
    lines: tuple[InvoiceLine, ...]
    totals: dict[str, Decimal]
    notes: tuple[str, ...] = ()

    @property
    def period_start(self) -> datetime:
        """The earliest start of the billing periods on the preview (the selected month when none)."""
        return min((line.period.start for line in self.lines if line.period.start is not None),
                   default=self.selection.start)  # every billing period starts (billing_periods)

    @property
    def period_end(self) -> datetime | None:
        ends = [line.period.end for line in self.lines]
        if not ends:
            return self.selection.end
        finite = [end for end in ends if end is not None]
        return None if len(finite) < len(ends) else max(finite)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape: exact figures as strings with the currency's minor digits."""
        return {
            "customer": self.customer,
            "name": self.name,
            "period": self.selection.period,
            "at": _time(self.selection.at) if self.selection.at is not None else None,
            "period_start": _time(self.period_start),
            "period_end": _time(self.period_end),
            "lines": [line.to_dict() for line in self.lines],
            "totals": {currency: _money(amount, CURRENCY_EXPONENTS[currency]) for currency, amount in self.totals.items()},
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        """`json.dumps(self.to_dict(), ensure_ascii=False)`, written directly (see InvoiceLine.to_json)."""
        totals = ", ".join(f'{_text(currency)}: "{_money(amount, CURRENCY_EXPONENTS[currency])}"'
                           for currency, amount in self.totals.items())
        at = self.selection.at
        return (
            f'{{"customer": {_text(self.customer)}, "name": {_text(self.name)}, '
            f'"period": {_text(self.selection.period)}, "at": {_time_json(at) if at is not None else "null"}, '
            f'"period_start": {_time_json(self.period_start)}, "period_end": {_time_json(self.period_end)}, '
            f'"lines": [{", ".join(line.to_json() for line in self.lines)}], "totals": {{{totals}}}, '
            f'"notes": {_encode(list(self.notes))}}}'
        )

    def csv_rows(self) -> Iterator[list[Any]]:
        """One CSV row per line (columns: CSV_COLUMNS; the same text as the JSON's)."""
        for line in self.lines:
            digits = CURRENCY_EXPONENTS[line.currency]
            yield [self.customer, line.subscription, line.plan, line.kind, line.feature, _time(line.period.start),
                   _time(line.period.end), _number(line.quantity), _number(line.included),
                   _number(line.billable), line.currency, _money(line.amount, digits)]


CSV_COLUMNS = ("customer", "subscription", "plan", "kind", "feature", "period_start", "period_end",
               "quantity", "included", "billable", "currency", "amount")
"""The header of InvoicePreview.csv_rows."""
