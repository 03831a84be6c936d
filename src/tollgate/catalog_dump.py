"""Catalog as code, writing: the catalog as canonical TOML (every object sorted by identifier, one
spelling per value), so that export -> import into an empty database -> export is byte-identical and
exports diff cleanly in git; and where `export --with-files` puts each download.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from tollgate import identifiers
from tollgate.catalog import Catalog
from tollgate.catalog_toml import _BARE_KEY, VERSION, key_path
from tollgate.errors import InvalidInput, StorageError
from tollgate.grants import Grant


def asset_names(cat: Catalog) -> dict[tuple[str, str], str]:
    """Where `export --with-files` puts each download: assets/<plan>/<name as a slug>, unique per plan,
    keeping a short file extension (`Guide.pdf` -> `guide.pdf`) so the exported file still opens.

    Every part is made of [a-z0-9-.] only: a plan identifier from the database that is not a valid
    identifier (a damaged or crafted row, `../../x`) is a StorageError, never a path."""
    result = {}
    for ident, plan in cat.plans.items():
        try:
            identifiers.validate(ident, kind="plan identifier")
        except InvalidInput:
            raise StorageError(f"The plan identifier {ident[:80]!r} in the database is not a valid identifier; "
                               "the database is damaged (or was edited by hand), and nothing was written.") from None
        used: set[str] = set()
        for download in plan.downloads:
            stem, dot, ext = download.name.rpartition(".")
            keep_ext = bool(dot and stem and re.fullmatch(r"[A-Za-z0-9]{1,8}", ext))
            base = identifiers.slugify(stem if keep_ext else download.name, fallback="download")
            name = identifiers.first_free(base, used)
            used.add(name)
            result[(ident, download.name)] = f"assets/{ident}/{name}" + (f".{ext.lower()}" if keep_ext else "")
    return result


# -- writing canonical TOML ------------------------------------------------------------------------------


def dump(cat: Catalog, *, assets: dict[tuple[str, str], str] | None = None) -> str:
    """Canonical TOML: every object sorted by identifier, one spelling per value, money as strings."""
    from tollgate.money import format_money
    from tollgate.rating import charge_to_dict

    out = [
        "# The tollgate catalog: products, features and plans.",
        "# Apply with `tollgate catalog import FILE` (try --dry-run first); format: docs/catalog.md.",
        f"version = {VERSION}",
    ]

    def table(header: str, pairs: list[tuple[str, Any]], *, array: bool = False) -> None:
        out.append("")
        out.append(f"[[{header}]]" if array else f"[{header}]")
        for key, value in pairs:
            out.append(f"{_key(key)} = {_value(value)}")

    for ident in sorted(cat.products):
        product = cat.products[ident]
        table(key_path("products", ident), _pairs(("name", product.name), ("description", product.description),
                                                   ("archived", product.archived or None)))
    for ident in sorted(cat.features):
        feature = cat.features[ident]
        table(key_path("features", ident), _pairs(("name", feature.name), ("type", feature.type),
                                                   ("unit", feature.unit), ("description", feature.description),
                                                   ("archived", feature.archived or None)))
    for ident in sorted(cat.plans):
        spec = cat.plans[ident]
        base = key_path("plans", ident)
        pairs = _pairs(("product", spec.product), ("name", spec.name), ("description", spec.description),
                       ("trial_days", spec.trial_days), ("archived", spec.archived or None))
        if spec.prices:
            pairs.append(("prices", _Multiline([
                {"interval": p.interval, "currency": p.currency, "amount": format_money(p.amount, p.currency)}
                for p in spec.prices
            ])))
        table(base, pairs)
        if spec.grants:
            table(f"{base}.entitlements", [(g.feature, _grant_value(g)) for g in spec.grants])
        for charge in spec.charges:
            data: dict[str, Any] = charge_to_dict(charge)
            if "tiers" in data:
                data["tiers"] = _Multiline(data["tiers"])
            table(f"{base}.usage_charges", list(data.items()), array=True)
        if spec.license is not None:
            limit = spec.license.activation_limit
            table(f"{base}.license", _pairs(("activation_limit", "unlimited" if limit is None else limit),
                                            ("expires_after", spec.license.expires_after),
                                            ("activations_per_day", spec.license.activations_per_day),
                                            ("files_per_day", spec.license.files_per_day)))
        for download in spec.downloads:
            file = (assets or {}).get((ident, download.name))
            table(f"{base}.downloads", _pairs(("name", download.name), ("file", file), ("sha256", download.sha256),
                                              ("size", download.size),
                                              ("enabled", None if download.enabled else False)), array=True)
        for link in spec.links:
            table(f"{base}.links", [("name", link.name), ("url", link.url)], array=True)
    return "\n".join(out) + "\n"


class _Multiline(list[Any]):
    """A list written one element per line."""


def _pairs(*pairs: tuple[str, Any]) -> list[tuple[str, Any]]:
    return [(key, value) for key, value in pairs if value is not None]


def _grant_value(grant: Grant) -> Any:
    if grant.type != "metered":
        return grant.value
    data: dict[str, Any] = {
        "limit": "unlimited" if grant.limit is None else _quantity(grant.limit),
        "reset": grant.reset,
        "hard": grant.hard,
    }
    if grant.alerts:
        data["alerts"] = list(grant.alerts)
    return data


def _quantity(number: Decimal) -> int | str:
    from tollgate.money import format_decimal

    return int(number) if number == number.to_integral_value() else format_decimal(number)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _string(text: str) -> str:
    def escape(ch: str) -> str:
        if ch in _ESCAPES:
            return _ESCAPES[ch]
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            return f"\\u{ord(ch):04x}"
        return ch

    return '"' + "".join(escape(ch) for ch in text) + '"'


def _value(value: Any) -> str:
    from tollgate.money import format_decimal

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):  # a config number with decimals: a TOML float, exactly these digits
        return format_decimal(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, _Multiline):
        return "[\n" + "".join(f"  {_value(item)},\n" for item in value) + "]"
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to the catalog file")
