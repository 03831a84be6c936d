"""Effective entitlements (spec Rule 3), usage in the current period (Rule 4), and the access check.

What a customer may do at a moment is computed, never stored:
1. Every subscription of the customer that is live at that moment (started, not yet ended: trialing,
   active or past_due; a subscription canceled at period end stays live until then) whose plan
   grants the feature contributes the plan's grant, with the subscription's own adjustments applied
   (`--feature F=VALUE` replaces the value or allowance; `--without F` removes the feature from that
   subscription only).
2. The contributions combine: boolean: any is on; config number: the largest; config text (or a
   mix of text and numbers): the newest subscription's; metered: allowances add up, unlimited wins,
   hard only if every source is hard, alert thresholds are the union of the sources'.
3. An unexpired override (expires_at later than the moment, or none) replaces the result. A metered
   override sets the allowance; its hard flag is its own when set, else the combined result's (soft
   when no subscription grants the feature); the reset cadence and alerts stay the combined
   result's (monthly, none, without one).
4. An archived customer has no access at all (no entitlements, every check denied).

Usage periods (metered): usage in the current period is the sum of the customer's events for the
feature in [period start, period end). The period is the entitlement's reset cadence counted from an
anchor: the start of the *oldest* live subscription that grants the feature (so adding a second
subscription, or changing plan, never moves the period of usage already counted). An override-only
feature uses the oldest live subscription of the customer; with no live subscription at all,
periods are UTC calendar periods (see periods.py). `never` counts everything since the anchor.

`source` says where a value came from: `plan:<plan>` (a plan's grant as is), `sub:<sub_id>` (a
subscription's own adjustment), `override`; combined sources are joined with `+`.

Checks (`check`, `consume`):
- boolean: allowed when on. config: allowed when granted (the application reads `value`).
- metered: unlimited -> allowed; hard limit -> allowed while used + quantity <= limit; soft limit ->
  always allowed, and `overage` says how far past the allowance the period is (would be, for check).
- `consume` checks and records in ONE write transaction (BEGIN IMMEDIATE, taken before the usage is
  read; on PostgreSQL, a transaction-scoped advisory lock on the customer and feature, taken before
  the usage is read: `locks.lock_customer_feature`), so concurrent callers can never push usage past a
  hard limit. Past a hard limit it RETURNS the denied result (allowed False, nothing recorded); it
  does not raise. With an idempotency key that was already recorded (a retry), nothing is recorded
  again and the result is allowed.
- `used`/`remaining` are the period's figures before the request for `check`, after it for an
  allowed `consume`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, or_, select

from tollgate import tables
from tollgate.clock import rfc3339, utcnow
from tollgate.errors import InvalidInput, NotFound
from tollgate.statuses import ENDED_STATUSES
from tollgate.unknown import no_customer
from tollgate.entitlement_rules import (ZERO, Combined, Contribution, OverrideRow, apply_override, combine,
                                        contribution, crossings, decide, override_of, parse_quantity)
from tollgate.entitlement_views import CheckResult, EffectiveEntitlement, FeatureRef
from tollgate.grants import Grant
from tollgate.sub_versions import version_at
from tollgate.lazy import lazy_module
from tollgate.periods import Period, reset_period

if TYPE_CHECKING:  # annotations only: the read path runs on a Core Connection, without sqlmodel
    from sqlalchemy.engine import Connection
    from sqlmodel import Session as OrmSession

    Session = OrmSession | Connection  # what runs this module's Core statements: either one

    from tollgate.models import Customer, Feature

journal = lazy_module("tollgate.journal")  # written on consume only; it loads sqlmodel (the models)


# Core only, over the light table clauses (no model classes to define at start-up): see tables.py.
C = tables.customer
F = tables.feature
O = tables.override  # noqa: E741 - the table's initial, like the others
P = tables.plan
PE = tables.plan_entitlement
S = tables.subscription
SF = tables.subscription_feature


def live_condition(at: Any):
    """SQL: the subscription is live at `at` (a value or bindparam): started, and not ended.

    Trialing/active/past_due subscriptions are live until their `cancel_at` (if any); canceled and
    expired ones were live until their `cancel_at` (so `--at` in the past sees them)."""
    live_status = and_(*(S.c.status != status for status in ENDED_STATUSES))  # trialing/active/past_due
    return and_(S.c.start_at <= at, or_(and_(live_status, S.c.cancel_at.is_(None)), S.c.cancel_at > at))


_GRANT_COLUMNS = (
    S.c.id.label("sid"),
    S.c.public_id.label("spub"),
    S.c.start_at.label("start_at"),
    P.c.identifier.label("plan"),
    PE.c.feature_id.label("feature_id"),
    PE.c.value.label("value"),
    PE.c.limit_micros.label("limit_micros"),
    PE.c.reset.label("reset"),
    PE.c.hard.label("hard"),
    PE.c.alerts.label("alerts"),
    SF.c.id.label("adj_id"),
    SF.c.excluded.label("adj_excluded"),
    SF.c.value.label("adj_value"),
    SF.c.limit_micros.label("adj_limit_micros"),
    SF.c.unlimited.label("adj_unlimited"),
    SF.c.hard.label("adj_hard"),
    SF.c.reset.label("adj_reset"),
)
_GRANTS_FROM = (
    S.join(P, P.c.id == S.c.plan_id)
    .join(PE, PE.c.plan_version_id == version_at(bindparam("at")))
    .outerjoin(SF, and_(SF.c.subscription_id == S.c.id, SF.c.feature_id == PE.c.feature_id))
)
_GRANTS_OF_CUSTOMER = (
    select(*_GRANT_COLUMNS, F.c.identifier.label("feature"), F.c.type.label("ftype"), F.c.unit.label("unit"))
    .select_from(_GRANTS_FROM.join(F, F.c.id == PE.c.feature_id))
    .where(S.c.customer_id == bindparam("customer_id"), live_condition(bindparam("at")))
    .order_by(S.c.start_at, S.c.id)
)
_OVERRIDE_COLUMNS = (
    O.c.value.label("o_value"),
    O.c.limit_micros.label("o_limit_micros"),
    O.c.unlimited.label("o_unlimited"),
    O.c.hard.label("o_hard"),
    O.c.expires_at.label("o_expires_at"),
    O.c.id.label("o_id"),
)
_ACCESS = (  # the hot path's first statement: the customer, its override and its live grants of one feature
    select(C.c.id, C.c.identifier, C.c.status, *_OVERRIDE_COLUMNS, *_GRANT_COLUMNS)
    .select_from(  # outer joins all the way (no nested join, which SQLite would materialise)
        C.outerjoin(O, and_(O.c.customer_id == C.c.id, O.c.feature_id == bindparam("feature_id")))
        .outerjoin(S, and_(S.c.customer_id == C.c.id, live_condition(bindparam("at"))))
        .outerjoin(PE, and_(PE.c.plan_version_id == version_at(bindparam("at")),
                            PE.c.feature_id == bindparam("feature_id")))
        .outerjoin(P, P.c.id == S.c.plan_id)
        .outerjoin(SF, and_(SF.c.subscription_id == S.c.id, SF.c.feature_id == PE.c.feature_id))
    )
    .where(C.c.identifier == bindparam("customer"))
    .order_by(S.c.start_at, S.c.id)
)
_OVERRIDES_OF_CUSTOMER = (
    select(*_OVERRIDE_COLUMNS, F.c.id.label("feature_id"), F.c.identifier.label("feature"),
           F.c.type.label("ftype"), F.c.unit.label("unit"))
    .select_from(O.join(F, F.c.id == O.c.feature_id))
    .where(O.c.customer_id == bindparam("customer_id"))
)
_OLDEST_LIVE = (
    select(S.c.start_at)
    .where(S.c.customer_id == bindparam("customer_id"), live_condition(bindparam("at")))
    .order_by(S.c.start_at, S.c.id)
    .limit(1)
)
_FEATURE = select(F.c.id, F.c.identifier, F.c.type, F.c.unit).where(F.c.identifier == bindparam("identifier"))
_CUSTOMER = select(C.c.id, C.c.status).where(C.c.identifier == bindparam("identifier"))
# -- evaluating ------------------------------------------------------------------------------------------


def lookup_feature(session: Session, identifier: str) -> FeatureRef:
    row = session.execute(_FEATURE, {"identifier": identifier}).first()
    if row is None:
        raise NotFound(f"No feature has the identifier '{identifier}'.", hint="See `tollgate feature list --all`.")
    return FeatureRef(row.id, row.identifier, row.type, row.unit)


def _oldest_live_start(session: Session, customer_id: int, at: datetime) -> datetime | None:
    row = session.execute(_OLDEST_LIVE, {"customer_id": customer_id, "at": at}).first()
    return row.start_at if row is not None else None


def _evaluate(
    session: Session,
    *,
    customer_id: int,
    feature: FeatureRef,
    combined: Combined | None,
    override: OverrideRow | None,
    at: datetime,
    with_usage: bool = True,
) -> EffectiveEntitlement | None:
    active = override if override is not None and override.active(at) else None
    if active is not None:
        if combined is None and feature.type == "metered":
            combined = Combined(Grant(feature.identifier, "metered"), (), _oldest_live_start(session, customer_id, at))
            result = apply_override(feature.identifier, feature.type, combined, active)
            result = Combined(replace(result.grant, hard=bool(active.hard) and result.grant.limit is not None),
                              result.sources, result.anchor)
        else:
            result = apply_override(feature.identifier, feature.type, combined, active)
    elif combined is None:
        return None
    else:
        result = combined
    grant = result.grant
    if grant.type != "metered":
        return EffectiveEntitlement(
            feature=feature.identifier, type=grant.type, value=grant.value, limit=None, hard=False, reset=None,
            alerts=(), source="+".join(result.sources), period_start=None, reset_at=None, used=ZERO,
            remaining=None, sources=result.sources, feature_id=feature.id, unit=feature.unit, anchor=result.anchor,
            override_expires_at=active.expires_at if active is not None else None,
        )
    period = _current_period(grant.reset, at, result.anchor)
    used = usage_in(session, customer_id=customer_id, feature_id=feature.id, period=period) if with_usage else ZERO
    return EffectiveEntitlement(
        feature=feature.identifier, type="metered", value=None, limit=grant.limit, hard=grant.hard,
        reset=grant.reset, alerts=grant.alerts, source="+".join(result.sources), period_start=period.start,
        reset_at=period.end, used=used, remaining=None if grant.limit is None else max(grant.limit - used, ZERO),
        sources=result.sources, feature_id=feature.id, unit=feature.unit, anchor=result.anchor,
        override_expires_at=active.expires_at if active is not None else None,
    )


_PERIODS: dict[tuple[str, datetime | None], Period] = {}


def _current_period(reset: str, at: datetime, anchor: datetime | None) -> Period:
    """periods.reset_period, remembering the last period per (cadence, anchor): the answer is the same
    for every moment inside it, and checks ask about "now" again and again."""
    key = (reset, anchor)
    period = _PERIODS.get(key)
    if period is None or at not in period:
        if len(_PERIODS) > 50_000:
            _PERIODS.clear()
        period = _PERIODS[key] = reset_period(reset, at, anchor=anchor)
    return period


def usage_in(session: Session, *, customer_id: int, feature_id: int, period: Period) -> Decimal:
    """The sum of the customer's usage of a feature in [period.start, period.end) (voids included),
    from the rollups (usage.rollups.window_total: a few bounded queries, whatever the history)."""
    from tollgate.money import from_micros
    from tollgate.usage.rollups import window_total

    return from_micros(window_total(session, customer_id=customer_id, feature_id=feature_id,
                                    start=period.start, end=period.end))


@dataclass(frozen=True)
class _Access:
    """What the access statement read: the customer row, its override of the feature, the grant rows."""

    customer: Any
    override: OverrideRow | None
    grants: list[Any]


def _access(session: Session, customer: Customer | str, feature: FeatureRef, at: datetime) -> _Access:
    """The customer (NotFound when unknown), its override and its live grants of the feature at `at`,
    in one statement (a row per live subscription; one whose plan lacks the feature grants nothing)."""
    identifier = customer if isinstance(customer, str) else customer.identifier
    rows = session.execute(_ACCESS, {"customer": identifier, "feature_id": feature.id, "at": at}).all()
    if not rows:
        raise no_customer(session, identifier)
    return _Access(rows[0], override_of(rows[0]), [row for row in rows if row.feature_id is not None])


def _feature_ref(session: Session, feature: FeatureRef | Feature | str) -> FeatureRef:
    if isinstance(feature, FeatureRef):
        return feature
    if isinstance(feature, str):
        return lookup_feature(session, feature)
    return FeatureRef(feature.id, feature.identifier, feature.type, feature.unit)


def effective_entitlement(
    session: Session,
    *,
    customer: Customer | str,
    feature: FeatureRef | Feature | str,
    at: datetime | None = None,
    with_usage: bool = True,
) -> EffectiveEntitlement | None:
    """The customer's effective entitlement for one feature at `at` (default now), with usage in the
    current period; None when nothing grants it (or the customer is archived: no access).

    Unknown customer or feature: NotFound. Two indexed statements (the customer with its override and
    live grants; the usage of the period); `with_usage=False` skips the second (used = 0)."""
    at = at or utcnow()
    ref = _feature_ref(session, feature)
    access = _access(session, customer, ref, at)
    if access.customer.status == "archived":
        return None
    return _entitlement_of(session, access, ref, at, with_usage=with_usage)


def _entitlement_of(
    session: Session, access: _Access, feature: FeatureRef, at: datetime, with_usage: bool = True
) -> EffectiveEntitlement | None:
    contributions = [c for c in (contribution(feature.identifier, feature.type, r) for r in access.grants)
                     if c is not None]
    combined = combine(feature.identifier, feature.type, contributions)
    return _evaluate(session, customer_id=access.customer.id, feature=feature, combined=combined,
                     override=access.override, at=at, with_usage=with_usage)


def effective_entitlements(
    session: Session, *, customer: Customer | str, at: datetime | None = None, with_usage: bool = True
) -> list[EffectiveEntitlement]:
    """Every effective entitlement of the customer at `at` (default now), ordered by feature identifier.

    A boolean turned off (by an adjustment or an override) is listed, with value False."""
    at = at or utcnow()
    identifier = customer if isinstance(customer, str) else customer.identifier
    row = session.execute(_CUSTOMER, {"identifier": identifier}).first()
    if row is None:
        raise no_customer(session, identifier)
    if row.status == "archived":
        return []
    customer_id = row.id
    by_feature: dict[int, list[Contribution]] = {}
    refs: dict[int, FeatureRef] = {}
    for grant_row in session.execute(_GRANTS_OF_CUSTOMER, {"customer_id": customer_id, "at": at}):
        ref = refs.setdefault(grant_row.feature_id, FeatureRef(grant_row.feature_id, grant_row.feature,
                                                                grant_row.ftype, grant_row.unit))
        granted = contribution(ref.identifier, ref.type, grant_row)
        bucket = by_feature.setdefault(ref.id, [])
        if granted is not None:
            bucket.append(granted)
    overrides: dict[int, OverrideRow | None] = {}
    for o_row in session.execute(_OVERRIDES_OF_CUSTOMER, {"customer_id": customer_id}):
        refs.setdefault(o_row.feature_id, FeatureRef(o_row.feature_id, o_row.feature, o_row.ftype, o_row.unit))
        overrides[o_row.feature_id] = override_of(o_row)
    out: list[EffectiveEntitlement] = []
    for feature_id, ref in refs.items():
        combined = combine(ref.identifier, ref.type, by_feature.get(feature_id, []))
        entitlement = _evaluate(session, customer_id=customer_id, feature=ref, combined=combined,
                                override=overrides.get(feature_id), at=at, with_usage=with_usage)
        if entitlement is not None:
            out.append(entitlement)
    return sorted(out, key=lambda e: e.feature)


def check(
    session: Session,
    *,
    customer: str,
    feature: FeatureRef | Feature | str,
    quantity: Any = 1,
    at: datetime | None = None,
) -> CheckResult:
    """May `customer` use `quantity` of `feature` at `at` (default now)? Reads only; records nothing.

    Unknown customer or feature: NotFound (the CLI's exit 2); every other answer is a CheckResult."""
    at = at or utcnow()
    amount = parse_quantity(quantity)
    ref = _feature_ref(session, feature)
    access = _access(session, customer, ref, at)
    row = access.customer
    if row.status == "archived":
        return decide(None, customer=row.identifier, feature=ref, quantity=amount, archived=True)
    return decide(_entitlement_of(session, access, ref, at), customer=row.identifier, feature=ref, quantity=amount)


def consume(
    session: Session,
    *,
    customer: str,
    feature: FeatureRef | Feature | str,
    quantity: Any = 1,
    key: str | None = None,
    now: datetime | None = None,
) -> CheckResult:
    """Check and, when allowed, record `quantity` units at `now` — in the caller's transaction, which
    must be a write transaction begun BEFORE anything is read (BEGIN IMMEDIATE; `Tollgate.consume`
    does this), so that no other writer can add usage between the check and the insert.

    Past a hard limit: returns the denied result, records nothing. A key already recorded for the
    same customer, feature and quantity is a retry: allowed, nothing recorded again
    (`recorded` False). The same key for a different event: Conflict."""
    from tollgate import identifiers
    from tollgate.locks import lock_customer_feature
    from tollgate.money import to_micros
    from tollgate.usage.store import insert_event, stored_event

    now = now or utcnow()
    amount = parse_quantity(quantity)
    ref = _feature_ref(session, feature)
    if ref.type != "metered":
        raise InvalidInput(
            f"'{ref.identifier}' is a {ref.type} feature; only metered features are consumed.",
            hint="Use check without --consume.",
        )
    access = _access(session, customer, ref, now)  # grants: no consume changes them, read before the lock
    row = access.customer
    lock_customer_feature(session, row.id, ref.id)  # PostgreSQL: what BEGIN IMMEDIATE does on SQLite
    if key is not None:
        from tollgate.usage.values import parse_key

        key = parse_key(key)
        previous = stored_event(session, key)
        if previous is not None:
            if (previous.customer_id, previous.feature_id, previous.quantity_micros) != (
                row.id, ref.id, to_micros(amount)
            ):
                from tollgate.errors import Conflict

                raise Conflict(
                    f"The usage key '{key}' was already used for a different event.",
                    hint="Each event needs its own key; re-send an event only with exactly the same values.",
                )
            entitlement = _entitlement_of(session, access, ref, now)
            result = decide(entitlement, customer=row.identifier, feature=ref, quantity=amount,
                            archived=row.status == "archived")
            return replace(result, allowed=True, reason=None, key=key, recorded=False)
    if row.status == "archived":
        return decide(None, customer=row.identifier, feature=ref, quantity=amount, archived=True)
    entitlement = _entitlement_of(session, access, ref, now)
    result = decide(entitlement, customer=row.identifier, feature=ref, quantity=amount)
    if not result.allowed or entitlement is None:
        return result
    key = key or identifiers.public_id("use", 20)
    insert_event(session, key=key, customer_id=row.id, feature_id=ref.id, quantity_micros=to_micros(amount),
                 occurred_at=now, recorded_at=now, reason="check --consume")
    after = entitlement.used + amount
    notices = _record_crossings(session, entitlement, customer=row.identifier, customer_id=row.id,
                                before=entitlement.used, after=after, now=now)
    remaining = None if entitlement.limit is None else max(entitlement.limit - after, ZERO)
    overage = ZERO if entitlement.limit is None else max(after - entitlement.limit, ZERO)
    return replace(result, used=after, remaining=remaining, overage=overage, recorded=True, key=key,
                   notices=notices)


def _record_crossings(
    session: Session, entitlement: EffectiveEntitlement, *, customer: str, customer_id: int, before: Decimal,
    after: Decimal, now: datetime,
) -> tuple[str, ...]:
    """Journal each alert threshold / limit the usage just crossed (Rule 6); return notices to print."""
    from tollgate.money import format_decimal

    notices: list[str] = []
    if entitlement.limit is None:  # unlimited: nothing to cross
        return ()
    for percent in crossings(entitlement.limit, entitlement.alerts, before, after):
        limit = format_decimal(entitlement.limit)
        used = format_decimal(after)
        if percent == 100:
            action = "usage.limit"
            kind = "hard" if entitlement.hard else "soft"
            text = f"'{customer}' reached its {kind} limit for '{entitlement.feature}': {used} of {limit} used."
        else:
            action = "usage.alert"
            text = f"'{customer}' passed {percent}% of its '{entitlement.feature}' allowance: {used} of {limit} used."
        journal.record(session, action=action, object_type="customer", object_id=customer, customer_id=customer_id,
                       details={"feature": entitlement.feature, "percent": percent, "used": used, "limit": limit,
                                "period_start": rfc3339(entitlement.period_start),
                                "reset_at": rfc3339(entitlement.reset_at)},
                       at=now)
        notices.append(text)
    return tuple(notices)
