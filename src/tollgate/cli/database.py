"""`tollgate db ...`: where the database is, what is in it, a consistent backup, and a copy to another one."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tollgate.cli import output
from tollgate.cli.context import Json, state, tollgate
from tollgate.cli.grid import ID, QUANTITY, Col
from tollgate.cli.help import Typer

if TYPE_CHECKING:
    from rich.progress import TaskID

app = Typer(help="The database: its location, contents and backups.\n\nExample: tollgate db backup ~/tollgate-backup.db", no_args_is_help=True)

TABLE_ROWS = (Col("table", ID), Col("rows", QUANTITY))


@app.command("path")
def path() -> None:
    """Print where the database is (--db, then $TOLLGATE_DB, then the user data folder); a password is masked.

    Example: tollgate db path
    """
    from tollgate.location import display_location, resolve_location

    output.say(display_location(resolve_location(state.db)))


@app.command("info")
def info(as_json: Json = False) -> None:
    """Show the database's location, engine and its version, schema version, size and row counts.

    Example: tollgate db info --json
    """
    about = tollgate().db_info()
    if as_json:
        output.emit_json(about.to_dict())
        return
    output.fields(
        [
            ("location", about.location),
            ("engine", about.engine),
            ("server version" if about.engine == "postgresql" else "engine version", about.server_version),
            ("schema version", about.schema_version),
            ("size", f"{about.size_bytes:,} bytes" if about.size_bytes is not None else "-"),
            ("journal mode", about.journal_mode or "-"),
            ("checked by", "tollgate db check (integrity, and every usage rollup against the events)"),
        ]
    )
    output.table(TABLE_ROWS, sorted((t.table, t.rows) for t in about.tables))


@app.command("check")
def check(as_json: Json = False) -> None:
    """Check the database: SQLite's PRAGMA integrity_check, and every usage rollup recomputed from the
    events and compared. Exit 0 when all agree, 1 with what differs.

    Example: tollgate db check
    """
    report = tollgate().check_database()
    if as_json:
        output.emit_json(report.to_dict())
    else:
        integrity = report.integrity
        output.fields([
            ("location", report.location),
            ("integrity", "ok (PRAGMA integrity_check)" if integrity == "ok" else
             "not run (PostgreSQL checks its own pages)" if integrity is None else integrity),
            ("usage events", f"{report.events:,}"),
            ("usage rollups", f"{report.rollups:,} rows, recomputed from the events: "
             + ("all agree" if not report.rollup_differences else f"{report.rollup_differences:,} differ")),
        ])
        for line in report.differences:
            output.warn(line)
    if not report.ok:
        raise typer.Exit(1)


@app.command("backup")
def backup(
    file: Annotated[str, typer.Argument(help="Where to write the copy (must not exist yet).", metavar="FILE")],
) -> None:
    """Write a consistent copy of the whole database to FILE (safe while others are writing).

    Example: tollgate db backup ~/backups/tollgate-2026-11-21.db
    """
    target = tollgate().backup(file)
    output.say(f"Backed up the database to {target}.")


@app.command("copy")
def copy(
    src: Annotated[str, typer.Argument(help="The database to copy: a file or a postgresql:// URL.", metavar="SRC")],
    dst: Annotated[str, typer.Argument(help="Where to: a new file, or the URL of an empty PostgreSQL database.", metavar="DST")],
    as_json: Json = False,
) -> None:
    """Copy a whole database into a new or empty one: SQLite to PostgreSQL, PostgreSQL to SQLite.

    Every table is copied in one transaction on DST, ids kept, then checked (row counts, usage
    total, catalog export checksum) before it commits; on any difference nothing is written.
    Downloads' files are copied into DST's data folder. SRC is read as one snapshot, so it can stay
    in use meanwhile.

    Example: tollgate db copy ~/.local/share/tollgate/tollgate.db postgresql://tollgate@db.internal/tollgate
    """
    from tollgate.copying import copy_database

    update, bar = _copy_progress()
    with bar:
        result = copy_database(src, dst, progress=update)
    if as_json:
        output.emit_json(result.to_dict())
        return
    output.table(TABLE_ROWS, list(result.tables.items()))
    output.say(
        f"Copied {result.rows:,} rows in {len(result.tables)} tables from {result.source} to {result.target}; "
        f"row counts, usage total and catalog (sha256 {result.catalog_sha256[:12]}) match."
    )
    if result.blobs_copied:
        output.say(f"Copied {result.blobs_copied} download file(s) into the target's data folder.")
    if result.signing_keys_copied:
        output.say(f"Copied {result.signing_keys_copied} license-file signing key(s) into the target's data folder.")
    if result.blobs_missing:
        output.warn(f"{len(result.blobs_missing)} download file(s) were missing at the source and were not copied.")


def _copy_progress() -> tuple[Callable[[str, int, int], None] | None, AbstractContextManager[Any]]:
    """(progress callback, context) drawing one bar per table on stderr when it is a terminal: rows
    copied of the table's rows, rate and ETA."""
    import sys
    from contextlib import nullcontext

    if not output.is_terminal(sys.stderr):
        return None, nullcontext()
    bar = output.progress_bar()
    tasks: dict[str, TaskID] = {}

    def update(table: str, done: int, total: int) -> None:
        if table not in tasks:
            tasks[table] = bar.add_task(table, total=max(total, 1), rate="")
        bar.update(tasks[table], completed=done if total else 1)
        bar.update(tasks[table], rate=output.rate(bar.tasks[tasks[table]]))

    return update, bar
