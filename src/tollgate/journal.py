"""The journal: every change the library makes, written in the same transaction as the change."""

from __future__ import annotations

import getpass
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, insert
from sqlmodel import Session, func, select

from tollgate.clock import rfc3339, utcnow
from tollgate.errors import InvalidInput
from tollgate.models import Customer, Journal

MAX_LIMIT = 2**63 - 1  # the largest LIMIT SQL takes (a 64-bit integer)


@lru_cache(maxsize=1)
def current_actor() -> str:
    """The OS user making the change (falls back to the numeric uid when there is no name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def record(
    session: Session | Connection,
    *,
    action: str,
    object_type: str,
    object_id: str,
    customer_id: int | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Add one journal entry to the caller's transaction (committed or rolled back with it): to a
    Session's unit of work (flushed with its other changes, in batches), or at once on a Core
    Connection (`check --consume`, which runs without the ORM)."""
    entry = {"at": at or utcnow(), "actor": current_actor(), "action": action, "object_type": object_type,
             "object_id": object_id, "customer_id": customer_id,
             "details": json.dumps(details or {}, sort_keys=True, default=str)}
    if isinstance(session, Connection):
        session.execute(insert(Journal.__table__), entry)
    else:
        session.add(Journal(**entry))


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    customer: str | None
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape (`log --json`)."""
        return {"id": self.id, "at": rfc3339(self.at), "actor": self.actor, "action": self.action,
                "object_type": self.object_type, "object": self.object_id, "customer": self.customer,
                "details": self.details}


def read(
    session: Session, *, customer_id: int | None = None, since: datetime | None = None,
    until: datetime | None = None, action: str | None = None, limit: int | None = None,
) -> list[Entry]:
    """Journal entries, oldest first (the newest `limit` of them when a limit is given). `until` is
    exclusive; `action` is one action (`license.revoke`) or a family (`license`: every `license.*`)."""
    stmt = select(Journal, Customer.identifier).join(Customer, Customer.id == Journal.customer_id, isouter=True)
    stmt = _matching(stmt, customer_id=customer_id, since=since, until=until, action=action).order_by(Journal.id.desc())
    if limit:
        stmt = stmt.limit(min(limit, MAX_LIMIT))  # a larger LIMIT overflows SQL's 64-bit integer
    rows = session.exec(stmt).all()
    return [
        Entry(
            id=row.id,
            at=row.at,
            actor=row.actor,
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            customer=identifier,
            details=json.loads(row.details),
        )
        for row, identifier in reversed(rows)
    ]


def count(
    session: Session, *, customer_id: int | None = None, since: datetime | None = None,
    until: datetime | None = None, action: str | None = None,
) -> int:
    """How many entries `read` would give without a limit (one COUNT query)."""
    stmt = select(func.count()).select_from(Journal)
    return session.exec(_matching(stmt, customer_id=customer_id, since=since, until=until, action=action)).one()


_ACTION = re.compile(r"[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*")


def action_filter(action: str | None) -> str | None:
    """`log --action`: one action (license.revoke) or a family (license); anything else (a glob,
    capitals) is refused, as it could only ever match nothing."""
    if action is not None and not _ACTION.fullmatch(action):
        family = action.split(".")[0].lower()
        raise InvalidInput(f"'{action}' is not an action: name one (license.revoke) or a family (license).",
                           hint=f"Try --action {family}." if _ACTION.fullmatch(family) else None)
    return action


def actions(session: Session) -> list[str]:
    """The distinct actions in the journal, sorted."""
    return list(session.exec(select(Journal.action).distinct().order_by(Journal.action)).all())


def _matching(stmt, *, customer_id: int | None, since: datetime | None, until: datetime | None, action: str | None):
    if customer_id is not None:
        stmt = stmt.where(Journal.customer_id == customer_id)
    if since is not None:
        stmt = stmt.where(Journal.at >= since)
    if until is not None:
        stmt = stmt.where(Journal.at < until)
    if action:
        stmt = stmt.where((Journal.action == action) | Journal.action.startswith(action + ".", autoescape=True))
    return stmt
