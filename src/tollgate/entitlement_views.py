"""What the access path answers: a feature reference, an effective entitlement, a check's result.

Frozen values with `to_dict()` (the `--json` shapes); built by entitlements.py and entitlement_rules.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tollgate.clock import rfc3339

ZERO = Decimal(0)

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
