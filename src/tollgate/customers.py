"""Customers: add, edit, archive, find, list, and import in bulk (all or nothing)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert
from sqlmodel import Session, col, select

from tollgate import identifiers, journal, locks
from tollgate import text as text_rule
from tollgate.clock import utcnow
from tollgate.errors import Conflict, InvalidInput, RuleViolation
from tollgate.unknown import no_customer
from tollgate.models import Customer, Journal
from tollgate.rowfiles import Row
from tollgate.statuses import LIVE_STATUSES

MAX_NAME = 200
MAX_LIMIT = 2**63 - 1  # the largest LIMIT SQL takes (a 64-bit integer)

_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"^{_LOCAL}@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}$")


def validate_name(name: Any, *, path: str | None = None) -> str:
    text = name.strip() if isinstance(name, str) else ""
    if not text:
        raise InvalidInput("A customer needs a name (a person's full name or a company name).", path=path)
    if len(text) > MAX_NAME:
        raise InvalidInput(f"The name is longer than {MAX_NAME} characters.", path=path)
    text_rule.check(text, what="the name", path=path)
    return text


def validate_email(email: Any, *, path: str | None = None) -> str | None:
    """None or "" -> no email; otherwise a plausible address (checked, never sent to)."""
    if email is None or (isinstance(email, str) and not email.strip()):
        return None
    text = email.strip() if isinstance(email, str) else ""
    if len(text) > 254 or not _EMAIL.match(text) or len(text.split("@")[0]) > 64:
        raise InvalidInput(f"'{email}' is not a valid email address (like name@example.com).", path=path)
    return text


def _search_text(identifier: str, name: str, email: str | None) -> str:
    return " ".join(filter(None, (identifier, name, email))).casefold()


def get_customer(session: Session, identifier: str, *, lock: locks.Mode | None = None) -> Customer:
    """The customer with this identifier; NotFound when none. `lock`: see locks.locked."""
    stmt = select(Customer).where(Customer.identifier == identifier)
    customer = session.exec(locks.locked(session, stmt, lock)).first()
    if customer is None:
        raise no_customer(session, identifier)
    return customer


def _taken(session: Session):
    def is_taken(candidate: str) -> bool:
        return session.exec(select(Customer.id).where(Customer.identifier == candidate)).first() is not None

    return is_taken


def add_customer(
    session: Session,
    *,
    name: str,
    identifier: str | None = None,
    email: str | None = None,
    now: datetime | None = None,
) -> Customer:
    """Create a customer; the identifier is generated from the name when not given."""
    name = validate_name(name)
    email = validate_email(email)
    locks.namespace(session, "customers")  # a taken or free identifier stays so until we commit
    if identifier is not None:
        identifiers.validate(identifier, kind="customer identifier")
        if _taken(session)(identifier):
            raise Conflict(
                f"The identifier '{identifier}' is already taken (identifiers are never reused).",
                hint="Choose another with --id, or leave it out to generate one.",
            )
    else:
        identifier = identifiers.first_free(identifiers.slugify(name, fallback="customer"), _taken(session))
    now = now or utcnow()
    customer = Customer(
        identifier=identifier,
        billing_id=identifiers.public_id("cus"),
        name=name,
        email=email,
        search_text=_search_text(identifier, name, email),
        created_at=now,
        updated_at=now,
    )
    session.add(customer)
    session.flush()
    journal.record(
        session,
        action="customer.create",
        object_type="customer",
        object_id=identifier,
        customer_id=customer.id,
        details={"name": name, "email": email},
        at=now,
    )
    return customer


UNCHANGED: Any = object()


def edit_customer(
    session: Session,
    *,
    identifier: str,
    name: str | None = None,
    email: str | None = UNCHANGED,
    now: datetime | None = None,
) -> Customer:
    """Change the name and/or email (an empty email clears it). The identifier never changes."""
    customer = get_customer(session, identifier, lock="update")
    changes: dict[str, Any] = {}
    if name is not None:
        new_name = validate_name(name)
        if new_name != customer.name:
            changes["name"] = [customer.name, new_name]
            customer.name = new_name
    if email is not UNCHANGED:
        new_email = validate_email(email)
        if new_email != customer.email:
            changes["email"] = [customer.email, new_email]
            customer.email = new_email
    if changes:
        customer.updated_at = now or utcnow()
        customer.search_text = _search_text(customer.identifier, customer.name, customer.email)
        session.add(customer)
        journal.record(
            session,
            action="customer.update",
            object_type="customer",
            object_id=customer.identifier,
            customer_id=customer.id,
            details=changes,
            at=customer.updated_at,
        )
    return customer


def live_subscription_ids(session: Session, customer_id: int, at: datetime | None = None) -> list[str]:
    """Ids of the customer's subscriptions that are, or will be, live at `at` (default now): trialing,
    active or past_due, and not ended by a cancellation at or before `at` (a subscription canceled at
    period end is live until then; a scheduled one, starting later, counts too)."""
    from sqlalchemy import or_

    from tollgate.models import Subscription

    at = at or utcnow()
    stmt = select(Subscription.public_id).where(
        Subscription.customer_id == customer_id,
        col(Subscription.status).in_(LIVE_STATUSES),
        or_(col(Subscription.cancel_at).is_(None), col(Subscription.cancel_at) > at),
    ).order_by(Subscription.id)
    return list(session.exec(stmt).all())


def archive_customer(session: Session, *, identifier: str, now: datetime | None = None) -> Customer:
    """Archive: no more access, subscriptions or usage; history stays. Refused while a subscription is live.

    The customer row is locked first: a concurrent `sub add` either committed before (its subscription
    is seen, and refuses the archive) or waits and then finds the customer archived."""
    customer = get_customer(session, identifier, lock="update")
    if customer.status == "archived":
        raise RuleViolation(f"The customer '{identifier}' is already archived.")
    now = now or utcnow()
    live = live_subscription_ids(session, customer.id, now)
    if live:
        raise RuleViolation(
            f"The customer '{identifier}' has a live subscription ({', '.join(live)}).",
            hint=f"Cancel it first: tollgate sub cancel {live[0]}",
        )
    customer.status = "archived"
    customer.archived_at = now
    customer.updated_at = now
    session.add(customer)
    journal.record(
        session, action="customer.archive", object_type="customer", object_id=identifier, customer_id=customer.id, at=now
    )
    return customer


def unarchive_customer(session: Session, *, identifier: str, now: datetime | None = None) -> Customer:
    """Take an archive back: the customer is active again (subscriptions ended stay ended)."""
    customer = get_customer(session, identifier, lock="update")
    if customer.status != "archived":
        raise RuleViolation(f"The customer '{identifier}' is not archived.")
    now = now or utcnow()
    customer.status = "active"
    customer.archived_at = None
    customer.updated_at = now
    session.add(customer)
    journal.record(session, action="customer.unarchive", object_type="customer", object_id=identifier,
                   customer_id=customer.id, at=now)
    return customer


def require_active(customer: Customer, *, doing: str) -> None:
    if customer.status == "archived":
        raise RuleViolation(f"The customer '{customer.identifier}' is archived and can't {doing}.")


def _like_pattern(query: str) -> str:
    escaped = query.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_customers(
    session: Session, *, search: str | None = None, status: str = "active", limit: int | None = None
) -> list[Customer]:
    """Customers in creation order. `search` matches identifier, name and email, literally, any case."""
    stmt = _matching(select(Customer), search=search, status=status).order_by(Customer.id)
    if limit:
        stmt = stmt.limit(min(limit, MAX_LIMIT))  # a larger LIMIT overflows SQL's 64-bit integer
    return list(session.exec(stmt).all())


def count_customers(session: Session, *, search: str | None = None, status: str = "active") -> int:
    """How many customers list_customers would give without a limit (one COUNT query)."""
    return session.exec(_matching(select(func.count()).select_from(Customer), search=search, status=status)).one()


def _matching(stmt, *, search: str | None, status: str):
    if status not in ("active", "archived", "all"):
        raise InvalidInput(f"Unknown status '{status}': use active, archived or all.")
    if status != "all":
        stmt = stmt.where(Customer.status == status)
    if search:
        stmt = stmt.where(col(Customer.search_text).like(_like_pattern(search), escape="\\"))
    return stmt


@dataclass
class ImportResult:
    """What an import did (or, on a dry run, would do)."""

    created: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (`customer import --json`): counts, and the identifiers created."""
        return {"dry_run": self.dry_run, "created": len(self.created), "unchanged": len(self.unchanged),
                "identifiers": [row["identifier"] for row in self.created]}


def import_customers(
    session: Session, rows: Iterable[Row], *, dry_run: bool = False, now: datetime | None = None
) -> ImportResult:
    """Validate every row first; raise one InvalidInput naming every bad row; then create all at once.

    A row whose identifier exists with the same name and email is unchanged, so re-running a file
    that gives identifiers is safe. Rows without an identifier always create a customer.
    """
    now = now or utcnow()
    locks.namespace(session, "customers")  # concurrent imports of the same identifiers: one at a time
    existing = {
        ident: (name, email, billing_id)
        for ident, name, email, billing_id in session.exec(
            select(Customer.identifier, Customer.name, Customer.email, Customer.billing_id)).all()
    }
    claimed: dict[str, str] = {}
    billing_ids = {billing_id: f"customer '{ident}'" for ident, (_, _, billing_id) in existing.items()}  # -> holder
    result = ImportResult(dry_run=dry_run)
    errors: list[str] = []
    pending: list[tuple[str, str | None, str | None, str | None]] = []  # name, identifier (None: made from
    for row in rows:                                                     # the name), email, billing id
        try:
            name, ident, email = _validate_row(row)
        except InvalidInput as exc:
            errors.append(str(exc))
            continue
        given_billing_id = row.data.get("billing_id") or None
        if ident is not None:
            if ident in claimed:
                errors.append(f"{row.where}: the identifier '{ident}' is also on {claimed[ident]}.")
                continue
            claimed[ident] = row.where
            if ident in existing:
                billing_id = given_billing_id or existing[ident][2]
                if existing[ident] == (name, email, billing_id):
                    result.unchanged.append(ident)
                else:
                    errors.append(
                        f"{row.where}: the customer '{ident}' exists with a different name, email or billing id "
                        "(import only creates; use `customer edit`)."
                    )
                continue
        if given_billing_id is not None:  # a new customer keeps the billing id of the list it comes from
            if not identifiers.is_public_id(given_billing_id, "cus"):
                errors.append(f"{row.where}: '{given_billing_id}' is not a billing id (cus_ and 14 letters or digits).")
                continue
            if given_billing_id in billing_ids:
                errors.append(f"{row.where}: the billing id '{given_billing_id}' is taken (by "
                              f"{billing_ids[given_billing_id]}).")
                continue
            billing_ids[given_billing_id] = row.where
        pending.append((name, ident, email, given_billing_id))
    if errors:
        raise ImportErrors(errors)
    names = identifiers.FreeNames(set(existing) | set(claimed))
    for name, ident, email, billing_id in pending:
        if ident is None:
            ident = names.take(identifiers.slugify(name, fallback="customer"))
        result.created.append(
            {
                "identifier": ident,
                "billing_id": billing_id or identifiers.public_id("cus"),
                "name": name,
                "email": email,
                "status": "active",
                "search_text": _search_text(ident, name, email),
                "created_at": now,
                "updated_at": now,
            }
        )
    if result.created and not dry_run:
        _insert_created(session, result.created, now)
    return result


READ_ONLY = {"billing_id", "status", "created_at", "updated_at", "archived_at"}
"""Columns of `customer list --csv/--json` that an import reads past, so a list reads back: a billing
id is matched against an existing customer's, and a new customer keeps it (so re-running the file,
or moving customers to another database, keeps the ids other systems know); the rest is ignored."""


def _validate_row(row: Row) -> tuple[str, str | None, str | None]:
    data = row.data
    unknown = set(data) - {"name", "identifier", "id", "email"} - READ_ONLY
    if unknown:
        raise InvalidInput(f"unknown column(s) {text_rule.listing(sorted(map(str, unknown)))}.", path=row.where)
    name = validate_name(data.get("name"), path=row.where)
    raw_ident = data.get("identifier", data.get("id"))
    ident = None
    if raw_ident not in (None, ""):
        ident = identifiers.validate(raw_ident, kind="customer identifier", path=row.where)
    email = validate_email(data.get("email"), path=row.where)
    return name, ident, email


def _insert_created(session: Session, created: list[dict[str, Any]], now: datetime) -> None:
    """Set-based insert of customers and their journal entries (the ORM's per-object add is far slower)."""
    conn = session.connection()
    for chunk_start in range(0, len(created), 5000):
        chunk = created[chunk_start : chunk_start + 5000]
        conn.execute(insert(Customer), chunk)
    ids = dict(session.exec(select(Customer.identifier, Customer.id).where(Customer.created_at == now)).all())
    actor = journal.current_actor()
    conn.execute(
        insert(Journal),
        [
            {
                "at": now,
                "actor": actor,
                "action": "customer.create",
                "object_type": "customer",
                "object_id": row["identifier"],
                "customer_id": ids.get(row["identifier"]),
                "details": json.dumps({"import": True, "name": row["name"]}, sort_keys=True),
            }
            for row in created
        ],
    )


class ImportErrors(InvalidInput):
    """Every bad row of an import, so the file can be fixed in one go."""

    def __init__(self, errors: list[str]) -> None:
        shown = errors[:20]
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        super().__init__(
            f"{len(errors)} bad row(s){more}; nothing was imported:\n  " + "\n  ".join(shown),
        )
        self.errors = errors
