"""Plan versions: what a plan sells (prices, trial, entitlements, usage charges, license policy) is
kept per version, so changing a plan never changes what its subscribers bought.

The rule (`write_versions`, the one writer every plan change goes through: `plan create`, `plan
charge`, `catalog import`): a change to what a plan sells while any subscription is on its current
version (any status: an ended one's past invoices still read it; or a move to it is scheduled)
makes a new version, a copy of the current one with the change; the subscribers stay where they
are, new subscriptions get the new one. A current version nobody is on is edited in place. Name,
description, status, downloads and links belong to the plan and never version.

Locks: the writer locks the plans' rows (FOR UPDATE) before it counts their subscribers, and `sub
add` reads the current version under the plan's share lock, so on PostgreSQL a subscription is never
put on a version that a concurrent change is replacing, and two changes never both make version 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from tollgate import locks
from tollgate.catalog import PlanSpec, chunked, insert_many, journal_rows
from tollgate.clock import utcnow
from tollgate.errors import InvalidInput, NotFound
from tollgate.models import Journal, Plan, PlanVersion, Subscription
from tollgate.plan_views import PlanVersionView

# PlanSpec fields a version holds -> their names in JSON and in the catalog file
VERSIONED = {"trial_days": "trial_days", "prices": "prices", "grants": "entitlements",
             "charges": "usage_charges", "license": "license"}


def versioned_changes(old: PlanSpec, new: PlanSpec) -> list[str]:
    """What of what a plan sells differs between two specs (names as in JSON)."""
    return [name for field, name in VERSIONED.items() if getattr(old, field) != getattr(new, field)]


def current_versions(session: Session, plan_ids: Sequence[int] | None = None) -> dict[int, tuple[int, int]]:
    """plan id -> (id, number) of its current (highest) version; None: of every plan."""
    latest = select(PlanVersion.plan_id, func.max(PlanVersion.version).label("version")).group_by(PlanVersion.plan_id)
    if plan_ids is not None:
        if not plan_ids:
            return {}
        latest = latest.where(col(PlanVersion.plan_id).in_(list(plan_ids)))
    newest = latest.subquery()
    rows = session.exec(
        select(PlanVersion.plan_id, PlanVersion.id, PlanVersion.version)
        .join(newest, (newest.c.plan_id == PlanVersion.plan_id) & (newest.c.version == PlanVersion.version))
    ).all()
    return {pid: (vid, number) for pid, vid, number in rows}


def get_version(session: Session, plan: Plan, number: Any) -> PlanVersion:
    """Version `number` of the plan; InvalidInput for a number that is not one, NotFound when it has none."""
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise InvalidInput(f"A plan version is a whole number from 1; {number!r} is not one.")
    row = session.exec(select(PlanVersion).where(PlanVersion.plan_id == plan.id, PlanVersion.version == number)).first()
    if row is None:
        last = current_versions(session, [plan.id])[plan.id][1]
        raise NotFound(f"The plan '{plan.identifier}' has no version {number} (its versions are 1 to {last}).",
                       hint=f"See `tollgate plan versions {plan.identifier}`.")
    return row


def subscribers(session: Session, version_ids: Iterable[int]) -> dict[int, int]:
    """version id -> how many subscriptions are on it (or have a move to it scheduled), of any status."""
    wanted = sorted(set(version_ids))
    if not wanted:
        return {}
    counts: dict[int, int] = {}
    for chunk in chunked(wanted, 500):
        for column in (Subscription.plan_version_id, Subscription.next_version_id):
            rows = session.exec(select(column, func.count()).where(col(column).in_(list(chunk))).group_by(column))
            for vid, count in rows.all():
                counts[vid] = counts.get(vid, 0) + count
    return counts


def new_versions(session: Session, rows: Sequence[tuple[int, int, int | None]], *, now: datetime) -> dict[int, int]:
    """Insert versions (plan id, number, trial days); returns plan id -> the new version's id."""
    if not rows:
        return {}
    insert_many(session, PlanVersion, [{"plan_id": pid, "version": number, "trial_days": trial, "created_at": now}
                                       for pid, number, trial in rows])
    wanted = {pid: number for pid, number, _ in rows}
    found: dict[int, int] = {}
    for chunk in chunked(list(wanted), 500):
        stmt = select(PlanVersion.plan_id, PlanVersion.id, PlanVersion.version).where(
            col(PlanVersion.plan_id).in_(list(chunk)))
        found.update({pid: vid for pid, vid, number in session.exec(stmt).all() if wanted[pid] == number})
    return found


def write_versions(session: Session, changes: Sequence[tuple[int, str, PlanSpec, PlanSpec]], *,
                   feature_ids: dict[str, int], now: datetime) -> dict[int, tuple[int, int]]:
    """Write what plans now sell by the rule (module docstring): (plan id, identifier, old spec, new
    spec). Returns plan id -> (the new version's number, the subscribers that stay on the one before)
    for each plan that got a new version; the others are edited in place. Locks the plans first."""
    from tollgate.plan_specs import delete_plan_contents, insert_plan_contents

    specs = {pid: (ident, old, new) for pid, ident, old, new in changes if versioned_changes(old, new)}
    if not specs:
        return {}
    locks.lock_ids(session, Plan, specs)  # a concurrent `sub add` (FOR SHARE) waits, then sees the new version
    current = current_versions(session, list(specs))
    staying = subscribers(session, [vid for vid, _ in current.values()])
    made = {pid: (number + 1, staying[vid]) for pid, (vid, number) in current.items() if vid in staying}
    in_place = [pid for pid in specs if pid not in made]
    conn = session.connection()
    for pid in in_place:
        conn.execute(update(PlanVersion).where(PlanVersion.id == current[pid][0])
                     .values(trial_days=specs[pid][2].trial_days))
    delete_plan_contents(session, [current[pid][0] for pid in in_place])
    version_ids = {pid: current[pid][0] for pid in in_place}
    version_ids.update(new_versions(session, [(pid, number, specs[pid][2].trial_days)
                                              for pid, (number, _) in made.items()], now=now))
    insert_plan_contents(session, [(version_ids[pid], specs[pid][2]) for pid in specs], feature_ids=feature_ids)
    insert_many(session, Journal, journal_rows(
        (("plan.version", "plan", specs[pid][0], {"version": number, "subscribers_staying": count,
                                                  "changes": versioned_changes(*specs[pid][1:])})
         for pid, (number, count) in made.items()), now))
    return made


def versions(session: Session, plan: Plan, *, now: datetime | None = None) -> list[PlanVersionView]:
    """Every version of a plan, oldest first: number, created, what changed from the one before
    (names of VERSIONED), its subscribers (subscriptions on it at `now`, of any status) and how many
    have a move to it scheduled (`plan migrate --at period-end`)."""
    from tollgate.plan_specs import plan_specs
    from tollgate.sub_versions import moved, version_id_of

    now = now or utcnow()
    rows = list(session.exec(select(PlanVersion).where(PlanVersion.plan_id == plan.id).order_by(PlanVersion.version)))
    on: dict[int, int] = {}
    coming: dict[int, int] = {}
    for sub in session.exec(select(Subscription).where(Subscription.plan_id == plan.id)):
        on[version_id_of(sub, now)] = on.get(version_id_of(sub, now), 0) + 1
        if sub.next_version_id is not None and not moved(sub, now):
            coming[sub.next_version_id] = coming.get(sub.next_version_id, 0) + 1
    out, before = [], None
    for row in rows:
        spec = plan_specs(session, [plan], versions={plan.id: row.id})[plan.id]
        out.append(PlanVersionView(
            plan=plan.identifier, version=row.version, created_at=row.created_at,
            changes=() if before is None else tuple(versioned_changes(before, spec)),
            subscribers=on.get(row.id, 0), scheduled=coming.get(row.id, 0), current=row is rows[-1]))
        before = spec
    return out
