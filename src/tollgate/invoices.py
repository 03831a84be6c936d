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
  the batch's subscriptions, their left-out features, and the usage sums of all its windows at once
  (usage.window_batch: the windows in a temporary table, three grouped statements over the rollups). Memory
  stays bounded by the batch. Customers with nothing on their preview are left out of the run.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlmodel import Session

from tollgate.clock import rfc3339
from tollgate.unknown import no_customer
from tollgate.money import CURRENCY_EXPONENTS, WIDE
from tollgate.models import Customer, Feature, Plan, PlanUsageCharge, Subscription, SubscriptionFeature, UsageEvent
from tollgate.invoice_lines import ZERO_MONEY, InvoiceLine, InvoicePreview, _money
from tollgate.invoice_periods import (Selection, Terms, billing_periods, overlap, select_periods, time_share,
                                      subtract)
from tollgate.periods import Period

if TYPE_CHECKING:
    from tollgate.rating import RatedCharge

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


# -- the catalog a batch needs ---------------------------------------------------------------------


@dataclass
class _Catalog:
    """Features and plans' usage charges, loaded once per run and kept for every batch."""

    features: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    charges: dict[int, dict[int, list[Any]]] = field(default_factory=dict)  # plan version -> feature -> charges
    applicable: dict[tuple[int, str | None], tuple[list, list]] = field(default_factory=dict)
    unused: dict[int, RatedCharge] = field(default_factory=dict)  # id of a charge above -> its rating of zero units

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
    """The previews of a batch of customers: their lines drafted, every usage sum of the batch read at
    once (usage.window_batch), then rated. Customers with no line are left out."""
    from tollgate.money import format_decimal
    from tollgate.rating import rate
    from tollgate.usage.window_batch import window_totals

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
    sums = window_totals(session, windows)
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
                    if id(line.charge) not in catalog.unused:
                        catalog.unused[id(line.charge)] = rate(line.charge, ZERO)
                    rated = catalog.unused[id(line.charge)]
                line = lines[index] = _usage_line(line, rated, note)
            totals[line.currency] = totals[line.currency] + line.amount if line.currency in totals else line.amount
        previews.append(InvoicePreview(customer.identifier, customer.name, selection, tuple(lines),
                                       dict(sorted(totals.items())) if len(totals) > 1 else totals, tuple(notes)))
    return previews


def _note_uncharged_usage(session: Session, drafted: list, terms_by_customer: dict[int, list[Terms]],
                          selection: Selection, catalog: _Catalog) -> None:
    """Add invoice_uncharged's notes (usage on a feature the plan does not charge) to the drafts."""
    from tollgate.invoice_uncharged import uncharged_usage_notes

    billed: list[tuple[Terms, list[Period]]] = []
    charged: dict[int, set[int]] = {}
    for customer, _, _ in drafted:
        for terms in terms_by_customer[customer.id]:
            spans = [overlap(period, terms.access) for period in billing_periods(terms, selection)]
            billed.append((terms, [span for span in spans if span is not None]))
            for version_id in (terms.version_id, terms.next_version_id):
                if version_id is not None:
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
            charged = overlap(period, chargeable) if chargeable is not None else None
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
                    pieces = subtract(charged, [t.chargeable for t in sharing if _older(t, terms) and t.chargeable])
                if pieces:
                    draft.key = key = len(windows)
                    for piece in pieces:
                        windows.append((key, customer_id, feature_id, piece.start, piece.end or _FOREVER))
    return lines


def _by_version(terms: Terms, periods: list[Period]) -> list[tuple[Terms, list[Period]]]:
    """The periods with the terms each bills under: from a scheduled move's boundary on (a period
    start), the new version's charges and price."""
    boundary, version_id = terms.next_version_at, terms.next_version_id
    if boundary is None:
        return [(terms, periods)]
    assert version_id is not None  # a scheduled move has its version and its time
    moved = replace(terms, version_id=version_id, amount_minor=terms.next_amount_minor,
                    next_version_id=None, next_version_at=None, next_amount_minor=None)
    parts = ((terms, [p for p in periods if p.start is not None and p.start < boundary]),
             (moved, [p for p in periods if p.start is not None and p.start >= boundary]))
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
    # the caller bills only priced subscriptions: a price, its currency and its amount
    assert price is not None and terms.currency is not None and terms.amount_minor is not None
    amount, billable, share, note = price, _ONE, None, None
    if terms.interval == "once":
        start = terms.chargeable.start if terms.chargeable is not None else None
        if start is None or start not in period:  # the whole one-time price, in the month it is bought
            if period.start != terms.start_at:
                return None
            amount, billable = ZERO_MONEY[CURRENCY_EXPONENTS[terms.currency]], ZERO
            note = f"in trial until {rfc3339(terms.trial_end)}: " + (
                "the one-time price is charged when the trial ends" if start is not None
                else "access ended in the trial: not charged")
    elif charged is None:
        amount, billable = ZERO_MONEY[CURRENCY_EXPONENTS[terms.currency]], ZERO
        note = f"in trial until {rfc3339(terms.trial_end)}: not charged"
    elif charged is not period and charged != period and period.end is not None:
        share = time_share(charged, period)
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
