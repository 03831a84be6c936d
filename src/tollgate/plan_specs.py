"""Whole plans, set-based: read every plan's prices, entitlements, usage charges, license policy,
downloads and links in a handful of queries (plan_specs), their views (plan_view), and write them
with Core executemany (insert_plans, shared by `plan create` and `catalog import`), so importing
thousands of plans stays fast.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, update
from sqlmodel import Session, col, select

from tollgate import identifiers
from tollgate.catalog import (
    Download,
    LicensePolicy,
    Link,
    PlanSpec,
    Price,
    charge_columns,
    charge_from_spec,
    chunked,
    feature_table,
    insert_many,
    journal_rows,
)
from tollgate.grants import Grant, grant_from_row, grant_to_columns
from tollgate.models import (
    Journal,
    Plan,
    PlanDownload,
    PlanEntitlement,
    PlanLicensePolicy,
    PlanLink,
    PlanPrice,
    PlanUsageCharge,
    PlanVersion,
    Product,
)
from tollgate.plan_views import PlanView


def plan_specs(session: Session, plans: Sequence[Plan] | None = None, *,
               versions: dict[int, int] | None = None) -> dict[int, PlanSpec]:
    """plan id -> PlanSpec, for the given plans (None: every plan), in a handful of queries: what
    each sells as of its current version, or of the version id `versions` gives for it."""
    from tollgate.money import from_minor
    from tollgate.plan_versions import current_versions

    if plans is None:
        plans = list(session.exec(select(Plan).order_by(Plan.id)).all())
    if not plans:
        return {}
    ids = [plan.id for plan in plans]
    every = len(ids) > 500  # reading whole tables beats a huge IN list
    version_of = {pid: vid for pid, (vid, _) in current_versions(session, None if every else ids).items()}
    version_of.update(versions or {})
    plan_of = {vid: pid for pid, vid in version_of.items()}

    def rows(model: Any, order: Any, *, versioned: bool = True) -> list[Any]:
        key = col(model.plan_version_id if versioned else model.plan_id)
        stmt = select(model) if every else select(model).where(key.in_(list(plan_of) if versioned else ids))
        found = session.exec(stmt.order_by(*order)).all()
        return [row for row in found if row.plan_version_id in plan_of] if versioned and every else list(found)

    trials = {row.id: row.trial_days for row in rows(PlanVersion, (PlanVersion.id,), versioned=False)
              if row.id in plan_of}
    products = dict(session.exec(select(Product.id, Product.identifier)).all())
    features = {fid: (ident, ftype) for ident, (fid, ftype, _) in feature_table(session).items()}
    prices: dict[int, list[Price]] = defaultdict(list)
    for row in rows(PlanPrice, (PlanPrice.id,)):
        prices[plan_of[row.plan_version_id]].append(Price(row.interval, row.currency, from_minor(row.amount_minor, row.currency)))
    grants: dict[int, list[Grant]] = defaultdict(list)
    for row in rows(PlanEntitlement, (PlanEntitlement.id,)):
        ident, ftype = features[row.feature_id]
        grants[plan_of[row.plan_version_id]].append(grant_from_row(ident, ftype, row))
    charges: dict[int, list[Any]] = defaultdict(list)
    for row in rows(PlanUsageCharge, (PlanUsageCharge.id,)):
        charges[plan_of[row.plan_version_id]].append(charge_from_spec(row.spec))
    licenses = {
        plan_of[row.plan_version_id]: LicensePolicy(row.activation_limit, row.expires_after,
                                                    row.activations_per_day, row.files_per_day)
        for row in rows(PlanLicensePolicy, (PlanLicensePolicy.plan_version_id,))
    }
    downloads: dict[int, list[Download]] = defaultdict(list)
    for row in rows(PlanDownload, (PlanDownload.position, PlanDownload.id), versioned=False):
        downloads[row.plan_id].append(Download(row.name, row.sha256, row.size, row.enabled, public_id=row.public_id))
    links: dict[int, list[Link]] = defaultdict(list)
    for row in rows(PlanLink, (PlanLink.position, PlanLink.id), versioned=False):
        links[row.plan_id].append(Link(row.name, row.url, public_id=row.public_id))
    return {
        plan.id: PlanSpec(
            identifier=plan.identifier,
            product=products[plan.product_id],
            name=plan.name,
            description=plan.description,
            trial_days=trials.get(version_of.get(plan.id)),
            prices=tuple(prices[plan.id]),
            grants=tuple(grants[plan.id]),
            charges=tuple(charges[plan.id]),
            license=licenses.get(plan.id),
            downloads=tuple(downloads[plan.id]),
            links=tuple(links[plan.id]),
            archived=plan.status == "archived",
        ).normalized()
        for plan in plans
    }


def plan_grants(session: Session, plan: Plan, *, version_id: int | None = None) -> dict[str, Grant]:
    """feature identifier -> what the plan grants for it (in version `version_id`; None: the current)."""
    versions = None if version_id is None else {plan.id: version_id}
    return {grant.feature: grant for grant in plan_specs(session, [plan], versions=versions)[plan.id].grants}


def plan_view(session: Session, plan: Plan, *, spec: PlanSpec | None = None,
              version: tuple[int, int] | None = None) -> PlanView:
    """A plan with its prices, entitlements, charges and deliverables: those of its current version,
    or of `version` (its id and number)."""
    from tollgate.plan_versions import current_versions

    if version is None:
        version = current_versions(session, [plan.id])[plan.id]
    if spec is None:
        spec = plan_specs(session, [plan], versions={plan.id: version[0]})[plan.id]
    return PlanView.of(plan, spec, version[1])


def plan_view_list(session: Session, plans: Sequence[Plan]) -> list[PlanView]:
    """plan_view of each plan, as of its current version, in a handful of queries."""
    from tollgate.plan_versions import current_versions

    specs = plan_specs(session, plans)
    versions = current_versions(session, [plan.id for plan in plans])
    return [PlanView.of(plan, specs[plan.id], versions[plan.id][1]) for plan in plans]


# -- set-based writes of plans (shared by create_plan and catalog import) -------------------------

def insert_plans(
    session: Session, specs: Sequence[PlanSpec], *, now: datetime, product_ids: dict[str, int] | None = None,
    feature_ids: dict[str, int] | None = None, journal_entries: bool = True,
) -> dict[str, int]:
    """Insert plans and everything they carry, set-based. Returns identifier -> plan id."""
    if not specs:
        return {}
    if product_ids is None:
        product_ids = dict(session.exec(select(Product.identifier, Product.id)).all())
    if feature_ids is None:
        feature_ids = {ident: fid for ident, (fid, _, _) in feature_table(session).items()}
    insert_many(
        session,
        Plan,
        [
            {"identifier": s.identifier, "product_id": product_ids[s.product], "name": s.name,
             "description": s.description,
             "status": "archived" if s.archived else "active", "created_at": now, "updated_at": now,
             "archived_at": now if s.archived else None}
            for s in specs
        ],
    )
    wanted = {s.identifier for s in specs}
    plan_ids = {
        ident: pid for ident, pid in session.exec(select(Plan.identifier, Plan.id)).all() if ident in wanted
    }
    from tollgate.plan_versions import new_versions

    version_ids = new_versions(session, [(plan_ids[s.identifier], 1, s.trial_days) for s in specs], now=now)
    insert_plan_contents(session, [(version_ids[plan_ids[s.identifier]], s) for s in specs], feature_ids=feature_ids)
    downloads_and_links = [(plan_ids[s.identifier], s) for s in specs]
    insert_many(session, PlanDownload, [download_row(pid, d, position, now) for pid, s in downloads_and_links
                                        for position, d in enumerate(s.downloads)])
    insert_many(session, PlanLink, [link_row(pid, ln, position, now) for pid, s in downloads_and_links
                                    for position, ln in enumerate(s.links)])
    if journal_entries:
        insert_many(session, Journal, journal_rows(
            (("plan.create", "plan", s.identifier, plan_summary(s)) for s in specs), now))
    return plan_ids


def plan_summary(spec: PlanSpec) -> dict[str, Any]:
    return {"product": spec.product, "name": spec.name, "prices": len(spec.prices),
            "entitlements": len(spec.grants), "usage_charges": len(spec.charges)}


def insert_plan_contents(session: Session, versions: Sequence[tuple[int, PlanSpec]], *,
                         feature_ids: dict[str, int]) -> None:
    """Prices, entitlements, usage charges and license policy of plan versions: (version id, spec)."""
    from tollgate.money import to_minor

    prices: list[dict[str, Any]] = []
    grants: list[dict[str, Any]] = []
    charges: list[dict[str, Any]] = []
    licenses: list[dict[str, Any]] = []
    for version_id, spec in versions:
        prices.extend(
            {"plan_version_id": version_id, "interval": p.interval, "currency": p.currency,
             "amount_minor": to_minor(p.amount, p.currency)}
            for p in spec.prices
        )
        grants.extend(
            {"plan_version_id": version_id, "feature_id": feature_ids[g.feature], **grant_to_columns(g)} for g in spec.grants
        )
        charges.extend(
            {"plan_version_id": version_id, "feature_id": feature_ids[c.feature], **charge_columns(c)} for c in spec.charges
        )
        if spec.license is not None:
            licenses.append({"plan_version_id": version_id, **asdict(spec.license)})
    for model, rows in ((PlanPrice, prices), (PlanEntitlement, grants), (PlanUsageCharge, charges),
                        (PlanLicensePolicy, licenses)):
        if rows:
            insert_many(session, model, rows)


def download_row(plan_id: int, d: Download, position: int, now: datetime) -> dict[str, Any]:
    return {"public_id": d.public_id or identifiers.public_id("dl"), "plan_id": plan_id, "name": d.name,
            "sha256": d.sha256, "size": d.size, "enabled": d.enabled, "position": position, "created_at": now}


def link_row(plan_id: int, ln: Link, position: int, now: datetime) -> dict[str, Any]:
    return {"public_id": ln.public_id or identifiers.public_id("ln"), "plan_id": plan_id, "name": ln.name,
            "url": ln.url, "position": position, "created_at": now}


def delete_plan_contents(session: Session, version_ids: Sequence[int]) -> None:
    """Remove prices, entitlements, usage charges and license policies of plan versions (to be re-inserted)."""
    conn = session.connection()
    for chunk in chunked(list(version_ids), 500):
        for model in (PlanPrice, PlanEntitlement, PlanUsageCharge, PlanLicensePolicy):
            conn.execute(delete(model).where(col(model.plan_version_id).in_(list(chunk))))


# (table, new items, old items, row builder, changed fields of an item)
_ItemKind = tuple[Any, Sequence[Any], Sequence[Any], Callable[[int, Any, int, datetime], dict[str, Any]],
                  Callable[[Any], dict[str, Any]]]


def sync_downloads_and_links(session: Session, plan_id: int, spec: PlanSpec, old: PlanSpec, now: datetime) -> None:
    """Make a plan's downloads and links those of `spec`, keeping the public id of each kept name."""
    conn = session.connection()
    kinds: tuple[_ItemKind, ...] = (  # downloads and links: one loop for both
        (PlanDownload, spec.downloads, old.downloads, download_row,
         lambda d: {"sha256": d.sha256, "size": d.size, "enabled": d.enabled}),
        (PlanLink, spec.links, old.links, link_row, lambda ln: {"url": ln.url}),
    )
    for model, new_items, old_items, to_row, fields_of in kinds:
        if new_items == old_items:
            continue
        by_name = {item.name: item for item in old_items}
        keep = {item.name for item in new_items}
        gone = [name for name in by_name if name not in keep]
        if gone:
            conn.execute(delete(model).where(model.plan_id == plan_id, col(model.name).in_(gone)))
        for position, item in enumerate(new_items):
            before = by_name.get(item.name)
            if before is None:
                conn.execute(insert(model).values(**to_row(plan_id, item, position, now)))
            else:
                conn.execute(
                    update(model)
                    .where(model.plan_id == plan_id, model.name == item.name)
                    .values(position=position, **fields_of(item))
                )
