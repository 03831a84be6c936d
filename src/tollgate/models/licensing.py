"""License keys and their activations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel
from tollgate.models import core  # noqa: F401  (tables its foreign keys point at)
from tollgate.models import catalog  # noqa: F401  (tables its foreign keys point at)
from tollgate.models import billing  # noqa: F401  (tables its foreign keys point at)


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
