"""The Python API: `Tollgate`, one method per operation, each in one transaction.

The CLI is a thin shell over this class; applications use it directly. It never prints and never
exits: failures are TollgateError subclasses carrying the CLI's exit code.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from tollgate import customers, journal
from tollgate.db import Database
from tollgate.models import Customer
from tollgate.rowfiles import Row


class Tollgate:
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

    def edit_customer(self, identifier: str, *, name: str | None = None, email: Any = customers._UNSET) -> Customer:
        with self.db.write() as session:
            return customers.edit_customer(session, identifier=identifier, name=name, email=email)

    def archive_customer(self, identifier: str) -> Customer:
        with self.db.write() as session:
            return customers.archive_customer(session, identifier=identifier)

    def customer(self, identifier: str) -> Customer:
        with self.db.read() as session:
            return customers.get_customer(session, identifier)

    def customers(self, *, search: str | None = None, status: str = "active", limit: int | None = None) -> list[Customer]:
        with self.db.read() as session:
            return customers.list_customers(session, search=search, status=status, limit=limit)

    def import_customers(self, rows: list[Row] | Any, *, dry_run: bool = False) -> customers.ImportResult:
        """All rows or none: every row is validated before anything is written."""
        with self.db.write(dry_run=dry_run) as session:
            return customers.import_customers(session, rows, dry_run=dry_run)

    # -- journal and database ------------------------------------------------------------------

    def journal(
        self, *, customer: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[journal.Entry]:
        with self.db.read() as session:
            customer_id = customers.get_customer(session, customer).id if customer else None
            return journal.read(session, customer_id=customer_id, since=since, limit=limit)

    def db_info(self) -> dict[str, Any]:
        return self.db.info()

    def backup(self, target: str | os.PathLike) -> Path:
        return self.db.backup(Path(target))
