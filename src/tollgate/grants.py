"""What a plan (or a subscription adjustment, or an override) grants for one feature: the shared vocabulary.

A `Grant` is the value side of an entitlement, independent of where it comes from:
- boolean: `value` is True or False.
- config: `value` is a number (an int, or a Decimal when it has decimals) or text. Text that reads as a
  number (`"10"`, `"2.5"` on the command line) is a number; anything else (`"eu"`) is text.
- metered: `limit` is the allowance per reset period (a Decimal, None = unlimited), `reset` the cadence,
  `hard` whether access stops at the allowance, `alerts` the percents of the allowance that notify.

Words accepted for booleans on the command line: true/false, yes/no, on/off, 1/0 (any case).
In TOML, a boolean is a TOML boolean (`sso = true`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from tollgate import text as text_rule
from tollgate.errors import InvalidInput

RESETS = ("never", "day", "week", "28d", "month", "quarter", "year")
INTERVALS = ("month", "year", "28d", "quarter", "half-year", "once")
FEATURE_TYPES = ("boolean", "metered", "config")

MAX_ALERT = 1000
"""Alert thresholds are percents of the allowance, 1..1000 (above 100: overage on a soft limit)."""
MAX_CONFIG_TEXT = 500
MAX_CONFIG_DIGITS = 15
"""Config numbers keep at most 15 significant digits, so that a TOML float carries them exactly."""

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NUMBER = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?$")


@dataclass(frozen=True)
class Grant:
    """What one source grants for one feature."""

    feature: str  # identifier
    type: str  # boolean | metered | config
    value: bool | int | Decimal | str | None = None  # boolean/config
    limit: Decimal | None = None  # metered allowance per period; None = unlimited
    reset: str = "month"  # metered
    hard: bool = False  # metered
    alerts: tuple[int, ...] = ()  # metered, percents

    @property
    def unlimited(self) -> bool:
        return self.type == "metered" and self.limit is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of an entitlement of a plan (see grant_dict)."""
        return grant_dict(self)


# -- parsing ---------------------------------------------------------------------------------------


def parse_feature_assignment(text: str) -> tuple[str, str]:
    """`"api-calls=10000"` -> `("api-calls", "10000")`; anything without `FEATURE=VALUE` is InvalidInput."""
    from tollgate import identifiers

    feature, sep, value = (text or "").partition("=")
    feature = feature.strip()
    if not sep or not feature:
        raise InvalidInput(
            f"'{text}' is not FEATURE=VALUE.", hint="For example --feature api-calls=10000 or --feature sso=true."
        )
    identifiers.validate(feature, kind="feature identifier")
    return feature, value.strip()


def parse_grant(feature_identifier: str, feature_type: str, raw: str, *, path: str | None = None) -> Grant:
    """A grant from command-line text: "true"/"false"; "10"/"eu"; "10000"/"unlimited"."""
    text = raw.strip() if isinstance(raw, str) else ""
    if feature_type == "boolean":
        return Grant(feature_identifier, "boolean", value=parse_bool(text, feature=feature_identifier, path=path))
    if feature_type == "config":
        return Grant(feature_identifier, "config", value=parse_config_value(text, path=path))
    if feature_type == "metered":
        return Grant(feature_identifier, "metered", limit=parse_limit(text, path=path))
    raise InvalidInput(f"Unknown feature type '{feature_type}': use {', '.join(FEATURE_TYPES)}.", path=path)


def parse_bool(text: str, *, feature: str = "", path: str | None = None) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    what = f"'{feature}' is a boolean feature" if feature else "this is a boolean"
    raise InvalidInput(f"{what}: use true or false, not '{text}'.", path=path)


def parse_config_value(value: Any, *, path: str | None = None) -> int | Decimal | str:
    """A config value: a number stays a number (an int when whole), anything else is text.

    `value` is command-line text, or a TOML value (int, float, str)."""
    if isinstance(value, bool):
        raise InvalidInput(
            "a config value is a number or text, not true/false (use a boolean feature for on/off).", path=path
        )
    if isinstance(value, int):
        return _config_number(Decimal(value), shown=str(value), path=path)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidInput("a config number must be finite.", path=path)
        return _config_number(Decimal(repr(value)), shown=repr(value), path=path)
    if isinstance(value, Decimal):
        return _config_number(value, shown=str(value), path=path)
    if not isinstance(value, str):
        raise InvalidInput(f"a config value is a number or text, not a {type(value).__name__}.", path=path)
    return value_from_text(value, path=path)


def value_from_text(text: str, *, path: str | None = None) -> int | Decimal | str:
    stripped = text.strip()
    if _NUMBER.match(stripped):
        return _config_number(Decimal(stripped), shown=stripped, path=path)
    return config_text(text, path=path)


def config_text(text: str, *, path: str | None = None) -> str:
    stripped = text.strip()
    if not stripped:
        raise InvalidInput("a config value cannot be empty.", path=path)
    if len(stripped) > MAX_CONFIG_TEXT:
        raise InvalidInput(f"a config value is at most {MAX_CONFIG_TEXT} characters.", path=path)
    text_rule.check(stripped, what="a config value", path=path, multiline=True)
    return stripped


def _config_number(number: Decimal, *, shown: str, path: str | None) -> int | Decimal:
    from tollgate.money import MAX_MAGNITUDE, format_decimal

    if not number.is_finite() or number.copy_abs() > MAX_MAGNITUDE:
        raise InvalidInput(f"the config number {shown} is out of range (at most {MAX_MAGNITUDE:,} either way).",
                           path=path)
    plain = Decimal(format_decimal(number))
    if plain == plain.to_integral_value():
        return int(plain)
    if len(plain.as_tuple().digits) > MAX_CONFIG_DIGITS:
        raise InvalidInput(
            f"the config number {shown} has more than {MAX_CONFIG_DIGITS} significant digits; "
            "write it as text in quotes if it is a setting.",
            path=path,
        )
    return plain


def parse_limit(value: Any, *, path: str | None = None) -> Decimal | None:
    """A metered allowance: a non-negative number (int, or decimal text) or "unlimited" (-> None)."""
    from tollgate.money import QUANTITY_PLACES, decimal_places, parse_decimal

    if isinstance(value, str) and value.strip().lower() == "unlimited":
        return None
    if isinstance(value, float):
        raise InvalidInput(
            f"the allowance {value!r} is a floating-point number, which is not exact; "
            'write a whole number (10000) or a decimal in quotes ("2.5").',
            path=path,
        )
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InvalidInput('an allowance is a number (like 10000) or "unlimited".', path=path)
    try:
        limit = parse_decimal(value, path=path, what="the allowance")
    except InvalidInput:
        raise InvalidInput(
            f'the allowance must be a number of zero or more (like 10000) or "unlimited", not {value!r}.', path=path
        ) from None
    if decimal_places(limit) > QUANTITY_PLACES:
        raise InvalidInput(f"the allowance has more than {QUANTITY_PLACES} decimal places.", path=path)
    return limit


def parse_reset(value: Any, *, path: str | None = None) -> str:
    if isinstance(value, str) and value.strip().lower() in RESETS:
        return value.strip().lower()
    raise InvalidInput(f"the reset cadence must be one of {', '.join(RESETS)}, not {value!r}.", path=path)


def parse_interval(value: Any, *, path: str | None = None) -> str:
    if isinstance(value, str) and value.strip().lower() in INTERVALS:
        return value.strip().lower()
    raise InvalidInput(f"the billing interval must be one of {', '.join(INTERVALS)}, not {value!r}.", path=path)


def parse_feature_type(value: Any, *, path: str | None = None) -> str:
    if isinstance(value, str) and value.strip().lower() in FEATURE_TYPES:
        return value.strip().lower()
    raise InvalidInput(f"the feature type must be one of {', '.join(FEATURE_TYPES)}, not {value!r}.", path=path)


def parse_alert(value: Any, *, path: str | None = None) -> int:
    """A threshold in percent of the allowance: a whole number 1..1000 ("75", "75%" on the command line)."""
    number = value
    if isinstance(value, str):
        text = value.strip().removesuffix("%").strip()
        number = int(text) if text.isdigit() and len(text) < 6 else None
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_ALERT:
        raise InvalidInput(
            f"an alert threshold is a whole percent from 1 to {MAX_ALERT} (like 75 or 90), not {value!r}.", path=path
        )
    return number


def normalize_alerts(alerts: Any, *, path: str | None = None) -> tuple[int, ...]:
    """Sorted, unique percents."""
    if not isinstance(alerts, (list, tuple)):
        raise InvalidInput("alerts is a list of percents, like [75, 90].", path=path)
    values = [parse_alert(a, path=f"{path}[{i}]" if path else None) for i, a in enumerate(alerts)]
    if len(set(values)) != len(values):
        raise InvalidInput("alerts lists the same percent twice.", path=path)
    return tuple(sorted(values))


def check_metered(grant: Grant, *, path: str | None = None) -> Grant:
    """Refuse options that mean nothing on an unlimited allowance."""
    if grant.type != "metered":
        return grant
    if grant.limit is None and grant.alerts:
        raise InvalidInput("alerts are percents of an allowance; an unlimited allowance has none.", path=path)
    if grant.limit is None and grant.hard:
        raise InvalidInput("a hard limit needs an allowance; this one is unlimited.", path=path)
    return grant


def with_options(
    grant: Grant, *, hard: bool | None = None, reset: str | None = None, alerts: tuple[int, ...] | None = None
) -> Grant:
    """The metered grant with its hard/reset/alerts options set (validated)."""
    if grant.type != "metered":
        raise InvalidInput(f"'{grant.feature}' is a {grant.type} feature: --hard, --reset and --alert are for metered ones.")
    changes: dict[str, Any] = {}
    if hard is not None:
        changes["hard"] = hard
    if reset is not None:
        changes["reset"] = parse_reset(reset)
    if alerts is not None:
        changes["alerts"] = normalize_alerts(list(alerts))
    return check_metered(replace(grant, **changes))


# -- storage ---------------------------------------------------------------------------------------


def value_to_json(value: bool | int | Decimal | str | None) -> str | None:
    """The JSON text of a boolean/config value; Decimals are written as JSON numbers, exactly."""
    if value is None:
        return None
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    if isinstance(value, Decimal):
        from tollgate.money import format_decimal

        return format_decimal(value)
    return json.dumps(value, ensure_ascii=False)


def value_from_json(text: str | None) -> bool | int | Decimal | str | None:
    if text is None:
        return None
    value = json.loads(text, parse_float=Decimal)
    return value


def grant_to_columns(grant: Grant) -> dict[str, Any]:
    """value JSON / limit_micros / reset / hard / alerts, as stored in PlanEntitlement."""
    from tollgate.money import to_micros

    if grant.type == "metered":
        limit = grant.limit
        if limit is None:
            micros = None
        else:
            whole = int(limit)
            micros = whole * 1_000_000 if whole == limit and abs(whole) < 10**12 else to_micros(limit)
        return {
            "value": None,
            "limit_micros": micros,
            "reset": grant.reset,
            "hard": bool(grant.hard),
            "alerts": ",".join(str(a) for a in grant.alerts),
        }
    return {"value": value_to_json(grant.value), "limit_micros": None, "reset": None, "hard": False, "alerts": ""}


def grant_from_row(feature_identifier: str, feature_type: str, row: Any) -> Grant:
    """The Grant a PlanEntitlement row (or any object / mapping with its columns) stands for."""
    from tollgate.money import from_micros

    def get(name: str) -> Any:
        return row[name] if isinstance(row, dict) else getattr(row, name)

    if feature_type == "metered":
        micros = get("limit_micros")
        alerts = get("alerts") or ""
        return Grant(
            feature_identifier,
            "metered",
            limit=None if micros is None else from_micros(micros),
            reset=get("reset") or "month",
            hard=bool(get("hard")),
            alerts=tuple(int(a) for a in alerts.split(",") if a),
        )
    return Grant(feature_identifier, feature_type, value=value_from_json(get("value")))


def grant_dict(grant: Grant) -> dict[str, Any]:
    """The JSON shape of one entitlement of a plan: feature, type, value | limit, reset, hard, alerts.

    Quantities and decimal config numbers are decimal strings; `limit` null with `unlimited` true."""
    from tollgate.money import format_decimal

    data: dict[str, Any] = {"feature": grant.feature, "type": grant.type}
    if grant.type == "metered":
        data.update(
            limit=None if grant.limit is None else format_decimal(grant.limit),
            unlimited=grant.limit is None,
            reset=grant.reset,
            hard=grant.hard,
            alerts=list(grant.alerts),
        )
    else:
        value = grant.value
        data["value"] = format_decimal(value) if isinstance(value, Decimal) else value
    return data


def describe(grant: Grant) -> str:
    """A short human description: `on`, `10`, `eu`, `10000 / month (hard, alerts 75%, 90%)`."""
    from tollgate.money import format_decimal

    if grant.type == "boolean":
        return "on" if grant.value else "off"
    if grant.type == "config":
        return format_decimal(grant.value) if isinstance(grant.value, Decimal) else str(grant.value)
    amount = "unlimited" if grant.limit is None else f"{format_decimal(grant.limit)}"
    per = "" if grant.reset == "never" else f" / {grant.reset}"
    extras = ["hard" if grant.hard else "soft"]
    if grant.alerts:
        extras.append("alerts " + ", ".join(f"{a}%" for a in grant.alerts))
    return f"{amount}{per} ({', '.join(extras)})"


# -- from a catalog file (TOML) -------------------------------------------------------------------

METERED_KEYS = ("limit", "reset", "hard", "alerts")


def grant_from_value(feature_identifier: str, feature_type: str, value: Any, *, path: str | None = None) -> Grant:
    """A grant from its TOML value: `true`; `10` / `"eu"`; `{ limit = 100000, reset = "month", hard = false,
    alerts = [75, 90] }` (or, for metered, just the allowance: `10000` / `"unlimited"`)."""

    def at(key: str) -> str | None:
        return f"{path}.{key}" if path else None

    if feature_type == "boolean":
        if not isinstance(value, bool):
            raise InvalidInput(f"'{feature_identifier}' is a boolean feature: write true or false.", path=path)
        return Grant(feature_identifier, "boolean", value=value)
    if feature_type == "config":
        if isinstance(value, (dict, list)):
            raise InvalidInput(f"'{feature_identifier}' is a config feature: write a number or a string.", path=path)
        return Grant(feature_identifier, "config", value=parse_config_value(value, path=path))
    if feature_type != "metered":
        raise InvalidInput(f"Unknown feature type '{feature_type}'.", path=path)
    if isinstance(value, dict):
        for key in value:
            if key not in METERED_KEYS:
                raise InvalidInput(
                    f"unknown key {key!r} in a metered entitlement; the keys are {', '.join(METERED_KEYS)}.",
                    path=at(str(key)),
                )
        if "limit" not in value:
            raise InvalidInput('limit is missing: an allowance per period, like 10000, or "unlimited".', path=at("limit"))
        hard = value.get("hard", False)
        if not isinstance(hard, bool):
            raise InvalidInput("hard is true or false.", path=at("hard"))
        grant = Grant(
            feature_identifier,
            "metered",
            limit=parse_limit(value["limit"], path=at("limit")),
            reset=parse_reset(value.get("reset", "month"), path=at("reset")),
            hard=hard,
            alerts=normalize_alerts(value.get("alerts", []), path=at("alerts")),
        )
        return check_metered(grant, path=path)
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        return Grant(feature_identifier, "metered", limit=parse_limit(value, path=path))
    raise InvalidInput(
        f"'{feature_identifier}' is a metered feature: write {{ limit = 10000, reset = \"month\" }} "
        'or just the allowance (10000 or "unlimited").',
        path=path,
    )
