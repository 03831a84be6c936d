"""Subscriptions, their own feature adjustments, and per-customer overrides."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from tollgate.coltypes import UtcDateTime
from tollgate.models.base import micros_column as _micros
from tollgate.models import core  # noqa: F401  (tables its foreign keys point at)
from tollgate.models import catalog  # noqa: F401  (tables its foreign keys point at)


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
    start_at: datetime = Field(sa_type=UtcDateTime)
    trial_end: datetime | None = Field(default=None, sa_type=UtcDateTime)
    cancel_at: datetime | None = Field(default=None, sa_type=UtcDateTime)  # access ends then (cancel at period end)
    canceled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    # schema 4, last (columns a migration adds): the plan version it is on (NULL only in the schema:
    # SQLite can't add a NOT NULL reference), and a move scheduled for `next_version_at` (`plan
    # migrate --at period-end`), read lazily like cancel_at (sub_versions.py)
    plan_version_id: int | None = Field(default=None, foreign_key="plan_version.id", index=True)
    next_version_id: int | None = Field(default=None, foreign_key="plan_version.id")
    next_version_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    next_amount_minor: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


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
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    note: str | None = None
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
