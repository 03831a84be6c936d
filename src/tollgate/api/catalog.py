"""The `Tollgate` methods of the catalog: products, features, plans, and the catalog file (mixed into
api.Tollgate). Plans come back as plan_views.PlanView (`to_dict()`: the `--json` shape)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tollgate.api.base import Base
from tollgate.lazy import lazy_module
if TYPE_CHECKING:  # the modules load sqlmodel, and `check` needs no views of the catalog: none loads at start
    from tollgate import catalog, plan_specs, plan_versions, plan_views, plans, views
    from tollgate.plan_views import ChargeResult, PlanVersionView, PlanView
    from tollgate.catalog_toml import ImportResult
    from tollgate.grants import Grant
    from tollgate.plan_migrate import Migration
    from tollgate.rating import UsageCharge
    from tollgate.views import ArchivedProduct, FeatureView, ProductView
else:
    catalog = lazy_module("tollgate.catalog")
    plans = lazy_module("tollgate.plans")
    plan_specs = lazy_module("tollgate.plan_specs")
    plan_versions = lazy_module("tollgate.plan_versions")
    plan_views = lazy_module("tollgate.plan_views")
    views = lazy_module("tollgate.views")


class CatalogMethods(Base):
    def create_product(self, name: str, *, identifier: str | None = None,
                       description: str | None = None) -> ProductView:
        with self.db.write() as session:
            return views.ProductView.of(catalog.create_product(session, name=name, identifier=identifier,
                                                         description=description))

    def create_feature(self, name: str, *, type: str, identifier: str | None = None, unit: str | None = None,
                       description: str | None = None) -> FeatureView:
        with self.db.write() as session:
            return views.FeatureView.of(catalog.create_feature(
                session, name=name, type=type, identifier=identifier, unit=unit, description=description
            ))

    def create_plan(
        self,
        identifier: str,
        *,
        product: str,
        name: str | None = None,
        description: str | None = None,
        prices: Iterable[tuple[str, str, Decimal | str]] = (),
        trial_days: int | None = None,
        grants: Iterable[Grant] = (),
        license: catalog.LicensePolicy | None = None,
        links: Iterable[catalog.Link] = (),
        feature_values: Sequence[str] = (),
        hard: Sequence[str] = (),
        resets: Sequence[str] = (),
        alerts: Sequence[str] = (),
    ) -> PlanView:
        """Create a plan; returns it (a plan_views.PlanView). `prices`: (interval, currency, amount)
        triples, like ("month", "USD", "29").

        `grants` are grants.Grant objects; or give command-line text: `feature_values` ("api-calls=10000",
        "sso=true"), `hard` (feature identifiers), `resets` ("api-calls=day"), `alerts` ("api-calls=75")."""
        with self.db.write() as session:
            plans.refuse_missing_pieces(session, product=product, features=feature_values,
                                        named=[*hard, *resets, *alerts])
            if feature_values or hard or resets or alerts:
                grants = list(grants) + plans.grants_from_options(
                    session, features=feature_values, hard=hard, resets=resets, alerts=alerts
                )
            plan = plans.create_plan(
                session, identifier=identifier, product=product, name=name, description=description,
                prices=prices, trial_days=trial_days, grants=grants, license=license, links=links,
            )
            return plan_specs.plan_view(session, plan)

    def set_usage_charge(self, plan: str, charge: UsageCharge | Mapping[str, Any]) -> ChargeResult:
        """Add or replace a plan's usage charge (a rating.UsageCharge, or its catalog shape as a dict);
        returns a plan_views.ChargeResult: the plan after it, and `action` "create" or "update"."""
        if isinstance(charge, Mapping):
            from tollgate.rating import charge_from_dict

            charge = charge_from_dict(dict(charge), path="usage charge")
        with self.db.write() as session:
            row, action = plans.set_usage_charge(session, plan=plan, charge=charge)
            return plan_views.ChargeResult(plan_specs.plan_view(session, row), action, charge)

    def archive_product(self, identifier: str) -> ArchivedProduct:
        """Archive a product and its active plans; returns the product, with `plans`: the identifiers
        of those archived with it."""
        with self.db.write() as session:
            product, plans = catalog.archive_product(session, identifier=identifier)
            return views.ArchivedProduct.of(product, plans=tuple(plans))

    def archive_feature(self, identifier: str) -> FeatureView:
        with self.db.write() as session:
            return views.FeatureView.of(catalog.archive_feature(session, identifier=identifier))

    def archive_plan(self, identifier: str) -> PlanView:
        with self.db.write() as session:
            return plan_specs.plan_view(session, plans.archive_plan(session, identifier=identifier))

    def products(self, *, status: str = "active") -> list[ProductView]:
        with self.db.read() as session:
            return [views.ProductView.of(row) for row in catalog.list_products(session, status=status)]

    def product(self, identifier: str) -> ProductView:
        with self.db.read() as session:
            return views.ProductView.of(catalog.get_product(session, identifier))

    def features(self, *, status: str = "active") -> list[FeatureView]:
        with self.db.read() as session:
            return [views.FeatureView.of(row) for row in catalog.list_features(session, status=status)]

    def feature(self, identifier: str) -> FeatureView:
        with self.db.read() as session:
            return views.FeatureView.of(catalog.get_feature(session, identifier))

    def plans(self, *, product: str | None = None, status: str = "active") -> list[PlanView]:
        """Plans (as of their current versions) in creation order, optionally of one product."""
        with self.db.read() as session:
            return plan_specs.plan_view_list(session, plans.list_plans(session, product=product, status=status))

    def plan(self, identifier: str, *, version: int | None = None) -> PlanView:
        """One plan: prices, entitlements, usage charges, license, downloads, links; those of its
        current version, or of version `version`."""
        with self.db.read() as session:
            row = catalog.get_plan(session, identifier)
            if version is None:
                return plan_specs.plan_view(session, row)
            found = plan_versions.get_version(session, row, version)
            return plan_specs.plan_view(session, row, version=(found.id, found.version))

    def versions(self, plan: str) -> list[PlanVersionView]:
        """The versions of a plan, oldest first (plan_views.PlanVersionView): version, created_at,
        changes (what differs from the version before: prices, trial_days, entitlements,
        usage_charges, license), subscribers, scheduled, current."""
        with self.db.read() as session:
            return plan_versions.versions(session, catalog.get_plan(session, plan))

    def migrate(self, plan: str, *, to: int, from_: int | None = None, customers: Sequence[str] = (),
                at: str = "now", dry_run: bool = False) -> Migration:
        """Move the plan's live subscriptions to version `to` (plan_migrate.py): of version `from_`
        only, of `customers` only; `at` "now" or "period-end"; `dry_run` writes nothing. Returns a
        plan_migrate.Migration: per subscription (`moves`) customer, versions, entitlement changes, and
        the current period's `current_amount` / `new_amount` in `currency` (exact strings, from the
        invoice code)."""
        from tollgate import plan_migrate

        with self.db.write(dry_run=dry_run) as session:
            return plan_migrate.migrate(session, plan=plan, to=to, from_=from_, customers=customers, at=at,
                                        dry_run=dry_run)

    def export_catalog(self, path: str | os.PathLike[str] | None = None, *, with_files: bool = False,
                       overwrite: bool = False) -> str:
        """The catalog as canonical TOML; with `path`, also written there atomically. `with_files` copies
        each download next to it (assets/<plan>/<name>) and writes `file` keys: every asset is decided
        first, and an existing file with other content is replaced only with `overwrite`."""
        from tollgate import catalog_assets, catalog_dump, catalog_toml, files

        if path is not None:
            from tollgate import outfiles

            outfiles.check_target(path, database=self.db.path, what="The file")
        elif with_files:
            from tollgate.errors import InvalidInput

            raise InvalidInput("--with-files writes the downloads next to the exported file; give a FILE.")
        with self.db.read() as session:
            current = catalog_toml.load_catalog(session)
        assets = None
        if with_files and path is not None:
            planned = catalog_assets.plan_assets(current, catalog_file=Path(path), data_dir=self.data_dir,
                                                 overwrite=overwrite)
            catalog_assets.write_assets(planned, data_dir=self.data_dir)
            assets = planned.files
        text = catalog_dump.dump(current, assets=assets)
        if path is not None:
            files.write_text_atomic(Path(path), text)
        return text

    def import_catalog(self, path: str | os.PathLike[str], *, dry_run: bool = False,
                       prune: bool = False) -> ImportResult:
        """Apply a catalog file in one transaction (validated whole first; `dry_run` writes nothing).
        Returns a catalog_toml.ImportResult with the action per object (`.to_dict()`: its JSON shape)."""
        from tollgate import catalog_toml

        document = catalog_toml.read_document(path)
        with self.db.write(dry_run=dry_run) as session:
            return catalog_toml.import_catalog(
                session, document, source=catalog_toml.display_name(path), base_dir=Path(path).resolve().parent,
                data_dir=self.data_dir, dry_run=dry_run, prune=prune,
            )
