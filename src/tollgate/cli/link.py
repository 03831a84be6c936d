"""`tollgate link ...`: add, list, remove."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from tollgate.cli import output
from tollgate.cli.complete import complete_customer, complete_link, complete_plan
from tollgate.cli.context import Csv, Json, tollgate
from tollgate.cli.grid import ID, KEY, Col
from tollgate.cli.help import Typer

if TYPE_CHECKING:
    from tollgate.deliverable_views import LinkView

app = Typer(help="Links: named web addresses a plan shows its customers (a community, a dashboard).\n\nExample: tollgate link add pro \"Community forum\" https://community.example.com/",
                  no_args_is_help=True)

COLUMNS = ("id", "plan", "name", "url")
TABLE = (Col("id", ID), Col("plan", ID, 1), Col("name"), Col("url", KEY))


def render_list(found: Sequence[LinkView], *, as_json: bool = False, as_csv: bool = False,
                title: str | None = None) -> None:
    if as_json:
        output.emit_json([link.to_dict() for link in found])
    elif as_csv:
        output.emit_csv(COLUMNS, ([link.id, link.plan, link.name, link.url] for link in found))
    else:
        output.table(TABLE, ([link.id, link.plan, link.name, link.url] for link in found), title=title)


@app.command("add")
def add(
    plan: Annotated[str, typer.Argument(help="The plan that shows the link.", autocompletion=complete_plan, metavar="PLAN")],
    name: Annotated[str, typer.Argument(help="What customers see.", metavar="NAME")],
    url: Annotated[str, typer.Argument(help="An http:// or https:// address.", metavar="URL")],
    as_json: Json = False,
) -> None:
    """Add a link to a plan (http/https URLs with a host only).

    Example: tollgate link add markdown-studio-2 "Community forum" https://community.example.com/
    """
    added = tollgate().add_link(plan, name, url)
    output.result(added.to_dict(), as_json=as_json,
                  message=f"Added link {added.id} ({added.name}: {added.url}) to {added.plan}.")


@app.command("list")
def list_(
    plan: Annotated[Optional[str], typer.Argument(help="The plan whose links to list.", autocompletion=complete_plan, metavar="PLAN")] = None,
    customer: Annotated[
        Optional[str],
        typer.Option("--customer", "-c", help="Instead: the links this customer is entitled to (a live subscription).",
                     autocompletion=complete_customer, metavar="CUSTOMER"),
    ] = None,
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """List a plan's links, or those a customer is entitled to.

    Example: tollgate link list --customer acme-inc
    """
    from tollgate.errors import InvalidInput

    if plan is None and customer is None:
        raise InvalidInput("Say whose links to list.", hint="Give a PLAN, or --customer CUSTOMER.")
    render_list(tollgate().links(plan, customer=customer), as_json=as_json, as_csv=as_csv)


@app.command("remove")
def remove(
    link_id: Annotated[str, typer.Argument(help="The link's id (ln_...).", autocompletion=complete_link, metavar="LINK")],
    as_json: Json = False,
) -> None:
    """Remove a link from its plan.

    Example: tollgate link remove ln_4f9k2m0x7q1z8w
    """
    removed = tollgate().remove_link(link_id)
    output.result(removed.to_dict(), as_json=as_json,
                  message=f"Removed link {removed.id} ({removed.name}) of {removed.plan}.")
