"""What `Tollgate` returns for what customers receive: license keys and their activations, downloads,
links, a customer's deliverables, and the keys that sign license files. Frozen values with `to_dict()`,
the one definition of each stable JSON shape (`--json`: the fields in order, times in RFC 3339).

Built by profile.py (keys, downloads, links: also for `customer show`), api/deliverables.py and
api/license_files.py; a plan's downloads and links (plan_views.PlanView) are these too. Nothing here
imports the database layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tollgate.clock import rfc3339
from tollgate.views import RowView

# -- license keys ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActivationView(RowView):
    """A current activation of a key, as its license lists it."""

    instance_id: str
    name: str
    activated_at: datetime


@dataclass(frozen=True, slots=True)
class InstanceView(RowView):
    """One activation of a named key (`license deactivate`); `deactivated_at` None: still active."""

    instance_id: str
    name: str
    activated_at: datetime
    key: str
    deactivated_at: datetime | None


@dataclass(frozen=True, slots=True)
class ActivatedView(InstanceView):
    """What an activation returns (`license activate`, a bound license file): `created` False when the
    name was already active on the key (its existing activation)."""

    created: bool


@dataclass(frozen=True, slots=True)
class LicenseView:
    """A license key at a moment: `status` is active, revoked or expired then (profile.status_at);
    `activation_limit` None: unlimited; `activations`: the current ones, oldest first; `expires_at`
    None: never; `revoked_at` in the future: a scheduled revoke (a cancel at period end);
    `replaced_by`: the key that replaced a regenerated one."""

    key: str
    customer: str
    plan: str
    subscription: str | None
    status: str
    activation_limit: int | None
    activations: tuple[ActivationView, ...]
    expires_at: datetime | None
    created_at: datetime
    revoked_at: datetime | None
    replaced_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "customer": self.customer,
            "plan": self.plan,
            "subscription": self.subscription,
            "status": self.status,
            "activation_limit": "unlimited" if self.activation_limit is None else self.activation_limit,
            "activations": [a.to_dict() for a in self.activations],
            "expires_at": rfc3339(self.expires_at),
            "created_at": rfc3339(self.created_at),
            "revoked_at": rfc3339(self.revoked_at),
            "replaced_by": self.replaced_by,
        }


# -- downloads and links --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DownloadView(RowView):
    """A file a plan delivers: `id` (dl_...), the plan's identifier, its name, size in bytes and sha256."""

    id: str | None  # always set once stored (optional as in catalog.Download)
    plan: str
    name: str
    size: int
    sha256: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class DeliveredView:
    """A download copied for a customer (`download get`): where it was written."""

    download: DownloadView
    customer: str
    path: Path

    def to_dict(self) -> dict[str, Any]:
        return {**self.download.to_dict(), "customer": self.customer, "path": str(self.path)}


@dataclass(frozen=True, slots=True)
class LinkView(RowView):
    """A named web address a plan shows its customers: `id` (ln_...), the plan's identifier, name, url."""

    id: str | None  # always set once stored (optional as in catalog.Link)
    plan: str
    name: str
    url: str


@dataclass(frozen=True, slots=True)
class Deliverables:
    """What a customer has received: every license key (any status), and the downloads and links of
    the plans they are entitled to."""

    licenses: tuple[LicenseView, ...]
    downloads: tuple[DownloadView, ...]
    links: tuple[LinkView, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"licenses": [v.to_dict() for v in self.licenses], "downloads": [v.to_dict() for v in self.downloads],
                "links": [v.to_dict() for v in self.links]}


# -- the keys that sign license files -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SigningKeyView(RowView):
    """A signing key's public half: `kid`, the host that made it, `current` (the one this machine signs
    with), `public_key` (PEM); `retired_at` None: still accepted."""

    kid: str
    host: str
    created_at: datetime
    retired_at: datetime | None
    current: bool
    public_key: str
