"""The catalog: products, features and plans (prices, entitlements, usage charges, license policy,
downloads, links).

Plans are described by a `PlanSpec` (what a plan is, independent of database ids); the same specs
are built by `create_plan`, by `catalog import` (catalog_toml.py) and by `load_catalog` from the
database, so the import can compare what the file says with what exists, object by object. Writes
are set-based (Core inserts with executemany), so importing thousands of plans stays fast.

Decisions:
- Archiving a product archives its active plans too (a product that is no longer sold takes no new
  subscriptions); existing subscriptions keep working. An active plan never belongs to an archived
  product.
- A new plan may not use an archived product or grant an archived feature. Plans that already grant
  a feature keep granting it when the feature is archived.
- A usage charge prices a metered feature the plan grants (one per feature and currency).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, update
from sqlmodel import Session, col, select

from tollgate import identifiers, journal, locks
from tollgate import text as text_rule
from tollgate.clock import rfc3339, utcnow
from tollgate.errors import Conflict, InvalidInput, NotFound, RuleViolation
from tollgate.grants import (
    INTERVALS,
    Grant,
    grant_dict,
    grant_from_row,
    grant_to_columns,
    parse_feature_type,
    parse_interval,
)
from tollgate.models import (
    Feature,
    Journal,
    Plan,
    PlanDownload,
    PlanEntitlement,
    PlanLicensePolicy,
    PlanLink,
    PlanPrice,
    PlanUsageCharge,
    Product,
)

MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_UNIT = 50
MAX_URL = 2000
MAX_TRIAL_DAYS = 3650
CHUNK = 2000
_EXPIRES = re.compile(r"^[1-9][0-9]{0,3}[dmy]$")


# -- what a catalog object is ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProductSpec:
    identifier: str
    name: str
    description: str | None = None
    archived: bool = False


@dataclass(frozen=True)
class FeatureSpec:
    identifier: str
    name: str
    type: str
    unit: str | None = None
    description: str | None = None
    archived: bool = False


@dataclass(frozen=True)
class Price:
    interval: str
    currency: str
    amount: Decimal  # quantized to the currency's minor unit


@dataclass(frozen=True)
class LicensePolicy:
    activation_limit: int | None = None  # None = unlimited
    expires_after: str = "never"  # "30d", "6m", "1y" or "never"
    activations_per_day: int | None = None  # abuse limits (license_limits.py); None = none
    files_per_day: int | None = None


@dataclass(frozen=True)
class Download:
    name: str
    sha256: str
    size: int
    enabled: bool = True
    public_id: str | None = field(default=None, compare=False)
    source: Any = field(default=None, compare=False)  # the file to store, on import


@dataclass(frozen=True)
class Link:
    name: str
    url: str
    public_id: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PlanSpec:
    identifier: str
    product: str
    name: str
    description: str | None = None
    trial_days: int | None = None
    prices: tuple[Price, ...] = ()
    grants: tuple[Grant, ...] = ()  # sorted by feature
    charges: tuple[Any, ...] = ()  # rating.UsageCharge, sorted by (feature, currency)
    license: LicensePolicy | None = None
    downloads: tuple[Download, ...] = ()  # in their order
    links: tuple[Link, ...] = ()  # in their order
    archived: bool = False

    def normalized(self) -> PlanSpec:
        return replace(
            self,
            prices=tuple(sorted(self.prices, key=price_order)),
            grants=tuple(sorted(self.grants, key=lambda g: g.feature)),
            charges=tuple(sorted(self.charges, key=lambda c: (c.feature, c.currency))),
        )


def price_order(price: Price) -> tuple[int, str]:
    return (INTERVALS.index(price.interval), price.currency)


# -- validating values ---------------------------------------------------------------------------


def validate_name(name: Any, *, what: str = "name", path: str | None = None) -> str:
    text = name.strip() if isinstance(name, str) else ""
    if not text:
        raise InvalidInput(f"the {what} is missing or empty.", path=path)
    if len(text) > MAX_NAME:
        raise InvalidInput(f"the {what} is longer than {MAX_NAME} characters.", path=path)
    text_rule.check(text, what=f"the {what}", path=path)
    return text


def validate_description(text: Any, *, path: str | None = None) -> str | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidInput("the description must be text.", path=path)
    stripped = text.strip()
    if not stripped:
        return None
    if len(stripped) > MAX_DESCRIPTION:
        raise InvalidInput(f"the description is longer than {MAX_DESCRIPTION} characters.", path=path)
    text_rule.check(stripped, what="the description", path=path, multiline=True)
    return stripped


def validate_unit(unit: Any, *, feature_type: str, path: str | None = None) -> str | None:
    if unit is None or (isinstance(unit, str) and not unit.strip()):
        return None
    if feature_type != "metered":
        raise InvalidInput(f"a unit is only for metered features; this one is {feature_type}.", path=path)
    if not isinstance(unit, str) or len(unit.strip()) > MAX_UNIT or text_rule.refused_character(unit):
        raise InvalidInput(f"the unit must be a short word like token or GB (at most {MAX_UNIT} characters).",
                           path=path)
    return unit.strip()


def validate_trial_days(days: Any, *, path: str | None = None) -> int | None:
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_TRIAL_DAYS:
        raise InvalidInput(
            f"trial_days is a whole number of days from 1 to {MAX_TRIAL_DAYS} (leave it out for no trial).",
            path=path,
        )
    return days


def make_price(interval: Any, currency: Any, amount: Any, *, path: str | None = None) -> Price:
    """A validated base price; `amount` is a decimal string or Decimal (never a float), >= 0."""
    from tollgate.money import parse_amount, validate_currency

    interval = parse_interval(interval, path=f"{path}.interval" if path else None)
    currency = validate_currency(currency, path=f"{path}.currency" if path else None)
    amount_path = f"{path}.amount" if path else None
    if isinstance(amount, int) and not isinstance(amount, bool) and path is not None:
        raise InvalidInput(
            f'write the amount as a string in quotes, like "{amount}.00", so money stays exact.', path=amount_path
        )
    return Price(interval, currency, parse_amount(amount, currency, path=amount_path))


def check_prices(prices: Sequence[Price], *, path: str | None = None) -> tuple[Price, ...]:
    seen: set[tuple[str, str]] = set()
    for index, price in enumerate(prices):
        key = (price.interval, price.currency)
        if key in seen:
            where = f"{path}[{index}]" if path else None
            raise InvalidInput(
                f"there are two prices for interval {price.interval} in {price.currency}; keep one.", path=where
            )
        seen.add(key)
    return tuple(sorted(prices, key=price_order))


def make_license(activation_limit: Any = "unlimited", expires_after: Any = "never", *,
                 activations_per_day: Any = None, files_per_day: Any = None,
                 path: str | None = None) -> LicensePolicy:
    limit_path = f"{path}.activation_limit" if path else None
    if isinstance(activation_limit, str) and activation_limit.strip().lower() == "unlimited":
        limit = None
    elif isinstance(activation_limit, int) and not isinstance(activation_limit, bool) and 1 <= activation_limit <= 1_000_000:
        limit = activation_limit
    else:
        raise InvalidInput('activation_limit is a whole number of at least 1, or "unlimited".', path=limit_path)
    expires = expires_after.strip().lower() if isinstance(expires_after, str) else None
    if expires is None or not (expires == "never" or _EXPIRES.match(expires)):
        raise InvalidInput(
            'expires_after is a duration like "30d", "6m" or "1y", or "never".',
            path=f"{path}.expires_after" if path else None,
        )
    per_day = [_per_day(value, name, path) for name, value in (("activations_per_day", activations_per_day),
                                                               ("files_per_day", files_per_day))]
    return LicensePolicy(limit, expires, *per_day)


def _per_day(value: Any, name: str, path: str | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
        raise InvalidInput(f"{name} is a whole number from 1 to 1,000,000 (leave it out for no limit).",
                           path=f"{path}.{name}" if path else None)
    return value


def validate_url(url: Any, *, path: str | None = None) -> str:
    """An http(s) web address with a real host name: no spaces, no control characters, no other schemes."""
    text = url.strip() if isinstance(url, str) else ""
    try:
        parts = urlsplit(text) if text and len(text) <= MAX_URL else None
    except ValueError:  # e.g. "https://[" (an unclosed IPv6 address)
        parts = None
    try:
        host = parts.hostname if parts and parts.port is not False else None  # .port raises on a bad port
    except ValueError:
        host = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or text_rule.refused_character(text)
        or any(ch.isspace() for ch in text)
    ):
        raise InvalidInput(f"{url!r} is not a web address (use http:// or https://).", path=path)
    if not host:
        raise InvalidInput(f"{url!r} is not a web address: it has no host (use e.g. https://example.com/path).",
                           path=path)
    return text


def validate_sha256(value: Any, *, path: str | None = None) -> str:
    from tollgate.blobs import is_sha256

    if not isinstance(value, str) or not is_sha256(value.strip().lower()):
        raise InvalidInput("sha256 is 64 hexadecimal characters.", path=path)
    return value.strip().lower()


def charge_columns(charge: Any) -> dict[str, Any]:
    from tollgate.rating import charge_to_dict

    return {"currency": charge.currency, "model": charge.model, "spec": json.dumps(charge_to_dict(charge))}


def charge_from_spec(text: str) -> Any:
    from tollgate.rating import charge_from_dict

    return charge_from_dict(json.loads(text), path="usage_charge")


# -- lookups -----------------------------------------------------------------------------------------


def get_product(session: Session, identifier: str) -> Product:
    product = session.exec(select(Product).where(Product.identifier == identifier)).first()
    if product is None:
        raise NotFound(f"No product has the identifier '{identifier}'.", hint="See `tollgate product list --all`.")
    return product


def get_feature(session: Session, identifier: str, *, lock: locks.Mode | None = None) -> Feature:
    """The feature with this identifier; NotFound when none. `lock`: see locks.locked."""
    stmt = select(Feature).where(Feature.identifier == identifier)
    feature = session.exec(locks.locked(session, stmt, lock)).first()
    if feature is None:
        raise NotFound(f"No feature has the identifier '{identifier}'.", hint="See `tollgate feature list --all`.")
    return feature


def get_plan(session: Session, identifier: str, *, lock: locks.Mode | None = None) -> Plan:
    """The plan with this identifier; NotFound when none. `lock`: see locks.locked."""
    stmt = select(Plan).where(Plan.identifier == identifier)
    plan = session.exec(locks.locked(session, stmt, lock)).first()
    if plan is None:
        raise NotFound(f"No plan has the identifier '{identifier}'.", hint="See `tollgate plan list --all`.")
    return plan


def _taken(session: Session, model: Any):
    def is_taken(candidate: str) -> bool:
        return session.exec(select(model.id).where(model.identifier == candidate)).first() is not None

    return is_taken


def _claim_identifier(session: Session, model: Any, *, identifier: str | None, name: str, kind: str) -> str:
    locks.namespace(session, "catalog")  # a free identifier stays free until we commit
    if identifier is None:
        return identifiers.first_free(identifiers.slugify(name, fallback=kind), _taken(session, model))
    identifiers.validate(identifier, kind=f"{kind} identifier")
    if _taken(session, model)(identifier):
        raise Conflict(
            f"The {kind} identifier '{identifier}' is already taken (identifiers are never reused, even after archiving).",
            hint="Choose another identifier.",
        )
    return identifier


def _check_status(status: str) -> None:
    if status not in ("active", "archived", "all"):
        raise InvalidInput(f"Unknown status '{status}': use active, archived or all.")


# -- products ------------------------------------------------------------------------------------------


def create_product(
    session: Session,
    *,
    name: str,
    identifier: str | None = None,
    description: str | None = None,
    now: datetime | None = None,
) -> Product:
    """Create a product; the identifier is generated from the name when not given."""
    name = validate_name(name)
    description = validate_description(description)
    identifier = _claim_identifier(session, Product, identifier=identifier, name=name, kind="product")
    now = now or utcnow()
    product = Product(identifier=identifier, name=name, description=description, created_at=now, updated_at=now)
    session.add(product)
    session.flush()
    journal.record(session, action="product.create", object_type="product", object_id=identifier,
                   details={"name": name}, at=now)
    return product


def archive_product(session: Session, *, identifier: str, now: datetime | None = None) -> tuple[Product, list[str]]:
    """Archive a product and its active plans (they take no new subscriptions). Returns the plans archived."""
    locks.namespace(session, "catalog")
    product = get_product(session, identifier)
    if product.status == "archived":
        raise RuleViolation(f"The product '{identifier}' is already archived.")
    now = now or utcnow()
    plans = session.exec(
        select(Plan).where(Plan.product_id == product.id, Plan.status == "active").order_by(Plan.id)
    ).all()
    for plan in plans:
        _archive_row(session, plan, "plan", now, details={"with_product": identifier})
    _archive_row(session, product, "product", now)
    return product, [plan.identifier for plan in plans]


def list_products(session: Session, *, status: str = "active") -> list[Product]:
    _check_status(status)
    stmt = select(Product)
    if status != "all":
        stmt = stmt.where(Product.status == status)
    return list(session.exec(stmt.order_by(Product.identifier)).all())


def product_dict(product: Product, *, plans: Sequence[str] | None = None) -> dict[str, Any]:
    data = {
        "identifier": product.identifier,
        "name": product.name,
        "description": product.description,
        "status": product.status,
        "created_at": rfc3339(product.created_at),
        "updated_at": rfc3339(product.updated_at),
        "archived_at": rfc3339(product.archived_at),
    }
    if plans is not None:
        data["plans"] = list(plans)
    return data


def _archive_row(session: Session, row: Any, kind: str, now: datetime, details: dict | None = None) -> None:
    row.status = "archived"
    row.archived_at = now
    row.updated_at = now
    session.add(row)
    session.flush()
    journal.record(session, action=f"{kind}.archive", object_type=kind, object_id=row.identifier,
                   details=details, at=now)


# -- features ------------------------------------------------------------------------------------------


def create_feature(
    session: Session,
    *,
    name: str,
    type: str,
    identifier: str | None = None,
    unit: str | None = None,
    description: str | None = None,
    now: datetime | None = None,
) -> Feature:
    """Create a feature (boolean, metered or config). Its identifier and type never change."""
    name = validate_name(name)
    feature_type = parse_feature_type(type)
    unit = validate_unit(unit, feature_type=feature_type)
    description = validate_description(description)
    identifier = _claim_identifier(session, Feature, identifier=identifier, name=name, kind="feature")
    now = now or utcnow()
    feature = Feature(identifier=identifier, name=name, type=feature_type, unit=unit, description=description,
                      created_at=now, updated_at=now)
    session.add(feature)
    session.flush()
    journal.record(session, action="feature.create", object_type="feature", object_id=identifier,
                   details={"name": name, "type": feature_type}, at=now)
    return feature


def archive_feature(session: Session, *, identifier: str, now: datetime | None = None) -> Feature:
    """Archive a feature: no new plan can grant it; plans that grant it keep doing so."""
    locks.namespace(session, "catalog")
    feature = get_feature(session, identifier)
    if feature.status == "archived":
        raise RuleViolation(f"The feature '{identifier}' is already archived.")
    _archive_row(session, feature, "feature", now or utcnow())
    return feature


def list_features(session: Session, *, status: str = "active") -> list[Feature]:
    _check_status(status)
    stmt = select(Feature)
    if status != "all":
        stmt = stmt.where(Feature.status == status)
    return list(session.exec(stmt.order_by(Feature.identifier)).all())


def feature_dict(feature: Feature) -> dict[str, Any]:
    return {
        "identifier": feature.identifier,
        "name": feature.name,
        "type": feature.type,
        "unit": feature.unit,
        "description": feature.description,
        "status": feature.status,
        "created_at": rfc3339(feature.created_at),
        "updated_at": rfc3339(feature.updated_at),
        "archived_at": rfc3339(feature.archived_at),
    }


# -- plans ------------------------------------------------------------------------------------------------


def default_plan_name(identifier: str) -> str:
    """`pro` -> `Pro`, `team-yearly` -> `Team Yearly`."""
    return " ".join(part.capitalize() for part in identifier.split("-"))


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
    granted = session.exec(
        select(PlanEntitlement.id).where(PlanEntitlement.plan_id == row.id, PlanEntitlement.feature_id == feature.id)
    ).first()
    if granted is None:
        raise RuleViolation(
            f"The plan '{plan}' does not grant '{feature.identifier}', so its usage can't be charged.",
            hint="Grant it in the plan first (an allowance, or unlimited).",
        )
    existing = session.exec(
        select(PlanUsageCharge).where(
            PlanUsageCharge.plan_id == row.id,
            PlanUsageCharge.feature_id == feature.id,
            PlanUsageCharge.currency == charge.currency,
        )
    ).first()
    columns = charge_columns(charge)
    conn = session.connection()
    if existing is None:
        action = "create"
        conn.execute(insert(PlanUsageCharge).values(plan_id=row.id, feature_id=feature.id, **columns))
    else:
        action = "update"
        conn.execute(update(PlanUsageCharge).where(PlanUsageCharge.id == existing.id).values(**columns))
    now = now or utcnow()
    conn.execute(update(Plan).where(Plan.id == row.id).values(updated_at=now))
    journal.record(session, action=f"plan.charge.{action}", object_type="plan", object_id=plan,
                   details=json.loads(columns["spec"]), at=now)
    session.expire(row)
    return session.exec(select(Plan).where(Plan.id == row.id)).one(), action


# -- reading whole plans -------------------------------------------------------------------------------


def feature_table(session: Session) -> dict[str, tuple[int, str, str]]:
    """identifier -> (id, type, status) of every feature."""
    rows = session.exec(select(Feature.identifier, Feature.id, Feature.type, Feature.status)).all()
    return {ident: (fid, ftype, status) for ident, fid, ftype, status in rows}


def plan_specs(session: Session, plans: Sequence[Plan] | None = None) -> dict[int, PlanSpec]:
    """plan id -> PlanSpec, for the given plans (None: every plan), in a handful of queries."""
    from tollgate.money import from_minor

    if plans is None:
        plans = list(session.exec(select(Plan).order_by(Plan.id)).all())
    if not plans:
        return {}
    ids = [plan.id for plan in plans]
    every = len(ids) > 500  # reading whole tables beats a huge IN list

    def rows(model: Any, order: Any) -> list[Any]:
        stmt = select(model)
        if not every:
            stmt = stmt.where(col(model.plan_id).in_(ids))
        return list(session.exec(stmt.order_by(*order)).all())

    products = dict(session.exec(select(Product.id, Product.identifier)).all())
    features = {fid: (ident, ftype) for ident, (fid, ftype, _) in feature_table(session).items()}
    prices: dict[int, list[Price]] = defaultdict(list)
    for row in rows(PlanPrice, (PlanPrice.id,)):
        prices[row.plan_id].append(Price(row.interval, row.currency, from_minor(row.amount_minor, row.currency)))
    grants: dict[int, list[Grant]] = defaultdict(list)
    for row in rows(PlanEntitlement, (PlanEntitlement.id,)):
        ident, ftype = features[row.feature_id]
        grants[row.plan_id].append(grant_from_row(ident, ftype, row))
    charges: dict[int, list[Any]] = defaultdict(list)
    for row in rows(PlanUsageCharge, (PlanUsageCharge.id,)):
        charges[row.plan_id].append(charge_from_spec(row.spec))
    licenses = {
        row.plan_id: LicensePolicy(row.activation_limit, row.expires_after, row.activations_per_day,
                                   row.files_per_day)
        for row in rows(PlanLicensePolicy, (PlanLicensePolicy.plan_id,))
    }
    downloads: dict[int, list[Download]] = defaultdict(list)
    for row in rows(PlanDownload, (PlanDownload.position, PlanDownload.id)):
        downloads[row.plan_id].append(Download(row.name, row.sha256, row.size, row.enabled, public_id=row.public_id))
    links: dict[int, list[Link]] = defaultdict(list)
    for row in rows(PlanLink, (PlanLink.position, PlanLink.id)):
        links[row.plan_id].append(Link(row.name, row.url, public_id=row.public_id))
    return {
        plan.id: PlanSpec(
            identifier=plan.identifier,
            product=products[plan.product_id],
            name=plan.name,
            description=plan.description,
            trial_days=plan.trial_days,
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


def plan_grants(session: Session, plan: Plan) -> dict[str, Grant]:
    """feature identifier -> what the plan grants for it."""
    return {grant.feature: grant for grant in plan_specs(session, [plan])[plan.id].grants}


def price_dict(price: Price) -> dict[str, Any]:
    from tollgate.money import format_money

    return {"interval": price.interval, "currency": price.currency, "amount": format_money(price.amount, price.currency)}


def plan_dict(session: Session, plan: Plan, *, spec: PlanSpec | None = None) -> dict[str, Any]:
    """The stable JSON shape of a plan, with its prices, entitlements, charges and deliverables."""
    from tollgate.rating import charge_to_dict

    if spec is None:
        spec = plan_specs(session, [plan])[plan.id]
    return {
        "identifier": plan.identifier,
        "product": spec.product,
        "name": plan.name,
        "description": plan.description,
        "status": plan.status,
        "trial_days": plan.trial_days,
        "prices": [price_dict(price) for price in spec.prices],
        "entitlements": [grant_dict(grant) for grant in spec.grants],
        "usage_charges": [charge_to_dict(charge) for charge in spec.charges],
        "license": None if spec.license is None else {
            "activation_limit": spec.license.activation_limit,
            "expires_after": spec.license.expires_after,
            "activations_per_day": spec.license.activations_per_day,
            "files_per_day": spec.license.files_per_day,
        },
        "downloads": [
            {"id": d.public_id, "plan": plan.identifier, "name": d.name, "size": d.size, "sha256": d.sha256,
             "enabled": d.enabled}
            for d in spec.downloads
        ],
        "links": [{"id": ln.public_id, "plan": plan.identifier, "name": ln.name, "url": ln.url} for ln in spec.links],
        "created_at": rfc3339(plan.created_at),
        "updated_at": rfc3339(plan.updated_at),
        "archived_at": rfc3339(plan.archived_at),
    }


def plan_dicts(session: Session, plans: Sequence[Plan]) -> list[dict[str, Any]]:
    specs = plan_specs(session, plans)
    return [plan_dict(session, plan, spec=specs[plan.id]) for plan in plans]


# -- set-based writes (shared by create_plan and catalog import) ------------------------------------


def chunked(rows: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def insert_many(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Core INSERT with executemany, in chunks (the ORM's per-object add is ~40x slower)."""
    conn = session.connection()
    for chunk in chunked(rows):
        conn.execute(insert(model), list(chunk))


def journal_rows(entries: Iterable[tuple[str, str, str, dict[str, Any] | None]], now: datetime) -> list[dict]:
    """(action, object_type, object_id, details) -> Journal rows for a set-based insert."""
    actor = journal.current_actor()
    return [
        {"at": now, "actor": actor, "action": action, "object_type": object_type, "object_id": object_id,
         "customer_id": None, "details": json.dumps(details or {}, sort_keys=True, default=str)}
        for action, object_type, object_id, details in entries
    ]


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
             "description": s.description, "trial_days": s.trial_days,
             "status": "archived" if s.archived else "active", "created_at": now, "updated_at": now,
             "archived_at": now if s.archived else None}
            for s in specs
        ],
    )
    wanted = {s.identifier for s in specs}
    plan_ids = {
        ident: pid for ident, pid in session.exec(select(Plan.identifier, Plan.id)).all() if ident in wanted
    }
    insert_plan_contents(session, [(plan_ids[s.identifier], s) for s in specs], feature_ids=feature_ids, now=now)
    if journal_entries:
        insert_many(session, Journal, journal_rows(
            (("plan.create", "plan", s.identifier, plan_summary(s)) for s in specs), now))
    return plan_ids


def plan_summary(spec: PlanSpec) -> dict[str, Any]:
    return {"product": spec.product, "name": spec.name, "prices": len(spec.prices),
            "entitlements": len(spec.grants), "usage_charges": len(spec.charges)}


def insert_plan_contents(
    session: Session, plans: Sequence[tuple[int, PlanSpec]], *, feature_ids: dict[str, int], now: datetime,
    downloads_and_links: bool = True,
) -> None:
    """Prices, entitlements, usage charges and license policy (and downloads and links) of plans."""
    from tollgate.money import to_minor

    prices, grants, charges, licenses, downloads, links = [], [], [], [], [], []
    for plan_id, spec in plans:
        prices.extend(
            {"plan_id": plan_id, "interval": p.interval, "currency": p.currency,
             "amount_minor": to_minor(p.amount, p.currency)}
            for p in spec.prices
        )
        grants.extend(
            {"plan_id": plan_id, "feature_id": feature_ids[g.feature], **grant_to_columns(g)} for g in spec.grants
        )
        charges.extend(
            {"plan_id": plan_id, "feature_id": feature_ids[c.feature], **charge_columns(c)} for c in spec.charges
        )
        if spec.license is not None:
            licenses.append({"plan_id": plan_id, **asdict(spec.license)})
        if downloads_and_links:
            downloads.extend(download_row(plan_id, d, position, now) for position, d in enumerate(spec.downloads))
            links.extend(link_row(plan_id, ln, position, now) for position, ln in enumerate(spec.links))
    for model, rows in ((PlanPrice, prices), (PlanEntitlement, grants), (PlanUsageCharge, charges),
                        (PlanLicensePolicy, licenses), (PlanDownload, downloads), (PlanLink, links)):
        if rows:
            insert_many(session, model, rows)


def download_row(plan_id: int, d: Download, position: int, now: datetime) -> dict[str, Any]:
    return {"public_id": d.public_id or identifiers.public_id("dl"), "plan_id": plan_id, "name": d.name,
            "sha256": d.sha256, "size": d.size, "enabled": d.enabled, "position": position, "created_at": now}


def link_row(plan_id: int, ln: Link, position: int, now: datetime) -> dict[str, Any]:
    return {"public_id": ln.public_id or identifiers.public_id("ln"), "plan_id": plan_id, "name": ln.name,
            "url": ln.url, "position": position, "created_at": now}


def delete_plan_contents(session: Session, plan_ids: Sequence[int]) -> None:
    """Remove prices, entitlements, usage charges and license policies of plans (to be re-inserted)."""
    conn = session.connection()
    for chunk in chunked(list(plan_ids), 500):
        for model in (PlanPrice, PlanEntitlement, PlanUsageCharge, PlanLicensePolicy):
            conn.execute(delete(model).where(col(model.plan_id).in_(list(chunk))))


def sync_downloads_and_links(session: Session, plan_id: int, spec: PlanSpec, old: PlanSpec, now: datetime) -> None:
    """Make a plan's downloads and links those of `spec`, keeping the public id of each kept name."""
    conn = session.connection()
    for model, new_items, old_items, to_row, fields_of in (
        (PlanDownload, spec.downloads, old.downloads, download_row,
         lambda d: {"sha256": d.sha256, "size": d.size, "enabled": d.enabled}),
        (PlanLink, spec.links, old.links, link_row, lambda ln: {"url": ln.url}),
    ):
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



def refuse_missing_pieces(session: Session, *, product: str, features: Sequence[str]) -> None:
    """Before a plan is built from command-line options: one NotFound naming every piece that does
    not exist yet (the product, each feature), with the commands that create them."""
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
