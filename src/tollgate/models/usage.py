"""Usage events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, text
from sqlmodel import Field, SQLModel

from tollgate.coltypes import UtcDateTime
from tollgate.models import core  # noqa: F401  (tables its foreign keys point at)
from tollgate.models import catalog  # noqa: F401  (tables its foreign keys point at)


class UsageEvent(SQLModel, table=True):
    """One usage event. `key` is the idempotency key: the same key never counts twice.

    A void is an event of its own (negative quantity, `voids` = the voided key), so history is kept.
    """

    __tablename__ = "usage_event"
    __table_args__ = (
        # covering: a partial bucket's sum (usage.rollups) reads the index alone
        Index("ix_usage_customer_feature_at_quantity", "customer_id", "feature_id", "occurred_at", "quantity_micros"),
        # the corrections of a customer's range (usage show) without reading their other events.
        # Partial on SQLite only: naming postgresql_where makes SQLAlchemy import its PostgreSQL
        # dialect whenever the table is built, a tenth of a second of every SQLite command's start-up.
        Index("ix_usage_voids", "customer_id", "occurred_at", sqlite_where=text("voids IS NOT NULL")),
    )
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    customer_id: int = Field(foreign_key="customer.id")
    feature_id: int = Field(foreign_key="feature.id")
    quantity_micros: int = Field(sa_column=Column(BigInteger, nullable=False))
    occurred_at: datetime = Field(sa_type=UtcDateTime)
    recorded_at: datetime = Field(sa_type=UtcDateTime)
    voids: str | None = None
    reason: str | None = None


class UsageRollup(SQLModel, table=True):
    """The sum and count of one customer's events of one feature in one UTC bucket of time, kept in
    the same transaction as every event write (usage/rollups.py explains the levels and why).

    `level` 0 is a UTC day, 1 an hour, 2 a minute, 3 a second, 4 a millisecond; `start` is the
    bucket's first moment. A bucket below a day exists only while its parent holds more than
    `usage.rollups.REFINE_AFTER` events (then every child with an event exists)."""

    __tablename__ = "usage_rollup"
    __table_args__ = {"sqlite_with_rowid": False}
    customer_id: int = Field(foreign_key="customer.id", primary_key=True)
    feature_id: int = Field(foreign_key="feature.id", primary_key=True)
    level: int = Field(primary_key=True)
    start: datetime = Field(sa_type=UtcDateTime, primary_key=True)
    total_micros: int = Field(sa_column=Column(BigInteger, nullable=False))
    events: int = Field(sa_column=Column(BigInteger, nullable=False))
