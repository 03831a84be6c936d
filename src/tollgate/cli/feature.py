"""`tollgate feature ...`: create, list, archive."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from tollgate.cli import output
from tollgate.cli.complete import complete_feature, complete_feature_type
from tollgate.cli.context import Csv, Json, Yes, confirm_or_refuse, tollgate
from tollgate.cli.grid import ID, TEXT, Col
from tollgate.cli.help import Typer

app = Typer(help="Features: what plans grant (boolean, metered or config).\n\nExample: tollgate feature create --name \"API calls\" --type metered --unit call", no_args_is_help=True)

COLUMNS = ("identifier", "name", "type", "unit", "status")
TABLE = (Col("identifier", ID), Col("name"), Col("type", ID, 2), Col("unit", ID, 3), Col("status", TEXT, 1))


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Display name, e.g. \"API calls\".", metavar="NAME")],
    feature_type: Annotated[
        str, typer.Option("--type", help="boolean (on/off), metered (consumed quantity) or config (a value).",
                     autocompletion=complete_feature_type, metavar="boolean|metered|config")
    ],
    identifier: Annotated[
        Optional[str], typer.Option("--id", help="The identifier your code uses (default: made from the name).", metavar="ID")
    ] = None,
    unit: Annotated[Optional[str], typer.Option("--unit", help="Metered only: the unit, e.g. token, GB.", metavar="UNIT")] = None,
    description: Annotated[Optional[str], typer.Option("--description", help="One line about it.", metavar="TEXT")] = None,
    as_json: Json = False,
) -> None:
    """Create a feature. Its identifier and type never change.

    Example: tollgate feature create --name "API calls" --type metered --unit call   (identifier: api-calls)
    """
    feature = tollgate().create_feature(
        name, type=feature_type, identifier=identifier, unit=unit, description=description
    )
    data = feature.to_dict()
    if as_json:
        output.emit_json(data)
    else:
        unit_text = f", unit {data['unit']}" if data["unit"] else ""
        output.say(f"Created {data['type']} feature {data['identifier']} ({data['name']}{unit_text}).")


@app.command("list")
def list_(
    feature_type: Annotated[Optional[str], typer.Option("--type", help="Only this type.", autocompletion=complete_feature_type, metavar="boolean|metered|config")] = None,
    archived: Annotated[bool, typer.Option("--archived", help="Only archived features.")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Active and archived features.")] = False,
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """List features (active ones unless --archived or --all), by identifier.

    Example: tollgate feature list --type metered
    """
    from tollgate.grants import parse_feature_type

    wanted = parse_feature_type(feature_type) if feature_type is not None else None
    status = "all" if show_all else "archived" if archived else "active"
    found = [f.to_dict() for f in tollgate().features(status=status) if wanted in (None, f.type)]
    if as_json:
        output.emit_json(found)
    elif as_csv:
        output.emit_csv(COLUMNS, ([f[c] for c in COLUMNS] for f in found))
    else:
        output.table(TABLE, ([f[c] for c in COLUMNS] for f in found))


@app.command("archive")
def archive(
    identifier: Annotated[str, typer.Argument(help="The feature's identifier.", autocompletion=complete_feature, metavar="FEATURE")],
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Archive a feature: new plans can't grant it; plans that grant it keep doing so.

    Example: tollgate feature archive legacy-export --yes
    """
    confirm_or_refuse(lambda: f"Archive feature {tollgate().feature(identifier).identifier}?", yes=yes,
                      declined=f"Not archived: {identifier} is unchanged.")
    data = tollgate().archive_feature(identifier).to_dict()
    output.result(data, as_json=as_json, message=f"Archived feature {data['identifier']}.")
