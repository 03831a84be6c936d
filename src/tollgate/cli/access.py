"""`tollgate entitlements` and `tollgate check`: what a customer may do, and may they do it now."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from tollgate.cli import output
from tollgate.cli.complete import complete_customer, complete_feature
from tollgate.cli.context import WHEN, Json, tollgate
from tollgate.cli.grid import DATE, ID, KEY, QUANTITY, TEXT, Col
from tollgate.texts import grants_text

COLUMNS = (Col("feature", ID), Col("type", TEXT, 3), Col("grants", TEXT), Col("used", QUANTITY),
           Col("remaining", QUANTITY, 2), Col("usage", KEY, 4), Col("resets", DATE, 1), Col("limit", TEXT, 5),
           Col("source", ID, 1))


def usage_bar(e: dict) -> str:
    """A usage bar for a metered allowance (▓ full past a soft limit; the figures tell the overage)."""
    if e["type"] != "metered" or e["unlimited"]:
        return ""
    from decimal import Decimal

    limit, used = Decimal(e["limit"]), Decimal(e["used"])
    share = float(used / limit) if limit > 0 else (1.0 if used > 0 else 0.0)
    percent = f"{share * 100:.0f}%"
    return f"{output.bar(share, width=12)} {percent}"


def _row(e: dict) -> list:
    metered = e["type"] == "metered"
    return [
        e["feature"],
        e["type"],
        grants_text(e),
        e["used"] if metered else "",
        (e["remaining"] if e["remaining"] is not None else "unlimited") if metered else "",
        usage_bar(e),
        ((e["reset_at"] or "never")[:10]) if metered else "",
        ("hard" if e["hard"] else "soft") if metered and not e["unlimited"] else "",
        e["source"],
    ]


def entitlement_rows(entitlements: list[dict]) -> list[list]:
    return [_row(e) for e in entitlements]


def entitlements(
    customer: Annotated[str, typer.Argument(help="The customer's identifier.", autocompletion=complete_customer, metavar="CUSTOMER")],
    at: Annotated[
        Optional[str], typer.Option("--at", metavar=WHEN, help="As of this moment (default now).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Show a customer's effective entitlements: value or allowance, usage this period, reset, source.

    Subscriptions combine (boolean: any; number: largest; text: newest; allowances add up) and an
    unexpired override wins. Sources: plan:<plan>, sub:<id> (its own adjustment), override.
    Example: tollgate entitlements acme-inc --at 2026-12-01
    """
    moment = None
    if at is not None:
        from tollgate.clock import parse_moment

        moment = parse_moment(at, what="time")
    found = [e.to_dict() for e in tollgate().entitlements(customer, at=moment)]
    if as_json:
        output.emit_json(found)
        return
    if not found:
        output.say(f"{customer} has no entitlements (no live subscription or override grants anything).")
        return
    output.table(COLUMNS, entitlement_rows(found))


def check(
    customer: Annotated[str, typer.Argument(help="The customer's identifier.", autocompletion=complete_customer, metavar="CUSTOMER")],
    feature: Annotated[str, typer.Argument(help="The feature's identifier.", autocompletion=complete_feature, metavar="FEATURE")],
    quantity: Annotated[
        str, typer.Option("--quantity", "-q", metavar="N", help="How many units (metered; an exact decimal).")
    ] = "1",
    consume: Annotated[
        bool, typer.Option("--consume", help="If allowed, record the usage too, atomically (one transaction).")
    ] = False,
    key: Annotated[
        Optional[str], typer.Option("--key", "--id", help="With --consume: idempotency key (a retry never counts twice).", metavar="KEY")
    ] = None,
    at: Annotated[
        Optional[str], typer.Option("--at", metavar=WHEN, help="Check as of this moment (not with --consume).")
    ] = None,
    as_json: Json = False,
) -> None:
    """May the customer use this feature (this much) now? Exit 0 allowed, 1 denied.

    Past a hard limit access is denied; past a soft limit it is allowed and the overage is reported.
    With --consume the check and the record happen in one write transaction, so concurrent callers
    can never push usage past a hard limit.
    Example: tollgate check acme-inc api-calls --quantity 5 --consume
    """
    from tollgate.errors import InvalidInput

    handle = tollgate()
    if consume:
        if at is not None:
            raise InvalidInput("--consume records usage now; it can't be combined with --at.")
        result = handle.consume(customer, feature, quantity, key=key)
    else:
        if key is not None:
            raise InvalidInput("--key is the idempotency key of recorded usage; use it with --consume.")
        moment = None
        if at is not None:
            from tollgate.clock import parse_moment

            moment = parse_moment(at, what="time")
        result = handle.check(customer, feature, quantity, at=moment)
    data = result.to_dict()
    for text in result.notices:
        output.notice(text)
    if result.allowed and not data["hard"] and data["overage"] not in (None, "0"):
        verb = "is" if result.recorded else "would be"
        output.warn(f"{data['customer']} {verb} over the soft limit of {data['limit']} for {data['feature']} by "
                    f"{data['overage']} (allowed; the overage is reported).")
    output.result(data, as_json=as_json, message=_summary(data, consumed=consume))
    if not result.allowed:
        raise typer.Exit(1)


def _summary(d: dict, *, consumed: bool) -> str:
    if not d["allowed"]:
        return f"denied: {d['reason']}"
    head = f"allowed: {d['feature']} for {d['customer']}"
    if d["type"] == "boolean":
        return f"{head} (on, {d['source']})"
    if d["type"] == "config":
        return f"{head} = {d['value']} ({d['source']})"
    parts = []
    if consumed:
        parts.append(f"recorded {d['quantity']}" if d["recorded"] else "already recorded under this key")
    if d["unlimited"]:
        parts.append(f"{d['used']} used, unlimited")
    else:
        parts.append(f"{d['used']} of {d['limit']} used, {d['remaining']} remaining")
    if d["reset_at"]:
        parts.append(f"resets {d['reset_at']}")
    parts.append(d["source"])
    return f"{head}: " + "; ".join(parts)
