"""The one error for an identifier that names no customer, with the closest one suggested.

Every lookup of a customer reads the row its own way (ORM or Core, with or without a lock), so they
share this error rather than a query. Light: SQLAlchemy Core over `tables`, no ORM (the read path).
"""

from __future__ import annotations

import difflib
from typing import Any

from sqlalchemy import or_, select

from tollgate import tables
from tollgate.errors import NotFound

_CANDIDATES = 5000
"""Identifiers compared with difflib: those sharing the first character or containing the text typed."""


def no_customer(session: Any, identifier: str) -> NotFound:
    """NotFound for `identifier`, saying "Did you mean 'acme-inc'?" when one identifier is close."""
    closest = _closest(session, identifier)
    suggestion = f" Did you mean '{closest}'?" if closest else ""
    return NotFound(f"No customer has the identifier '{identifier}'.{suggestion}",
                    hint="See `tollgate customer list --all --search ...`.")


def _closest(session: Any, identifier: str) -> str | None:
    if not isinstance(identifier, str) or not identifier.strip():
        return None
    column = tables.customer.c.identifier
    rows = session.execute(
        select(column).where(or_(column.startswith(identifier[:1], autoescape=True),
                                 column.contains(identifier, autoescape=True))).limit(_CANDIDATES)
    ).scalars().all()
    matches = difflib.get_close_matches(identifier, rows, n=1, cutoff=0.6)
    return matches[0] if matches else None
