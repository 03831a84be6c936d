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
  calendar month (UTC) of the purchase, and usage under a `once` plan is billed per calendar month
  (the first one starting at the purchase).
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
- `previews()` (a bill run, `invoice preview --all`) streams customers in batches (keyset on the
  customer id), with one grouped SQL query per batch for all the usage sums of the batch, so memory
  stays bounded and the database does the counting. Customers with nothing on their preview are
  left out of the run.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import DateTime, Integer, and_, column, func, select, values
from sqlmodel import Session

from tollgate.clock import parse_moment, rfc3339, to_utc_naive, utcnow
from tollgate.errors import InvalidInput, NotFound
from tollgate.models import Customer, Feature, Plan, PlanUsageCharge, Subscription, SubscriptionFeature, UsageEvent
from tollgate.periods import FREE_PLAN_INTERVAL, Period, anniversary_period, calendar_period

BATCH = 500
"""Customers per batch of a bill run (one subscription query and one usage query per batch)."""
WINDOW_CHUNK = 4000
"""Usage windows per grouped query (5 bound values each; SQLite allows 32,766 per statement)."""

C = Customer.__table__
E = UsageEvent.__table__
F = Feature.__table__
P = Plan.__table__
PUC = PlanUsageCharge.__table__
S = Subscription.__table__
SF = SubscriptionFeature.__table__

ZERO = Decimal(0)
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


@dataclass(frozen=True)
class Terms:
    """What billing needs of a subscription."""

    id: int
    public_id: str
    customer_id: int
    plan_id: int
    plan: str
    status: str
    interval: str | None
    currency: str | None
    amount_minor: int | None
    start_at: datetime
    trial_end: datetime | None
    cancel_at: datetime | None

    @property
    def access_end(self) -> datetime | None:
        """When access ends (None: it has not been set to end). Every ended subscription has `cancel_at`;
        one with an ended status and none (not written by tollgate) never had access."""
        if self.cancel_at is not None:
            return self.cancel_at
        return None if self.status in ("trialing", "active", "past_due") else self.start_at

    @property
    def access(self) -> Period:
        return Period(self.start_at, self.access_end)

    @property
    def chargeable(self) -> Period | None:
        """[end of the trial, end of access), or None when nothing of it is ever chargeable."""
        start = self.start_at
        if self.trial_end is not None and self.trial_end > start:
            start = self.trial_end
        end = self.access_end
        if end is not None and end <= start:
            return None
        return Period(start, end)


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
    return [p for p in found if p.start is not None and _overlap(p, access) is not None]


def _periods_starting_in(anchor: datetime, cadence: str, start: datetime, end: datetime) -> list[Period]:
    out = []
    period = anniversary_period(anchor, cadence, max(start, anchor))
    if period.start is not None and period.start < start:
        period = anniversary_period(anchor, cadence, period.end) if period.end is not None else None
    while period is not None and period.start is not None and period.start < end:
        out.append(period)
        period = anniversary_period(anchor, cadence, period.end) if period.end is not None else None
    return out


def _once_periods(purchase: datetime, selection: Selection) -> list[Period]:
    """A one-time purchase: calendar months, the first one starting at the purchase."""
    if selection.at is not None and selection.at < purchase:
        return []
    if purchase >= selection.end:
        return []
    return [Period(max(selection.start, purchase), selection.end)]


def _overlap(a: Period, b: Period) -> Period | None:
    start = max(a.start or datetime.min, b.start or datetime.min)
    end = min(a.end or _FOREVER, b.end or _FOREVER)
    if end <= start:
        return None
    return Period(start, None if end == _FOREVER else end)


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


@dataclass(frozen=True)
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
        from tollgate.money import format_decimal, format_money, format_rate

        rated = self.rated
        charge = rated.charge if rated is not None else None
        data: dict[str, Any] = {
            "kind": self.kind,
            "subscription": self.subscription,
            "plan": self.plan,
            "feature": self.feature,
            "unit": self.unit,
            "interval": self.interval,
            "period_start": rfc3339(self.period.start),
            "period_end": rfc3339(self.period.end),
            "charged_from": rfc3339(self.charged.start) if self.charged else None,
            "charged_to": rfc3339(self.charged.end) if self.charged else None,
            "quantity": format_decimal(self.quantity),
            "included": format_decimal(self.included),
            "billable": format_decimal(self.billable),
            "currency": self.currency,
            "amount": format_money(self.amount, self.currency),
            "exact_amount": format_rate(rated.exact_amount, self.currency) if rated is not None
            else format_money(self.amount, self.currency),
            "price": format_money(self.price, self.currency) if self.price is not None else None,
            "proration": _fraction_text(self.proration),
            "model": charge.model if charge is not None else None,
            "unit_price": format_rate(charge.unit_price, self.currency)
            if charge is not None and charge.unit_price is not None else None,
            "package_size": charge.package_size if charge is not None else None,
            "package_price": format_money(charge.package_price, self.currency)
            if charge is not None and charge.package_price is not None else None,
            "packages": rated.packages if rated is not None else None,
            "tiers": [
                {
                    "from": format_decimal(tier.start),
                    "up_to": format_decimal(tier.up_to) if tier.up_to is not None else None,
                    "quantity": format_decimal(tier.quantity),
                    "unit_price": format_rate(tier.unit_price, self.currency) if tier.unit_price is not None else None,
                    "flat_price": format_money(tier.flat_price, self.currency) if tier.flat_price is not None else None,
                    "amount": format_rate(tier.amount, self.currency),
                }
                for tier in (rated.tiers if rated is not None else ())
            ],
            "note": self.note,
        }
        return data


def _fraction_text(share: Fraction | None) -> str | None:
    if share is None:
        return None
    return f"{share.numerator}/{share.denominator}"


@dataclass(frozen=True)
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
        from tollgate.money import format_money

        return {
            "customer": self.customer,
            "name": self.name,
            **self.selection.to_dict(),
            "period_start": rfc3339(self.period_start),
            "period_end": rfc3339(self.period_end),
            "lines": [line.to_dict() for line in self.lines],
            "totals": {currency: format_money(amount, currency) for currency, amount in self.totals.items()},
            "notes": list(self.notes),
        }


CSV_COLUMNS = ("customer", "subscription", "plan", "kind", "feature", "period_start", "period_end",
               "quantity", "included", "billable", "currency", "amount")


def csv_rows(preview: InvoicePreview) -> Iterator[list[Any]]:
    """One CSV row per line (columns: CSV_COLUMNS)."""
    for line in preview.to_dict()["lines"]:
        yield [preview.customer, *(line[key] for key in CSV_COLUMNS[1:])]


# -- the catalog a batch needs ---------------------------------------------------------------------


@dataclass
class _Catalog:
    """Features and plans' usage charges, loaded once per run and kept for every batch."""

    features: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    charges: dict[int, dict[int, list[Any]]] = field(default_factory=dict)  # plan -> feature -> charges

    def load(self, session: Session, plan_ids: set[int]) -> None:
        from tollgate.catalog import charge_from_spec

        if not self.features:
            self.features = {row.id: (row.identifier, row.unit)
                             for row in session.execute(select(F.c.id, F.c.identifier, F.c.unit))}
        missing = sorted(plan_ids - set(self.charges))
        for start in range(0, len(missing), 500):
            chunk = missing[start:start + 500]
            for plan_id in chunk:
                self.charges[plan_id] = {}
            rows = session.execute(
                select(PUC.c.plan_id, PUC.c.feature_id, PUC.c.spec)
                .where(PUC.c.plan_id.in_(chunk))
                .order_by(PUC.c.plan_id, PUC.c.feature_id, PUC.c.currency)
            )
            for row in rows:
                self.charges[row.plan_id].setdefault(row.feature_id, []).append(charge_from_spec(row.spec))


def _applicable(charges: dict[int, list[Any]], terms: Terms, features: dict[int, tuple[str, str | None]],
                excluded: set[tuple[int, int]], notes: list[str]) -> list[tuple[int, Any]]:
    """(feature id, charge) this subscription pays, by feature identifier; notes what it does not."""
    out = []
    for feature_id, options in charges.items():
        if (terms.id, feature_id) in excluded:
            continue
        feature = features[feature_id][0]
        if terms.currency is not None:
            chosen = [c for c in options if c.currency == terms.currency]
            if not chosen:
                _note(notes, f"{terms.public_id} ({terms.plan}) pays in {terms.currency}, but the plan charges "
                             f"'{feature}' only in {', '.join(c.currency for c in options)}: not charged.")
                continue
        elif len(options) == 1:
            chosen = options
        else:
            _note(notes, f"{terms.public_id} ({terms.plan}) has no currency and the plan charges '{feature}' in "
                         f"{', '.join(c.currency for c in options)}: not charged.")
            continue
        out.append((feature_id, chosen[0]))
    return sorted(out, key=lambda item: features[item[0]][0])


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)


# -- rating a batch of customers -------------------------------------------------------------------


_TERMS_COLUMNS = (S.c.id, S.c.public_id, S.c.customer_id, S.c.plan_id, P.c.identifier.label("plan"), S.c.status,
                  S.c.interval, S.c.currency, S.c.amount_minor, S.c.start_at, S.c.trial_end, S.c.cancel_at)


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


def _excluded(session: Session, subscription_ids: Sequence[int]) -> set[tuple[int, int]]:
    if not subscription_ids:
        return set()
    rows = session.execute(
        select(SF.c.subscription_id, SF.c.feature_id)
        .where(SF.c.subscription_id.in_(list(subscription_ids)), SF.c.excluded.is_(True))
    )
    return {(row.subscription_id, row.feature_id) for row in rows}


def usage_sums(session: Session, windows: Sequence[tuple[int, int, int, datetime, datetime]]) -> dict[int, int]:
    """Sum of usage (millionths) per key, for windows (key, customer id, feature id, start, end):
    one grouped query (per WINDOW_CHUNK windows), the windows joined to the events by the index on
    (customer, feature, time)."""
    totals: dict[int, int] = defaultdict(int)
    for start in range(0, len(windows), WINDOW_CHUNK):
        chunk = windows[start:start + WINDOW_CHUNK]
        w = values(column("k", Integer), column("c", Integer), column("f", Integer), column("s", DateTime),
                   column("e", DateTime), name="w").data(list(chunk)).cte("w")
        stmt = (
            select(w.c.k, func.sum(E.c.quantity_micros))
            .select_from(w.join(E, and_(E.c.customer_id == w.c.c, E.c.feature_id == w.c.f,
                                        E.c.occurred_at >= w.c.s, E.c.occurred_at < w.c.e)))
            .group_by(w.c.k)
        )
        for key, micros in session.execute(stmt):
            totals[key] += int(micros or 0)
    return totals


@dataclass
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
    from tollgate.money import format_decimal, from_micros
    from tollgate.rating import rate

    terms_by_customer = _terms_of(session, [c.id for c in customers])
    every = [t for subs in terms_by_customer.values() for t in subs]
    catalog.load(session, {t.plan_id for t in every})
    excluded = _excluded(session, [t.id for t in every])
    drafted: list[tuple[Any, list[Any], list[str]]] = []
    windows: list[tuple[int, int, int, datetime, datetime]] = []
    keys = 0
    for customer in customers:
        lines: list[Any] = []
        notes: list[str] = []
        drafted.append((customer, lines, notes))
        subs = terms_by_customer.get(customer.id, [])
        periods = {terms.id: billing_periods(terms, selection) for terms in subs}
        charging: dict[int, list[Terms]] = defaultdict(list)  # feature id -> subscriptions charging it, oldest first
        applicable: dict[int, list[tuple[int, Any]]] = {}
        for terms in subs:
            applicable[terms.id] = _applicable(catalog.charges.get(terms.plan_id, {}), terms, catalog.features,
                                               excluded, notes if periods[terms.id] else [])
            for feature_id, _ in applicable[terms.id]:
                charging[feature_id].append(terms)
        for terms in subs:
            chargeable = terms.chargeable
            for period in periods[terms.id]:
                charged = _overlap(period, chargeable) if chargeable is not None else None
                if terms.amount_minor is not None and terms.currency is not None:
                    base = _base_line(terms, period, charged)
                    if base is not None:
                        lines.append(base)
                for feature_id, charge in applicable[terms.id]:
                    feature, unit = catalog.features[feature_id]
                    draft = _Draft(terms, period, charged, feature, unit, charge)
                    lines.append(draft)
                    if charged is None:
                        continue
                    older = [t.chargeable for t in charging[feature_id] if _older(t, terms) and t.chargeable]
                    pieces = _subtract(charged, older)
                    if pieces:
                        draft.key, keys = keys, keys + 1
                        windows.extend((draft.key, customer.id, feature_id, piece.start, piece.end or _FOREVER)
                                       for piece in pieces)
    sums = usage_sums(session, windows) if windows else {}
    previews = []
    for customer, lines, notes in drafted:
        if not lines:
            continue
        done = []
        for line in lines:
            if isinstance(line, _Draft):
                quantity = from_micros(sums.get(line.key, 0)) if line.key is not None else ZERO
                note = None
                if quantity < 0:
                    note = (f"the events of this period sum to {format_decimal(quantity)} "
                            "(a void of an earlier event): rated as 0.")
                    _note(notes, f"{line.terms.public_id} '{line.feature}': {note}")
                    quantity = ZERO
                line = _usage_line(line, rate(line.charge, quantity), note)
            done.append(line)
        totals: dict[str, Decimal] = {}
        for line in done:
            totals[line.currency] = totals.get(line.currency, ZERO) + line.amount
        previews.append(InvoicePreview(customer.identifier, customer.name, selection, tuple(done),
                                       dict(sorted(totals.items())), tuple(notes)))
    return previews


def _older(a: Terms, b: Terms) -> bool:
    return (a.start_at, a.id) < (b.start_at, b.id)


def _base_line(terms: Terms, period: Period, charged: Period | None) -> InvoiceLine | None:
    """The fee of one billing period (None: a one-time purchase in a month after the one it is charged in)."""
    from tollgate.money import from_minor

    price = from_minor(terms.amount_minor, terms.currency)
    zero = from_minor(0, terms.currency)
    one = Decimal(1)

    def line(amount: Decimal, billable: Decimal, **extra: Any) -> InvoiceLine:
        return InvoiceLine("base", terms.public_id, terms.plan, None, terms.interval, period, charged, one, ZERO,
                           billable, terms.currency, amount, price=price, **extra)

    if terms.interval == "once":
        start = terms.chargeable.start if terms.chargeable is not None else None
        if start is not None and start in period:
            return line(price, one)  # bought here (or its trial ended here): the whole one-time price
        if period.start == terms.start_at:
            return line(zero, ZERO, note=f"in trial until {rfc3339(terms.trial_end)}: "
                                         "the one-time price is charged when the trial ends")
        return None
    if charged is None:
        return line(zero, ZERO, note=f"in trial until {rfc3339(terms.trial_end)}: not charged")
    if charged == period or period.end is None:
        return line(price, one)
    share = _share(charged, period)
    reasons = []
    if charged.start != period.start:
        reasons.append(f"trial until {rfc3339(charged.start)}")
    if charged.end != period.end:
        reasons.append(f"access ended {rfc3339(charged.end)}")
    minor = round(terms.amount_minor * share)  # Fraction: exact, and round() is half-even
    return line(from_minor(minor, terms.currency), one, proration=share, note="prorated: " + ", ".join(reasons))


def _usage_line(draft: _Draft, rated: Any, note: str | None) -> InvoiceLine:
    terms = draft.terms
    if draft.charged is None and note is None:
        note = "in trial: usage not charged" if terms.trial_end else "no chargeable time in this period"
    return InvoiceLine("usage", terms.public_id, terms.plan, draft.feature, terms.interval, draft.period,
                       draft.charged, rated.quantity, rated.included, rated.billable, draft.charge.currency,
                       rated.amount, rated=rated, unit=draft.unit, note=note)


# -- entry points ----------------------------------------------------------------------------------


def preview(session: Session, *, customer: str, period: str | None = None, at: datetime | str | None = None,
            now: datetime | None = None) -> InvoicePreview:
    """The preview of one customer's bill for the selected periods (see the module docstring).

    Unknown customer: NotFound. An archived customer's past periods can still be previewed."""
    selection = select_periods(period=period, at=at, now=now)
    row = session.execute(select(C.c.id, C.c.identifier, C.c.name).where(C.c.identifier == customer)).first()
    if row is None:
        raise NotFound(f"No customer has the identifier '{customer}'.",
                       hint="See `tollgate customer list --all --search ...`.")
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
