"""The schema: one SQLModel table class per entity.

Conventions that hold across every table:
- `id` is an internal integer key; people and scripts use `identifier` (catalog objects, customers)
  or a prefixed random public id (`sub_...`, `dl_...`), which never changes and is never reused.
- Times are naive datetimes in UTC (the database has no time zones; SQLite and PostgreSQL agree).
- Money is integer minor units plus an ISO 4217 code; rates that need sub-minor precision are exact
  decimal strings. Quantities and allowances are integer millionths (`*_micros`), so SUM() is exact.
- Nothing is ever deleted that a customer's history points at: objects are archived instead.

Every datetime column names its type (naive DateTime): SQLModel versions differ in their default.
Bump `SCHEMA_VERSION` (in db.py) and add a migration with every change here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _micros(**kwargs) -> Column:
    return Column(BigInteger, **kwargs)


class Meta(SQLModel, table=True):
    """Key/value facts about the database itself (schema_version)."""

    __tablename__ = "meta"
    key: str = Field(primary_key=True)
    value: str


class Journal(SQLModel, table=True):
    """Every change, written by the library in the same transaction as the change itself."""

    __tablename__ = "journal"
    __table_args__ = (Index("ix_journal_customer_at", "customer_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=DateTime, index=True)
    actor: str
    action: str  # e.g. customer.create, usage.alert
    object_type: str
    object_id: str
    customer_id: int | None = Field(default=None)
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))


class Customer(SQLModel, table=True):
    __tablename__ = "customer"
    id: int | None = Field(default=None, primary_key=True)
    identifier: str = Field(unique=True)
    billing_id: str = Field(unique=True)
    name: str
    email: str | None = None
    status: str = "active"  # active | archived
    # casefolded "identifier name email", so search is case-insensitive for every script
    search_text: str
    created_at: datetime = Field(sa_type=DateTime)
    updated_at: datetime = Field(sa_type=DateTime)
    archived_at: datetime | None = Field(default=None, sa_type=DateTime)


class Product(SQLModel, table=True):
    __tablename__ = "product"
    id: int | None = Field(default=None, primary_key=True)
    identifier: str = Field(unique=True)
    name: str
    description: str | None = None
    status: str = "active"  # active | archived
    created_at: datetime = Field(sa_type=DateTime)
    updated_at: datetime = Field(sa_type=DateTime)
    archived_at: datetime | None = Field(default=None, sa_type=DateTime)


class Feature(SQLModel, table=True):
    __tablename__ = "feature"
    id: int | None = Field(default=None, primary_key=True)
    identifier: str = Field(unique=True)
    name: str
    type: str  # boolean | metered | config
    unit: str | None = None
    description: str | None = None
    status: str = "active"
    created_at: datetime = Field(sa_type=DateTime)
    updated_at: datetime = Field(sa_type=DateTime)
    archived_at: datetime | None = Field(default=None, sa_type=DateTime)


class Plan(SQLModel, table=True):
    __tablename__ = "plan"
    id: int | None = Field(default=None, primary_key=True)
    identifier: str = Field(unique=True)
    product_id: int = Field(foreign_key="product.id", index=True)
    name: str
    description: str | None = None
    trial_days: int | None = None
    status: str = "active"  # active | archived (archived: no new subscriptions)
    created_at: datetime = Field(sa_type=DateTime)
    updated_at: datetime = Field(sa_type=DateTime)
    archived_at: datetime | None = Field(default=None, sa_type=DateTime)


class PlanPrice(SQLModel, table=True):
    """The base price of a plan for one billing interval and currency."""

    __tablename__ = "plan_price"
    __table_args__ = (UniqueConstraint("plan_id", "interval", "currency"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id")
    interval: str  # month | year | 28d | quarter | half-year | once
    currency: str
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))


class PlanEntitlement(SQLModel, table=True):
    """What a plan grants for one feature.

    boolean/config: `value` is the JSON of the value (true, 10, "eu").
    metered: `limit_micros` is the allowance per reset period (NULL = unlimited), `reset` the cadence,
    `hard` whether access stops at the allowance, `alerts` a comma-separated list of percents.
    """

    __tablename__ = "plan_entitlement"
    __table_args__ = (UniqueConstraint("plan_id", "feature_id"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id")
    feature_id: int = Field(foreign_key="feature.id", index=True)
    value: str | None = None
    limit_micros: int | None = Field(default=None, sa_column=_micros(nullable=True))
    reset: str | None = None  # never | day | week | 28d | month | quarter | year
    hard: bool = False
    alerts: str = ""


class PlanUsageCharge(SQLModel, table=True):
    """A price on a metered feature's usage; `spec` is the charge as canonical JSON (see rating.py)."""

    __tablename__ = "plan_usage_charge"
    __table_args__ = (UniqueConstraint("plan_id", "feature_id", "currency"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id")
    feature_id: int = Field(foreign_key="feature.id")
    currency: str
    model: str  # flat | package | tiered | volume | stair-step
    spec: str = Field(sa_column=Column(Text, nullable=False))


class PlanLicensePolicy(SQLModel, table=True):
    """Present when a plan issues license keys."""

    __tablename__ = "plan_license_policy"
    plan_id: int = Field(foreign_key="plan.id", primary_key=True)
    activation_limit: int | None = None  # NULL = unlimited
    expires_after: str = "never"  # "30d", "6m", "1y" or "never"


class PlanDownload(SQLModel, table=True):
    """A file a plan delivers, stored by content (sha256) in the data directory."""

    __tablename__ = "plan_download"
    __table_args__ = (UniqueConstraint("plan_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(unique=True)  # dl_...
    plan_id: int = Field(foreign_key="plan.id")
    name: str
    sha256: str = Field(index=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    enabled: bool = True
    position: int = 0
    created_at: datetime = Field(sa_type=DateTime)


class PlanLink(SQLModel, table=True):
    __tablename__ = "plan_link"
    __table_args__ = (UniqueConstraint("plan_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(unique=True)  # ln_...
    plan_id: int = Field(foreign_key="plan.id")
    name: str
    url: str
    position: int = 0
    created_at: datetime = Field(sa_type=DateTime)


class Subscription(SQLModel, table=True):
    """A customer on a plan. `status` is the stored state; trials end by date (see subscriptions.py)."""

    __tablename__ = "subscription"
    __table_args__ = (Index("ix_subscription_customer_status", "customer_id", "status"),)
    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(unique=True)  # sub_...
    customer_id: int = Field(foreign_key="customer.id")
    plan_id: int = Field(foreign_key="plan.id", index=True)
    status: str  # trialing | active | past_due | canceled | expired
    interval: str | None = None  # NULL for a free plan
    currency: str | None = None
    amount_minor: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    start_at: datetime = Field(sa_type=DateTime)
    trial_end: datetime | None = Field(default=None, sa_type=DateTime)
    cancel_at: datetime | None = Field(default=None, sa_type=DateTime)  # access ends then (cancel at period end)
    canceled_at: datetime | None = Field(default=None, sa_type=DateTime)
    created_at: datetime = Field(sa_type=DateTime)
    updated_at: datetime = Field(sa_type=DateTime)


class SubscriptionFeature(SQLModel, table=True):
    """A subscription's own adjustment of one feature: excluded, or a different value/allowance."""

    __tablename__ = "subscription_feature"
    __table_args__ = (UniqueConstraint("subscription_id", "feature_id"),)
    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="subscription.id")
    feature_id: int = Field(foreign_key="feature.id")
    excluded: bool = False
    value: str | None = None
    limit_micros: int | None = Field(default=None, sa_column=_micros(nullable=True))
    unlimited: bool = False
    hard: bool | None = None
    reset: str | None = None


class Override(SQLModel, table=True):
    """An exception for one customer and one feature; wins over every plan and subscription."""

    __tablename__ = "override"
    __table_args__ = (UniqueConstraint("customer_id", "feature_id"),)
    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id")
    feature_id: int = Field(foreign_key="feature.id")
    value: str | None = None
    limit_micros: int | None = Field(default=None, sa_column=_micros(nullable=True))
    unlimited: bool = False
    hard: bool | None = None
    expires_at: datetime | None = Field(default=None, sa_type=DateTime)
    note: str | None = None
    created_at: datetime = Field(sa_type=DateTime)
    updated_at: datetime = Field(sa_type=DateTime)


class UsageEvent(SQLModel, table=True):
    """One usage event. `key` is the idempotency key: the same key never counts twice.

    A void is an event of its own (negative quantity, `voids` = the voided key), so history is kept.
    """

    __tablename__ = "usage_event"
    __table_args__ = (Index("ix_usage_customer_feature_at", "customer_id", "feature_id", "occurred_at"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    customer_id: int = Field(foreign_key="customer.id")
    feature_id: int = Field(foreign_key="feature.id")
    quantity_micros: int = Field(sa_column=Column(BigInteger, nullable=False))
    occurred_at: datetime = Field(sa_type=DateTime)
    recorded_at: datetime = Field(sa_type=DateTime)
    voids: str | None = None
    reason: str | None = None


class License(SQLModel, table=True):
    __tablename__ = "license"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    plan_id: int = Field(foreign_key="plan.id")
    subscription_id: int | None = Field(default=None, foreign_key="subscription.id", index=True)
    status: str = "active"  # active | revoked (expired is computed from expires_at)
    activation_limit: int | None = None  # NULL = unlimited
    expires_at: datetime | None = Field(default=None, sa_type=DateTime)
    replaced_by: str | None = None
    created_at: datetime = Field(sa_type=DateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime)


class LicenseActivation(SQLModel, table=True):
    __tablename__ = "license_activation"
    id: int | None = Field(default=None, primary_key=True)
    license_id: int = Field(foreign_key="license.id", index=True)
    instance_id: str = Field(unique=True)
    name: str
    activated_at: datetime = Field(sa_type=DateTime)
    deactivated_at: datetime | None = Field(default=None, sa_type=DateTime)
