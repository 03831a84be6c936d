"""`tollgate product ...`: create, list, show, archive."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from tollgate.cli import output
from tollgate.cli.complete import complete_product
from tollgate.cli.context import Csv, Json, Yes, confirm_or_refuse, tollgate
from tollgate.cli.grid import ID, TEXT, Col
from tollgate.cli.help import Typer

app = Typer(help="Products: the things you sell (each sold through plans).\n\nExample: tollgate product create ai-studio --name \"AI Studio\"", no_args_is_help=True)

COLUMNS = ("identifier", "name", "status", "description")
TABLE = (Col("identifier", ID), Col("name"), Col("status", TEXT, 1), Col("description", TEXT, 2))

_Status = Annotated[bool, typer.Option("--archived", help="Only archived products.")]
_All = Annotated[bool, typer.Option("--all", help="Active and archived products.")]


@app.command("create")
def create(
    identifier: Annotated[
        Optional[str], typer.Argument(help="The product's identifier (default: made from --name).", metavar="PRODUCT")
    ] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Display name (default: from the identifier).", metavar="NAME")] = None,
    description: Annotated[Optional[str], typer.Option("--description", help="One line about it.", metavar="TEXT")] = None,
    as_json: Json = False,
) -> None:
    """Create a product. Give an identifier, a --name, or both.

    Example: tollgate product create --name "AI Studio" --description "Text and image generation"   (identifier: ai-studio)
    """
    from tollgate.catalog import default_plan_name
    from tollgate.errors import InvalidInput

    if name is None:
        if identifier is None:
            raise InvalidInput("A product needs an identifier or a --name.", hint='For example: --name "AI Studio".')
        from tollgate.identifiers import validate

        name = default_plan_name(validate(identifier, kind="product identifier"))
    data = tollgate().create_product(name, identifier=identifier, description=description).to_dict()
    output.result(data, as_json=as_json, message=f"Created product {data['identifier']} ({data['name']}).")


@app.command("list")
def list_(archived: _Status = False, show_all: _All = False, as_json: Json = False, as_csv: Csv = False) -> None:
    """List products (active ones unless --archived or --all), by identifier.

    Example: tollgate product list --all
    """
    status = "all" if show_all else "archived" if archived else "active"
    found = [p.to_dict() for p in tollgate().products(status=status)]
    if as_json:
        output.emit_json(found)
    elif as_csv:
        output.emit_csv(COLUMNS, ([p[c] for c in COLUMNS] for p in found))
    else:
        output.table(TABLE, ([p[c] for c in COLUMNS] for p in found))


@app.command("show")
def show(
    identifier: Annotated[str, typer.Argument(help="The product's identifier.", autocompletion=complete_product, metavar="PRODUCT")],
    as_json: Json = False,
) -> None:
    """Show a product and its plans.

    Example: tollgate product show ai-studio
    """
    handle = tollgate()
    product = handle.product(identifier)
    plans = handle.plans(product=identifier, status="all")
    data = {**product.to_dict(), "plans": [p.identifier for p in plans]}
    if as_json:
        output.emit_json(data)
        return
    output.fields(
        [
            ("identifier", data["identifier"]),
            ("name", data["name"]),
            ("description", data["description"] or "-"),
            ("status", data["status"]),
            ("created", data["created_at"]),
            ("archived", data["archived_at"] or "-"),
            ("plans", ", ".join(f"{p.identifier}{' (archived)' if p.status == 'archived' else ''}"
                                for p in plans) or "-"),
        ]
    )


@app.command("archive")
def archive(
    identifier: Annotated[str, typer.Argument(help="The product's identifier.", autocompletion=complete_product, metavar="PRODUCT")],
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Archive a product and its plans: no new subscriptions; existing ones keep working.

    Example: tollgate product archive ai-studio --yes
    """
    confirm_or_refuse(lambda: f"Archive product {tollgate().product(identifier).identifier} and all its plans?",
                      yes=yes, declined=f"Not archived: {identifier} is unchanged.")
    archived = tollgate().archive_product(identifier)
    if as_json:
        output.emit_json(archived.to_dict())
    else:
        also = f" and its plan(s) {', '.join(archived.plans)}" if archived.plans else ""
        output.say(f"Archived product {archived.identifier}{also}.")
