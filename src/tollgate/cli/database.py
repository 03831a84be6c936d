"""`tollgate db ...`: where the database is, what is in it, and a consistent backup."""

from __future__ import annotations

from typing import Annotated

import typer

from tollgate.cli import output
from tollgate.cli.context import Json, state, tollgate

app = typer.Typer(help="The database: its location, contents and backups.", no_args_is_help=True)


@app.command("path")
def path() -> None:
    """Print where the database is (--db, then $TOLLGATE_DB, then the user data folder).

    Example: tollgate db path
    """
    from tollgate.db import resolve_location

    output.say(resolve_location(state.db))


@app.command("info")
def info(as_json: Json = False) -> None:
    """Show the database's location, engine and its version, schema version, size and row counts.

    Example: tollgate db info --json
    """
    data = tollgate().db_info()
    if as_json:
        output.emit_json(data)
        return
    output.fields(
        [
            ("location", data["location"]),
            ("engine", data["engine"]),
            ("server version" if data["engine"] == "postgresql" else "engine version", data["server_version"]),
            ("schema version", data["schema_version"]),
            ("size", f"{data['size_bytes']:,} bytes" if data["size_bytes"] is not None else "-"),
            ("journal mode", data["journal_mode"] or "-"),
        ]
    )
    output.table(("table", "rows"), sorted(data["tables"].items()), right=("rows",))


@app.command("backup")
def backup(
    file: Annotated[str, typer.Argument(help="Where to write the copy (must not exist yet).")],
) -> None:
    """Write a consistent copy of the whole database to FILE (safe while others are writing).

    Example: tollgate db backup ~/backups/tollgate-2026-11-21.db
    """
    target = tollgate().backup(file)
    output.say(f"Backed up the database to {target}.")
