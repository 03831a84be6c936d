"""A customer's profile as people and programs see it (`customer show`): the customer, views of its
subscriptions, its license keys and the downloads and links it is entitled to (those three are
deliverable_views), each with `to_dict()`, its stable JSON shape.

Everything here runs Core statements over `tables` and takes a Core Connection or a Session (both
execute them). Core rows have the attribute names of the model objects, so each view serves rows
read either way: the write modules (customers, subscriptions, licenses, downloads, links) take
theirs from here. Nothing here imports a model class, sqlmodel, pydantic or
sqlalchemy.orm: `customer show` starts without them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from tollgate import tables
from tollgate.clock import rfc3339, utcnow
from tollgate.deliverable_views import ActivationView, Deliverables, DownloadView, LicenseView, LinkView
from tollgate.entitlement_views import EffectiveEntitlement
from tollgate.entitlements import effective_entitlements, live_condition
from tollgate.statuses import ENDED_STATUSES, LIVE_STATUSES
from tollgate.unknown import no_customer
from tollgate.sub_versions import amount_of, moved, version_id_of
from tollgate.periods import Period, billing_period
from tollgate.views import CustomerView

if TYPE_CHECKING:  # loaded with the page only (customer_page)
    from tollgate.usage.report import UsageReport

C = tables.customer
F = tables.feature
P = tables.plan
PV = tables.plan_version
S = tables.subscription
SF = tables.subscription_feature
L = tables.license
LA = tables.license_activation


# -- the customer --------------------------------------------------------------------------------------


def customer_row(conn: Any, identifier: str) -> Any:
    """The customer's row; NotFound when no customer has this identifier."""
    row = conn.execute(select(C).where(C.c.identifier == identifier)).first()
    if row is None:
        raise no_customer(conn, identifier)
    return row


# -- subscriptions: status and periods at a moment ------------------------------------------------------


def effective_status(sub: Any, at: datetime) -> str:
    """The status at `at`: a trial ends by date; a scheduled cancellation takes effect by date."""
    if sub.status in ENDED_STATUSES:
        return sub.status
    if sub.cancel_at is not None and at >= sub.cancel_at:
        return "canceled"
    if sub.status == "trialing" and sub.trial_end is not None and at >= sub.trial_end:
        return "active"
    return sub.status


def current_period(sub: Any, at: datetime) -> Period:
    """The billing period at `at` (the first one before the start; the last one after it ended)."""
    moment = at
    if sub.cancel_at is not None and moment >= sub.cancel_at:
        moment = max(sub.start_at, sub.cancel_at - timedelta(microseconds=1))
    return billing_period(sub.start_at, sub.interval, moment)


# -- subscriptions: typed views ------------------------------------------------------------------------


@dataclass(frozen=True)
class Adjustment:
    """A subscription's own change to one of its plan's features."""

    feature: str
    type: str
    excluded: bool = False
    value: bool | int | Decimal | str | None = None  # boolean/config
    limit: Decimal | None = None  # metered allowance (None with unlimited False: the plan's)
    unlimited: bool = False

    def to_dict(self) -> dict[str, Any]:
        from tollgate.money import format_decimal

        value = self.value
        return {
            "feature": self.feature,
            "type": self.type,
            "excluded": self.excluded,
            "value": format_decimal(value) if isinstance(value, Decimal) else value,
            "limit": None if self.limit is None else format_decimal(self.limit),
            "unlimited": self.unlimited,
        }

    def describe(self) -> str:
        from tollgate.money import format_decimal
        from tollgate.texts import number_text

        if self.excluded:
            return "without"
        if self.type == "metered":
            if self.unlimited or self.limit is None:
                return "unlimited" if self.unlimited else "plan"
            return number_text(format_decimal(self.limit))
        if self.type == "boolean":
            return "on" if self.value else "off"
        return format_decimal(self.value) if isinstance(self.value, Decimal) else str(self.value)


@dataclass(frozen=True)
class SubscriptionView:
    """A subscription as people and programs see it, at a moment (`status` and the period are computed)."""

    id: str
    customer: str
    plan: str
    plan_version: int
    status: str
    stored_status: str
    interval: str | None
    currency: str | None
    amount: Decimal | None
    start: datetime
    trial_end: datetime | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at: datetime | None
    canceled_at: datetime | None
    created_at: datetime
    updated_at: datetime
    adjustments: tuple[Adjustment, ...] = ()
    next_version: int | None = None  # a move scheduled by `plan migrate --at period-end`, not yet applied
    next_version_at: datetime | None = None

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def cancel_at_period_end(self) -> bool:
        return self.cancel_at is not None and self.status in LIVE_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape of a subscription."""
        from tollgate.money import format_money

        return {
            "id": self.id,
            "customer": self.customer,
            "plan": self.plan,
            "status": self.status,
            "interval": self.interval,
            "currency": self.currency,
            "amount": None if self.amount is None or self.currency is None else format_money(self.amount, self.currency),
            "start": rfc3339(self.start),
            "trial_end": rfc3339(self.trial_end),
            "current_period_start": rfc3339(self.current_period_start),
            "current_period_end": rfc3339(self.current_period_end),
            "cancel_at": rfc3339(self.cancel_at),
            "cancel_at_period_end": self.cancel_at_period_end,
            "canceled_at": rfc3339(self.canceled_at),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "plan_version": self.plan_version,
            "next_version": self.next_version,
            "next_version_at": rfc3339(self.next_version_at),
            "adjustments": [a.to_dict() for a in self.adjustments],
        }


@dataclass(frozen=True)
class CustomerProfile:
    """A customer with its subscriptions and effective entitlements, read in one transaction."""

    customer: CustomerView
    subscriptions: tuple[SubscriptionView, ...]
    entitlements: tuple[EffectiveEntitlement, ...]


def _identifiers(conn: Any, table: Any, ids: set[int]) -> dict[int, str]:
    """id -> identifier of some rows of `table` (customers, plans)."""
    if not ids:
        return {}
    return dict(conn.execute(select(table.c.id, table.c.identifier).where(table.c.id.in_(sorted(ids)))).all())


def _version_numbers(conn: Any, ids: set[int]) -> dict[int, int]:
    """plan version id -> its number."""
    if not ids:
        return {}
    return dict(conn.execute(select(PV.c.id, PV.c.version).where(PV.c.id.in_(sorted(ids)))).all())


def views(conn: Any, subs: Sequence[Any], *, at: datetime | None = None) -> list[SubscriptionView]:
    """Views of subscriptions (in the given order), in three queries whatever their number."""
    from tollgate.grants import value_from_json
    from tollgate.money import from_micros, from_minor

    if not subs:
        return []
    at = at or utcnow()
    customers = _identifiers(conn, C, {s.customer_id for s in subs})
    plans = _identifiers(conn, P, {s.plan_id for s in subs})
    numbers = _version_numbers(conn, {v for s in subs for v in (s.plan_version_id, s.next_version_id) if v})
    adjustments: dict[int, list[Adjustment]] = {}
    rows = conn.execute(
        select(SF, F.c.identifier.label("feature"), F.c.type.label("ftype"))
        .join(F, F.c.id == SF.c.feature_id)
        .where(SF.c.subscription_id.in_([s.id for s in subs]))
        .order_by(F.c.identifier)
    ).all()
    for adj in rows:
        adjustments.setdefault(adj.subscription_id, []).append(
            Adjustment(
                feature=adj.feature,
                type=adj.ftype,
                excluded=bool(adj.excluded),
                value=value_from_json(adj.value),
                limit=None if adj.limit_micros is None else from_micros(adj.limit_micros),
                unlimited=bool(adj.unlimited),
            )
        )
    out = []
    for sub in subs:
        period = current_period(sub, at)
        minor = amount_of(sub, at)
        out.append(
            SubscriptionView(
                id=sub.public_id,
                customer=customers[sub.customer_id],
                plan=plans[sub.plan_id],
                plan_version=numbers[version_id_of(sub, at)],
                status=effective_status(sub, at),
                stored_status=sub.status,
                interval=sub.interval,
                currency=sub.currency,
                amount=None if minor is None or sub.currency is None else from_minor(minor, sub.currency),
                start=sub.start_at,
                trial_end=sub.trial_end,
                current_period_start=period.start,
                current_period_end=period.end,
                cancel_at=sub.cancel_at,
                canceled_at=sub.canceled_at,
                created_at=sub.created_at,
                updated_at=sub.updated_at,
                adjustments=tuple(adjustments.get(sub.id, ())),
                next_version=None if moved(sub, at) else numbers.get(sub.next_version_id),
                next_version_at=None if moved(sub, at) else sub.next_version_at,
            )
        )
    return out


# -- downloads and links ----------------------------------------------------------------------------------


def entitled_plan_ids(conn: Any, *, customer: Any, at: datetime) -> list[int]:
    """The plans the customer has a live subscription on at `at` (none for an archived customer)."""
    if customer.status != "active":
        return []
    rows = conn.execute(select(S.c.plan_id).where(S.c.customer_id == customer.id, live_condition(at)).distinct()).all()
    return sorted(row[0] for row in rows)


def entitled_rows(
    conn: Any, table: Any, *, plan: Any = None, customer: Any = None, at: datetime | None = None
) -> list[Any]:
    """A plan's deliverables of one kind (the rows of tables.plan_download or tables.plan_link), or
    those a customer is entitled to, plans in creation order, each plan's in their own order."""
    stmt = select(table)
    if plan is not None:
        stmt = stmt.where(table.c.plan_id == plan.id)
    if customer is not None:
        plan_ids = entitled_plan_ids(conn, customer=customer, at=at or utcnow())
        if not plan_ids:
            return []
        stmt = stmt.where(table.c.plan_id.in_(plan_ids))
    return list(conn.execute(stmt.order_by(table.c.plan_id, table.c.position, table.c.id)).all())


def plan_identifiers(conn: Any, rows: Sequence[Any]) -> dict[int, str]:
    """plan id -> identifier for the plans of some deliverable rows."""
    return _identifiers(conn, P, {row.plan_id for row in rows})


def download_views(conn: Any, rows: Sequence[Any]) -> list[DownloadView]:
    """Views of download rows (tables.plan_download or the model's), in the given order."""
    plans = plan_identifiers(conn, rows)
    return [DownloadView(row.public_id, plans[row.plan_id], row.name, row.size, row.sha256, row.enabled)
            for row in rows]


def link_views(conn: Any, rows: Sequence[Any]) -> list[LinkView]:
    """Views of link rows (tables.plan_link or the model's), in the given order."""
    plans = plan_identifiers(conn, rows)
    return [LinkView(row.public_id, plans[row.plan_id], row.name, row.url) for row in rows]


# -- license keys ---------------------------------------------------------------------------------------


def status_at(license: Any, at: datetime) -> str:
    """active | revoked | expired, at a moment."""
    if license.status == "revoked" or (license.revoked_at is not None and license.revoked_at <= at):
        return "revoked"
    if license.expires_at is not None and license.expires_at <= at:
        return "expired"
    return "active"


def active_activations(conn: Any, license_ids: Sequence[int]) -> dict[int, list[Any]]:
    """license id -> its current activations (rows of tables.license_activation), oldest first."""
    found: dict[int, list[Any]] = defaultdict(list)
    ids = list(license_ids)
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            select(LA)
            .where(LA.c.license_id.in_(ids[start : start + 500]), LA.c.deactivated_at.is_(None))
            .order_by(LA.c.activated_at, LA.c.id)
        ).all()
        for row in rows:
            found[row.license_id].append(row)
    return found


def license_views(conn: Any, licenses: Sequence[Any], *, at: datetime | None = None) -> list[LicenseView]:
    """Views of licenses (rows or model objects) at `at` (default now), in the given order: a handful
    of queries for any number of them."""
    if not licenses:
        return []
    at = at or utcnow()
    customers = _identifiers(conn, C, {lic.customer_id for lic in licenses})
    plans = _identifiers(conn, P, {lic.plan_id for lic in licenses})
    sub_ids = {lic.subscription_id for lic in licenses if lic.subscription_id is not None}
    subs = dict(conn.execute(select(S.c.id, S.c.public_id).where(S.c.id.in_(sorted(sub_ids)))).all()) if sub_ids else {}
    activations = active_activations(conn, [lic.id for lic in licenses])
    return [
        LicenseView(
            key=lic.key,
            customer=customers[lic.customer_id],
            plan=plans[lic.plan_id],
            subscription=subs.get(lic.subscription_id),
            status=status_at(lic, at),
            activation_limit=lic.activation_limit,
            activations=tuple(ActivationView.of(a) for a in activations.get(lic.id, [])),
            expires_at=lic.expires_at,
            created_at=lic.created_at,
            revoked_at=lic.revoked_at,
            replaced_by=lic.replaced_by,
        )
        for lic in licenses
    ]


# -- the whole profile ------------------------------------------------------------------------------------


def customer_profile(conn: Any, identifier: str, *, at: datetime | None = None) -> CustomerProfile:
    """The customer, its subscriptions (creation order) and its effective entitlements at `at`."""
    at = at or utcnow()
    who = customer_row(conn, identifier)
    subs = conn.execute(select(S).where(S.c.customer_id == who.id).order_by(S.c.id)).all()
    return CustomerProfile(
        customer=CustomerView.of(who),
        subscriptions=tuple(views(conn, subs, at=at)),
        entitlements=tuple(effective_entitlements(conn, customer=identifier, at=at)),
    )


def deliverables(conn: Any, identifier: str, *, at: datetime | None = None) -> Deliverables:
    """Every license key of the customer (any status, oldest first), and the downloads and links of
    the plans the customer is entitled to at `at`."""
    at = at or utcnow()
    who = customer_row(conn, identifier)
    keys = conn.execute(select(L).where(L.c.customer_id == who.id).order_by(L.c.created_at, L.c.id)).all()
    return Deliverables(
        licenses=tuple(license_views(conn, keys, at=at)),
        downloads=tuple(download_views(conn, entitled_rows(conn, tables.plan_download, customer=who, at=at))),
        links=tuple(link_views(conn, entitled_rows(conn, tables.plan_link, customer=who, at=at))),
    )


@dataclass(frozen=True)
class CustomerPage:
    """Everything `customer show` prints, from one snapshot: the profile, the usage of the last 30
    days (as `usage show` gives it) and the deliverables."""

    profile: CustomerProfile
    usage: UsageReport
    deliverables: Deliverables

    def to_dict(self) -> dict[str, Any]:
        """The `customer show --json` shape: the customer's fields, its subscriptions, entitlements,
        usage, and license keys, downloads and links."""
        return {**self.profile.customer.to_dict(),
                "subscriptions": [s.to_dict() for s in self.profile.subscriptions],
                "entitlements": [e.to_dict() for e in self.profile.entitlements],
                "usage": self.usage.to_dict(), **self.deliverables.to_dict()}


def customer_page(conn: Any, identifier: str, *, at: datetime | None = None) -> CustomerPage:
    """The whole page of a customer, read on one connection (so in one transaction: one snapshot; a
    report committed meanwhile is in all of its parts or in none)."""
    from tollgate.usage.report import usage_report

    at = at or utcnow()
    return CustomerPage(customer_profile(conn, identifier, at=at), usage_report(conn, customer=identifier, now=at),
                        deliverables(conn, identifier, at=at))
