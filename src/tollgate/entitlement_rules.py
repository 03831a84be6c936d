"""The rules of access (spec Rules 3 and 4), without the database: what one subscription's grant is
(with its adjustment), how the grants of several live subscriptions combine, how an override replaces
the result, and the verdict of a check. entitlements.py reads the rows these rules are applied to;
its docstring states the rules in words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from tollgate.clock import rfc3339
from tollgate.entitlement_views import ZERO, CheckResult, EffectiveEntitlement, FeatureRef
from tollgate.errors import InvalidInput
from tollgate.grants import Grant, value_from_json


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


def contribution(feature: str, ftype: str, row: Any) -> Contribution | None:
    planned = _plan_grant(feature, ftype, row)
    adjusted = row.adj_id is not None
    grant = _adjusted(planned, row) if adjusted else planned
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
        numbers = [v for v in values if isinstance(v, (int, Decimal)) and not isinstance(v, bool)]
        if len(numbers) == len(values):
            best = max(numbers)
            chosen = [c for c in contributions if c.grant.value == best]
            return Combined(Grant(feature, "config", value=best), _labels(chosen), anchor)
        newest = max(contributions, key=lambda c: (c.start_at, c.subscription_id))
        return Combined(Grant(feature, "config", value=newest.grant.value), (newest.source,), anchor)
    primary = contributions[0].grant
    limits = [c.grant.limit for c in contributions]
    unlimited = any(limit is None for limit in limits)
    total = None if unlimited else sum((limit for limit in limits if limit is not None), ZERO)
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


def override_of(row: Any) -> OverrideRow | None:
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
    common: dict[str, Any] = dict(feature=e.feature, type=e.type, value=e.value, source=e.source, customer=customer,
                  quantity=quantity)
    if e.type == "boolean":
        reason = None if e.value else f"'{e.feature}' is turned off for '{customer}' ({e.source})."
        return CheckResult(allowed=bool(e.value), limit=None, used=None, remaining=None, reset_at=None, hard=None,
                           reason=reason, **common)
    if e.type == "config":
        return CheckResult(allowed=True, limit=None, used=None, remaining=None, reset_at=None, hard=None,
                           reason=None, **common)
    metered: dict[str, Any] = dict(limit=e.limit, used=e.used, remaining=e.remaining, reset_at=e.reset_at, hard=e.hard,
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


def crossings(limit: Decimal | None, alerts: Sequence[int], before: Decimal, after: Decimal) -> list[int]:
    """The thresholds (percents of `limit`; 100 = the limit itself) that usage crosses going from
    `before` to `after` (before < threshold <= after). None/empty when unlimited or not rising."""
    if limit is None or after <= before:
        return []
    percents = sorted({*alerts, 100})
    return [p for p in percents if before < limit * p / 100 <= after]
