"""Plans: create, archive, list, price usage (`plan ...`), and grants from command-line options.

What a plan is (PlanSpec) and its validation live in catalog.py; whole plans are read and written
set-based by plan_specs.py.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from tollgate import identifiers, journal, locks
from tollgate.catalog import (
    LicensePolicy,
    Link,
    PlanSpec,
    _archive_row,
    _taken,
    charge_columns,
    check_prices,
    default_plan_name,
    feature_table,
    get_feature,
    get_plan,
    get_product,
    make_price,
    validate_description,
    validate_name,
    validate_trial_days,
    _check_status,
)
from tollgate.clock import utcnow
from tollgate.errors import Conflict, InvalidInput, NotFound, RuleViolation
from tollgate.grants import Grant
from tollgate.models import Plan, Product
from tollgate.plan_specs import insert_plans


def create_plan(
    session: Session,
    *,
    identifier: str,
    product: str,
    name: str | None = None,
    description: str | None = None,
    prices: Iterable[tuple[str, str, Decimal | str]] = (),
    trial_days: int | None = None,
    grants: Iterable[Grant] = (),
    license: LicensePolicy | None = None,
    links: Iterable[Link] = (),
    now: datetime | None = None,
) -> Plan:
    """Create a plan of a product, with its prices (none: free) and what it grants per feature."""
    identifiers.validate(identifier, kind="plan identifier")
    locks.namespace(session, "catalog")
    if _taken(session, Plan)(identifier):
        raise Conflict(
            f"The plan identifier '{identifier}' is already taken (identifiers are never reused, even after archiving).",
            hint="Choose another identifier.",
        )
    owner = get_product(session, product)
    if owner.status == "archived":
        raise RuleViolation(f"The product '{product}' is archived; it takes no new plans.")
    price_list = check_prices([make_price(i, c, a) for i, c, a in prices])
    grant_list = list(grants)
    seen: set[str] = set()
    features = feature_table(session)
    for grant in grant_list:
        if grant.feature in seen:
            raise InvalidInput(f"The feature '{grant.feature}' is given twice; give it once.")
        seen.add(grant.feature)
        found = features.get(grant.feature)
        if found is None:
            raise NotFound(f"No feature has the identifier '{grant.feature}'.",
                           hint="Create it first: tollgate feature create --name ... --type ...")
        _, feature_type, status = found
        if status == "archived":
            raise RuleViolation(f"The feature '{grant.feature}' is archived; new plans can't grant it.")
        if feature_type != grant.type:
            raise InvalidInput(f"'{grant.feature}' is a {feature_type} feature, not {grant.type}.")
    link_list = list(links)
    if len({link.name for link in link_list}) != len(link_list):
        raise InvalidInput("Two links have the same name; give each its own.")
    spec = PlanSpec(
        identifier=identifier,
        product=product,
        name=validate_name(name) if name is not None else default_plan_name(identifier),
        description=validate_description(description),
        trial_days=validate_trial_days(trial_days),
        prices=price_list,
        grants=tuple(grant_list),
        license=license,
        links=tuple(link_list),
    ).normalized()
    now = now or utcnow()
    insert_plans(session, [spec], now=now)
    return get_plan(session, identifier)


def archive_plan(session: Session, *, identifier: str, now: datetime | None = None) -> Plan:
    """Archive a plan: it takes no new subscriptions; existing ones keep working."""
    locks.namespace(session, "catalog")
    plan = get_plan(session, identifier)
    if plan.status == "archived":
        raise RuleViolation(f"The plan '{identifier}' is already archived.")
    _archive_row(session, plan, "plan", now or utcnow())
    return plan


def list_plans(session: Session, *, product: str | None = None, status: str = "active") -> list[Plan]:
    """Plans in creation order (optionally of one product)."""
    _check_status(status)
    stmt = select(Plan)
    if product is not None:
        stmt = stmt.where(Plan.product_id == get_product(session, product).id)
    if status != "all":
        stmt = stmt.where(Plan.status == status)
    return list(session.exec(stmt.order_by(Plan.id)).all())


def set_usage_charge(session: Session, *, plan: str, charge: Any, now: datetime | None = None) -> tuple[Plan, str]:
    """Add (or replace) the usage charge of a plan for one metered feature and currency.

    Returns the plan and "create" or "update"."""
    locks.namespace(session, "catalog")  # catalog changes: one at a time
    row = get_plan(session, plan)
    feature = get_feature(session, charge.feature)
    if feature.type != "metered":
        raise InvalidInput(f"'{feature.identifier}' is a {feature.type} feature; usage charges price metered ones.")
    from tollgate.plan_specs import plan_specs
    from tollgate.plan_versions import write_versions

    old = plan_specs(session, [row])[row.id]
    if feature.identifier not in {grant.feature for grant in old.grants}:
        raise RuleViolation(
            f"The plan '{plan}' does not grant '{feature.identifier}', so its usage can't be charged.",
            hint="Grant it in the plan first (an allowance, or unlimited).",
        )
    same = [c for c in old.charges if (c.feature, c.currency) == (charge.feature, charge.currency)]
    action = "update" if same else "create"
    new = replace(old, charges=tuple(c for c in old.charges if c not in same) + (charge,)).normalized()
    columns = charge_columns(charge)
    conn = session.connection()
    now = now or utcnow()
    write_versions(session, [(row.id, row.identifier, old, new)], now=now,
                   feature_ids={ident: fid for ident, (fid, _, _) in feature_table(session).items()})
    conn.execute(update(Plan).where(Plan.id == row.id).values(updated_at=now))
    journal.record(session, action=f"plan.charge.{action}", object_type="plan", object_id=plan,
                   details=json.loads(columns["spec"]), at=now)
    session.expire(row)
    return session.exec(select(Plan).where(Plan.id == row.id)).one(), action



def refuse_missing_pieces(session: Session, *, product: str, features: Sequence[str],
                          named: Sequence[str] = ()) -> None:
    """Before a plan is built from command-line options: one NotFound naming every piece that does
    not exist yet (the product, each feature of `--feature F=VALUE` or named by --hard F, --reset
    F=... and --alert F=...), with the commands that create them."""
    from tollgate.grants import parse_feature_assignment

    missing, fixes = [], []
    if session.exec(select(Product.id).where(Product.identifier == product)).first() is None:
        missing.append(f"the product '{product}'")
        fixes.append(f"tollgate product create {product}")
    table = feature_table(session)
    unknown = []
    for text in features:
        feature = text.split("=", 1)[0].strip() if "=" in text else parse_feature_assignment(text)[0]
        if feature not in table and feature not in unknown:
            unknown.append(feature)
    for text in named:
        feature = text.split("=", 1)[0].strip()
        if feature and feature not in table and feature not in unknown:
            unknown.append(feature)
    if unknown:
        missing.append(f"the feature(s) {', '.join(repr(f) for f in unknown)}")
        fixes += [f"tollgate feature create --id {f} --name NAME --type boolean|metered|config" for f in unknown]
    if missing:
        raise NotFound(f"The plan needs {' and '.join(missing)}, which do not exist yet.",
                       hint="Create them first: " + "; ".join(fixes) + ".")


def grants_from_options(
    session: Session,
    *,
    features: Sequence[str] = (),
    hard: Sequence[str] = (),
    resets: Sequence[str] = (),
    alerts: Sequence[str] = (),
) -> list[Grant]:
    """Grants from command-line options: `--feature F=VALUE`, `--hard F`, `--reset F=CADENCE`,
    `--alert F=PERCENT` (each feature's type, from the database, says how VALUE reads)."""
    from tollgate.grants import parse_alert, parse_feature_assignment, parse_grant, with_options

    table = feature_table(session)

    def known(feature: str, option: str) -> str:
        identifiers.validate(feature, kind="feature identifier")
        if feature not in table:
            raise NotFound(f"No feature has the identifier '{feature}' ({option}).",
                           hint=f"Create it first: tollgate feature create --id {feature} --name NAME --type "
                                "boolean|metered|config (or see `tollgate feature list`).")
        return feature

    grants: dict[str, Grant] = {}
    for text in features:
        feature, raw = parse_feature_assignment(text)
        if feature in grants:
            raise InvalidInput(f"--feature {feature} is given twice; give it once.")
        grants[feature] = parse_grant(known(feature, "--feature"), table[feature][1], raw, path=f"--feature {feature}")

    def granted(feature: str, option: str) -> Grant:
        known(feature, option)
        if feature not in grants:
            raise InvalidInput(f"{option} {feature}: the plan does not grant '{feature}'.",
                               hint=f"Add --feature {feature}=ALLOWANCE.")
        return grants[feature]

    options: dict[str, dict[str, Any]] = defaultdict(dict)
    for feature in hard:
        granted(feature.strip(), "--hard")
        options[feature.strip()]["hard"] = True
    for text in resets:
        feature, cadence = parse_feature_assignment(text)
        granted(feature, "--reset")
        options[feature]["reset"] = cadence
    for text in alerts:
        feature, percent = parse_feature_assignment(text)
        granted(feature, "--alert")
        options[feature].setdefault("alerts", []).append(parse_alert(percent, path=f"--alert {feature}"))
    for feature, changes in options.items():
        if "alerts" in changes:
            changes["alerts"] = tuple(changes["alerts"])
        grants[feature] = with_options(grants[feature], **changes)
    return list(grants.values())
