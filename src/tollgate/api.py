"""The Python API: `Tollgate`, one method per operation, each in one transaction.

The CLI is a thin shell over this class; applications use it directly. It never prints and never
exits: failures are TollgateError subclasses carrying the CLI's exit code.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tollgate.api_license_files import LicenseFileMethods
from tollgate.db import Database
from tollgate.lazy import lazy_module
from tollgate.rowfiles import Row

if TYPE_CHECKING:  # the model classes load sqlmodel: the read path (check, show) never needs them
    from tollgate.models import Customer

# Domain modules load on first use (each defines its own tables): see lazy.py.
catalog = lazy_module("tollgate.catalog")
plans = lazy_module("tollgate.plans")
plan_specs = lazy_module("tollgate.plan_specs")
plan_versions = lazy_module("tollgate.plan_versions")
customers = lazy_module("tollgate.customers")
journal = lazy_module("tollgate.journal")
downloads = lazy_module("tollgate.downloads")
licenses = lazy_module("tollgate.licenses")
links = lazy_module("tollgate.links")
invoices = lazy_module("tollgate.invoices")


class Tollgate(LicenseFileMethods):
    """A handle on one tollgate database (SQLite path or server URL; default: see `db.resolve_location`)."""

    def __init__(self, db: str | os.PathLike | None = None) -> None:
        self.db = Database(db)

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Tollgate:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- customers ---------------------------------------------------------------------------

    def add_customer(self, name: str, *, identifier: str | None = None, email: str | None = None) -> Customer:
        with self.db.write() as session:
            return customers.add_customer(session, name=name, identifier=identifier, email=email)

    def edit_customer(self, identifier: str, *, name: str | None = None, email: str | None = None) -> Customer:
        """Change name and/or email; None leaves a field as it is, an empty email removes it."""
        with self.db.write() as session:
            return customers.edit_customer(
                session, identifier=identifier, name=name, email=customers.UNCHANGED if email is None else email
            )

    def archive_customer(self, identifier: str) -> Customer:
        with self.db.write() as session:
            return customers.archive_customer(session, identifier=identifier)

    def unarchive_customer(self, identifier: str) -> Customer:
        with self.db.write() as session:
            return customers.unarchive_customer(session, identifier=identifier)

    def customer(self, identifier: str) -> Customer:
        with self.db.read() as session:
            return customers.get_customer(session, identifier)

    def customers(self, *, search: str | None = None, status: str = "active", limit: int | None = None) -> list[Customer]:
        with self.db.read() as session:
            return customers.list_customers(session, search=search, status=status, limit=limit)

    def count_customers(self, *, search: str | None = None, status: str = "active") -> int:
        with self.db.read() as session:
            return customers.count_customers(session, search=search, status=status)

    def import_customers(self, rows: list[Row] | Any, *, dry_run: bool = False) -> customers.ImportResult:
        """All rows or none: every row is validated before anything is written."""
        with self.db.write(dry_run=dry_run) as session:
            return customers.import_customers(session, rows, dry_run=dry_run)

    # -- catalog -------------------------------------------------------------------------------

    def create_product(
        self, name: str, *, identifier: str | None = None, description: str | None = None
    ) -> catalog.Product:
        with self.db.write() as session:
            return catalog.create_product(session, name=name, identifier=identifier, description=description)

    def create_feature(
        self,
        name: str,
        *,
        type: str,
        identifier: str | None = None,
        unit: str | None = None,
        description: str | None = None,
    ) -> catalog.Feature:
        with self.db.write() as session:
            return catalog.create_feature(
                session, name=name, type=type, identifier=identifier, unit=unit, description=description
            )

    def create_plan(
        self,
        identifier: str,
        *,
        product: str,
        name: str | None = None,
        description: str | None = None,
        prices: Any = (),
        trial_days: int | None = None,
        grants: Any = (),
        license: catalog.LicensePolicy | None = None,
        links: Any = (),
        feature_values: Any = (),
        hard: Any = (),
        resets: Any = (),
        alerts: Any = (),
    ) -> dict[str, Any]:
        """Create a plan; returns its JSON shape (see `plan_specs.plan_dict`).

        `grants` are grants.Grant objects; or give command-line text: `feature_values` ("api-calls=10000",
        "sso=true"), `hard` (feature identifiers), `resets` ("api-calls=day"), `alerts` ("api-calls=75")."""
        with self.db.write() as session:
            plans.refuse_missing_pieces(session, product=product, features=feature_values)
            if feature_values or hard or resets or alerts:
                grants = list(grants) + plans.grants_from_options(
                    session, features=feature_values, hard=hard, resets=resets, alerts=alerts
                )
            plan = plans.create_plan(
                session, identifier=identifier, product=product, name=name, description=description,
                prices=prices, trial_days=trial_days, grants=grants, license=license, links=links,
            )
            return plan_specs.plan_dict(session, plan)

    def set_usage_charge(self, plan: str, charge: Any) -> tuple[dict[str, Any], str]:
        """Add or replace a plan's usage charge (a rating.UsageCharge, or its catalog shape as a dict);
        returns (plan JSON, "create" or "update")."""
        if isinstance(charge, dict):
            from tollgate.rating import charge_from_dict

            charge = charge_from_dict(charge, path="usage charge")
        with self.db.write() as session:
            row, action = plans.set_usage_charge(session, plan=plan, charge=charge)
            return plan_specs.plan_dict(session, row), action

    def archive_product(self, identifier: str) -> tuple[catalog.Product, list[str]]:
        """Archive a product and its active plans; returns the product and the plans archived with it."""
        with self.db.write() as session:
            return catalog.archive_product(session, identifier=identifier)

    def archive_feature(self, identifier: str) -> catalog.Feature:
        with self.db.write() as session:
            return catalog.archive_feature(session, identifier=identifier)

    def archive_plan(self, identifier: str) -> dict[str, Any]:
        with self.db.write() as session:
            return plan_specs.plan_dict(session, plans.archive_plan(session, identifier=identifier))

    def products(self, *, status: str = "active") -> list[catalog.Product]:
        with self.db.read() as session:
            return catalog.list_products(session, status=status)

    def product(self, identifier: str) -> catalog.Product:
        with self.db.read() as session:
            return catalog.get_product(session, identifier)

    def features(self, *, status: str = "active") -> list[catalog.Feature]:
        with self.db.read() as session:
            return catalog.list_features(session, status=status)

    def feature(self, identifier: str) -> catalog.Feature:
        with self.db.read() as session:
            return catalog.get_feature(session, identifier)

    def plans(self, *, product: str | None = None, status: str = "active") -> list[dict[str, Any]]:
        """Plans (JSON shapes) in creation order, optionally of one product."""
        with self.db.read() as session:
            return plan_specs.plan_dicts(session, plans.list_plans(session, product=product, status=status))

    def plan(self, identifier: str, *, version: int | None = None) -> dict[str, Any]:
        """One plan's JSON shape: prices, entitlements, usage charges, license, downloads, links; those
        of its current version, or of version `version`."""
        with self.db.read() as session:
            row = catalog.get_plan(session, identifier)
            if version is None:
                return plan_specs.plan_dict(session, row)
            found = plan_versions.get_version(session, row, version)
            return plan_specs.plan_dict(session, row, version=(found.id, found.version))

    def versions(self, plan: str) -> list[dict[str, Any]]:
        """The versions of a plan, oldest first: version, created_at, changes (what differs from the
        version before: prices, trial_days, entitlements, usage_charges, license), subscribers, current."""
        with self.db.read() as session:
            return plan_versions.versions(session, catalog.get_plan(session, plan))

    def migrate(self, plan: str, *, to: int, from_: int | None = None, customers: Sequence[str] = (),
                at: str = "now", dry_run: bool = False) -> dict[str, Any]:
        """Move the plan's live subscriptions to version `to` (plan_migrate.py): of version `from_`
        only, of `customers` only; `at` "now" or "period-end"; `dry_run` writes nothing. Returns the
        result's JSON shape: per subscription customer, versions, entitlement changes, and the current
        period's `current_amount` / `new_amount` in `currency` (exact strings, from the invoice code)."""
        from tollgate import plan_migrate

        with self.db.write(dry_run=dry_run) as session:
            return plan_migrate.migrate(session, plan=plan, to=to, from_=from_, customers=customers, at=at,
                                        dry_run=dry_run).to_dict()

    def check_migration(self, plan: str, *, to: int, from_: int | None = None, customers: Sequence[str] = (),
                        at: str = "now") -> None:
        """NotFound (or InvalidInput) when a migration names an unknown plan, version or customer."""
        from tollgate import plan_migrate

        with self.db.read() as session:
            plan_migrate.resolve(session, plan=plan, to=to, from_=from_, customers=customers, at=at)

    @property
    def data_dir(self) -> Path:
        """Where files (downloads) are stored: the folder of the SQLite file, or the user data folder."""
        from tollgate.blobs import data_dir_for

        return data_dir_for(self.db.location)

    def export_catalog(self, path: str | os.PathLike | None = None, *, with_files: bool = False,
                       overwrite: bool = False) -> str:
        """The catalog as canonical TOML; with `path`, also written there atomically. `with_files` copies
        each download next to it (assets/<plan>/<name>) and writes `file` keys: every asset is decided
        first, and an existing file with other content is replaced only with `overwrite`."""
        from tollgate import catalog_assets, catalog_dump, catalog_toml, files

        if with_files and path is None:
            from tollgate.errors import InvalidInput

            raise InvalidInput("--with-files writes the downloads next to the exported file; give a FILE.")
        if path is not None:
            from tollgate import outfiles

            outfiles.check_target(path, database=self.db.path, what="The file")
        with self.db.read() as session:
            current = catalog_toml.load_catalog(session)
        assets = None
        if with_files:
            planned = catalog_assets.plan_assets(current, catalog_file=Path(path), data_dir=self.data_dir,
                                                 overwrite=overwrite)
            catalog_assets.write_assets(planned, data_dir=self.data_dir)
            assets = planned.files
        text = catalog_dump.dump(current, assets=assets)
        if path is not None:
            files.write_text_atomic(Path(path), text)
        return text

    def import_catalog(
        self, path: str | os.PathLike, *, dry_run: bool = False, prune: bool = False
    ) -> Any:
        """Apply a catalog file in one transaction (validated whole first; `dry_run` writes nothing).
        Returns a catalog_toml.ImportResult with the action per object."""
        from tollgate import catalog_toml

        document = catalog_toml.read_document(path)
        with self.db.write(dry_run=dry_run) as session:
            return catalog_toml.import_catalog(
                session, document, source=catalog_toml.display_name(path), base_dir=Path(path).resolve().parent,
                data_dir=self.data_dir, dry_run=dry_run, prune=prune,
            )

    # -- subscriptions and access -------------------------------------------------------------
    # Times may be datetimes (aware ones are converted to UTC; naive ones are UTC) or RFC 3339 text.

    consume_patience: float = 30.0
    """Seconds `consume` (and the other one-event writes) keep trying to take the write lock while
    other writers hold it. TOLLGATE_BUSY_TIMEOUT_MS, when set, caps it: the operator's limit."""

    def _lock_patience(self) -> float:
        from tollgate.engines import explicit_busy_timeout_ms

        explicit = explicit_busy_timeout_ms()
        return self.consume_patience if explicit is None else min(self.consume_patience, explicit / 1000)

    def add_subscription(
        self,
        customer: str,
        plan: str,
        *,
        interval: str | None = None,
        currency: str | None = None,
        start: datetime | str | None = None,
        trial_days: int | None = None,
        trial_end: datetime | str | None = None,
        features: Any = (),
        without: Any = (),
        another: bool = False,
    ) -> Any:
        """Subscribe a customer to a plan; returns a subscriptions.SubscriptionView.

        `features`: {"api-calls": "20000"} or ["api-calls=20000"]; `without`: features left out.
        A second live subscription of the customer to the plan is refused unless `another`."""
        from tollgate import subscriptions

        with self.db.write() as session:
            sub = subscriptions.add_subscription(
                session, customer=customer, plan=plan, interval=interval, currency=currency,
                start=_moment(start, "start"), trial_days=trial_days, trial_end=_moment(trial_end, "trial end"),
                features=_assignments(features), without=list(without), another=another,
            )
            return subscriptions.view(session, sub)

    def edit_subscription(
        self,
        subscription: str,
        *,
        status: str | None = None,
        trial_end: datetime | str | None = None,
        plan: str | None = None,
        interval: str | None = None,
        currency: str | None = None,
        features: Any = (),
        without: Any = (),
        restore: Any = (),
    ) -> Any:
        """Change status, trial end, plan (and price) or feature adjustments; returns the SubscriptionView."""
        from tollgate import subscriptions

        with self.db.write() as session:
            sub = subscriptions.edit_subscription(
                session, subscription=subscription, status=status, trial_end=_moment(trial_end, "trial end"),
                plan=plan, interval=interval, currency=currency, features=_assignments(features),
                without=list(without), restore=list(restore),
            )
            return subscriptions.view(session, sub)

    def cancel_subscription(self, subscription: str, *, at_period_end: bool = False) -> Any:
        """Cancel now, or at the end of the current billing period; returns the SubscriptionView."""
        from tollgate import subscriptions

        with self.db.write() as session:
            sub = subscriptions.cancel_subscription(session, subscription=subscription, at_period_end=at_period_end)
            return subscriptions.view(session, sub)

    def resume_subscription(self, subscription: str) -> Any:
        """Take back a cancellation scheduled at the period end; returns the SubscriptionView."""
        from tollgate import subscriptions
        from tollgate.subscription_undo import resume_subscription

        with self.db.write() as session:
            return subscriptions.view(session, resume_subscription(session, subscription=subscription))

    def subscriptions(
        self, *, customer: str | None = None, status: str | None = None, at: datetime | str | None = None
    ) -> list[Any]:
        """SubscriptionViews in creation order; `status` filters on the status at `at` (default now)."""
        from tollgate import subscriptions

        moment = _moment(at, "time")
        with self.db.read() as session:
            found = subscriptions.list_subscriptions(session, customer=customer, status=status, at=moment)
            return subscriptions.views(session, found, at=moment)

    def subscription(self, subscription: str, *, at: datetime | str | None = None) -> Any:
        from tollgate import subscriptions

        with self.db.read() as session:
            return subscriptions.view(session, subscriptions.get_subscription(session, subscription),
                                      at=_moment(at, "time"))

    def set_override(
        self,
        customer: str,
        feature: str,
        value: Any,
        *,
        hard: bool | None = None,
        expires: datetime | str | None = None,
        note: str | None = None,
    ) -> Any:
        """Give a customer its own value/allowance for a feature; returns an overrides.OverrideView.

        `value`: True/False, a number or text, or a number / "unlimited" for metered features."""
        from tollgate import overrides

        with self.db.write() as session:
            return overrides.set_override(session, customer=customer, feature=feature, value=_value_text(value),
                                          hard=hard, expires=_moment(expires, "date"), note=note)

    def unset_override(self, customer: str, feature: str) -> Any:
        from tollgate import overrides

        with self.db.write() as session:
            return overrides.unset_override(session, customer=customer, feature=feature)

    def overrides(self, customer: str | None = None, *, at: datetime | str | None = None) -> list[Any]:
        from tollgate import overrides

        with self.db.read() as session:
            return overrides.list_overrides(session, customer=customer, at=_moment(at, "time"))

    def entitlements(self, customer: str, at: datetime | str | None = None) -> list[Any]:
        """Every effective entitlement (entitlement_views.EffectiveEntitlement) of the customer at `at`."""
        from tollgate import entitlements

        with self.db.connect() as conn:
            return entitlements.effective_entitlements(conn, customer=customer, at=_moment(at, "time"))

    def entitlement(self, customer: str, feature: str, at: datetime | str | None = None) -> Any:
        """One effective entitlement, or None when nothing grants the feature."""
        from tollgate import entitlements

        with self.db.connect() as conn:
            return entitlements.effective_entitlement(conn, customer=customer, feature=self._feature_ref(
                conn, feature), at=_moment(at, "time"))

    def check(self, customer: str, feature: str, quantity: Any = 1, at: datetime | str | None = None) -> Any:
        """May the customer use `quantity` of the feature now (or at `at`)? An entitlement_views.CheckResult
        (truthy when allowed; `.to_dict()` is the `check --json` shape). Records nothing.

        Unknown customer or feature: NotFound. Feature lookups are cached per Tollgate instance (a
        feature's id, identifier and type never change)."""
        from tollgate import entitlements

        moment = _moment(at, "time")
        with self.db.connect() as conn:
            return entitlements.check(conn, customer=customer, feature=self._feature_ref(conn, feature),
                                      quantity=quantity, at=moment)

    def consume(self, customer: str, feature: str, quantity: Any = 1, key: str | None = None) -> Any:
        """Check and record `quantity` units now, atomically (one BEGIN IMMEDIATE transaction): any number
        of concurrent callers can never push usage past a hard limit.

        Returns the CheckResult. Past a hard limit it is the DENIED result (allowed False, nothing
        recorded): consume does not raise for a denial. `key` makes retries safe: a key already
        recorded for the same event is not counted twice. Unknown customer or feature: NotFound.

        Waiting for the write lock: up to `consume_patience` seconds (30) in all, then StorageError."""
        import random
        import time

        from tollgate import entitlements
        from tollgate.errors import StorageError

        deadline = time.monotonic() + self._lock_patience()
        while True:
            try:
                with self.db.write() as session:
                    return entitlements.consume(session, customer=customer, quantity=quantity, key=key,
                                                feature=self._feature_ref(session, feature))
            except StorageError as exc:
                # SQLite's busy handler backs off to 100 ms sleeps and is not fair: under heavy contention
                # one caller can wait out the whole busy timeout. The transaction did nothing (it failed
                # taking the write lock, or rolled back), so a fresh attempt is safe.
                if not _is_lock_error(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(random.uniform(0, 0.002))

    def customer_profile(self, identifier: str, *, at: datetime | str | None = None) -> Any:
        """A profile.CustomerProfile: the customer (its row), its subscriptions and effective
        entitlements, read in one transaction (Core: no ORM session)."""
        from tollgate import profile

        with self.db.connect() as conn:
            return profile.customer_profile(conn, identifier, at=_moment(at, "time"))

    def _feature_ref(self, session: Any, feature: str) -> Any:
        cache = self.__dict__.setdefault("_features", {})
        ref = cache.get(feature)
        if ref is None:
            from tollgate.entitlements import lookup_feature

            ref = cache[feature] = lookup_feature(session, feature)
        return ref

    # -- deliverables: license keys, downloads, links -------------------------------------------
    # Keys may be given in any spelling (case, spaces, dashes, O/I/L for 0/1); they come back canonical.
    # `at` (a datetime, UTC when naive) is the moment a status or an entitlement is judged at (default now).

    def licenses(self, *, customer: str | None = None, at: datetime | None = None) -> list[dict[str, Any]]:
        """License keys (JSON shapes, see `licenses.license_dicts`), oldest first; of one customer or all."""
        with self.db.read() as session:
            customer_id = customers.get_customer(session, customer).id if customer else None
            return licenses.license_dicts(session, licenses.list_licenses(session, customer_id=customer_id),
                                          at=_moment(at, "time"))

    def license(self, key: str, *, at: datetime | None = None) -> dict[str, Any]:
        """One license's JSON shape. Malformed key: InvalidInput; unknown: NotFound."""
        with self.db.read() as session:
            return licenses.license_dict(session, licenses.get_license(session, key), at=_moment(at, "time"))

    def validate_license(self, key: str, *, instance: str | None = None, at: datetime | None = None) -> Any:
        """Is the key valid (and, with `instance`, activated there)? A licenses.Validation: `.valid`,
        `.reason` (None, unknown, malformed, revoked, expired, instance_not_activated), `.message`,
        `.as_dict()`. Never raises for a bad key: the answer says why it is not valid."""
        with self.db.read() as session:
            return licenses.validate_license(session, key=key, instance=instance, at=_moment(at, "time"))

    def activate_license(self, key: str, name: str) -> dict[str, Any]:
        """Activate the key on an instance named `name`; returns the activation (`instance_id`, `name`,
        `activated_at`, `key`, `created`). The same name again returns the same activation. Refused
        (licenses.LicenseRefused, exit 1, `.reason`): revoked, expired, limit_reached."""
        with self.db.write() as session:
            activation, created = licenses.activate(session, key=key, name=name)
            return {**licenses.activation_dict(activation, key=licenses.parse_key(key)), "created": created}

    def deactivate_license(self, key: str, instance: str) -> dict[str, Any]:
        """Deactivate an instance (by its instance id): its seat is free again."""
        with self.db.write() as session:
            activation = licenses.deactivate(session, key=key, instance=instance)
            return licenses.activation_dict(activation, key=licenses.parse_key(key))

    def regenerate_license(self, key: str) -> dict[str, Any]:
        """A new key in place of `key` (which is revoked with its activations); returns the new license."""
        with self.db.write() as session:
            return licenses.license_dict(session, licenses.regenerate(session, key=key))

    def revoke_license(self, key: str) -> dict[str, Any]:
        with self.db.write() as session:
            return licenses.license_dict(session, licenses.revoke(session, key=key))

    def edit_license(
        self, key: str, *, activation_limit: int | str | None = None, expires: datetime | str | None = None
    ) -> dict[str, Any]:
        """Change one key after purchase: `activation_limit` (a number or "unlimited") and/or `expires`
        (a datetime, a date like "2027-01-31", or "never"). None leaves a field as it is."""
        with self.db.write() as session:
            license = licenses.edit(
                session, key=key,
                activation_limit=licenses.UNCHANGED if activation_limit is None else activation_limit,
                expires_at=licenses.UNCHANGED if expires is None else expires,
            )
            return licenses.license_dict(session, license)

    def add_download(self, plan: str, file: str | os.PathLike, *, name: str | None = None) -> dict[str, Any]:
        """Copy a file into the content store (by sha256: the same content is stored once) and add it
        to the plan's downloads under `name` (default: the file's name). Returns the download's JSON shape."""
        from tollgate import blobs

        name = downloads.validate_name(Path(file).name if name is None else name)
        with self.db.read() as session:  # fail fast, before copying a large file
            catalog.get_plan(session, plan)
        sha256, size = blobs.store_blob(file, data_dir=self.data_dir)
        with self.db.write() as session:
            row = downloads.add_download(session, plan=plan, name=name, sha256=sha256, size=size)
            return downloads.download_dict(session, row)

    def downloads(
        self, plan: str | None = None, *, customer: str | None = None, at: datetime | None = None
    ) -> list[dict[str, Any]]:
        """A plan's downloads, or those a customer is entitled to (a live subscription on the plan)."""
        with self.db.read() as session:
            return downloads.download_dicts(session, downloads.list_downloads(
                session, plan=catalog.get_plan(session, plan) if plan else None,
                customer=customers.get_customer(session, customer) if customer else None, at=_moment(at, "time")))

    def download(self, download_id: str) -> dict[str, Any]:
        with self.db.read() as session:
            return downloads.download_dict(session, downloads.get_download(session, download_id))

    def fetch_download(
        self, customer: str, download_id: str, to: str | os.PathLike, *, filename: str | None = None,
        overwrite: bool = False,
    ) -> dict[str, Any]:
        """Copy a download the customer is entitled to into the folder `to`, checksum-verified; returns
        its JSON shape plus `customer` and `path`. Refused (downloads.DownloadRefused, exit 1, `.reason`):
        not_entitled, disabled, missing, corrupted."""
        with self.db.read() as session:
            grant = downloads.authorize(session, customer=customer, download_id=download_id)
        target = downloads.deliver(grant, data_dir=self.data_dir, to_dir=to, filename=filename, overwrite=overwrite,
                                   database=self.db.path)
        with self.db.write() as session:
            downloads.record_delivery(session, grant=grant, target=target)
            data = downloads.download_dict(session, downloads.get_download(session, download_id))
        return {**data, "customer": grant.customer, "path": str(target)}

    def enable_download(self, download_id: str) -> dict[str, Any]:
        with self.db.write() as session:
            return downloads.download_dict(session, downloads.set_enabled(session, download_id=download_id, enabled=True))

    def disable_download(self, download_id: str) -> dict[str, Any]:
        with self.db.write() as session:
            return downloads.download_dict(session, downloads.set_enabled(session, download_id=download_id, enabled=False))

    def remove_download(self, download_id: str) -> dict[str, Any]:
        """Remove a download from its plan (the stored content stays); returns what was removed."""
        with self.db.write() as session:
            return downloads.remove_download(session, download_id=download_id)

    def add_link(self, plan: str, name: str, url: str) -> dict[str, Any]:
        """Add a link (an http/https URL) to a plan; returns its JSON shape (`id`, `plan`, `name`, `url`)."""
        with self.db.write() as session:
            return links.link_dict(session, links.add_link(session, plan=plan, name=name, url=url))

    def links(
        self, plan: str | None = None, *, customer: str | None = None, at: datetime | None = None
    ) -> list[dict[str, Any]]:
        """A plan's links, or those a customer is entitled to (a live subscription on the plan)."""
        with self.db.read() as session:
            return links.link_dicts(session, links.list_links(
                session, plan=catalog.get_plan(session, plan) if plan else None,
                customer=customers.get_customer(session, customer) if customer else None, at=_moment(at, "time")))

    def remove_link(self, link_id: str) -> dict[str, Any]:
        with self.db.write() as session:
            return links.remove_link(session, link_id=link_id)

    def deliverables(self, customer: str, *, at: datetime | None = None) -> dict[str, list[dict[str, Any]]]:
        """What a customer has received, read in one transaction: `licenses` (every key, any status),
        and the `downloads` and `links` of the plans they are entitled to now."""
        from tollgate import profile

        with self.db.connect() as conn:
            return profile.deliverables(conn, customer, at=_moment(at, "time"))

    # -- invoices ------------------------------------------------------------------------------
    # Previews only: nothing is issued or stored. `period` is "YYYY-MM" (the billing periods starting in
    # that month); `at` a datetime or RFC 3339 text (the periods containing it); neither: now.

    def invoice_preview(
        self, customer: str, *, period: str | None = None, at: datetime | str | None = None
    ) -> invoices.InvoicePreview:
        """What the customer owes for the selected periods: an invoices.InvoicePreview (`.lines`,
        `.totals` per currency as Decimals, `.to_dict()` for the JSON shape)."""
        with self.db.read() as session:
            return invoices.preview(session, customer=customer, period=period, at=at)

    def invoice_previews(
        self, *, period: str | None = None, at: datetime | str | None = None, batch_size: int | None = None
    ) -> Iterator[invoices.InvoicePreview]:
        """Every customer's preview (a bill run that issues nothing), yielded customer by customer from
        one read transaction (a consistent snapshot); batches keep memory bounded. Customers with nothing
        to bill are left out. Close the iterator (or exhaust it) to end the transaction."""
        reading = self.db.read()  # now, not at the first row: a missing database is refused before any output

        def previews() -> Iterator[invoices.InvoicePreview]:
            with reading as session:
                yield from invoices.previews(session, period=period, at=at, batch_size=batch_size or invoices.BATCH)

        return previews()

    # -- usage -----------------------------------------------------------------------------------

    def report_usage(
        self,
        customer: str,
        feature: str,
        quantity: Any,
        *,
        at: datetime | str | None = None,
        key: str | None = None,
        set_total: bool = False,
    ) -> Any:
        """Record one usage event (never refused for a limit: Rule 5); returns a usage.ReportResult.

        `quantity` is exact (int, decimal string or Decimal; never a float). `key` is the idempotency
        key (generated when None): the same key again records nothing (`result.recorded` False); the
        same key for a different event raises Conflict. `set_total`: record the delta that makes the
        period's total equal `quantity`. `result.notices`/`result.warnings` are for the person."""
        from tollgate.usage import events as usage

        def attempt() -> Any:
            with self.db.write() as session:
                return usage.report_usage(session, customer=customer, feature=feature, quantity=quantity,
                                          at=at, key=key, set_total=set_total)

        return self._retrying_lock(attempt)

    def report_usage_file(
        self,
        source: str | os.PathLike,
        *,
        format: str | None = None,
        skip_invalid: bool = False,
        rejects: str | os.PathLike | None = None,
        dry_run: bool = False,
        progress: Any = None,
        overwrite: bool = False,
    ) -> Any:
        """Record the events of a CSV / JSON lines file ('-': stdin) in ONE transaction, streamed.

        Any invalid row: usage.UsageFileErrors and nothing is recorded; with `skip_invalid`, the good
        rows are recorded and the bad ones written to `rejects` (default: beside the input; an existing
        file only with `overwrite`, never the database; written whole or not at all). `progress`,
        if given, wraps the stream of rows (a progress bar). Returns a usage.IngestResult (inserted /
        duplicates / rejected)."""
        from tollgate.usage import file as usage_file, ingest as usage

        source = str(source)
        fmt = usage_file.file_format(source, format)
        header: list[str] = []
        writer = None
        if skip_invalid and not dry_run:  # a dry run writes nothing, not even the reject file
            target = rejects if rejects is not None else usage_file.default_rejects_path(source, fmt)
            writer = usage_file.RejectWriter(target, fmt, source=source, header=header, database=self.db.path,
                                             overwrite=overwrite)
        kept = False
        try:
            with usage_file.identified(source) as (readable, file_id):
                rows = usage_file.read_items(readable, fmt, header=header)
                if progress is not None:
                    rows = progress(rows)
                with self.db.write(dry_run=dry_run) as session:
                    result = usage.ingest(session, rows, source=source, file_id=file_id,
                                          skip_invalid=skip_invalid, rejects=writer, dry_run=dry_run)
            kept = True
            return result
        finally:
            if writer is not None:
                writer.close(keep=kept)

    def void_usage(self, key: str, *, reason: str) -> Any:
        """Reverse a recorded event (a negative event, `voids` = key; the original stays). Returns a
        usage.VoidResult. Unknown key: NotFound; a void, or an event voided already: RuleViolation."""
        from tollgate.usage import voids as usage

        def attempt() -> Any:
            with self.db.write() as session:
                return usage.void_usage(session, key=key, reason=reason)

        return self._retrying_lock(attempt)

    def usage_event(self, key: str) -> dict[str, str]:
        """One recorded event by key, as an export row (customer, feature, quantity, timestamp, id)."""
        from tollgate.usage import export as usage_events

        with self.db.connect() as conn:
            return usage_events.event(conn, key)

    @contextmanager
    def usage_export(self, *, customer: str | None = None, feature: str | None = None,
                     start: datetime | str | None = None, end: datetime | str | None = None,
                     ) -> Iterator[Iterator[dict[str, str]]]:
        """The recorded events, streamed from one snapshot (see usage_events.export) while the block
        runs; rows `report_usage_file` re-imports as duplicates. `end` is exclusive."""
        from tollgate.usage import export as usage_events

        start, end = _moment(start, "--from time"), _moment(end, "--to time")
        with self.db.connect() as conn:
            yield usage_events.export(conn, customer=customer, feature=feature, start=start, end=end)

    def _retrying_lock(self, attempt: Any) -> Any:
        """Run a one-event write transaction, trying again while another writer holds the lock, for up
        to `consume_patience` seconds (SQLite's busy handler is not fair under contention; see
        `consume`). Safe: a transaction that failed to get the lock did nothing."""
        import random
        import time

        from tollgate.errors import StorageError

        deadline = time.monotonic() + self._lock_patience()
        while True:
            try:
                return attempt()
            except StorageError as exc:
                if not _is_lock_error(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(random.uniform(0, 0.002))

    def usage(
        self,
        customer: str,
        *,
        feature: str | None = None,
        by: str = "day",
        start: Any = None,
        end: Any = None,
    ) -> Any:
        """A customer's usage per day / week / month (UTC) for each metered feature, with the current
        period against the allowance and the corrections: a usage.UsageReport (`.to_dict()`)."""
        from tollgate.usage import report as usage

        with self.db.connect() as conn:
            return usage.usage_report(conn, customer=customer, feature=feature, by=by, start=start, end=end)

    # -- journal and database ------------------------------------------------------------------

    def journal(
        self, *, customer: str | None = None, since: datetime | str | None = None,
        until: datetime | str | None = None, action: str | None = None, limit: int | None = None,
    ) -> list[journal.Entry]:
        """The journal, oldest first: `since` inclusive, `until` exclusive; `action` one action or a
        family (`license` for every `license.*`)."""
        with self.db.read() as session:
            return journal.read(session, **_journal_filters(session, customer, since, until, action), limit=limit)

    def count_journal(
        self, *, customer: str | None = None, since: datetime | str | None = None,
        until: datetime | str | None = None, action: str | None = None,
    ) -> int:
        """How many entries `journal` would give without a limit."""
        with self.db.read() as session:
            return journal.count(session, **_journal_filters(session, customer, since, until, action))

    def db_info(self) -> dict[str, Any]:
        return self.db.info()

    def check_database(self) -> dict[str, Any]:
        """`db check`: integrity and every usage rollup against the events (see dbcheck.py);
        `ok` is False when anything differs."""
        from tollgate.dbcheck import check_database

        return check_database(self.db)

    def backup(self, target: str | os.PathLike) -> Path:
        return self.db.backup(Path(target))


def _journal_filters(session: Any, customer: str | None, since: Any, until: Any, action: str | None) -> dict[str, Any]:
    """The journal's filters as journal.read and journal.count take them (times parsed, then the customer)."""
    since, until = _moment(since, "--since time"), _moment(until, "--until time")
    customer_id = customers.get_customer(session, customer).id if customer else None
    return {"customer_id": customer_id, "since": since, "until": until, "action": action}


def _moment(value: Any, what: str) -> datetime | None:
    """None, a datetime (aware -> UTC; naive = UTC) or RFC 3339 text, as a naive UTC datetime."""
    from tollgate.clock import parse_moment, to_utc_naive

    if value is None or isinstance(value, datetime):
        return None if value is None else to_utc_naive(value)
    return parse_moment(value, what=what)


def _assignments(features: Any) -> list[Any]:
    """{"f": "v"} or ["f=v", ("f", "v")] -> a list of "f=v" / (f, v) items."""
    if isinstance(features, dict):
        return [(name, _value_text(value)) for name, value in features.items()]
    return list(features)


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        from tollgate.errors import InvalidInput

        raise InvalidInput(f"{value!r} is a floating-point number, which is not exact; pass a string or a Decimal.")
    from decimal import Decimal

    if isinstance(value, Decimal) and value.is_finite():
        from tollgate.money import format_decimal

        return format_decimal(value)
    return str(value)


def _is_lock_error(exc: BaseException) -> bool:
    """A StorageError that means "the database is locked" (busy), as opposed to any other failure."""
    original = getattr(exc.__context__, "orig", exc.__context__)
    text = str(original).lower() if original is not None else str(exc).lower()
    return "locked" in text or "busy" in text
