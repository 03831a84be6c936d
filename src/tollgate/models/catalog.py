"""The catalog: products, features, plans and what they carry (prices, grants, charges, goods)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from tollgate.coltypes import UtcDateTime
from tollgate.models.base import micros_column as _micros


class Product(SQLModel, table=True):
    __tablename__ = "product"
    id: int | None = Field(default=None, primary_key=True)
    identifier: str = Field(unique=True)
    name: str
    description: str | None = None
    status: str = "active"  # active | archived
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    archived_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Feature(SQLModel, table=True):
    __tablename__ = "feature"
    id: int | None = Field(default=None, primary_key=True)
    identifier: str = Field(unique=True)
    name: str
    type: str  # boolean | metered | config
    unit: str | None = None
    description: str | None = None
    status: str = "active"
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    archived_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Plan(SQLModel, table=True):
    __tablename__ = "plan"
    id: int | None = Field(default=None, primary_key=True)
    identifier: str = Field(unique=True)
    product_id: int = Field(foreign_key="product.id", index=True)
    name: str
    description: str | None = None
    status: str = "active"  # active | archived (archived: no new subscriptions)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    archived_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class PlanVersion(SQLModel, table=True):
    """One version of what a plan sells (plan_versions.py): its prices, trial, entitlements, usage
    charges and license policy hang off the version; name, description, downloads and links off the
    plan. Versions are numbered 1, 2, ... per plan; the highest is the current one."""

    __tablename__ = "plan_version"
    __table_args__ = (UniqueConstraint("plan_id", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id")
    version: int
    trial_days: int | None = None
    created_at: datetime = Field(sa_type=UtcDateTime)


class PlanPrice(SQLModel, table=True):
    """The base price of a plan for one billing interval and currency."""

    __tablename__ = "plan_price"
    __table_args__ = (UniqueConstraint("plan_version_id", "interval", "currency"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_version_id: int = Field(foreign_key="plan_version.id")
    interval: str  # month | year | 28d | quarter | half-year | once
    currency: str
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))


class PlanEntitlement(SQLModel, table=True):
    """What a plan version grants for one feature.

    boolean/config: `value` is the JSON of the value (true, 10, "eu").
    metered: `limit_micros` is the allowance per reset period (NULL = unlimited), `reset` the cadence,
    `hard` whether access stops at the allowance, `alerts` a comma-separated list of percents.
    """

    __tablename__ = "plan_entitlement"
    __table_args__ = (UniqueConstraint("plan_version_id", "feature_id"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_version_id: int = Field(foreign_key="plan_version.id")
    feature_id: int = Field(foreign_key="feature.id", index=True)
    value: str | None = None
    limit_micros: int | None = Field(default=None, sa_column=_micros(nullable=True))
    reset: str | None = None  # never | day | week | 28d | month | quarter | year
    hard: bool = False
    alerts: str = ""


class PlanUsageCharge(SQLModel, table=True):
    """A price on a metered feature's usage; `spec` is the charge as canonical JSON (see rating.py)."""

    __tablename__ = "plan_usage_charge"
    __table_args__ = (UniqueConstraint("plan_version_id", "feature_id", "currency"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_version_id: int = Field(foreign_key="plan_version.id")
    feature_id: int = Field(foreign_key="feature.id")
    currency: str
    model: str  # flat | package | tiered | volume | stair-step
    spec: str = Field(sa_column=Column(Text, nullable=False))


class PlanLicensePolicy(SQLModel, table=True):
    """Present when a plan issues license keys."""

    __tablename__ = "plan_license_policy"
    plan_version_id: int = Field(foreign_key="plan_version.id", primary_key=True)
    activation_limit: int | None = None  # NULL = unlimited
    expires_after: str = "never"  # "30d", "6m", "1y" or "never"
    activations_per_day: int | None = None  # NULL = no limit (license_limits.py; schema 3)
    files_per_day: int | None = None  # NULL = no limit


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
    created_at: datetime = Field(sa_type=UtcDateTime)


class PlanLink(SQLModel, table=True):
    __tablename__ = "plan_link"
    __table_args__ = (UniqueConstraint("plan_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(unique=True)  # ln_...
    plan_id: int = Field(foreign_key="plan.id")
    name: str
    url: str
    position: int = 0
    created_at: datetime = Field(sa_type=UtcDateTime)
