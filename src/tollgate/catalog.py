"""The catalog: products, features and what describes a plan (its specs and their validation); the
plans themselves are written by plans.py (commands) and plan_specs.py (whole plans, set-based).

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import insert
from sqlmodel import Session, select

from tollgate import identifiers, journal, locks
from tollgate import text as text_rule
from tollgate.clock import utcnow
from tollgate.errors import Conflict, InvalidInput, NotFound, RuleViolation
from tollgate.grants import INTERVALS, Grant, parse_feature_type, parse_interval
from tollgate.models import Feature, Plan, Product

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

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: the amount as an exact string in the currency's minor unit ("29.00")."""
        from tollgate.money import format_money

        return {"interval": self.interval, "currency": self.currency, "amount": format_money(self.amount, self.currency)}


@dataclass(frozen=True)
class LicensePolicy:
    activation_limit: int | None = None  # None = unlimited
    expires_after: str = "never"  # "30d", "6m", "1y" or "never"
    activations_per_day: int | None = None  # abuse limits (license_limits.py); None = none
    files_per_day: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"activation_limit": self.activation_limit, "expires_after": self.expires_after,
                "activations_per_day": self.activations_per_day, "files_per_day": self.files_per_day}


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


@dataclass
class Catalog:
    """A whole catalog, keyed by identifier (what `catalog import` compares and `catalog export` writes)."""

    products: dict[str, ProductSpec] = field(default_factory=dict)
    features: dict[str, FeatureSpec] = field(default_factory=dict)
    plans: dict[str, PlanSpec] = field(default_factory=dict)

    def objects(self, kind: str) -> dict[str, Any]:
        by_kind: dict[str, dict[str, Any]] = {"product": self.products, "feature": self.features, "plan": self.plans}
        return by_kind[kind]


KINDS = ("product", "feature", "plan")


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


def default_plan_name(identifier: str) -> str:
    """`pro` -> `Pro`, `team-yearly` -> `Team Yearly`."""
    return " ".join(part.capitalize() for part in identifier.split("-"))


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


# -- set-based writes (shared by plans.py, plan_specs.py and catalog import) ------------------------


def feature_table(session: Session) -> dict[str, tuple[int, str, str]]:
    """identifier -> (id, type, status) of every feature."""
    rows = session.exec(select(Feature.identifier, Feature.id, Feature.type, Feature.status)).all()
    return {ident: (fid, ftype, status) for ident, fid, ftype, status in rows}


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
