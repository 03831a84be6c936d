"""The `Tollgate` methods of customers (mixed into api.Tollgate)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from tollgate.api.base import Base, Moment, moment
from tollgate.lazy import lazy_module

if TYPE_CHECKING:  # the module loads sqlmodel: the read path (check, show) never needs it
    from tollgate import customers
    from tollgate.customers import ImportResult  # by name: `customers` is also a method here
    from tollgate.profile import CustomerPage, CustomerProfile
    from tollgate.rowfiles import Row
    from tollgate import views
    from tollgate.views import CustomerView
else:
    customers = lazy_module("tollgate.customers")
    views = lazy_module("tollgate.views")


class CustomerMethods(Base):
    def add_customer(self, name: str, *, identifier: str | None = None, email: str | None = None) -> CustomerView:
        with self.db.write() as session:
            return views.CustomerView.of(customers.add_customer(session, name=name, identifier=identifier, email=email))

    def edit_customer(self, identifier: str, *, name: str | None = None, email: str | None = None) -> CustomerView:
        """Change name and/or email; None leaves a field as it is, an empty email removes it."""
        with self.db.write() as session:
            return views.CustomerView.of(customers.edit_customer(
                session, identifier=identifier, name=name, email=customers.UNCHANGED if email is None else email
            ))

    def archive_customer(self, identifier: str) -> CustomerView:
        with self.db.write() as session:
            return views.CustomerView.of(customers.archive_customer(session, identifier=identifier))

    def unarchive_customer(self, identifier: str) -> CustomerView:
        with self.db.write() as session:
            return views.CustomerView.of(customers.unarchive_customer(session, identifier=identifier))

    def customer(self, identifier: str) -> CustomerView:
        with self.db.read() as session:
            return views.CustomerView.of(customers.get_customer(session, identifier))

    def customers(self, *, search: str | None = None, status: str = "active",
                  limit: int | None = None) -> list[CustomerView]:
        with self.db.read() as session:
            found = customers.list_customers(session, search=search, status=status, limit=limit)
            return [views.CustomerView.of(row) for row in found]

    def count_customers(self, *, search: str | None = None, status: str = "active") -> int:
        with self.db.read() as session:
            return customers.count_customers(session, search=search, status=status)

    def import_customers(self, rows: Iterable[Row], *, dry_run: bool = False) -> ImportResult:
        """All rows or none: every row is validated before anything is written."""
        with self.db.write(dry_run=dry_run) as session:
            return customers.import_customers(session, rows, dry_run=dry_run)

    def customer_profile(self, identifier: str, *, at: Moment | None = None) -> CustomerProfile:
        """A profile.CustomerProfile: the customer, its subscriptions and effective entitlements, read
        in one transaction (Core: no ORM session)."""
        from tollgate import profile

        with self.db.connect() as conn:
            return profile.customer_profile(conn, identifier, at=moment(at, "time"))

    def customer_page(self, identifier: str) -> CustomerPage:
        """Everything `customer show` prints (profile.CustomerPage: `.profile`, `.usage` of the last 30
        days, `.deliverables`), read in one transaction, so its parts agree with each other."""
        from tollgate import profile

        with self.db.connect() as conn:
            return profile.customer_page(conn, identifier)
