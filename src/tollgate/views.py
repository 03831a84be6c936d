"""What `Tollgate` returns for a customer, a product or a feature: frozen copies of a row, never the
row itself, with `to_dict()` for the stable JSON shape (`--json`: the fields in order, times in RFC 3339).

`of(row)` takes a model object or a Core row alike (they have the same attribute names); a field the
row does not have is given by name (`InstanceView.of(activation, key=key)`). Nothing here
imports the database layer: `customer show` and `customer list` start without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from tollgate.clock import rfc3339

V = TypeVar("V", bound="RowView")


class RowView:
    """A view of one row: its fields are the row's attributes of the same names (or given to `of`)."""

    __slots__ = ()
    __match_args__: ClassVar[tuple[str, ...]]  # each subclass is a dataclass: its fields' names, in order

    @classmethod
    def of(cls: type[V], row: Any, **given: Any) -> V:
        if given:
            return cls(*[given[name] if name in given else getattr(row, name) for name in cls.__match_args__])
        return cls(*[getattr(row, name) for name in cls.__match_args__])

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for name in self.__match_args__:
            value = getattr(self, name)
            out[name] = rfc3339(value) if isinstance(value, datetime) else value
        return out


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
class ArchivedProduct(ProductView):
    """A product just archived, and the identifiers of the plans archived with it."""

    plans: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**ProductView.to_dict(self), "plans": list(self.plans)}


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
