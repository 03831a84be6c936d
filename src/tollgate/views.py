"""What `Tollgate` returns for a customer, a product or a feature: frozen copies of a row, never the
row itself, with `to_dict()` for the stable JSON shape (`--json`: the fields in order, times in RFC 3339).

`of(row)` takes a model object or a Core row alike (they have the same attribute names). Nothing here
imports the database layer: `customer show` and `customer list` start without it.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, fields
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from tollgate.clock import rfc3339

V = TypeVar("V", bound="RowView")


class RowView:
    """A view of one row: its fields are the row's attributes of the same names."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]  # each subclass is a dataclass

    @classmethod
    def of(cls: type[V], row: Any) -> V:
        return cls(*(getattr(row, field.name) for field in fields(cls)))

    def to_dict(self) -> dict[str, Any]:
        values = ((field.name, getattr(self, field.name)) for field in fields(self))
        return {name: rfc3339(value) if isinstance(value, datetime) else value for name, value in values}


@dataclass(frozen=True, slots=True)
class CustomerView(RowView):
    identifier: str
    billing_id: str
    name: str
    email: str | None
    status: str  # active | archived
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


@dataclass(frozen=True, slots=True)
class ProductView(RowView):
    identifier: str
    name: str
    description: str | None
    status: str
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


@dataclass(frozen=True, slots=True)
class FeatureView(RowView):
    identifier: str
    name: str
    type: str  # boolean | metered | config
    unit: str | None
    description: str | None
    status: str
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
