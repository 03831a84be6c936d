"""`tollgate override ...`: set, unset, list per-customer exceptions."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from tollgate.cli import output
from tollgate.cli.complete import complete_active_customer, complete_customer, complete_feature
from tollgate.cli.context import UNTIL, Csv, EveryRow, Json, Limit, tollgate
from tollgate.cli.grid import DATE, ID, TEXT, Col
from tollgate.cli.help import Typer

app = Typer(help="Overrides: one customer's own value for a feature, winning over every plan.\n\nExample: tollgate override set acme-inc max-projects 250 --note \"pilot\"",
                  no_args_is_help=True)

COLUMNS = (Col("customer", ID), Col("feature", ID), Col("type", TEXT, 2), Col("value"), Col("expires", DATE, 1),
           Col("note", TEXT, 3))


def _row(view) -> list:
    data = view.to_dict()
    expires = data["expires_at"] or "never"
    if view.expired:
        expires += " (expired)"
    return [data["customer"], data["feature"], data["type"], view.describe(), expires, data["note"] or ""]


@app.command("set")
def set_(
    customer: Annotated[str, typer.Argument(help="The customer's identifier.", autocompletion=complete_active_customer, metavar="CUSTOMER")],
    feature: Annotated[str, typer.Argument(help="The feature's identifier.", autocompletion=complete_feature, metavar="FEATURE")],
    value: Annotated[
        str, typer.Argument(help="true/false (boolean); a number or text (config); an allowance or unlimited (metered).", metavar="VALUE")
    ],
    expires: Annotated[
        Optional[str], typer.Option("--expires", metavar=UNTIL, help="It stops applying at this moment (7d = 7 days from now).")
    ] = None,
    note: Annotated[Optional[str], typer.Option("--note", help="Why (shown in lists and the journal).", metavar="NOTE")] = None,
    hard: Annotated[
        Optional[bool], typer.Option("--hard/--soft", help="Metered: the allowance is a hard (or soft) limit "
                                                           "(default: as the plans say; soft without one).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Give one customer its own value or allowance for a feature (replaces an existing override).

    Example: tollgate override set acme-inc api-calls 50000 --expires 2026-12-31 --note "launch week"
    """
    view = tollgate().set_override(customer, feature, value, hard=hard, expires=expires, note=note)
    if as_json:
        output.emit_json(view.to_dict())
        return
    until = f" until {view.to_dict()['expires_at']}" if view.expires_at else ""
    output.say(f"Override for {view.customer}: {view.feature} = {view.describe()}{until}.")


@app.command("unset")
def unset(
    customer: Annotated[str, typer.Argument(help="The customer's identifier.", autocompletion=complete_customer, metavar="CUSTOMER")],
    feature: Annotated[str, typer.Argument(help="The feature's identifier.", autocompletion=complete_feature, metavar="FEATURE")],
    as_json: Json = False,
) -> None:
    """Remove a customer's override: the feature is back to what the plans grant.

    Example: tollgate override unset acme-inc api-calls
    """
    view = tollgate().unset_override(customer, feature)
    output.result(
        view.to_dict(), as_json=as_json,
        message=f"Removed the override of {view.feature} for {view.customer} (was {view.describe()}).",
    )


@app.command("list")
def list_(
    customer: Annotated[
        Optional[str], typer.Argument(help="Only this customer's (default: every customer's).",
                                      autocompletion=complete_customer, metavar="CUSTOMER")
    ] = None,
    limit: Limit = None,
    show_all: EveryRow = False,
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """List overrides (expired ones are marked), by customer and feature. On a terminal, the first
    50 (and how many there are); piped, --json and --csv give every one unless --limit.

    Example: tollgate override list acme-inc
    """
    found = tollgate().overrides(customer)
    if as_json or as_csv:
        found = found[:limit]
    if as_json:
        output.emit_json([v.to_dict() for v in found])
    elif as_csv:
        keys = list(found[0].to_dict()) if found else ["customer", "feature", "type", "value", "limit"]
        output.emit_csv(keys, ([v.to_dict()[k] for k in keys] for v in found))
    else:
        output.list_table(COLUMNS, [_row(v) for v in found], limit=limit, every=show_all)
