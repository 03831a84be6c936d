"""`tollgate catalog ...`: export and import the catalog as a TOML file (catalog as code)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from tollgate.cli import output
from tollgate.cli.context import Json, tollgate
from tollgate.cli.grid import ID, Col
from tollgate.cli.help import Typer

app = Typer(help="The catalog as code: products, features and plans in one TOML file.\n\nExample: tollgate catalog import sample-catalog.toml --dry-run", no_args_is_help=True)

_VERBS = {"create": "Created", "update": "Updated", "archive": "Archived"}
_SHOWN = 50
_WOULD = {"create": "Would create", "update": "Would update", "archive": "Would archive"}


@app.command("export")
def export(
    file: Annotated[Optional[str], typer.Argument(help="Write here (atomically); without it, print to stdout.", metavar="FILE")] = None,
    with_files: Annotated[
        bool, typer.Option("--with-files", help="Also copy each download next to FILE (assets/<plan>/<name>) and write `file` keys.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="With --with-files: replace asset files that hold other content.")
    ] = False,
) -> None:
    """Write the whole catalog as canonical TOML (sorted, stable: exports diff cleanly in git).

    With --with-files, every asset is checked before any is written; an existing asset file with
    other content is refused (exit 2) unless --overwrite.
    Example: tollgate catalog export catalog.toml
    """
    text = tollgate().export_catalog(file, with_files=with_files, overwrite=overwrite)
    if file is None:
        sys.stdout.write(text)
    else:
        output.say(f"Wrote the catalog to {file}.")


@app.command("import")
def import_(
    file: Annotated[str, typer.Argument(metavar="FILE|-", help="A catalog TOML file (format: docs/catalog.md); '-': stdin.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan of changes; write nothing.")] = False,
    prune: Annotated[bool, typer.Option("--prune", help="Archive products, features and plans the file no longer has.")] = False,
    as_json: Json = False,
) -> None:
    """Apply a catalog file: everything is checked first, then applied in one transaction (or nothing is).

    Re-importing the same file changes nothing. Errors name the TOML path (plans.pro.prices[0].amount).
    Example: tollgate catalog import sample-catalog.toml --dry-run
    Example: git show main:catalog.toml | tollgate catalog import -   (from standard input: 'file =' paths then count from the current folder)
    """
    result = tollgate().import_catalog(file, dry_run=dry_run, prune=prune)
    file = result.file
    if as_json:
        output.emit_json(result.to_dict())
        return
    counts = result.counts()
    if dry_run:
        output.table(
            (Col("action", ID), Col("kind", ID), Col("identifier", ID), Col("changes")),
            ([c.action, c.kind, c.identifier, ", ".join(c.fields)] for c in result.changes),
            title=f"Plan for {file} (dry run: nothing written)",
        )
    elif result.changed:
        done = [change for change in result.changes if change.action != "unchanged"]
        for change in done[:_SHOWN]:
            detail = f" ({', '.join(change.fields)})" if change.fields else ""
            output.say(f"{_VERBS[change.action]} {change.kind} {change.identifier}{detail}.")
        if len(done) > _SHOWN:
            output.say(f"... and {len(done) - _SHOWN} more (--json lists every change).")
    for version in result.new_versions:
        output.say(f"Plan {version['plan']} {'would get' if dry_run else 'got'} version {version['version']}; "
                   f"{version['subscribers_staying']} subscription(s) stay on version {version['version'] - 1}.")
    if result.not_in_file:
        shown = ", ".join(result.not_in_file[:10]) + (" ..." if len(result.not_in_file) > 10 else "")
        output.notice(
            f"{len(result.not_in_file)} object(s) in the database are not in {file} and were left as they are "
            f"({shown}); --prune archives them."
        )
    if not result.changed:
        output.say(f"Nothing to change: the database already matches {file} ({counts['unchanged']} object(s) unchanged).")
        return
    words = _WOULD if dry_run else _VERBS
    summary = ", ".join(f"{words[action].split()[-1].lower()} {counts[action]}" for action in ("create", "update", "archive")
                        if counts[action])
    prefix = "Dry run, nothing written: would" if dry_run else "Done:"
    output.say(f"{prefix} {summary}; {counts['unchanged']} unchanged.")
