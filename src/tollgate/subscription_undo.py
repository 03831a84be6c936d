"""Undoing and guarding subscription changes: `sub resume` takes back a cancellation scheduled with
`--at-period-end` (and the scheduled revocation of its license keys), and a second live subscription
of one customer to the same plan is refused unless asked for (`--another`).

Both run after the caller locked the customer (`sub add`) or the subscription (`sub resume`) FOR
UPDATE on PostgreSQL, so two concurrent `sub add` of one customer and plan run one after the other
and the second sees the first (READ COMMITTED: each statement reads what was committed before it).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from tollgate import journal
from tollgate.clock import rfc3339, utcnow
from tollgate.errors import RuleViolation
from tollgate.models import License, Subscription
from tollgate.subscriptions import ENDED_STATUSES, effective_status, get_subscription


def refuse_second(session: Session, *, customer_id: int, plan_id: int, customer: str, plan: str,
                  now: datetime) -> None:
    """RuleViolation naming the customer's live (or scheduled) subscription to this plan, if any."""
    for sub in session.exec(select(Subscription).where(Subscription.customer_id == customer_id,
                                                       Subscription.plan_id == plan_id)):
        if effective_status(sub, now) not in ENDED_STATUSES:
            raise RuleViolation(f"'{customer}' already has a live subscription to '{plan}' ({sub.public_id}).",
                                hint="Pass --another to add a second one, or change it with `tollgate sub edit`.")


def resume_subscription(session: Session, *, subscription: str, now: datetime | None = None) -> Subscription:
    """Take back a scheduled cancellation: the subscription renews again, and the license keys whose
    revocation was scheduled with it stay valid. Refused (RuleViolation) when nothing is scheduled or
    the subscription has ended."""
    now = now or utcnow()
    sub = get_subscription(session, subscription, lock="update")
    current = effective_status(sub, now)
    if current in ENDED_STATUSES:
        raise RuleViolation(f"The subscription {sub.public_id} has already ended ({current}); it can't be resumed.",
                            hint="Start a new one with `tollgate sub add`.")
    if sub.cancel_at is None:
        raise RuleViolation(f"The subscription {sub.public_id} has no scheduled cancellation to take back.")
    scheduled = sub.cancel_at
    sub.cancel_at = None
    sub.canceled_at = None
    sub.updated_at = now
    session.add(sub)
    keys = []
    for license in session.exec(select(License).where(License.subscription_id == sub.id,
                                                      License.revoked_at == scheduled,
                                                      License.status != "revoked")):
        license.revoked_at = None
        session.add(license)
        keys.append(license.key)
    session.flush()
    journal.record(session, action="subscription.resume", object_type="subscription", object_id=sub.public_id,
                   customer_id=sub.customer_id, details={"was_canceling_at": rfc3339(scheduled), "licenses": keys},
                   at=now)
    return sub
