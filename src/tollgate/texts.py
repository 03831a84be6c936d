"""Plain-text renderings of the `to_dict()` shapes, shared by the terminal (cli/) and the HTML
reports (report_html): one wording of a price, a status or a size wherever it is shown.

Numbers here are for people: `number_text` groups their whole part (62,500,000). Nothing a script
reads (--json, --csv, the TOML export, notes) goes through this module; those keep the plain form.
"""

from __future__ import annotations

import re
from decimal import Decimal

_PLAIN = re.compile(r"(-?)(\d+)((?:\.\d+)?)")


def number_text(value: str | int | Decimal) -> str:
    """A number for a person: the whole part grouped, the fraction exact (never rounded):
    `62,500,000`, `11,000.00`, `0.0000012`. Text that is not a plain decimal (`unlimited`) is kept."""
    if isinstance(value, Decimal):
        value = format(value, "f")
    text = str(value)
    found = _PLAIN.fullmatch(text)
    if found is None:
        return text
    sign, whole, fraction = found.groups()
    return f"{sign}{int(whole):,}{fraction}"


def money_text(amount: Decimal | str, currency: str) -> str:
    """An amount for a person: its currency's minor digits, grouped: `11,000.00` EUR, `1,500` JPY."""
    from tollgate.money import format_money

    return number_text(format_money(Decimal(amount), currency))


def price_text(sub: dict) -> str:
    """A subscription's price: `49.00 USD / month`, `39.00 USD once`, `free`."""
    if sub["amount"] is None:
        return "free" if sub["interval"] is None else f"free / {sub['interval']}"
    per = "once" if sub["interval"] == "once" else f"/ {sub['interval']}"
    return f"{number_text(sub['amount'])} {sub['currency']} {per}"


def subscription_status_text(sub: dict) -> str:
    if sub["cancel_at_period_end"]:
        return f"{sub['status']} (ends {sub['cancel_at'][:10]})"
    return sub["status"]


def license_status_text(status: str, revoked_at: str | None, replaced_by: str | None) -> str:
    """A license key's status (`revoked_at`: RFC 3339, as in its JSON shape)."""
    if status == "active" and revoked_at:
        return f"active (revoked at {revoked_at})"  # a cancel at period end
    if status == "revoked" and replaced_by:
        return "revoked (regenerated)"
    return status


def activations_text(activations: int, limit: int | str | None) -> str:
    """A license key's activations against its limit (None or "unlimited": none): `1 / 3`, `2 / unlimited`."""
    return f"{activations} / {'unlimited' if limit is None else limit}"


def expires_text(expires_at: str | None) -> str:
    return expires_at or "never"


def size_text(size: int) -> str:
    """A file size for people: `559 bytes`, `2.4 MiB`."""
    amount: float = size
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{size:,} {unit}" if unit == "bytes" else f"{amount:,.1f} {unit}"
        amount /= 1024
    return str(amount)  # pragma: no cover


def grants_text(e: dict) -> str:
    """What an entitlement grants (a plan's JSON shape, or a customer's effective one with its unit):
    `on`, `eu`, `100,000 call / month`, `unlimited GB`."""
    if e["type"] == "boolean":
        return "on" if e["value"] else "off"
    if e["type"] == "config":
        return str(e["value"])
    amount = "unlimited" if e["unlimited"] else number_text(e["limit"])
    unit = f" {e['unit']}" if e.get("unit") else ""
    per = "" if e["reset"] == "never" else f" / {e['reset']}"
    return f"{amount}{unit}{per}"
