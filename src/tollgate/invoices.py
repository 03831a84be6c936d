"""Invoice previews: what a customer owes for a period, rated exactly. Nothing is issued or stored.

A preview has one `base` line per billing period of each subscription (its fee for its interval and
currency) and one `usage` line per usage charge of the subscription's plan (quantity, included
allowance, billable quantity and, for tiered / volume / stair-step charges, the tier breakdown),
and a subtotal per currency. Amounts are exact decimals, rounded half-even to the currency's minor
unit once per line (rating.py); a subtotal is the plain sum of its lines.

Decisions (the spec is silent on these; the README repeats them):

- **Which period.** Subscriptions bill on their anniversaries (periods.py): a subscription started
  on the 15th has periods 15th -> 15th. `period="2026-03"` selects each subscription's billing
  periods that *start* in March 2026 (UTC): a monthly one started on the 15th is billed for Mar 15 ->
  Apr 15; a yearly one only in the month of its anniversary; a 28-day one may have two. `at=DATE`
  selects each subscription's billing period containing DATE. Neither: the period containing now.
  A subscription is on the preview when the selected period overlaps its access (start to end).
- **One-time purchases** (`once`) have no periods of their own: the one-time price is charged in the
  calendar month (UTC) in which the purchase becomes chargeable (the purchase itself, or the end of
  its trial), and usage under a `once` plan is billed per calendar month (the first one starting at
  the purchase). `period_start`/`period_end` of those lines are that month.
- **Free plans** (no price) have no base line; their usage charges still bill, on their periods.
- **Trials are not charged**: the trial is [start, trial_end); nothing in it is charged, neither the
  fee nor usage. A period the trial covers entirely still shows its base line, at zero, with a note.
- **Proration**: when only part of a billing period is chargeable (the trial ends inside it, or
  access ends inside it), the base fee is the full fee times the chargeable share of the period,
  measured in time (exact to the microsecond; "by days" when the boundaries fall on midnight),
  rounded half-even to the minor unit once. `proration` says the share as an exact fraction ("2/3").
  Example: a 30.00/month plan, period Apr 1 -> May 1 (30 days), trial ending Apr 11: 20/30 x 30.00 =
  20.00. The included allowance of a usage charge is *not* prorated.
- **Canceled** subscriptions are charged up to the end of their access (`cancel_at`): a cancellation
  at period end pays the whole period; an immediate one pays the prorated fee up to the cancellation
  and the usage before it. Periods after the end are not on the preview.
- **Usage attribution**: a usage line counts the customer's events for the feature whose time lies in
  the subscription's billing period and in its chargeable time (after the trial, before the end).
  When several subscriptions of the customer charge the same feature, every event is charged once:
  by the *oldest* (earliest start, then first created) of them that is chargeable at the event's
  time; a younger one counts only the events no older one charges. Each usage charge applies its own
  included allowance to the quantity it counts.
- **Currencies**: a subscription pays its plan's usage charges in *its own* currency. A plan with no
  charge for the feature in that currency does not charge it to that subscription: the preview
  leaves it out and says so in `notes` (a bill mixing currencies on one subscription would surprise
  the customer; a missing price is a catalog mistake to fix, not something to guess). A subscription
  without a currency (a free plan) uses the feature's charge when the plan has exactly one currency
  for it, and notes the ambiguity otherwise. A feature the subscription leaves out (`--without`) is
  not charged to it.
- **Voids**: a period whose events sum below zero (a void of an event from an earlier period) is
  rated as zero, with a note.
- The preview's own `period_start`/`period_end` span its lines' billing periods (the earliest start,
  the latest end); with no line, the selected month (for `at`, the calendar month containing it).
- `previews()` (a bill run, `invoice preview --all`) streams customers in batches of BATCH (keyset on
  the customer id, customers with a subscription only) with a fixed number of queries per batch:
  the batch's subscriptions, their left-out features, and ONE grouped query for all the usage sums
  of the batch (usage_sums: the windows go into a temporary table joined to the events). Memory
  stays bounded by the batch. Customers with nothing on their preview are left out of the run.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, Table, and_, func, select
from sqlmodel import Session

from tollgate.clock import parse_moment, rfc3339, to_utc_naive, utcnow
from tollgate.errors import InvalidInput
from tollgate.unknown import no_customer
from tollgate.money import CURRENCY_EXPONENTS, WIDE
from tollgate.statuses import LIVE_STATUSES
from tollgate.models import Customer, Feature, Plan, PlanUsageCharge, Subscription, SubscriptionFeature, UsageEvent
from tollgate.periods import (
    DAY_STEPS,
    FREE_PLAN_INTERVAL,
    MONTH_STEPS,
    Period,
    anniversary_period,
    boundary,
    calendar_period,
)

BATCH = 500
"""Customers per batch of a bill run (one subscription query and one usage query per batch)."""

C = Customer.__table__
E = UsageEvent.__table__
F = Feature.__table__
P = Plan.__table__
PUC = PlanUsageCharge.__table__
S = Subscription.__table__
SF = SubscriptionFeature.__table__

ZERO = Decimal(0)
_ONE = Decimal(1)
_FOREVER = datetime.max
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


# -- what is selected ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which billing periods a preview covers: those starting in the month `period` ("2026-03"), or
    the one containing `at`. `start`/`end`: the month (for `at`, the calendar month containing it)."""

    period: str | None
    at: datetime | None
    start: datetime
    end: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"period": self.period, "at": rfc3339(self.at)}


def select_periods(*, period: str | None = None, at: datetime | str | None = None,
                   now: datetime | None = None) -> Selection:
    """A Selection from `period` ("YYYY-MM") or `at` (a datetime or RFC 3339 text); neither: now."""
    if period is not None and at is not None:
        raise InvalidInput("Give --period or --at, not both.",
                           hint="--period 2026-03 bills the periods starting in March; --at 2026-03-20 the ones containing that day.")
    if period is not None:
        match = _MONTH.match(period.strip()) if isinstance(period, str) else None
        year, month = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
        if not match or not 1 <= month <= 12 or not 1 <= year <= 9998:
            raise InvalidInput(f"'{period}' is not a month; write it as YYYY-MM, like 2026-03.")
        start = datetime(year, month, 1)
        end = datetime(year + month // 12, month % 12 + 1, 1)
        return Selection(f"{year:04d}-{month:02d}", None, start, end)
    if at is None:
        moment = now or utcnow()
    elif isinstance(at, datetime):
        moment = to_utc_naive(at)
    else:
        moment = parse_moment(at, what="date")
    month = calendar_period("month", moment)
    return Selection(None, moment, month.start or datetime.min, month.end or _FOREVER)


# -- subscriptions as billing sees them ------------------------------------------------------------


@dataclass(slots=True)
class Terms:
    """What billing needs of a subscription (a row of the subscription table), with its spans worked out:
    `access` [start, end of access) and `chargeable` [end of the trial, end of access) (None: never)."""

    id: int
    public_id: str
    customer_id: int
    version_id: int  # the plan version it bills under (its usage charges)
    plan: str
    status: str
    interval: str | None
    currency: str | None
    amount_minor: int | None
    start_at: datetime
    trial_end: datetime | None
    cancel_at: datetime | None
    next_version_id: int | None  # a move scheduled at a period boundary (sub_versions.py)
    next_version_at: datetime | None
    next_amount_minor: int | None
    access_end: datetime | None = field(init=False)
    access: Period = field(init=False)
    chargeable: Period | None = field(init=False)
    price: Decimal | None = field(init=False)

    def __post_init__(self) -> None:
        # Every ended subscription has `cancel_at` (when access ended); one with an ended status and
        # none (not written by tollgate) never had access.
        if self.cancel_at is not None:
            self.access_end = self.cancel_at
        else:
            self.access_end = None if self.status in LIVE_STATUSES else self.start_at
        self.access = Period(self.start_at, self.access_end)
        start = self.start_at
        if self.trial_end is not None and self.trial_end > start:
            start = self.trial_end
        end = self.access_end
        self.chargeable = None if end is not None and end <= start else Period(start, end)
        self.price = None
        if self.amount_minor is not None and self.currency is not None:
            self.price = Decimal(self.amount_minor).scaleb(-CURRENCY_EXPONENTS[self.currency], context=WIDE)


def billing_periods(terms: Terms, selection: Selection) -> list[Period]:
    """The subscription's billing periods the selection covers that overlap its access, in order."""
    access = terms.access
    if access.end is not None and access.end <= access.start:
        return []
    if terms.interval == "once":
        found = _once_periods(terms.start_at, selection)
    elif selection.period is not None:
        found = _periods_starting_in(terms.start_at, terms.interval or FREE_PLAN_INTERVAL,
                                     selection.start, selection.end)
    else:
        at = selection.at
        found = [] if at < terms.start_at else [anniversary_period(terms.start_at, terms.interval or FREE_PLAN_INTERVAL, at)]
    return [p for p in found if p.start is not None and _overlaps(p, access)]


def _periods_starting_in(anchor: datetime, cadence: str, start: datetime, end: datetime) -> list[Period]:
    """The anniversary periods of `anchor` (none before it) whose start lies in [start, end).

    The same periods as periods.anniversary_period, found from the first boundary at or after `start`
    (periods.boundary: a couple of date computations per subscription, which a bill run does 10,000s
    of times) instead of by locating a moment; tests check that both agree."""
    out = []
    try:
        n, begin = _first_boundary(anchor, cadence, start)
        while begin < end:
            finish = boundary(anchor, cadence, n + 1)
            out.append(Period(begin, finish))
            n, begin = n + 1, finish
    except (OverflowError, ValueError):  # past the years datetime can hold
        pass
    return out


def _first_boundary(anchor: datetime, cadence: str, moment: datetime) -> tuple[int, datetime]:
    """The smallest n >= 0 with boundary(anchor, cadence, n) >= moment, and that boundary."""
    if moment <= anchor:
        return 0, anchor
    if cadence in DAY_STEPS:
        step = timedelta(days=DAY_STEPS[cadence])
        n = -((anchor - moment) // step)  # ceiling of (moment - anchor) / step
        return n, anchor + step * n
    # Month steps: n = whole steps between the months is the boundary in `moment`'s month or before
    # it, and the one before that is a whole step earlier, so only moving up can be needed.
    n = ((moment.year - anchor.year) * 12 + moment.month - anchor.month) // MONTH_STEPS[cadence]
    found = boundary(anchor, cadence, n)
    while found < moment:
        n += 1
        found = boundary(anchor, cadence, n)
    return n, found


def _once_periods(purchase: datetime, selection: Selection) -> list[Period]:
    """A one-time purchase: calendar months, the first one starting at the purchase."""
    if selection.at is not None and selection.at < purchase:
        return []
    if purchase >= selection.end:
        return []
    return [Period(max(selection.start, purchase), selection.end)]


def _overlap(a: Period, b: Period) -> Period | None:
    """The common part of two periods (`a` itself when `b` covers it), or None."""
    a_start, a_end = a.start or datetime.min, a.end or _FOREVER
    b_start, b_end = b.start or datetime.min, b.end or _FOREVER
    if b_start <= a_start and a_end <= b_end:
        return a
    start, end = max(a_start, b_start), min(a_end, b_end)
    if end <= start:
        return None
    return Period(start, None if end == _FOREVER else end)


def _overlaps(a: Period, b: Period) -> bool:
    return (a.start or datetime.min) < (b.end or _FOREVER) and (b.start or datetime.min) < (a.end or _FOREVER)


def _subtract(window: Period, taken: Sequence[Period]) -> list[Period]:
    """The parts of `window` that none of `taken` covers, in order."""
    pieces = [window]
    for cut in taken:
        cut_start, cut_end = cut.start or datetime.min, cut.end or _FOREVER
        next_pieces = []
        for piece in pieces:
            p_start, p_end = piece.start or datetime.min, piece.end or _FOREVER
            if cut_end <= p_start or p_end <= cut_start:
                next_pieces.append(piece)
                continue
            if p_start < cut_start:
                next_pieces.append(Period(piece.start, cut_start))
            if cut_end < p_end:
                next_pieces.append(Period(cut_end, piece.end))
        pieces = next_pieces
    return pieces


def _share(part: Period, whole: Period) -> Fraction:
    """How much of `whole` `part` is, exactly (both finite)."""
    tick = timedelta(microseconds=1)
    return Fraction((part.end - part.start) // tick, (whole.end - whole.start) // tick)


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


_ZERO_MONEY = {digits: Decimal(0).scaleb(-digits) for digits in set(CURRENCY_EXPONENTS.values())}


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
        return min((line.period.start for line in self.lines), default=self.selection.start)

    @property
    def period_end(self) -> datetime | None:
        ends = [line.period.end for line in self.lines]
        if not ends:
            return self.selection.end
        return None if None in ends else max(ends)

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


CSV_COLUMNS = ("customer", "subscription", "plan", "kind", "feature", "period_start", "period_end",
               "quantity", "included", "billable", "currency", "amount")


def csv_rows(preview: InvoicePreview) -> Iterator[list[Any]]:
    """One CSV row per line (columns: CSV_COLUMNS; the same text as the JSON's)."""
    for line in preview.lines:
        digits = CURRENCY_EXPONENTS[line.currency]
        yield [preview.customer, line.subscription, line.plan, line.kind, line.feature, _time(line.period.start),
               _time(line.period.end), _number(line.quantity), _number(line.included), _number(line.billable),
               line.currency, _money(line.amount, digits)]


# -- the catalog a batch needs ---------------------------------------------------------------------


@dataclass
class _Catalog:
    """Features and plans' usage charges, loaded once per run and kept for every batch."""

    features: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    charges: dict[int, dict[int, list[Any]]] = field(default_factory=dict)  # plan version -> feature -> charges
    applicable: dict[tuple[int, str | None], tuple[list, list]] = field(default_factory=dict)
    unused: dict[int, Any] = field(default_factory=dict)  # id of a charge above -> its rating of zero units

    def load(self, session: Session, version_ids: set[int]) -> None:
        from tollgate.rating import charge_from_dict

        if not self.features:
            self.features = {row.id: (row.identifier, row.unit)
                             for row in session.execute(select(F.c.id, F.c.identifier, F.c.unit))}
        missing = sorted(version_ids - set(self.charges))
        for start in range(0, len(missing), 500):
            chunk = missing[start:start + 500]
            for version_id in chunk:
                self.charges[version_id] = {}
            rows = session.execute(
                select(PUC.c.plan_version_id, PUC.c.feature_id, PUC.c.spec)
                .where(PUC.c.plan_version_id.in_(chunk))
                .order_by(PUC.c.plan_version_id, PUC.c.feature_id, PUC.c.currency)
            )
            for row in rows:
                charge = charge_from_dict(json.loads(row.spec), path="usage_charge")  # as catalog.charge_from_spec
                self.charges[row.plan_version_id].setdefault(row.feature_id, []).append(charge)


def _applicable(catalog: _Catalog, terms: Terms, excluded: set[tuple[int, int]],
                notes: list[str] | None) -> list[tuple[int, Any]]:
    """(feature id, charge) this subscription pays, by feature identifier; adds to `notes` (when given:
    the subscription is on the preview) what it does not pay."""
    key = (terms.version_id, terms.currency)
    found = catalog.applicable.get(key)
    if found is None:
        found = catalog.applicable[key] = _choose_charges(catalog, terms.version_id, terms.currency)
    chosen, missing = found
    if notes is not None:
        for feature, currencies in missing:
            if terms.currency is not None:
                _note(notes, f"{terms.public_id} ({terms.plan}) pays in {terms.currency}, but the plan charges "
                             f"'{feature}' only in {currencies}: not charged.")
            else:
                _note(notes, f"{terms.public_id} ({terms.plan}) has no currency and the plan charges '{feature}' "
                             f"in {currencies}: not charged.")
    if excluded:
        chosen = [(feature_id, charge) for feature_id, charge in chosen if (terms.id, feature_id) not in excluded]
    return chosen


def _choose_charges(catalog: _Catalog, version_id: int, currency: str | None) -> tuple[list, list]:
    """The plan's charges a subscription in `currency` pays (see the module docstring), and the
    features left out (feature, their currencies)."""
    chosen, missing = [], []
    for feature_id, options in catalog.charges.get(version_id, {}).items():
        feature = catalog.features[feature_id][0]
        matching = [c for c in options if c.currency == currency] if currency is not None else options
        if len(matching) == 1:
            chosen.append((feature_id, matching[0]))
        else:
            missing.append((feature, ", ".join(c.currency for c in options)))
    chosen.sort(key=lambda item: catalog.features[item[0]][0])
    return chosen, missing


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)


# -- rating a batch of customers -------------------------------------------------------------------


_TERMS_COLUMNS = (S.c.id, S.c.public_id, S.c.customer_id, S.c.plan_version_id, P.c.identifier.label("plan"),
                  S.c.status, S.c.interval, S.c.currency, S.c.amount_minor, S.c.start_at, S.c.trial_end,
                  S.c.cancel_at, S.c.next_version_id, S.c.next_version_at, S.c.next_amount_minor)


def _terms_of(session: Session, customer_ids: Sequence[int]) -> dict[int, list[Terms]]:
    """Every subscription of the customers, oldest first (start, then id)."""
    found: dict[int, list[Terms]] = defaultdict(list)
    rows = session.execute(
        select(*_TERMS_COLUMNS).select_from(S.join(P, P.c.id == S.c.plan_id))
        .where(S.c.customer_id.in_(list(customer_ids)))
        .order_by(S.c.customer_id, S.c.start_at, S.c.id)
    )
    for row in rows:
        found[row.customer_id].append(Terms(*row))
    return found


def _excluded(session: Session, customer_ids: Sequence[int]) -> set[tuple[int, int]]:
    """(subscription id, feature id) of the features the customers' subscriptions leave out."""
    rows = session.execute(
        select(SF.c.subscription_id, SF.c.feature_id).where(
            SF.c.excluded.is_(True),
            SF.c.subscription_id.in_(select(S.c.id).where(S.c.customer_id.in_(list(customer_ids)))),
        )
    )
    return {(row.subscription_id, row.feature_id) for row in rows}


def usage_sums(session: Session, windows: Sequence[tuple[int, int, int, datetime, datetime]]) -> dict[int, int]:
    """Sum of usage (millionths) per key, for windows (key, customer id, feature id, start, end), from
    the rollups (usage_rollups.window_totals: a few bounded queries per window, whatever the history)."""
    from tollgate.usage_rollups import window_totals

    return window_totals(session, windows)


@dataclass(slots=True)
class _Draft:
    """A usage line waiting for its quantity; `key` names its usage windows (None: it has none)."""

    terms: Terms
    period: Period
    charged: Period | None
    feature: str
    unit: str | None
    charge: Any
    key: int | None = None


def _previews_of(session: Session, customers: Sequence[Any], selection: Selection,
                 catalog: _Catalog) -> list[InvoicePreview]:
    """The previews of a batch of customers: their lines drafted, every usage sum of the batch in one
    query (usage_sums), then rated. Customers with no line are left out."""
    from tollgate.money import format_decimal
    from tollgate.rating import rate

    customer_ids = [c.id for c in customers]
    terms_by_customer = _terms_of(session, customer_ids)
    catalog.load(session, {v for subs in terms_by_customer.values() for t in subs
                           for v in (t.version_id, t.next_version_id) if v is not None})
    excluded = _excluded(session, customer_ids) if terms_by_customer else set()
    drafted: list[tuple[Any, list[Any], list[str]]] = []
    windows: list[tuple[int, int, int, datetime, datetime]] = []
    for customer in customers:
        subs = terms_by_customer.get(customer.id)
        if subs:
            notes: list[str] = []
            lines = _draft_lines(customer.id, subs, selection, catalog, excluded, notes, windows)
            if lines:
                drafted.append((customer, lines, notes))
    sums = usage_sums(session, windows)
    _note_uncharged_usage(session, drafted, terms_by_customer, selection, catalog)
    previews = []
    for customer, lines, notes in drafted:
        totals: dict[str, Decimal] = {}
        for index, line in enumerate(lines):
            if type(line) is _Draft:
                quantity = _quantity(sums.get(line.key, 0)) if line.key is not None else ZERO
                note = None
                if quantity < 0:
                    note = (f"the events of this period sum to {format_decimal(quantity)} "
                            "(a void of an earlier event): rated as 0.")
                    _note(notes, f"{line.terms.public_id} '{line.feature}': {note}")
                    quantity = ZERO
                if quantity:
                    rated = rate(line.charge, quantity)
                else:  # no usage (common: a feature not used this period): rated once per charge
                    rated = catalog.unused.get(id(line.charge))
                    if rated is None:
                        rated = catalog.unused[id(line.charge)] = rate(line.charge, ZERO)
                line = lines[index] = _usage_line(line, rated, note)
            totals[line.currency] = totals[line.currency] + line.amount if line.currency in totals else line.amount
        previews.append(InvoicePreview(customer.identifier, customer.name, selection, tuple(lines),
                                       dict(sorted(totals.items())) if len(totals) > 1 else totals, tuple(notes)))
    return previews


def _note_uncharged_usage(session: Session, drafted: list, terms_by_customer: dict[int, list[Terms]],
                          selection: Selection, catalog: _Catalog) -> None:
    """Add invoice_uncharged's notes (usage on a feature the plan does not charge) to the drafts."""
    from tollgate.invoice_uncharged import uncharged_usage_notes

    billed, charged = [], {}
    for customer, _, _ in drafted:
        for terms in terms_by_customer[customer.id]:
            spans = [_overlap(period, terms.access) for period in billing_periods(terms, selection)]
            billed.append((terms, [span for span in spans if span is not None]))
            for version_id in (terms.version_id, terms.next_version_id):
                charged.setdefault(customer.id, set()).update(catalog.charges.get(version_id, {}))
    found = uncharged_usage_notes(session, billed, charged, catalog.features)
    for customer, _, notes in drafted:
        for text in found.get(customer.id, ()):
            _note(notes, text)


def _draft_lines(customer_id: int, subs: list[Terms], selection: Selection, catalog: _Catalog,
                 excluded: set[tuple[int, int]], notes: list[str], windows: list) -> list[Any]:
    """One customer's lines: base lines done, usage lines as _Drafts whose usage windows (the charged
    part of the period, less what older subscriptions charging the feature cover) go to `windows`."""
    planned = []
    for whole in subs:
        for terms, periods in _by_version(whole, billing_periods(whole, selection)):
            planned.append((terms, periods, _applicable(catalog, terms, excluded, notes if periods else None)))
    charging: dict[int, list[Terms]] = {}  # feature id -> subscriptions charging it, oldest first
    if len(subs) > 1:
        for terms, _, chosen in planned:
            for feature_id, _ in chosen:
                charging.setdefault(feature_id, []).append(terms)
    lines: list[Any] = []
    features = catalog.features
    for terms, periods, chosen in planned:
        chargeable = terms.chargeable
        for period in periods:
            charged = _overlap(period, chargeable) if chargeable is not None else None
            if terms.price is not None:
                base = _base_line(terms, period, charged)
                if base is not None:
                    lines.append(base)
            for feature_id, charge in chosen:
                feature, unit = features[feature_id]
                draft = _Draft(terms, period, charged, feature, unit, charge)
                lines.append(draft)
                if charged is None:
                    continue
                sharing = charging.get(feature_id)
                if sharing is None or len(sharing) == 1:
                    pieces = [charged]
                else:
                    pieces = _subtract(charged, [t.chargeable for t in sharing if _older(t, terms) and t.chargeable])
                if pieces:
                    draft.key = key = len(windows)
                    for piece in pieces:
                        windows.append((key, customer_id, feature_id, piece.start, piece.end or _FOREVER))
    return lines


def _by_version(terms: Terms, periods: list[Period]) -> list[tuple[Terms, list[Period]]]:
    """The periods with the terms each bills under: from a scheduled move's boundary on (a period
    start), the new version's charges and price."""
    if terms.next_version_at is None:
        return [(terms, periods)]
    moved = replace(terms, version_id=terms.next_version_id, amount_minor=terms.next_amount_minor,
                    next_version_id=None, next_version_at=None, next_amount_minor=None)
    parts = ((terms, [p for p in periods if p.start < terms.next_version_at]),
             (moved, [p for p in periods if p.start >= terms.next_version_at]))
    return [(part, found) for part, found in parts if found]


def _quantity(micros: int) -> Decimal:
    """money.from_micros (a plain Decimal: "2.5", "15000"), by the shortest way for each case."""
    whole, rest = divmod(micros, 1_000_000)
    if not rest:
        return Decimal(whole)
    # not a whole number, so normalize() only drops trailing fractional zeros (never writes 1E+3)
    return Decimal(micros).scaleb(-6, context=WIDE).normalize(context=WIDE)


def _older(a: Terms, b: Terms) -> bool:
    return (a.start_at, a.id) < (b.start_at, b.id)


def _base_line(terms: Terms, period: Period, charged: Period | None) -> InvoiceLine | None:
    """The fee of one billing period (None: a one-time purchase in a month after the one it is charged in)."""
    price = terms.price
    amount, billable, share, note = price, _ONE, None, None
    if terms.interval == "once":
        start = terms.chargeable.start if terms.chargeable is not None else None
        if start is None or start not in period:  # the whole one-time price, in the month it is bought
            if period.start != terms.start_at:
                return None
            amount, billable = _ZERO_MONEY[CURRENCY_EXPONENTS[terms.currency]], ZERO
            note = f"in trial until {rfc3339(terms.trial_end)}: " + (
                "the one-time price is charged when the trial ends" if start is not None
                else "access ended in the trial: not charged")
    elif charged is None:
        amount, billable = _ZERO_MONEY[CURRENCY_EXPONENTS[terms.currency]], ZERO
        note = f"in trial until {rfc3339(terms.trial_end)}: not charged"
    elif charged is not period and charged != period and period.end is not None:
        share = _share(charged, period)
        reasons = []
        if charged.start != period.start:
            reasons.append(f"trial until {rfc3339(charged.start)}")
        if charged.end != period.end:
            reasons.append(f"access ended {rfc3339(charged.end)}")
        note = "prorated: " + ", ".join(reasons)
        minor = round(terms.amount_minor * share)  # Fraction: exact, and round() is half-even
        amount = Decimal(minor).scaleb(-CURRENCY_EXPONENTS[terms.currency], context=WIDE)
    return InvoiceLine("base", terms.public_id, terms.plan, None, terms.interval, period, charged, _ONE, ZERO,
                       billable, terms.currency, amount, price, share, None, None, note)


def _usage_line(draft: _Draft, rated: Any, note: str | None) -> InvoiceLine:
    terms = draft.terms
    if draft.charged is None and note is None:
        note = "in trial: usage not charged" if terms.trial_end else "no chargeable time in this period"
    return InvoiceLine("usage", terms.public_id, terms.plan, draft.feature, terms.interval, draft.period,
                       draft.charged, rated.quantity, rated.included, rated.billable, draft.charge.currency,
                       rated.amount, rated=rated, unit=draft.unit, note=note)


# -- entry points ----------------------------------------------------------------------------------


def subscription_totals(preview: InvoicePreview, subscription: str) -> dict[str, str]:
    """currency -> the exact total of one subscription's lines of a preview, written as its totals are."""
    totals: dict[str, Decimal] = {}
    for line in preview.lines:
        if line.subscription == subscription:
            totals[line.currency] = totals.get(line.currency, ZERO) + line.amount
    return {currency: _money(amount, CURRENCY_EXPONENTS[currency]) for currency, amount in totals.items()}



def preview(session: Session, *, customer: str, period: str | None = None, at: datetime | str | None = None,
            now: datetime | None = None) -> InvoicePreview:
    """The preview of one customer's bill for the selected periods (see the module docstring).

    Unknown customer: NotFound. An archived customer's past periods can still be previewed."""
    selection = select_periods(period=period, at=at, now=now)
    row = session.execute(select(C.c.id, C.c.identifier, C.c.name).where(C.c.identifier == customer)).first()
    if row is None:
        raise no_customer(session, customer)
    found = _previews_of(session, [row], selection, _Catalog())
    return found[0] if found else InvoicePreview(row.identifier, row.name, selection, (), {}, ())


def previews(session: Session, *, period: str | None = None, at: datetime | str | None = None,
             now: datetime | None = None, batch_size: int = BATCH) -> Iterator[InvoicePreview]:
    """Every customer's preview (a bill run that issues nothing), by customer creation order, streamed
    batch by batch; customers with nothing to bill are left out."""
    selection = select_periods(period=period, at=at, now=now)
    catalog = _Catalog()
    last = 0
    with_subscriptions = select(S.c.customer_id).distinct()
    while True:
        batch = session.execute(
            select(C.c.id, C.c.identifier, C.c.name)
            .where(C.c.id > last, C.c.id.in_(with_subscriptions))
            .order_by(C.c.id).limit(batch_size)
        ).all()
        if not batch:
            return
        yield from _previews_of(session, batch, selection, catalog)
        last = batch[-1].id
