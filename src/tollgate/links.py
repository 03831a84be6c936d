"""Links (spec Rule 9): a plan's named web addresses (a community, a dashboard), shown to customers
entitled to the plan (a live subscription on it, as for downloads).

A link's URL is an absolute http(s) address with a host and no spaces or control characters
(`javascript:`, `file:`, `example.com` without a scheme, `https://` without a host are refused).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from tollgate import identifiers, journal, locks, tables
from tollgate.clock import utcnow
from tollgate.errors import Conflict, NotFound
from tollgate.models import Customer, Plan, PlanLink
from tollgate.deliverable_views import LinkView
from tollgate.profile import entitled_rows, link_views

MAX_NAME = 200


def validate_url(url: Any) -> str:
    from tollgate.catalog import validate_url as catalog_rule

    return catalog_rule(url)


def validate_name(name: Any) -> str:
    from tollgate.catalog import validate_name as catalog_rule

    return catalog_rule(name, what="link name")


def get_link(session: Session, link_id: str) -> PlanLink:
    row = session.exec(select(PlanLink).where(PlanLink.public_id == (link_id or "").strip())).first()
    if row is None:
        raise NotFound(f"No link has the id '{link_id}'.", hint="See `tollgate link list PLAN`.")
    return row


def list_links(
    session: Session, *, plan: Plan | None = None, customer: Customer | None = None, at: datetime | None = None
) -> list[Any]:
    """A plan's links, or those a customer is entitled to (rows of tables.plan_link)."""
    return entitled_rows(session, tables.plan_link, plan=plan, customer=customer, at=at)


def link_view(session: Session, row: PlanLink) -> LinkView:
    return link_views(session, [row])[0]


def add_link(session: Session, *, plan: str, name: str, url: str, now: datetime | None = None) -> PlanLink:
    """Add a named link to a plan, after its others."""
    from tollgate.catalog import get_plan

    now = now or utcnow()
    name = validate_name(name)
    url = validate_url(url)
    locks.namespace(session, "catalog")  # catalog changes: one at a time
    row_plan = get_plan(session, plan)
    taken = session.exec(
        select(PlanLink.public_id).where(PlanLink.plan_id == row_plan.id, PlanLink.name == name)
    ).first()
    if taken is not None:
        raise Conflict(f"The plan '{plan}' already has a link named '{name}' ({taken}).",
                       hint="Choose another name, or remove the old link first.")
    last = session.exec(select(func.max(PlanLink.position)).where(PlanLink.plan_id == row_plan.id)).one()
    row = PlanLink(public_id=identifiers.public_id("ln"), plan_id=row_plan.id, name=name, url=url,
                   position=0 if last is None else last + 1, created_at=now)
    session.add(row)
    row_plan.updated_at = now
    session.add(row_plan)
    session.flush()
    journal.record(session, action="link.add", object_type="link", object_id=row.public_id,
                   details={"plan": plan, "name": name, "url": url}, at=now)
    return row


def remove_link(session: Session, *, link_id: str, now: datetime | None = None) -> LinkView:
    """Delete a link; returns what it was."""
    now = now or utcnow()
    locks.namespace(session, "catalog")  # catalog changes: one at a time
    row = get_link(session, link_id)
    removed = link_view(session, row)
    session.delete(row)
    session.flush()
    journal.record(session, action="link.remove", object_type="link", object_id=row.public_id,
                   details={"plan": removed.plan, "name": row.name, "url": row.url}, at=now)
    return removed
