"""The `Tollgate` methods of what customers receive: license keys, downloads and links (mixed into
api.Tollgate; license files are in api/license_files.py). Each returns a frozen view
(deliverable_views.py) whose `to_dict()` is its JSON shape.

Keys may be given in any spelling (case, spaces, dashes, O/I/L for 0/1); they come back canonical.
`at` is the moment a status or an entitlement is judged at (default now)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from tollgate.api.base import Base, Moment, moment
from tollgate.lazy import lazy_module

if TYPE_CHECKING:  # the modules load sqlmodel, and `check` needs no views of these: neither loads at start
    from tollgate import catalog, customers, deliverable_views, downloads, licenses, links
    from tollgate.deliverable_views import (
        ActivatedView,
        Deliverables,
        DeliveredView,
        DownloadView,
        InstanceView,
        LicenseView,
        LinkView,
    )
    from tollgate.licenses import Validation  # by name: `licenses` is also a method here
else:
    catalog = lazy_module("tollgate.catalog")
    deliverable_views = lazy_module("tollgate.deliverable_views")
    customers = lazy_module("tollgate.customers")
    downloads = lazy_module("tollgate.downloads")
    licenses = lazy_module("tollgate.licenses")
    links = lazy_module("tollgate.links")


class DeliverableMethods(Base):
    # -- license keys ----------------------------------------------------------------------------

    def licenses(self, *, customer: str | None = None, at: Moment | None = None) -> list[LicenseView]:
        """License keys (every status) at `at`, oldest first; of one customer or all."""
        with self.db.read() as session:
            customer_id = customers.get_customer(session, customer).id if customer else None
            return licenses.license_views(session, licenses.list_licenses(session, customer_id=customer_id),
                                          at=moment(at, "time"))

    def license(self, key: str, *, at: Moment | None = None) -> LicenseView:
        """One license key at `at`. Malformed key: InvalidInput; unknown: NotFound."""
        with self.db.read() as session:
            return licenses.license_view(session, licenses.get_license(session, key), at=moment(at, "time"))

    def validate_license(self, key: str, *, instance: str | None = None,
                         at: Moment | None = None) -> Validation:
        """Is the key valid (and, with `instance`, activated there)? A licenses.Validation: `.valid`,
        `.reason` (None, unknown, malformed, revoked, expired, instance_not_activated), `.message`,
        `.to_dict()`. Never raises for a bad key: the answer says why it is not valid."""
        with self.db.read() as session:
            return licenses.validate_license(session, key=key, instance=instance, at=moment(at, "time"))

    def activate_license(self, key: str, name: str) -> ActivatedView:
        """Activate the key on an instance named `name`; returns the activation (`instance_id`, `name`,
        `activated_at`, `key`, `created`). The same name again returns the same activation (`created`
        False). Refused (licenses.LicenseRefused, exit 1, `.reason`): revoked, expired, limit_reached."""
        with self.db.write() as session:
            activation, created = licenses.activate(session, key=key, name=name)
            return deliverable_views.ActivatedView.of(activation, key=licenses.parse_key(key), created=created)

    def deactivate_license(self, key: str, instance: str) -> InstanceView:
        """Deactivate an instance (by its instance id): its seat is free again. Returns the activation."""
        with self.db.write() as session:
            activation = licenses.deactivate(session, key=key, instance=instance)
            return deliverable_views.InstanceView.of(activation, key=licenses.parse_key(key))

    def regenerate_license(self, key: str) -> LicenseView:
        """A new key in place of `key` (which is revoked with its activations); returns the new license."""
        with self.db.write() as session:
            return licenses.license_view(session, licenses.regenerate(session, key=key))

    def revoke_license(self, key: str) -> LicenseView:
        """Revoke the key now (it and its activations stop working); returns the revoked license."""
        with self.db.write() as session:
            return licenses.license_view(session, licenses.revoke(session, key=key))

    def edit_license(self, key: str, *, activation_limit: int | str | None = None,
                     expires: Moment | None = None) -> LicenseView:
        """Change one key after purchase: `activation_limit` (a number or "unlimited") and/or `expires`
        (a datetime, a date like "2027-01-31", or "never"). None leaves a field as it is."""
        with self.db.write() as session:
            license = licenses.edit(
                session, key=key,
                activation_limit=licenses.UNCHANGED if activation_limit is None else activation_limit,
                expires_at=licenses.UNCHANGED if expires is None else expires,
            )
            return licenses.license_view(session, license)

    # -- downloads -------------------------------------------------------------------------------

    def add_download(self, plan: str, file: str | os.PathLike[str], *, name: str | None = None) -> DownloadView:
        """Copy a file into the content store (by sha256: the same content is stored once) and add it
        to the plan's downloads under `name` (default: the file's name). Returns the new download."""
        from tollgate import blobs

        name = downloads.validate_name(Path(file).name if name is None else name)
        with self.db.read() as session:  # fail fast, before copying a large file
            catalog.get_plan(session, plan)
        sha256, size = blobs.store_blob(file, data_dir=self.data_dir)
        with self.db.write() as session:
            row = downloads.add_download(session, plan=plan, name=name, sha256=sha256, size=size)
            return downloads.download_view(session, row)

    def downloads(self, plan: str | None = None, *, customer: str | None = None,
                  at: Moment | None = None) -> list[DownloadView]:
        """A plan's downloads, or those a customer is entitled to (a live subscription on the plan)."""
        with self.db.read() as session:
            return downloads.download_views(session, downloads.list_downloads(
                session, plan=catalog.get_plan(session, plan) if plan else None,
                customer=customers.get_customer(session, customer) if customer else None, at=moment(at, "time")))

    def download(self, download_id: str) -> DownloadView:
        """One download by its id (dl_...); NotFound when there is none."""
        with self.db.read() as session:
            return downloads.download_view(session, downloads.get_download(session, download_id))

    def fetch_download(self, customer: str, download_id: str, to: str | os.PathLike[str], *,
                       filename: str | None = None, overwrite: bool = False) -> DeliveredView:
        """Copy a download the customer is entitled to into the folder `to`, checksum-verified; returns
        the `download` with the `customer` and the `path` written. Refused (downloads.DownloadRefused, exit 1,
        `.reason`): not_entitled, disabled, missing, corrupted."""
        with self.db.read() as session:
            grant = downloads.authorize(session, customer=customer, download_id=download_id)
        target = downloads.deliver(grant, data_dir=self.data_dir, to_dir=to, filename=filename, overwrite=overwrite,
                                   database=self.db.path)
        with self.db.write() as session:
            downloads.record_delivery(session, grant=grant, target=target)
            found = downloads.download_view(session, downloads.get_download(session, download_id))
        return deliverable_views.DeliveredView(found, customer=grant.customer, path=target)

    def enable_download(self, download_id: str) -> DownloadView:
        """Deliver a disabled download again; returns it."""
        return self._set_enabled(download_id, True)

    def disable_download(self, download_id: str) -> DownloadView:
        """Stop delivering a download (customers are refused until it is enabled again); returns it."""
        return self._set_enabled(download_id, False)

    def _set_enabled(self, download_id: str, enabled: bool) -> DownloadView:
        with self.db.write() as session:
            return downloads.download_view(session, downloads.set_enabled(session, download_id=download_id,
                                                                          enabled=enabled))

    def remove_download(self, download_id: str) -> DownloadView:
        """Remove a download from its plan (the stored content stays); returns what was removed."""
        with self.db.write() as session:
            return downloads.remove_download(session, download_id=download_id)

    # -- links -----------------------------------------------------------------------------------

    def add_link(self, plan: str, name: str, url: str) -> LinkView:
        """Add a link (an http/https URL) to a plan; returns it (`id`, `plan`, `name`, `url`)."""
        with self.db.write() as session:
            return links.link_view(session, links.add_link(session, plan=plan, name=name, url=url))

    def links(self, plan: str | None = None, *, customer: str | None = None,
              at: Moment | None = None) -> list[LinkView]:
        """A plan's links, or those a customer is entitled to (a live subscription on the plan)."""
        with self.db.read() as session:
            return links.link_views(session, links.list_links(
                session, plan=catalog.get_plan(session, plan) if plan else None,
                customer=customers.get_customer(session, customer) if customer else None, at=moment(at, "time")))

    def remove_link(self, link_id: str) -> LinkView:
        """Remove a link from its plan; returns what was removed."""
        with self.db.write() as session:
            return links.remove_link(session, link_id=link_id)

    def deliverables(self, customer: str, *, at: Moment | None = None) -> Deliverables:
        """What a customer has received, read in one transaction: `licenses` (every key, any status),
        and the `downloads` and `links` of the plans they are entitled to at `at`."""
        from tollgate import profile

        with self.db.connect() as conn:
            return profile.deliverables(conn, customer, at=moment(at, "time"))
