"""Pricing metered usage under a usage charge: flat, package, tiered, volume and stair-step.

Rating is exact: every product and sum is computed in `money.EXACT` (a result that would need
rounding raises `decimal.Inexact` rather than being silently wrong), and the amount is rounded
half-even to the currency's minor unit once, at the line total.

Decisions (also in the docstrings below):
- `included` units are free; the models price `billable = max(0, quantity - included)`.
- A tier covers the units above the previous tier's `up_to` up to and including its own `up_to`.
- Zero billable units cost nothing in every model, and no tier's flat price is charged.
- A quantity above the last bounded tier is priced by the last tier. The catalog requires tiered and
  volume tables to end with an open tier (no `up_to`), so this only shapes stair-step tables: there,
  the last step's flat price covers everything above it.
- Tiered and volume tiers may carry an optional `flat_price`, a fee charged when the quantity
  reaches the tier (tiered: every tier entered; volume: the tier reached).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from tollgate import identifiers
from tollgate.errors import InvalidInput
from tollgate.money import (
    EXACT,
    MAX_MAGNITUDE,
    QUANTITY_PLACES,
    decimal_places,
    format_decimal,
    format_money,
    format_rate,
    parse_amount,
    parse_decimal,
    parse_rate,
    quantize_money,
    validate_currency,
)

MODELS = ("flat", "package", "tiered", "volume", "stair-step")
_MODEL_KEYS = {
    "flat": ("unit_price",),
    "package": ("package_size", "package_price"),
    "tiered": ("tiers",),
    "volume": ("tiers",),
    "stair-step": ("tiers",),
}
_COMMON_KEYS = ("feature", "currency", "model", "included")
_KNOWN_KEYS = frozenset(_COMMON_KEYS).union(*_MODEL_KEYS.values())
_TIER_KEYS = {
    "tiered": ("up_to", "unit_price", "flat_price"),
    "volume": ("up_to", "unit_price", "flat_price"),
    "stair-step": ("up_to", "flat_price"),
}
_TIERS_EXAMPLE = '[ { up_to = 1000, unit_price = "0.10" }, { unit_price = "0.05" } ]'


@dataclass(frozen=True)
class Tier:
    """Units above the previous tier's `up_to`, up to and including this `up_to` (None: no bound)."""

    up_to: Decimal | None
    unit_price: Decimal | None = None
    flat_price: Decimal | None = None


@dataclass(frozen=True)
class UsageCharge:
    """How a plan prices one metered feature. Build it with `charge_from_dict` to have it validated."""

    feature: str
    currency: str
    model: str
    included: Decimal = Decimal(0)
    unit_price: Decimal | None = None
    package_size: int | None = None
    package_price: Decimal | None = None
    tiers: tuple[Tier, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON (and catalog) shape (see charge_to_dict)."""
        return charge_to_dict(self)


@dataclass(frozen=True)
class TierLine:
    """One tier's share of a rated quantity: units above `start`, up to `up_to`; `amount` is exact."""

    start: Decimal
    up_to: Decimal | None
    quantity: Decimal
    unit_price: Decimal | None
    flat_price: Decimal | None
    amount: Decimal


@dataclass(frozen=True)
class RatedCharge:
    """A priced quantity. `amount` is `exact_amount` rounded half-even to the minor unit.

    `tiers` breaks tiered, volume and stair-step charges down (empty when nothing is billable, and
    for flat and package charges); `packages` is the number of packages of a package charge.
    """

    charge: UsageCharge
    quantity: Decimal
    included: Decimal
    billable: Decimal
    exact_amount: Decimal
    amount: Decimal
    tiers: tuple[TierLine, ...] = ()
    packages: int | None = None


def rate(charge: UsageCharge, quantity: Decimal | int) -> RatedCharge:
    """Price `quantity` units (a non-negative Decimal or int) under `charge`."""
    quantity = _usage_quantity(quantity)
    packages = None
    lines: tuple[TierLine, ...] = ()
    with localcontext(EXACT):
        billable = max(quantity - charge.included, Decimal(0))
        match charge.model:
            case "flat":
                assert charge.unit_price is not None  # charge_from_dict: a flat charge has a unit price
                exact = billable * charge.unit_price
            case "package":
                assert charge.package_size is not None and charge.package_price is not None  # likewise
                packages = _package_count(billable, charge.package_size)
                exact = packages * charge.package_price
            case "tiered" | "volume" | "stair-step":
                price_tiers = _graduated if charge.model == "tiered" else _reached
                lines = price_tiers(charge.tiers, billable)
                exact = sum((line.amount for line in lines), Decimal(0))
            case _:
                raise InvalidInput(f"unknown charge model {charge.model!r}; use one of {', '.join(MODELS)}.")
    return RatedCharge(
        charge=charge,
        quantity=quantity,
        included=charge.included,
        billable=billable,
        exact_amount=exact,
        amount=quantize_money(exact, charge.currency),
        tiers=lines,
        packages=packages,
    )


def _usage_quantity(quantity: Decimal | int) -> Decimal:
    if isinstance(quantity, bool) or not isinstance(quantity, (int, Decimal)):
        raise TypeError(f"a usage quantity is a Decimal or an int, not {type(quantity).__name__}")
    number = Decimal(quantity)
    if not number.is_finite() or number < 0:
        raise InvalidInput(f"a usage quantity must be a finite number of zero or more, got {quantity}.")
    return number


def _package_count(billable: Decimal, size: int) -> int:
    """Whole packages needed for `billable` units; a partial package counts as one."""
    whole, rest = divmod(billable, size)
    return int(whole) + (1 if rest else 0)


def _graduated(tiers: tuple[Tier, ...], billable: Decimal) -> tuple[TierLine, ...]:
    """Tiered: each unit priced by the tier it falls in; the last tier takes all units above."""
    lines = []
    start = Decimal(0)
    for index, tier in enumerate(tiers):
        if billable <= start:
            break
        is_last = index == len(tiers) - 1
        end = billable if tier.up_to is None or is_last else min(billable, tier.up_to)
        lines.append(_line(tier, start, end - start))
        start = end
    return tuple(lines)


def _reached(tiers: tuple[Tier, ...], billable: Decimal) -> tuple[TierLine, ...]:
    """Volume and stair-step: the tier the whole quantity reaches (else the last) prices all of it."""
    if not billable:
        return ()
    start = Decimal(0)
    for tier in tiers[:-1]:
        if tier.up_to is None or billable <= tier.up_to:
            return (_line(tier, start, billable),)
        start = tier.up_to
    return (_line(tiers[-1], start, billable),)


def _line(tier: Tier, start: Decimal, units: Decimal) -> TierLine:
    amount = units * (tier.unit_price or 0) + (tier.flat_price or 0)
    return TierLine(start, tier.up_to, units, tier.unit_price, tier.flat_price, amount)


def charge_from_dict(data: object, *, path: str) -> UsageCharge:
    """Validate a usage charge in its catalog (TOML) shape; errors name the TOML path.

    `path` is where the table sits, e.g. "plans.pro.usage_charges[0]".
    """
    table = _table(data, path=path, what="a usage charge")
    _refuse_unknown_keys(table, _KNOWN_KEYS, path=path, what="a usage charge")
    model = _model(table, path=path)
    _check_model_keys(table, model, path=path)
    feature = _feature(table["feature"], path=f"{path}.feature")
    currency = validate_currency(table["currency"], path=f"{path}.currency")
    included = Decimal(0)
    if "included" in table:
        included = _quantity(table["included"], path=f"{path}.included", what="included", zero_ok=True)
    fields: dict[str, Any]
    match model:
        case "flat":
            fields = {"unit_price": _rate_value(table["unit_price"], path=f"{path}.unit_price")}
        case "package":
            size = _package_size(table["package_size"], path=f"{path}.package_size")
            price = _money_value(table["package_price"], currency, path=f"{path}.package_price")
            fields = {"package_size": size, "package_price": price}
        case _:
            fields = {"tiers": _tiers(table["tiers"], model, currency, path=f"{path}.tiers")}
    return UsageCharge(feature=feature, currency=currency, model=model, included=included, **fields)


def charge_to_dict(charge: UsageCharge) -> dict[str, object]:
    """The canonical catalog shape: prices as strings, whole quantities as ints, stable key order.

    `included` is left out when zero. `charge_from_dict(charge_to_dict(c), ...) == c`.
    """
    data: dict[str, object] = {
        "feature": charge.feature,
        "currency": charge.currency,
        "model": charge.model,
    }
    if charge.included:
        data["included"] = _quantity_out(charge.included)
    match charge.model:
        case "flat":
            assert charge.unit_price is not None
            data["unit_price"] = format_rate(charge.unit_price, charge.currency)
        case "package":
            assert charge.package_price is not None
            data["package_size"] = charge.package_size
            data["package_price"] = format_money(charge.package_price, charge.currency)
        case _:
            data["tiers"] = [_tier_to_dict(tier, charge.currency) for tier in charge.tiers]
    return data


def _tier_to_dict(tier: Tier, currency: str) -> dict[str, object]:
    data: dict[str, object] = {}
    if tier.up_to is not None:
        data["up_to"] = _quantity_out(tier.up_to)
    if tier.unit_price is not None:
        data["unit_price"] = format_rate(tier.unit_price, currency)
    if tier.flat_price is not None:
        data["flat_price"] = format_money(tier.flat_price, currency)
    return data


def _quantity_out(quantity: Decimal) -> int | str:
    return int(quantity) if decimal_places(quantity) == 0 else format_decimal(quantity)


def _table(data: object, *, path: str, what: str) -> dict[str, object]:
    if not isinstance(data, dict):
        raise InvalidInput(f"{what} must be a table, not {_kind(data)}.", path=path)
    for key in data:
        if not isinstance(key, str):
            raise InvalidInput(f"{what} has a key that is not text ({_kind(key)}).", path=path)
    return data


def _kind(value: object) -> str:
    """What a value is, in TOML's words: "a string", "an integer", "a float", "an array"..."""
    kinds = {str: "a string", int: "an integer", float: "a float", bool: "a boolean", list: "an array",
             dict: "a table", type(None): "nothing"}
    return kinds.get(type(value), f"a {type(value).__name__}")


def _refuse_unknown_keys(
    table: dict[str, object], known: frozenset[str] | tuple[str, ...], *, path: str, what: str
) -> None:
    for key in table:
        if key not in known:
            raise InvalidInput(
                f"unknown key {key!r} in {what}; the keys are {', '.join(sorted(known))}.",
                path=f"{path}.{key}",
            )


def _model(table: dict[str, object], *, path: str) -> str:
    model = table.get("model")
    if model not in MODELS:
        shown = "missing" if model is None else f"{model!r}" if isinstance(model, str) else "not text"
        raise InvalidInput(f"model is {shown}; use one of {', '.join(MODELS)}.", path=f"{path}.model")
    return model


def _check_model_keys(table: dict[str, object], model: str, *, path: str) -> None:
    """Refuse keys that belong to another model, and require this model's own keys."""
    own = _MODEL_KEYS[model]
    for key in table:
        if key not in _COMMON_KEYS and key not in own:
            raise InvalidInput(
                f"{key!r} does not apply to the {model} model, which uses {', '.join(own)}.",
                path=f"{path}.{key}",
            )
    for key in ("feature", "currency"):
        if key not in table:
            raise InvalidInput(f"{key} is missing.", path=f"{path}.{key}")
    for key in own:
        if key not in table:
            raise InvalidInput(
                f"{key} is missing; the {model} model needs {' and '.join(own)}.", path=f"{path}.{key}"
            )


def _feature(value: object, *, path: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(
            f"feature must be a feature identifier in quotes, not {_kind(value)}.", path=path
        )
    return identifiers.validate(value, kind="feature identifier", path=path)


def _quantity(value: object, *, path: str, what: str, zero_ok: bool) -> Decimal:
    """A non-negative count of units (an int or a decimal string, at most 6 decimal places)."""
    quantity = parse_decimal(value, path=path, what=what)
    if decimal_places(quantity) > QUANTITY_PLACES:
        raise InvalidInput(f"{what} has more than {QUANTITY_PLACES} decimal places.", path=path)
    if not zero_ok and not quantity:
        raise InvalidInput(f"{what} must be greater than zero.", path=path)
    return quantity


def _require_string(value: object, *, path: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(
            f'prices are written as strings in quotes, like "10.00", so they stay exact; '
            f"not {_kind(value)}.",
            path=path,
        )
    return value


def _rate_value(value: object, *, path: str) -> Decimal:
    return parse_rate(_require_string(value, path=path), path=path)


def _money_value(value: object, currency: str, *, path: str) -> Decimal:
    return parse_amount(_require_string(value, path=path), currency, path=path)


def _package_size(value: object, *, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_MAGNITUDE:
        raise InvalidInput(
            "package_size must be a whole number of units greater than zero, like 100.", path=path
        )
    return value


def _tiers(value: object, model: str, currency: str, *, path: str) -> tuple[Tier, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"tiers must be a non-empty list of tables, like {_TIERS_EXAMPLE}.", path=path)
    tiers: list[Tier] = []
    for index, item in enumerate(value):
        tier_path = f"{path}[{index}]"
        tier = _tier(item, model, currency, path=tier_path, is_last=index == len(value) - 1)
        previous = tiers[-1].up_to if tiers else None  # only the last tier may have no bound
        if previous is not None and tier.up_to is not None and tier.up_to <= previous:
            raise InvalidInput(
                f"up_to must be greater than the previous tier's ({format_decimal(previous)}).",
                path=f"{tier_path}.up_to",
            )
        tiers.append(tier)
    return tuple(tiers)


def _tier(item: object, model: str, currency: str, *, path: str, is_last: bool) -> Tier:
    keys = _TIER_KEYS[model]
    table = _table(item, path=path, what="a tier")
    _refuse_unknown_keys(table, keys, path=path, what=f"a {model} tier")
    up_to = None
    if "up_to" in table:
        if is_last and model != "stair-step":
            raise InvalidInput(
                f"the last {model} tier must leave out up_to, so that every quantity has a price.",
                path=f"{path}.up_to",
            )
        up_to = _quantity(table["up_to"], path=f"{path}.up_to", what="up_to", zero_ok=False)
    elif not is_last:
        raise InvalidInput("up_to is missing; only the last tier may leave it out.", path=f"{path}.up_to")
    price_key = "flat_price" if model == "stair-step" else "unit_price"
    if price_key not in table:
        raise InvalidInput(f"{price_key} is missing from this {model} tier.", path=f"{path}.{price_key}")
    unit_price = flat_price = None
    if "unit_price" in table:
        unit_price = _rate_value(table["unit_price"], path=f"{path}.unit_price")
    if "flat_price" in table:
        flat_price = _money_value(table["flat_price"], currency, path=f"{path}.flat_price")
    return Tier(up_to=up_to, unit_price=unit_price, flat_price=flat_price)
