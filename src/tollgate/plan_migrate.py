"""`plan migrate`: move subscriptions between versions of their plan, on purpose, previewed and journaled.

Which: the plan's live subscriptions (not ended at `now`), on version `from_` when given, of the
given customers when any, that are not on the target already. Each moves `now` (its price becomes the
target version's for its interval and currency, as `sub edit --plan` chooses one) or at the end of its
current billing period (`period-end`: stored on the subscription and read lazily, sub_versions.py;
the interval and currency must stay, and a one-time purchase has no period end). Its own adjustments
stay (an adjustment of a feature the new version does not grant does nothing until one grants it).

The figures: for each subscription the customer's effective entitlements and the subscription's
invoice preview of the current period (the real invoice code, `invoice preview` of the customer at
`now`) are read before the move and with the move in effect, in this transaction; a dry run is the
same run rolled back by the caller, so it shows exactly what the migration then does.
Locks: the subscriptions (FOR UPDATE, in id order), then the plan (FOR SHARE: a concurrent change of
the plan waits, so no subscription moves onto a version being edited in place).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from tollgate import journal, locks
from tollgate.clock import rfc3339, utcnow
from tollgate.errors import InvalidInput, RuleViolation
from tollgate.models import Customer, Plan, PlanVersion, Subscription
from tollgate.sub_versions import settle, version_id_of

WHEN = ("now", "period-end")


@dataclass(frozen=True, slots=True)
class Move:
    """One subscription's move, with what it changes for the current period."""

    subscription: str
    customer: str
    from_version: int
    to_version: int
    effective_at: datetime
    entitlements: tuple[dict[str, Any], ...]  # {"feature", "from", "to"}: the entitlements' JSON (None: none)
    current_amount: str | None  # the current period's amount on the subscription's version, and on the target
    new_amount: str | None
    currency: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"subscription": self.subscription, "customer": self.customer, "from_version": self.from_version,
                "to_version": self.to_version, "effective_at": rfc3339(self.effective_at),
                "entitlements": list(self.entitlements), "current_amount": self.current_amount,
                "new_amount": self.new_amount, "currency": self.currency}


@dataclass(frozen=True, slots=True)
class Migration:
    plan: str
    to_version: int
    from_version: int | None
    at: str  # now | period-end
    dry_run: bool
    moves: tuple[Move, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"plan": self.plan, "to_version": self.to_version, "from_version": self.from_version, "at": self.at,
                "dry_run": self.dry_run, "moves": [move.to_dict() for move in self.moves]}


def resolve(session: Session, *, plan: str, to: Any, from_: Any = None, customers: Sequence[str] = (),
            at: str = "now") -> tuple[Plan, PlanVersion, PlanVersion | None, list[int]]:
    """The plan, target and source versions and customer ids a migration names; NotFound for any
    unknown, InvalidInput for a bad `at`."""
    from tollgate.catalog import get_plan
    from tollgate.customers import get_customer
    from tollgate.plan_versions import get_version

    if at not in WHEN:
        raise InvalidInput(f"--at is now or period-end, not {at!r}.")
    plan_row = get_plan(session, plan)
    target = get_version(session, plan_row, to)
    source = None if from_ is None else get_version(session, plan_row, from_)
    if source is not None and source.id == target.id:
        raise InvalidInput(f"--from and --to both name version {target.version}; nothing would move.")
    return plan_row, target, source, [get_customer(session, ident).id for ident in customers]


def migrate(session: Session, *, plan: str, to: Any, from_: Any = None, customers: Sequence[str] = (),
            at: str = "now", dry_run: bool = False, now: datetime | None = None) -> Migration:
    """Move the plan's subscriptions to version `to` (module docstring); every move is journaled as
    `subscription.migrate`. `dry_run` only names the result: the caller rolls the transaction back."""
    from tollgate.profile import effective_status
    from tollgate.statuses import ENDED_STATUSES

    now = now or utcnow()
    plan_row, target, source, customer_ids = resolve(session, plan=plan, to=to, from_=from_, customers=customers,
                                                     at=at)
    stmt = select(Subscription).where(Subscription.plan_id == plan_row.id)
    if customers:
        stmt = stmt.where(col(Subscription.customer_id).in_(customer_ids))
    subs = list(session.exec(locks.locked(session, stmt.order_by(Subscription.id))).all())
    session.exec(locks.locked(session, select(Plan.id).where(Plan.id == plan_row.id), "share")).first()
    numbers = dict(session.exec(select(PlanVersion.id, PlanVersion.version)
                                .where(PlanVersion.plan_id == plan_row.id)).all())
    moves = []
    for sub in subs:
        current = version_id_of(sub, now)
        if effective_status(sub, now) in ENDED_STATUSES or current == target.id and sub.next_version_id in (None, current):
            continue
        if source is not None and current != source.id:
            continue
        moves.append(_move(session, sub, plan_row, target, numbers[current], at=at, now=now))
    return Migration(plan_row.identifier, target.version, None if source is None else source.version, at, dry_run,
                     tuple(moves))


def _move(session: Session, sub: Subscription, plan: Plan, target: PlanVersion, from_version: int, *, at: str,
          now: datetime) -> Move:
    from tollgate.profile import current_period
    from tollgate.subscriptions import price_for_move

    settle(sub, now)
    customer = session.get_one(Customer, sub.customer_id)
    before = _figures(session, customer, sub, now)
    interval, currency, amount = price_for_move(session, sub, plan, target.id)
    if at == "period-end":
        if sub.interval == "once":
            raise RuleViolation(f"The subscription {sub.public_id} is a one-time purchase: it has no period end.",
                                hint="Move it now (--at now).")
        if (interval, currency) != (sub.interval, sub.currency):
            raise RuleViolation(
                f"Version {target.version} of '{plan.identifier}' has no {sub.interval} {sub.currency} price for "
                f"{sub.public_id}; a move at period end keeps the price's interval and currency.",
                hint="Move it now (--at now), which chooses the version's price.")
    scheduled = (sub.plan_version_id, sub.amount_minor, sub.interval, sub.currency)
    sub.plan_version_id, sub.interval, sub.currency, sub.amount_minor = target.id, interval, currency, amount
    sub.next_version_id = sub.next_version_at = sub.next_amount_minor = None
    session.add(sub)
    session.flush()
    after = _figures(session, customer, sub, now)
    effective_at = now
    if at == "period-end":  # the figures were read with the move in effect; now schedule it instead
        end = current_period(sub, now).end
        assert end is not None  # a recurring period ends (a one-time purchase was refused above)
        effective_at = end
        sub.plan_version_id, sub.amount_minor, sub.interval, sub.currency = scheduled
        sub.next_version_id, sub.next_version_at, sub.next_amount_minor = target.id, effective_at, amount
    sub.updated_at = now
    session.add(sub)
    session.flush()
    journal.record(session, action="subscription.migrate", object_type="subscription", object_id=sub.public_id,
                   customer_id=sub.customer_id, at=now,
                   details={"plan": plan.identifier, "from_version": from_version, "to_version": target.version,
                            "at": at, "effective_at": rfc3339(effective_at)})
    if at == "now":
        from tollgate import licenses

        licenses.issue_for_subscription(session, subscription=sub, now=now)  # a version that issues keys
    changes = tuple({"feature": feature, "from": before[0].get(feature), "to": after[0].get(feature)}
                    for feature in sorted(set(before[0]) | set(after[0]))
                    if before[0].get(feature) != after[0].get(feature))
    shown = sub.currency or next(iter(after[1] or before[1]), None)
    current = None if shown is None else before[1].get(shown, _zero(shown))
    new = None if shown is None else after[1].get(shown, _zero(shown))
    return Move(sub.public_id, customer.identifier, from_version, target.version, effective_at, changes,
                current, new, shown)


def _figures(session: Session, customer: Customer, sub: Subscription, now: datetime
             ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(feature -> the customer's effective entitlement's JSON without usage, currency -> the
    subscription's amount in `invoice preview` of the current period)."""
    from tollgate.entitlements import effective_entitlements
    from tollgate.invoices import preview, subscription_totals

    granted = {e.feature: _grant_only(e.to_dict())
               for e in effective_entitlements(session, customer=customer.identifier, at=now, with_usage=False)}
    return granted, subscription_totals(preview(session, customer=customer.identifier, at=now, now=now),
                                        sub.public_id)


def _grant_only(entitlement: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entitlement.items() if key not in ("used", "remaining", "overage")}


def _zero(currency: str | None) -> str | None:
    from decimal import Decimal

    from tollgate.money import format_money

    return None if currency is None else format_money(Decimal(0), currency)
