"""What `Tollgate` returns for a plan, its versions and a change to its usage charges: frozen views
with `to_dict()`, the stable `--json` shapes (fields in order, times in RFC 3339).

A plan's prices, entitlements, usage charges and license policy are the catalog's own frozen values
(catalog.Price, grants.Grant, rating.UsageCharge, catalog.LicensePolicy), each with its `to_dict()`.
Its downloads and links are deliverable_views'. Built by plan_specs.py and plan_versions.py; nothing
here imports the database layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tollgate.clock import rfc3339
from tollgate.deliverable_views import DownloadView, LinkView

if TYPE_CHECKING:
    from tollgate.catalog import LicensePolicy, PlanSpec, Price
    from tollgate.grants import Grant
    from tollgate.rating import UsageCharge


@dataclass(frozen=True, slots=True)
class PlanView:
    """A plan as of one of its versions (`version`: the current one unless asked for another): what
    it sells (prices, trial, entitlements, usage charges, license policy) and what it delivers."""

    identifier: str
    version: int
    product: str
    name: str
    description: str | None
    status: str  # active | archived
    trial_days: int | None
    prices: tuple[Price, ...]
    entitlements: tuple[Grant, ...]  # by feature
    usage_charges: tuple[UsageCharge, ...]  # by feature, then currency
    license: LicensePolicy | None  # None: the plan issues no license keys
    downloads: tuple[DownloadView, ...]
    links: tuple[LinkView, ...]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None

    @classmethod
    def of(cls, plan: Any, spec: PlanSpec, version: int) -> PlanView:
        """From a plan row and the spec of its version number `version`."""
        ident = plan.identifier
        return cls(
            identifier=ident, version=version, product=spec.product, name=plan.name, description=plan.description,
            status=plan.status, trial_days=spec.trial_days, prices=spec.prices, entitlements=spec.grants,
            usage_charges=spec.charges, license=spec.license,
            downloads=tuple(DownloadView(d.public_id, ident, d.name, d.size, d.sha256, d.enabled)
                            for d in spec.downloads),
            links=tuple(LinkView(ln.public_id, ident, ln.name, ln.url) for ln in spec.links),
            created_at=plan.created_at, updated_at=plan.updated_at, archived_at=plan.archived_at,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "version": self.version,
            "product": self.product,
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "trial_days": self.trial_days,
            "prices": [price.to_dict() for price in self.prices],
            "entitlements": [grant.to_dict() for grant in self.entitlements],
            "usage_charges": [charge.to_dict() for charge in self.usage_charges],
            "license": None if self.license is None else self.license.to_dict(),
            "downloads": [download.to_dict() for download in self.downloads],
            "links": [link.to_dict() for link in self.links],
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "archived_at": rfc3339(self.archived_at),
        }


@dataclass(frozen=True, slots=True)
class PlanVersionView:
    """One version of a plan: what changed from the version before (names as in PlanView's JSON:
    prices, trial_days, entitlements, usage_charges, license), the subscriptions on it (any status)
    and those with a move to it scheduled (`plan migrate --at period-end`)."""

    plan: str
    version: int
    created_at: datetime
    changes: tuple[str, ...]  # empty for the first version
    subscribers: int
    scheduled: int
    current: bool

    def to_dict(self) -> dict[str, Any]:
        return {"plan": self.plan, "version": self.version, "created_at": rfc3339(self.created_at),
                "changes": list(self.changes), "subscribers": self.subscribers, "scheduled": self.scheduled,
                "current": self.current}


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """What `plan charge` did: the plan after the change, whether the charge was new or replaced one
    (same feature and currency), and the charge as stored. `to_dict()` is the plan's (`--json`)."""

    plan: PlanView
    action: str  # create | update
    charge: UsageCharge

    def to_dict(self) -> dict[str, Any]:
        return self.plan.to_dict()
