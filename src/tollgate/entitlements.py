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
  the usage is read: `db.lock_customer_feature`), so concurrent callers can never push usage past a
  hard limit. Past a hard limit it RETURNS the denied result (allowed False, nothing recorded); it
  does not raise. With an idempotency key that was already recorded (a retry), nothing is recorded
  again and the result is allowed.
- `used`/`remaining` are the period's figures before the request for `check`, after it for an
  allowed `consume`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, or_, select

from tollgate import tables
from tollgate.clock import rfc3339, utcnow
from tollgate.errors import InvalidInput, NotFound
from tollgate.statuses import ENDED_STATUSES
from tollgate.unknown import no_customer
from tollgate.sub_versions import version_at
from tollgate.grants import Grant, value_from_json
from tollgate.lazy import lazy_module
from tollgate.periods import Period, reset_period

if TYPE_CHECKING:  # annotations only: the read path runs on a Core Connection, without sqlmodel
    from sqlmodel import Session

    from tollgate.models import Customer, Feature

journal = lazy_module("tollgate.journal")  # written on consume only; it loads sqlmodel (the models)

ZERO = Decimal(0)

# Core only, over the light table clauses (no model classes to define at start-up): see tables.py.
C = tables.customer
F = tables.feature
O = tables.override  # noqa: E741 - the table's initial, like the others
P = tables.plan
PE = tables.plan_entitlement
S = tables.subscription
SF = tables.subscription_feature
OPEN_START = datetime(1, 1, 1)
OPEN_END = datetime(9999, 12, 31, 23, 59, 59, 999999)


# -- results ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureRef:
    """What the access path needs of a feature. A feature's id, identifier and type never change."""

    id: int
    identifier: str
    type: str
    unit: str | None = None


@dataclass(frozen=True)
class EffectiveEntitlement:
    """What a customer may do with one feature at a moment, and how much of it is used.

    - `value`: boolean True/False, config number (int or Decimal) or text; None for metered.
    - `limit`: the metered allowance per period (None = unlimited; None for other types).
    - `hard`/`reset`/`alerts`: metered only (False / None / () otherwise).
    - `period_start`, `reset_at`: the current usage period [period_start, reset_at); None = open.
    - `used`: usage in that period (Decimal; 0 for non-metered); `remaining`: limit - used, never
      below 0 (None when unlimited or not metered); `overage`: used beyond a limit (0 if none).
    - `source`: `plan:pro`, `sub:sub_...`, `override`, or several joined with `+`.
    - `anchor`: the subscription start the periods are counted from (None: calendar periods).
    """

    feature: str
    type: str
    value: bool | int | Decimal | str | None
    limit: Decimal | None
    hard: bool
    reset: str | None
    alerts: tuple[int, ...]
    source: str
    period_start: datetime | None
    reset_at: datetime | None
    used: Decimal
    remaining: Decimal | None
    sources: tuple[str, ...] = ()
    feature_id: int | None = None
    unit: str | None = None
    anchor: datetime | None = None
    override_expires_at: datetime | None = None

    @property
    def metered(self) -> bool:
        return self.type == "metered"

    @property
    def unlimited(self) -> bool:
        return self.type == "metered" and self.limit is None

    @property
    def overage(self) -> Decimal:
        if self.type != "metered" or self.limit is None:
            return ZERO
        return max(self.used - self.limit, ZERO)

    @property
    def enabled(self) -> bool:
        """Whether the feature is usable at all: a boolean that is on; any granted config or metered."""
        return bool(self.value) if self.type == "boolean" else True

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape (decimal strings for quantities, RFC 3339 times)."""
        metered = self.type == "metered"
        return {
            "feature": self.feature,
            "type": self.type,
            "value": _json_value(self.value),
            "limit": _dec(self.limit) if metered else None,
            "unlimited": self.limit is None if metered else None,
            "used": _dec(self.used) if metered else None,
            "remaining": _dec(self.remaining) if metered else None,
            "overage": _dec(self.overage) if metered else None,
            "reset": self.reset if metered else None,
            "period_start": rfc3339(self.period_start) if metered else None,
            "reset_at": rfc3339(self.reset_at) if metered else None,
            "hard": self.hard if metered else None,
            "alerts": list(self.alerts) if metered else None,
            "unit": self.unit if metered else None,
            "source": self.source,
            "sources": list(self.sources),
            "override_expires_at": rfc3339(self.override_expires_at),
        }


@dataclass(frozen=True)
class CheckResult:
    """The answer to "may this customer use this feature (this much) now?".

    `to_dict()` gives the `check --json` shape. `recorded` is True only when `consume` recorded the
    usage in this call; `notices` are alert-threshold / limit crossings that call caused (for stderr).
    """

    allowed: bool
    feature: str
    type: str
    value: bool | int | Decimal | str | None
    limit: Decimal | None
    used: Decimal | None
    remaining: Decimal | None
    reset_at: datetime | None
    hard: bool | None
    source: str | None
    reason: str | None
    customer: str = ""
    quantity: Decimal = Decimal(1)
    overage: Decimal | None = None
    period_start: datetime | None = None
    recorded: bool = False
    key: str | None = None
    notices: tuple[str, ...] = field(default=(), compare=False)

    def __bool__(self) -> bool:
        return self.allowed

    def to_dict(self) -> dict[str, Any]:
        metered = self.type == "metered"
        return {
            "allowed": self.allowed,
            "customer": self.customer,
            "feature": self.feature,
            "type": self.type,
            "value": _json_value(self.value),
            "quantity": _dec(self.quantity) if metered else None,
            "limit": _dec(self.limit),
            "unlimited": (self.limit is None and self.source is not None) if metered else None,
            "used": _dec(self.used),
            "remaining": _dec(self.remaining),
            "overage": _dec(self.overage),
            "period_start": rfc3339(self.period_start),
            "reset_at": rfc3339(self.reset_at),
            "hard": self.hard,
            "source": self.source,
            "reason": self.reason,
            "recorded": self.recorded,
            "key": self.key,
        }


def _dec(number: Decimal | None) -> str | None:
    if number is None:
        return None
    from tollgate.money import format_decimal

    return format_decimal(number)


def _json_value(value: Any) -> Any:
    return _dec(value) if isinstance(value, Decimal) else value


# -- contributions: what each live subscription grants ---------------------------------------------------


@dataclass(frozen=True)
class Contribution:
    """One live subscription's grant for one feature, with the subscription's adjustment applied."""

    subscription_id: int
    subscription: str  # sub_...
    plan: str
    start_at: datetime
    grant: Grant
    adjusted: bool

    @property
    def source(self) -> str:
        return f"sub:{self.subscription}" if self.adjusted else f"plan:{self.plan}"


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
_GRANTS_OF_FEATURE = (
    select(*_GRANT_COLUMNS)
    .select_from(_GRANTS_FROM)
    .where(
        S.c.customer_id == bindparam("customer_id"),
        PE.c.feature_id == bindparam("feature_id"),
        live_condition(bindparam("at")),
    )
    .order_by(S.c.start_at, S.c.id)
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
_CUSTOMER_AND_OVERRIDE = (
    select(C.c.id, C.c.identifier, C.c.status, *_OVERRIDE_COLUMNS)
    .select_from(C.outerjoin(O, and_(O.c.customer_id == C.c.id, O.c.feature_id == bindparam("feature_id"))))
    .where(C.c.identifier == bindparam("customer"))
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
def _plan_grant(feature: str, ftype: str, row: Any) -> Grant:
    from tollgate.money import from_micros

    if ftype == "metered":
        micros = row.limit_micros
        return Grant(
            feature,
            "metered",
            limit=None if micros is None else from_micros(micros),
            reset=row.reset or "month",
            hard=bool(row.hard),
            alerts=tuple(int(a) for a in (row.alerts or "").split(",") if a),
        )
    return Grant(feature, ftype, value=value_from_json(row.value))


def _adjusted(grant: Grant, row: Any) -> Grant | None:
    """The plan's grant with the subscription's adjustment (None: excluded from this subscription)."""
    from tollgate.grants import check_metered
    from tollgate.money import from_micros

    if row.adj_excluded:
        return None
    if grant.type != "metered":
        return replace(grant, value=value_from_json(row.adj_value)) if row.adj_value is not None else grant
    changes: dict[str, Any] = {}
    if row.adj_unlimited:
        changes.update(limit=None, hard=False, alerts=())
    elif row.adj_limit_micros is not None:
        changes["limit"] = from_micros(row.adj_limit_micros)
    if row.adj_hard is not None and not row.adj_unlimited:
        changes["hard"] = bool(row.adj_hard)
    if row.adj_reset:
        changes["reset"] = row.adj_reset
    adjusted = replace(grant, **changes)
    if adjusted.limit is None:
        adjusted = replace(adjusted, hard=False, alerts=())
    return check_metered(adjusted)


def _contribution(feature: str, ftype: str, row: Any) -> Contribution | None:
    grant = _plan_grant(feature, ftype, row)
    adjusted = row.adj_id is not None
    if adjusted:
        grant = _adjusted(grant, row)
        if grant is None:
            return None
    return Contribution(row.sid, row.spub, row.plan, row.start_at, grant, adjusted)


# -- combining -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Combined:
    grant: Grant
    sources: tuple[str, ...]
    anchor: datetime | None


def combine(feature: str, ftype: str, contributions: Sequence[Contribution]) -> Combined | None:
    """Rule 3 without overrides. `contributions` in subscription order (oldest first)."""
    if not contributions:
        return None
    anchor = contributions[0].start_at
    if ftype == "boolean":
        on = [c for c in contributions if c.grant.value]
        chosen = on or list(contributions)
        return Combined(Grant(feature, "boolean", value=bool(on)), _labels(chosen), anchor)
    if ftype == "config":
        values = [c.grant.value for c in contributions]
        if all(isinstance(v, (int, Decimal)) and not isinstance(v, bool) for v in values):
            best = max(values)
            chosen = [c for c in contributions if c.grant.value == best]
            return Combined(Grant(feature, "config", value=best), _labels(chosen), anchor)
        newest = max(contributions, key=lambda c: (c.start_at, c.subscription_id))
        return Combined(Grant(feature, "config", value=newest.grant.value), (newest.source,), anchor)
    primary = contributions[0].grant
    limits = [c.grant.limit for c in contributions]
    unlimited = any(limit is None for limit in limits)
    total = None if unlimited else sum(limits, ZERO)
    hard = not unlimited and all(c.grant.hard for c in contributions)
    alerts = () if unlimited else tuple(sorted({a for c in contributions for a in c.grant.alerts}))
    grant = Grant(feature, "metered", limit=total, reset=primary.reset, hard=hard, alerts=alerts)
    return Combined(grant, _labels(contributions), anchor)


def _labels(contributions: Iterable[Contribution]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for c in contributions:
        seen.setdefault(c.source, None)
    return tuple(seen)


@dataclass(frozen=True)
class OverrideRow:
    value: str | None
    limit_micros: int | None
    unlimited: bool
    hard: bool | None
    expires_at: datetime | None

    def active(self, at: datetime) -> bool:
        return self.expires_at is None or at < self.expires_at


def _override_row(row: Any) -> OverrideRow | None:
    if row.o_id is None:
        return None
    return OverrideRow(row.o_value, row.o_limit_micros, bool(row.o_unlimited), row.o_hard, row.o_expires_at)


def apply_override(feature: str, ftype: str, combined: Combined | None, override: OverrideRow) -> Combined:
    """An unexpired override replaces the combined result (see the module docstring for metered)."""
    from tollgate.money import from_micros

    anchor = combined.anchor if combined else None
    if ftype != "metered":
        return Combined(Grant(feature, ftype, value=value_from_json(override.value)), ("override",), anchor)
    base = combined.grant if combined else Grant(feature, "metered")
    if override.unlimited or override.limit_micros is None:
        grant = Grant(feature, "metered", limit=None, reset=base.reset, hard=False, alerts=())
    else:
        hard = override.hard if override.hard is not None else (base.hard if combined else False)
        grant = Grant(feature, "metered", limit=from_micros(override.limit_micros), reset=base.reset,
                      hard=bool(hard), alerts=base.alerts)
    return Combined(grant, ("override",), anchor)


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
    overridden = override is not None and override.active(at)
    if overridden:
        if combined is None and feature.type == "metered":
            combined = Combined(Grant(feature.identifier, "metered"), (), _oldest_live_start(session, customer_id, at))
            result = apply_override(feature.identifier, feature.type, combined, override)
            result = Combined(replace(result.grant, hard=bool(override.hard) and result.grant.limit is not None),
                              result.sources, result.anchor)
        else:
            result = apply_override(feature.identifier, feature.type, combined, override)
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
            override_expires_at=override.expires_at if overridden else None,
        )
    period = _current_period(grant.reset, at, result.anchor)
    used = usage_in(session, customer_id=customer_id, feature_id=feature.id, period=period) if with_usage else ZERO
    return EffectiveEntitlement(
        feature=feature.identifier, type="metered", value=None, limit=grant.limit, hard=grant.hard,
        reset=grant.reset, alerts=grant.alerts, source="+".join(result.sources), period_start=period.start,
        reset_at=period.end, used=used, remaining=None if grant.limit is None else max(grant.limit - used, ZERO),
        sources=result.sources, feature_id=feature.id, unit=feature.unit, anchor=result.anchor,
        override_expires_at=override.expires_at if overridden else None,
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
    from the rollups (usage_rollups.window_total: a few bounded queries, whatever the history)."""
    from tollgate.money import from_micros
    from tollgate.usage_rollups import window_total

    return from_micros(window_total(session, customer_id=customer_id, feature_id=feature_id,
                                    start=period.start, end=period.end))


def _customer_ref(session: Session, customer: Customer | str, feature_id: int) -> tuple[Any, OverrideRow | None]:
    identifier = customer if isinstance(customer, str) else customer.identifier
    row = session.execute(_CUSTOMER_AND_OVERRIDE, {"customer": identifier, "feature_id": feature_id}).first()
    if row is None:
        raise no_customer(session, identifier)
    return row, _override_row(row)


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

    Unknown customer or feature: NotFound. Three indexed queries (customer + override, live grants,
    usage sum); `with_usage=False` skips the sum (used = 0)."""
    at = at or utcnow()
    ref = _feature_ref(session, feature)
    row, override = _customer_ref(session, customer, ref.id)
    if row.status == "archived":
        return None
    return _entitlement_of(session, customer_id=row.id, feature=ref, override=override, at=at, with_usage=with_usage)


def _entitlement_of(
    session: Session, *, customer_id: int, feature: FeatureRef, override: OverrideRow | None, at: datetime,
    with_usage: bool = True,
) -> EffectiveEntitlement | None:
    rows = session.execute(_GRANTS_OF_FEATURE, {"customer_id": customer_id, "feature_id": feature.id, "at": at}).all()
    contributions = [c for c in (_contribution(feature.identifier, feature.type, r) for r in rows) if c is not None]
    combined = combine(feature.identifier, feature.type, contributions)
    return _evaluate(session, customer_id=customer_id, feature=feature, combined=combined, override=override, at=at,
                     with_usage=with_usage)


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
        contribution = _contribution(ref.identifier, ref.type, grant_row)
        bucket = by_feature.setdefault(ref.id, [])
        if contribution is not None:
            bucket.append(contribution)
    overrides: dict[int, OverrideRow] = {}
    for o_row in session.execute(_OVERRIDES_OF_CUSTOMER, {"customer_id": customer_id}):
        refs.setdefault(o_row.feature_id, FeatureRef(o_row.feature_id, o_row.feature, o_row.ftype, o_row.unit))
        overrides[o_row.feature_id] = _override_row(o_row)
    out: list[EffectiveEntitlement] = []
    for feature_id, ref in refs.items():
        combined = combine(ref.identifier, ref.type, by_feature.get(feature_id, []))
        entitlement = _evaluate(session, customer_id=customer_id, feature=ref, combined=combined,
                                override=overrides.get(feature_id), at=at, with_usage=with_usage)
        if entitlement is not None:
            out.append(entitlement)
    return sorted(out, key=lambda e: e.feature)


# -- the access check ------------------------------------------------------------------------------------


def parse_quantity(quantity: Any) -> Decimal:
    """A positive exact quantity (int, decimal string or Decimal; never a float), to the millionth."""
    if type(quantity) is int and 0 < quantity <= 1_000_000_000_000:
        return Decimal(quantity)
    from tollgate.money import QUANTITY_PLACES, decimal_places, parse_decimal

    number = parse_decimal(quantity, what="the quantity")
    if number <= 0:
        raise InvalidInput(f"the quantity must be more than zero, not {quantity}.")
    if decimal_places(number) > QUANTITY_PLACES:
        raise InvalidInput(f"the quantity has more than {QUANTITY_PLACES} decimal places.")
    return number


def decide(
    entitlement: EffectiveEntitlement | None,
    *,
    customer: str,
    feature: FeatureRef,
    quantity: Decimal,
    archived: bool = False,
) -> CheckResult:
    """The verdict for a request of `quantity` units against an effective entitlement."""
    from tollgate.money import format_decimal

    if archived:
        return CheckResult(False, feature.identifier, feature.type, None, None, None, None, None, None, None,
                           f"The customer '{customer}' is archived and has no access.", customer, quantity)
    if entitlement is None:
        return CheckResult(False, feature.identifier, feature.type, None, None, None, None, None, None, None,
                           f"'{feature.identifier}' is not included in any live subscription of '{customer}'.",
                           customer, quantity)
    e = entitlement
    common = dict(feature=e.feature, type=e.type, value=e.value, source=e.source, customer=customer,
                  quantity=quantity)
    if e.type == "boolean":
        reason = None if e.value else f"'{e.feature}' is turned off for '{customer}' ({e.source})."
        return CheckResult(allowed=bool(e.value), limit=None, used=None, remaining=None, reset_at=None, hard=None,
                           reason=reason, **common)
    if e.type == "config":
        return CheckResult(allowed=True, limit=None, used=None, remaining=None, reset_at=None, hard=None,
                           reason=None, **common)
    metered = dict(limit=e.limit, used=e.used, remaining=e.remaining, reset_at=e.reset_at, hard=e.hard,
                   period_start=e.period_start)
    if e.limit is None:
        return CheckResult(allowed=True, reason=None, overage=ZERO, **metered, **common)
    after = e.used + quantity
    if e.hard and after > e.limit:
        unit = f" {feature.unit}(s)" if feature.unit else ""
        per = "" if e.reset == "never" else f" per {e.reset}"
        resets = f"; it resets at {rfc3339(e.reset_at)}" if e.reset_at else ""
        reason = (
            f"The hard limit of {format_decimal(e.limit)}{unit}{per} for '{e.feature}' would be exceeded: "
            f"{format_decimal(e.used)} used, {format_decimal(e.remaining or ZERO)} remaining, "
            f"{format_decimal(quantity)} requested{resets}."
        )
        return CheckResult(allowed=False, reason=reason, overage=e.overage, **metered, **common)
    return CheckResult(allowed=True, reason=None, overage=max(after - e.limit, ZERO), **metered, **common)


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
    row, override = _customer_ref(session, customer, ref.id)
    if row.status == "archived":
        return decide(None, customer=row.identifier, feature=ref, quantity=amount, archived=True)
    entitlement = _entitlement_of(session, customer_id=row.id, feature=ref, override=override, at=at)
    return decide(entitlement, customer=row.identifier, feature=ref, quantity=amount)


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
    from tollgate.db import lock_customer_feature
    from tollgate.money import to_micros
    from tollgate.usage_store import insert_event, stored_event

    now = now or utcnow()
    amount = parse_quantity(quantity)
    ref = _feature_ref(session, feature)
    if ref.type != "metered":
        raise InvalidInput(
            f"'{ref.identifier}' is a {ref.type} feature; only metered features are consumed.",
            hint="Use check without --consume.",
        )
    row, override = _customer_ref(session, customer, ref.id)
    lock_customer_feature(session, row.id, ref.id)  # PostgreSQL: what BEGIN IMMEDIATE does on SQLite
    if key is not None:
        from tollgate.usage import parse_key

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
            entitlement = _entitlement_of(session, customer_id=row.id, feature=ref, override=override, at=now)
            result = decide(entitlement, customer=row.identifier, feature=ref, quantity=amount,
                            archived=row.status == "archived")
            return replace(result, allowed=True, reason=None, key=key, recorded=False)
    if row.status == "archived":
        return decide(None, customer=row.identifier, feature=ref, quantity=amount, archived=True)
    entitlement = _entitlement_of(session, customer_id=row.id, feature=ref, override=override, at=now)
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


def crossings(limit: Decimal | None, alerts: Sequence[int], before: Decimal, after: Decimal) -> list[int]:
    """The thresholds (percents of `limit`; 100 = the limit itself) that usage crosses going from
    `before` to `after` (before < threshold <= after). None/empty when unlimited or not rising."""
    if limit is None or after <= before:
        return []
    percents = sorted({*alerts, 100})
    return [p for p in percents if before < limit * p / 100 <= after]


def _record_crossings(
    session: Session, entitlement: EffectiveEntitlement, *, customer: str, customer_id: int, before: Decimal,
    after: Decimal, now: datetime,
) -> tuple[str, ...]:
    """Journal each alert threshold / limit the usage just crossed (Rule 6); return notices to print."""
    from tollgate.money import format_decimal

    notices = []
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
