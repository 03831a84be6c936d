"""Usage events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index
from sqlmodel import Field, SQLModel
from tollgate.models import core  # noqa: F401  (tables its foreign keys point at)
from tollgate.models import catalog  # noqa: F401  (tables its foreign keys point at)


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
