"""`tollgate log`: the journal of every change."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from tollgate.cli import output
from tollgate.cli.complete import complete_customer
from tollgate.cli.context import WHEN, Csv, EveryRow, Json, tollgate
from tollgate.cli.grid import DATE, ID, TEXT, Col

COLUMNS = ("at", "actor", "action", "object", "details")


def log(
    customer: Annotated[Optional[str], typer.Option("--customer", "-c", metavar="CUSTOMER", help="Only this customer's changes.", autocompletion=complete_customer)] = None,
    since: Annotated[Optional[str], typer.Option("--since", metavar=WHEN, help="Only changes at or after this time (UTC; 7d = 7 days ago).")] = None,
    until: Annotated[Optional[str], typer.Option("--until", metavar=WHEN, help="Only changes before this time (UTC).")] = None,
    action: Annotated[Optional[str], typer.Option("--action", "-a", metavar="ACTION", help="Only this action (license.revoke) or family (license).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", min=1, metavar="N", help="Only the newest N entries.")] = None,
    show_all: EveryRow = False,
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """Show the journal: what changed, on which object, when, and by which OS user. On a terminal,
    the newest 50 (and how many there are); piped, --json and --csv give every entry unless --limit.

    Example: tollgate log --customer acme-inc --since 7d --action subscription
    """
    filters = {"customer": customer, "since": since, "until": until, "action": action}
    shown = limit if as_json or as_csv else output.list_limit(limit, show_all)
    entries = tollgate().journal(**filters, limit=shown)
    rows = [e.to_dict() for e in entries]
    if not rows and action:  # say why nothing matched, and what would
        known = sorted({name.split(".")[0] for name in tollgate().journal_actions()})
        output.notice(f"No journal entry has the action '{action}' (or is in that family)"
                      + (f"; the journal's families: {', '.join(known)}." if known else "."))
    if as_json:
        output.emit_json(rows)
        return
    lines = [(r["at"], r["actor"], r["action"], r["object"], json.dumps(r["details"], ensure_ascii=False, sort_keys=True))
             for r in rows]
    if as_csv:
        output.emit_csv(COLUMNS, lines)
        return
    columns = (Col("at", DATE), Col("actor", ID, 2), Col("action", ID), Col("object", ID, 1), Col("details", TEXT, 3))
    output.counted_table(columns, lines, cut=shown != limit, total=lambda: tollgate().count_journal(**filters))
