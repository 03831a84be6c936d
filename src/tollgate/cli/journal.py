"""`tollgate log`: the journal of every change."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from tollgate.cli import output
from tollgate.cli.complete import complete_customer
from tollgate.cli.context import Json, tollgate
from tollgate.cli.grid import DATE, ID, TEXT, Col


def log(
    customer: Annotated[Optional[str], typer.Option("--customer", "-c", help="Only this customer's changes.", autocompletion=complete_customer)] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="Only changes at or after this date/time (UTC).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", min=1, help="Only the newest N entries.")] = None,
    as_json: Json = False,
) -> None:
    """Show the journal: what changed, on which object, when, and by which OS user.

    Example: tollgate log --customer acme-inc --since 2026-11-01
    """
    from tollgate.clock import parse_moment, rfc3339

    entries = tollgate().journal(
        customer=customer, since=parse_moment(since, what="--since date") if since else None, limit=limit
    )
    rows = [
        {
            "id": e.id,
            "at": rfc3339(e.at),
            "actor": e.actor,
            "action": e.action,
            "object_type": e.object_type,
            "object": e.object_id,
            "customer": e.customer,
            "details": e.details,
        }
        for e in entries
    ]
    if as_json:
        output.emit_json(rows)
        return
    with output.paged():
        output.table(
            (Col("at", DATE), Col("actor", ID, 2), Col("action", ID), Col("object", ID, 1), Col("details", TEXT, 3)),
            (
                (r["at"], r["actor"], r["action"], r["object"], json.dumps(r["details"], ensure_ascii=False, sort_keys=True))
                for r in rows
            ),
        )
