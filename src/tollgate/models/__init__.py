"""The schema: one SQLModel table class per entity.

Conventions that hold across every table:
- `id` is an internal integer key; people and scripts use `identifier` (catalog objects, customers)
  or a prefixed random public id (`sub_...`, `dl_...`), which never changes and is never reused.
- Times are naive datetimes in UTC (the database has no time zones; SQLite and PostgreSQL agree).
- Money is integer minor units plus an ISO 4217 code; rates that need sub-minor precision are exact
  decimal strings. Quantities and allowances are integer millionths (`*_micros`), so SUM() is exact.
- Nothing is ever deleted that a customer's history points at: objects are archived instead.

Every datetime column names its type (coltypes.UtcDateTime, a naive DateTime): SQLModel versions differ in their default.
Bump `SCHEMA_VERSION` (in schema.py) and add a migration with every change to a table.

The tables live in small modules (core, catalog, billing, usage, licensing) loaded on first use:
defining SQLModel classes is slow enough to matter at start-up, and a command pays only for the
tables it touches. `from tollgate.models import Customer` works as usual; `load_all()` loads every
table (for creating or inspecting the whole schema).
"""

from __future__ import annotations

from importlib import import_module

_MODULE_OF = {
    "Meta": "core",
    "Journal": "core",
    "Customer": "core",
    "Product": "catalog",
    "Feature": "catalog",
    "Plan": "catalog",
    "PlanVersion": "catalog",
    "PlanPrice": "catalog",
    "PlanEntitlement": "catalog",
    "PlanUsageCharge": "catalog",
    "PlanLicensePolicy": "catalog",
    "PlanDownload": "catalog",
    "PlanLink": "catalog",
    "Subscription": "billing",
    "SubscriptionFeature": "billing",
    "Override": "billing",
    "UsageEvent": "usage",
    "UsageRollup": "usage",
    "License": "licensing",
    "LicenseActivation": "licensing",
    "SigningKey": "licensing",
    "LicenseFile": "licensing",
}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'tollgate.models' has no attribute {name!r}")
    return getattr(import_module(f"tollgate.models.{module}"), name)


def load_all() -> None:
    """Import every table module, so SQLModel.metadata holds the whole schema."""
    for module in sorted(set(_MODULE_OF.values())):
        import_module(f"tollgate.models.{module}")
