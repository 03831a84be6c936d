"""The database's own facts, the journal, and customers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from tollgate.coltypes import UtcDateTime

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
    at: datetime = Field(sa_type=UtcDateTime, index=True)
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
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    archived_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
