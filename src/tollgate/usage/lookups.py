"""The customer and the metered feature a usage call names, looked up by identifier (Core over the
light table clauses of tables.py: the read path loads no sqlmodel)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tollgate import tables
from tollgate.errors import InvalidInput, RuleViolation
from tollgate.unknown import no_customer

C = tables.customer


def customer_row(conn: Any, identifier: str, *, doing: str | None = None) -> Any:
    """The customer's (id, identifier, status): NotFound for an unknown one; RuleViolation for an
    archived one when `doing` (what it can't do, `report usage`) is given."""
    row = conn.execute(select(C.c.id, C.c.identifier, C.c.status).where(C.c.identifier == identifier)).first()
    if row is None:
        raise no_customer(conn, identifier)
    if doing and row.status == "archived":
        raise RuleViolation(f"The customer '{identifier}' is archived and can't {doing}.")
    return row


def metered_feature(conn: Any, identifier: str) -> Any:
    """The feature's reference (entitlements.lookup_feature); InvalidInput if it is not metered."""
    from tollgate.entitlements import lookup_feature

    ref = lookup_feature(conn, identifier)
    if ref.type != "metered":
        raise InvalidInput(
            f"'{identifier}' is a {ref.type} feature; only metered features have usage.",
            hint="See `tollgate feature list --type metered`.",
        )
    return ref
