"""Subscriptions: a customer on a plan, with its own feature adjustments.

Status (the stored value is the last explicit state; the status at a moment is computed):
- `trialing` until `trial_end`, then `active` (by date: nothing has to run for a trial to end);
- `past_due` (a payment is late; access continues) and back to `active`;
- `canceled`: access ended (at once, or at the end of the current period with --at-period-end: the
  subscription stays live, with its stored status, until `cancel_at`, then reads as `canceled`);
- `expired`: access ended because the term is over (set by an operator, e.g. a refunded purchase).
Transitions: trialing -> active | past_due | canceled | expired; active -> past_due | canceled |
expired; past_due -> active | canceled | expired; canceled and expired are final (subscribe again
with `sub add`). A subscription whose start is in the future is scheduled: it counts as live for
archiving, but grants nothing before its start.

Billing periods follow the interval from the start date (anniversaries; the 31st rolls to the
month's last day, see periods.py). `once` (a one-time purchase) has one period that never ends: its
access does not end by period, only by cancel/expire; `--at-period-end` is refused for it. A free
plan has no price; its periods are monthly unless `--interval` says otherwise.

Prices: the subscription takes the plan's price for its interval and currency. A free plan needs
neither; with exactly one price it is chosen; with several, a missing or unmatched choice is an
error that lists the options. The amount is copied onto the subscription when it starts.

Adjustments (`--feature F=VALUE`, `--without F`) change a feature the plan grants, for this
subscription only: they win over the plan and lose to overrides. A feature the plan does not grant
cannot be adjusted (use an override). Changing plan keeps the adjustments of features the new plan
also grants and drops the others; the start (the anniversary) stays, so the current period's usage
is kept and measured against the new plan's limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert
from sqlmodel import Session, col, select

from tollgate import identifiers, journal, locks
from tollgate.clock import rfc3339, utcnow
from tollgate.errors import InvalidInput, NotFound, RuleViolation
from tollgate.grants import Grant, parse_feature_assignment, parse_grant, value_to_json
from tollgate.models import Customer, Feature, Plan, PlanPrice, PlanVersion, Subscription, SubscriptionFeature
from tollgate.profile import SubscriptionView, current_period, effective_status, views
from tollgate.statuses import ENDED_STATUSES, STATUSES
from tollgate.sub_versions import settle

TRANSITIONS = {
    "trialing": ("active", "past_due", "canceled", "expired"),
    "active": ("past_due", "canceled", "expired"),
    "past_due": ("active", "canceled", "expired"),
    "canceled": (),
    "expired": (),
}
MAX_TRIAL_DAYS = 3650


# -- status and periods at a moment -------------------------------------------------------------------


# -- typed views (profile.py) ---------------------------------------------------------------------------


def view(session: Session, sub: Subscription, *, at: datetime | None = None) -> SubscriptionView:
    return views(session, [sub], at=at)[0]


# -- lookups ---------------------------------------------------------------------------------------------


def get_subscription(session: Session, public_id: str, *, lock: locks.Mode | None = None) -> Subscription:
    """The subscription with this id; NotFound when none. `lock`: see locks.locked."""
    stmt = select(Subscription).where(Subscription.public_id == public_id)
    sub = session.exec(locks.locked(session, stmt, lock)).first()
    if sub is None:
        raise NotFound(f"No subscription has the id '{public_id}'.", hint="See `tollgate sub list --customer ...`.")
    return sub


def list_subscriptions(
    session: Session, *, customer: str | None = None, status: str | None = None, at: datetime | None = None
) -> list[Subscription]:
    """Subscriptions in creation order, of one customer or all; `status` filters on the status at `at`."""
    from tollgate.customers import get_customer

    at = at or utcnow()
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"Unknown status '{status}': use one of {', '.join(STATUSES)}.")
    stmt = select(Subscription)
    if customer is not None:
        stmt = stmt.where(Subscription.customer_id == get_customer(session, customer).id)
    subs = list(session.exec(stmt.order_by(Subscription.id)).all())
    if status is not None:
        subs = [s for s in subs if effective_status(s, at) == status]
    return subs


# -- prices ------------------------------------------------------------------------------------------------


def _price_text(price: PlanPrice) -> str:
    from tollgate.money import format_money, from_minor

    return f"{price.interval} {price.currency} {format_money(from_minor(price.amount_minor, price.currency), price.currency)}"


def choose_price(
    session: Session, plan: Plan, *, version_id: int, interval: str | None, currency: str | None
) -> tuple[str | None, str | None, int | None]:
    """(interval, currency, amount in minor units) of the price the choice names, of the plan's version.

    A free plan: (interval or None, None, None); a currency is refused (there is no price)."""
    from tollgate.grants import parse_interval
    from tollgate.money import validate_currency

    if interval is not None:
        interval = parse_interval(interval)
    if currency is not None:
        currency = validate_currency(currency)
    prices = list(session.exec(select(PlanPrice).where(PlanPrice.plan_version_id == version_id)
                               .order_by(PlanPrice.id)).all())
    if not prices:
        if currency is not None:
            raise InvalidInput(
                f"The plan '{plan.identifier}' is free: it has no price, so no currency.", hint="Leave out --currency."
            )
        return interval, None, None
    matching = [p for p in prices if (interval is None or p.interval == interval)
                and (currency is None or p.currency == currency)]
    options = ", ".join(_price_text(p) for p in prices)
    if len(matching) == 1:
        price = matching[0]
        return price.interval, price.currency, price.amount_minor
    if not matching:
        wanted = " ".join(filter(None, (interval, currency)))
        raise InvalidInput(
            f"The plan '{plan.identifier}' has no price for {wanted}; its prices are: {options}.",
            hint="Choose one with --interval and --currency.",
        )
    raise InvalidInput(
        f"The plan '{plan.identifier}' has {len(prices)} prices ({options}); say which one.",
        hint="Choose with --interval and --currency.",
    )


# -- adjustments -----------------------------------------------------------------------------------------


def _parse_adjustments(
    session: Session, plan: Plan, version_id: int, features: Iterable[str | tuple[str, str]], without: Iterable[str],
    restore: Iterable[str] = (),
) -> tuple[dict[int, dict[str, Any]], list[int], dict[str, Any]]:
    """Validate FEATURE=VALUE / --without / --restore against what the plan's version grants.

    Returns (feature id -> adjustment columns, feature ids to restore, a summary for the journal)."""
    from tollgate.plan_specs import plan_grants
    from tollgate.money import to_micros

    granted = plan_grants(session, plan, version_id=version_id)
    ids = dict(session.exec(select(Feature.identifier, Feature.id).where(col(Feature.identifier).in_(list(granted)))).all())
    seen: set[str] = set()
    columns: dict[int, dict[str, Any]] = {}
    restored: list[int] = []
    summary: dict[str, Any] = {}

    def claim(feature: str) -> Grant:
        from tollgate import identifiers as ident

        ident.validate(feature, kind="feature identifier")
        if feature in seen:
            raise InvalidInput(f"The feature '{feature}' is given twice; give it once.")
        seen.add(feature)
        grant = granted.get(feature)
        if grant is None:
            raise InvalidInput(
                f"The plan '{plan.identifier}' does not grant '{feature}', so this subscription can't adjust it.",
                hint=f"Give it to the customer with an override: tollgate override set CUSTOMER {feature} VALUE",
            )
        return grant

    for item in features:
        feature, raw = parse_feature_assignment(item) if isinstance(item, str) else item
        grant = claim(feature)
        parsed = parse_grant(feature, grant.type, raw, path=f"--feature {feature}")
        row: dict[str, Any] = {"excluded": False, "value": None, "limit_micros": None, "unlimited": False,
                               "hard": None, "reset": None}
        if grant.type == "metered":
            if parsed.limit is None:
                row["unlimited"] = True
            else:
                row["limit_micros"] = to_micros(parsed.limit)
        else:
            row["value"] = value_to_json(parsed.value)
        columns[ids[feature]] = row
        summary[feature] = raw
    for feature in without:
        claim(feature)
        columns[ids[feature]] = {"excluded": True, "value": None, "limit_micros": None, "unlimited": False,
                                 "hard": None, "reset": None}
        summary[feature] = "without"
    for feature in restore:
        claim(feature)
        restored.append(ids[feature])
        summary[feature] = "plan"
    return columns, restored, summary


def _write_adjustments(session: Session, subscription_id: int, columns: dict[int, dict[str, Any]],
                       restored: Sequence[int] = ()) -> None:
    conn = session.connection()
    touched = [*columns, *restored]
    if touched:
        conn.execute(delete(SubscriptionFeature).where(
            SubscriptionFeature.subscription_id == subscription_id, col(SubscriptionFeature.feature_id).in_(touched)))
    if columns:
        conn.execute(insert(SubscriptionFeature), [
            {"subscription_id": subscription_id, "feature_id": feature_id, **row} for feature_id, row in columns.items()
        ])


# -- add, edit, cancel -----------------------------------------------------------------------------------


def _trial_end(start: datetime, *, plan_trial: int | None, trial_days: int | None,
               trial_end: datetime | None) -> datetime | None:
    if trial_days is not None and trial_end is not None:
        raise InvalidInput("Give --trial-days or --trial-end, not both.")
    if trial_end is not None:
        if trial_end <= start:
            raise InvalidInput(f"The trial must end after the start ({rfc3339(start)}).")
        return trial_end
    if trial_days is not None:
        if isinstance(trial_days, bool) or not isinstance(trial_days, int) or not 0 <= trial_days <= MAX_TRIAL_DAYS:
            raise InvalidInput(f"--trial-days is a whole number of days from 0 (no trial) to {MAX_TRIAL_DAYS}.")
    else:
        trial_days = plan_trial
    if not trial_days:
        return None
    try:
        return start + timedelta(days=trial_days)
    except OverflowError:  # a start at the very end of the calendar (datetime ends with the year 9999)
        raise InvalidInput(f"A trial of {trial_days} days from {rfc3339(start)} would end after the year 9999.",
                           hint="Choose an earlier start, or --trial-days 0.") from None


def add_subscription(
    session: Session,
    *,
    customer: str,
    plan: str,
    interval: str | None = None,
    currency: str | None = None,
    start: datetime | None = None,
    trial_days: int | None = None,
    trial_end: datetime | None = None,
    features: Iterable[str | tuple[str, str]] = (),
    without: Iterable[str] = (),
    another: bool = False,
    now: datetime | None = None,
) -> Subscription:
    """Subscribe a customer to a plan (see the module docstring for prices, trials and adjustments).

    Refused for archived customers and archived plans, and while the customer has a live subscription
    to the plan unless `another`. The start defaults to now (whole seconds);
    the trial to the plan's (`trial_days=0` for none). The customer is locked first (a concurrent
    `customer archive` waits, then sees this subscription), the plan shared (`plan archive` waits)."""
    from tollgate.catalog import get_plan
    from tollgate.customers import get_customer, require_active

    now = now or utcnow()
    owner = get_customer(session, customer, lock="update")
    require_active(owner, doing="get new subscriptions")
    plan_row = get_plan(session, plan, lock="share")
    if plan_row.status == "archived":
        raise RuleViolation(f"The plan '{plan}' is archived; it takes no new subscriptions.")
    if not another:
        from tollgate.subscription_undo import refuse_second

        refuse_second(session, customer_id=owner.id, plan_id=plan_row.id, customer=owner.identifier,
                      plan=plan_row.identifier, now=now)
    version = current_version(session, plan_row)  # under the plan's share lock: a new version waits for us
    chosen_interval, chosen_currency, amount = choose_price(session, plan_row, version_id=version.id,
                                                            interval=interval, currency=currency)
    start_at = start if start is not None else now.replace(microsecond=0)
    trial = _trial_end(start_at, plan_trial=version.trial_days, trial_days=trial_days, trial_end=trial_end)
    columns, _, summary = _parse_adjustments(session, plan_row, version.id, features, without)
    sub = Subscription(
        public_id=identifiers.public_id("sub"),
        customer_id=owner.id,
        plan_id=plan_row.id,
        plan_version_id=version.id,
        status="trialing" if trial is not None else "active",
        interval=chosen_interval,
        currency=chosen_currency,
        amount_minor=amount,
        start_at=start_at,
        trial_end=trial,
        created_at=now,
        updated_at=now,
    )
    session.add(sub)
    session.flush()
    _write_adjustments(session, sub.id, columns)
    journal.record(
        session, action="subscription.create", object_type="subscription", object_id=sub.public_id,
        customer_id=owner.id,
        details={"plan": plan_row.identifier, "version": version.version, "interval": chosen_interval, "currency": chosen_currency,
                 "start": rfc3339(start_at), "trial_end": rfc3339(trial), "adjustments": summary},
        at=now,
    )
    from tollgate import licenses

    licenses.issue_for_subscription(session, subscription=sub, now=now)  # a plan with a license policy: its key
    return sub


def _require_not_ended(sub: Subscription, status: str) -> None:
    if status in ENDED_STATUSES:
        raise RuleViolation(
            f"The subscription {sub.public_id} is {status}; it can't change any more.",
            hint="Start a new one with `tollgate sub add`.",
        )


def edit_subscription(
    session: Session,
    *,
    subscription: str,
    status: str | None = None,
    trial_end: datetime | None = None,
    plan: str | None = None,
    interval: str | None = None,
    currency: str | None = None,
    features: Iterable[str | tuple[str, str]] = (),
    without: Iterable[str] = (),
    restore: Iterable[str] = (),
    now: datetime | None = None,
) -> Subscription:
    """Change a live subscription: its status (see TRANSITIONS), its trial end (while it is in its
    trial, or its trial ended by date), its plan (and price), and its feature adjustments.

    `restore` drops adjustments (back to the plan's grant). Nothing to change is InvalidInput."""
    from tollgate.catalog import get_plan
    from tollgate.customers import require_active

    features, without, restore = list(features), list(without), list(restore)
    if status is None and trial_end is None and plan is None and not (features or without or restore):
        raise InvalidInput("Nothing to change.",
                           hint="Pass --status, --trial-end, --plan, --feature, --without or --restore.")
    if status is not None and trial_end is not None:
        raise InvalidInput("Give --status or --trial-end, not both (ending a trial: --status active).")
    if (interval is not None or currency is not None) and plan is None:
        raise InvalidInput("--interval and --currency choose the price of a new plan; pass --plan too.")
    now = now or utcnow()
    sub = get_subscription(session, subscription, lock="update")  # edits and cancels of it: one at a time
    current = effective_status(sub, now)
    _require_not_ended(sub, current)
    settle(sub, now)  # a scheduled move to another version that has taken effect
    changes: dict[str, Any] = {}
    if status is not None:
        if status not in STATUSES:
            raise InvalidInput(f"Unknown status '{status}': use one of {', '.join(STATUSES)}.")
        if status != current:
            if status not in TRANSITIONS[current]:
                allowed = ", ".join(TRANSITIONS[current]) or "none"
                raise RuleViolation(
                    f"The subscription {sub.public_id} is {current}; it can't become {status} "
                    f"(from {current}: {allowed}).",
                )
            changes["status"] = [current, status]
            if status in ENDED_STATUSES:
                sub.cancel_at = now if sub.cancel_at is None or sub.cancel_at > now else sub.cancel_at
                sub.canceled_at = now
            if current == "trialing" and sub.trial_end is not None and sub.trial_end > now:
                sub.trial_end = now  # the trial ends here
                changes["trial_end"] = rfc3339(now)
            sub.status = status
    if trial_end is not None:
        if sub.status != "trialing":
            raise RuleViolation(
                f"The subscription {sub.public_id} is {current} and not in a trial; its trial end can't change.",
            )
        if trial_end <= sub.start_at:
            raise InvalidInput(f"The trial must end after the start ({rfc3339(sub.start_at)}).")
        changes["trial_end"] = [rfc3339(sub.trial_end), rfc3339(trial_end)]
        sub.trial_end = trial_end
    plan_row = None
    if plan is not None:
        plan_row = get_plan(session, plan, lock="share")
        if plan_row.id != sub.plan_id:
            if plan_row.status == "archived":
                raise RuleViolation(f"The plan '{plan}' is archived; it takes no new subscriptions.")
            owner = session.get(Customer, sub.customer_id)
            require_active(owner, doing="change plans")
            _change_plan(session, sub, plan_row, interval=interval, currency=currency, changes=changes)
        elif interval is not None or currency is not None:
            _change_plan(session, sub, plan_row, interval=interval, currency=currency, changes=changes)
    if features or without or restore:
        plan_row = plan_row or session.get(Plan, sub.plan_id)
        columns, restored, summary = _parse_adjustments(session, plan_row, sub.plan_version_id, features,
                                                        without, restore)
        _write_adjustments(session, sub.id, columns, restored)
        changes["adjustments"] = summary
    if changes:
        sub.updated_at = now
        session.add(sub)
        session.flush()
        journal.record(session, action="subscription.update", object_type="subscription", object_id=sub.public_id,
                       customer_id=sub.customer_id, details=changes, at=now)
    if sub.status in ENDED_STATUSES or "plan" in changes:
        from tollgate import licenses

        if sub.status in ENDED_STATUSES:
            licenses.revoke_for_subscription(session, subscription=sub, at=sub.cancel_at, now=now)  # access ended
        else:
            licenses.issue_for_subscription(session, subscription=sub, now=now)  # a licensed plan: its key, if none
    return sub


def _change_plan(session: Session, sub: Subscription, plan: Plan, *, interval: str | None, currency: str | None,
                 changes: dict[str, Any]) -> None:
    """Move to `plan`: the price for the same interval and currency when it has one (else as chosen);
    adjustments of features the new plan does not grant are dropped. The start stays."""
    from tollgate.plan_specs import plan_grants

    # another plan: its current version; a new price of the same plan: the version it is on
    version = current_version(session, plan) if plan.id != sub.plan_id else session.get_one(PlanVersion, sub.plan_version_id)
    new_interval, new_currency, amount = price_for_move(session, sub, plan, version.id, interval=interval,
                                                        currency=currency)
    old_plan = session.get(Plan, sub.plan_id)
    granted = set(plan_grants(session, plan, version_id=version.id))
    adjusted = session.exec(
        select(SubscriptionFeature.feature_id, Feature.identifier)
        .join(Feature, Feature.id == SubscriptionFeature.feature_id)
        .where(SubscriptionFeature.subscription_id == sub.id)
    ).all()
    dropped = [ident for _, ident in adjusted if ident not in granted]
    if dropped:
        session.connection().execute(delete(SubscriptionFeature).where(
            SubscriptionFeature.subscription_id == sub.id,
            col(SubscriptionFeature.feature_id).in_([fid for fid, ident in adjusted if ident in dropped])))
    changes["plan"] = [old_plan.identifier if old_plan else None, plan.identifier]
    if (sub.interval, sub.currency, sub.amount_minor) != (new_interval, new_currency, amount):
        changes["price"] = [[sub.interval, sub.currency], [new_interval, new_currency]]
    if dropped:
        changes["dropped_adjustments"] = dropped
    if plan.id != sub.plan_id:
        sub.next_version_id = sub.next_version_at = sub.next_amount_minor = None  # a move within the old plan
    sub.plan_id, sub.plan_version_id = plan.id, version.id
    sub.interval, sub.currency, sub.amount_minor = new_interval, new_currency, amount


def price_for_move(session: Session, sub: Subscription, plan: Plan, version_id: int, *, interval: str | None = None,
                   currency: str | None = None) -> tuple[str | None, str | None, int | None]:
    """The price a subscription moving to a plan version pays: the one for the same interval and
    currency when it has one (else as chosen, or its only price); a free version keeps the cycle."""
    if not plan_prices_exist(session, version_id):
        new_interval, new_currency, amount = choose_price(session, plan, version_id=version_id, interval=interval,
                                                          currency=currency)
        return new_interval or sub.interval, new_currency, amount  # a free plan keeps the billing cycle
    try:
        return choose_price(session, plan, version_id=version_id, interval=interval or sub.interval,
                            currency=currency or sub.currency)
    except InvalidInput:
        if interval is not None or currency is not None:
            raise
        # the current interval/currency is not offered: the plan's only price, or an error listing them
        return choose_price(session, plan, version_id=version_id, interval=None, currency=None)


def current_version(session: Session, plan: Plan) -> PlanVersion:
    from tollgate.plan_versions import current_versions

    return session.get(PlanVersion, current_versions(session, [plan.id])[plan.id][0])


def plan_prices_exist(session: Session, version_id: int) -> bool:
    return session.exec(select(PlanPrice.id).where(PlanPrice.plan_version_id == version_id).limit(1)).first() is not None


def cancel_subscription(
    session: Session, *, subscription: str, at_period_end: bool = False, now: datetime | None = None
) -> Subscription:
    """Cancel: access ends now, or (`at_period_end`) when the current billing period ends.

    A cancellation already scheduled can be made immediate; a one-time purchase has no period end."""
    now = now or utcnow()
    sub = get_subscription(session, subscription, lock="update")
    current = effective_status(sub, now)
    if current in ENDED_STATUSES:
        raise RuleViolation(f"The subscription {sub.public_id} is already {current}.")
    if at_period_end:
        if sub.interval == "once":
            raise RuleViolation(
                f"The subscription {sub.public_id} is a one-time purchase: it has no period end.",
                hint="Cancel it now (without --at-period-end).",
            )
        if sub.cancel_at is not None:
            raise RuleViolation(f"The subscription {sub.public_id} is already set to end at {rfc3339(sub.cancel_at)}.")
        sub.cancel_at = current_period(sub, now).end
        sub.canceled_at = now
        details = {"at_period_end": True, "cancel_at": rfc3339(sub.cancel_at)}
    else:
        sub.status = "canceled"
        sub.cancel_at = now
        sub.canceled_at = now
        details = {"at_period_end": False, "from": current}
    sub.updated_at = now
    session.add(sub)
    session.flush()
    journal.record(session, action="subscription.cancel", object_type="subscription", object_id=sub.public_id,
                   customer_id=sub.customer_id, details=details, at=now)
    from tollgate import licenses

    licenses.revoke_for_subscription(session, subscription=sub, at=sub.cancel_at, now=now)  # when access ends
    return sub

