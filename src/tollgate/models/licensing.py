"""License keys and their activations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from tollgate.coltypes import UtcDateTime
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
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    replaced_by: str | None = None
    created_at: datetime = Field(sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class LicenseActivation(SQLModel, table=True):
    __tablename__ = "license_activation"
    id: int | None = Field(default=None, primary_key=True)
    license_id: int = Field(foreign_key="license.id", index=True)
    instance_id: str = Field(unique=True)
    name: str
    activated_at: datetime = Field(sa_type=UtcDateTime)
    deactivated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class SigningKey(SQLModel, table=True):
    """An Ed25519 key that signs license files (signing.py). Its private half is a file in the data
    folder of the machine named by `host`, never in the database."""

    __tablename__ = "signing_key"
    id: int | None = Field(default=None, primary_key=True)
    kid: str = Field(unique=True)  # the RFC 7638 thumbprint of the public key
    public_key: str = Field(sa_type=Text)  # PEM (SubjectPublicKeyInfo)
    host: str
    created_at: datetime = Field(sa_type=UtcDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class LicenseFile(SQLModel, table=True):
    """A license file issued for a key (license_files.py): counted by the policy's files_per_day."""

    __tablename__ = "license_file"
    __table_args__ = (Index("ix_license_file_license_issued", "license_id", "issued_at"),)
    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(unique=True)  # lf_..., the file's `jti`
    license_id: int = Field(foreign_key="license.id")
    signing_key_id: int = Field(foreign_key="signing_key.id")
    fingerprint: str | None = None
    issued_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
