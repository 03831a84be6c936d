"""The Python API: `Tollgate`, one method per operation, each in one transaction.

The CLI is a thin shell over this class; applications use it directly. It never prints and never
exits: failures are TollgateError subclasses carrying the CLI's exit code. It returns views (frozen
dataclasses with `to_dict()`, the `--json` shape), JSON shapes as dicts, or plain values; never a row
of the database. The methods live with their domain, one module each, and this class puts them together:

    customers.py     customers and their profile          catalog.py       products, features, plans, catalog files
    access.py        subscriptions, overrides, check      deliverables.py  license keys, downloads, links
    license_files.py signed license files, signing keys   usage.py         usage events and reports, invoice previews
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tollgate.api.access import AccessMethods
from tollgate.api.base import Base, Moment, moment
from tollgate.api.catalog import CatalogMethods
from tollgate.api.customers import CustomerMethods
from tollgate.api.deliverables import DeliverableMethods
from tollgate.api.license_files import LicenseFileMethods
from tollgate.api.usage import UsageMethods

if TYPE_CHECKING:
    from sqlmodel import Session

    from tollgate.db_views import DatabaseCheck, DatabaseInfo
    from tollgate.journal import Entry

__all__ = ["Tollgate"]


class Tollgate(CustomerMethods, CatalogMethods, AccessMethods, DeliverableMethods, LicenseFileMethods, UsageMethods,
               Base):
    """A handle on one tollgate database (SQLite path or server URL; default: see `db.resolve_location`)."""

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Tollgate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- journal and database ------------------------------------------------------------------

    def journal(self, *, customer: str | None = None, since: Moment | None = None, until: Moment | None = None,
                action: str | None = None, limit: int | None = None) -> list[Entry]:
        """The journal (journal.Entry views), oldest first: `since` inclusive, `until` exclusive;
        `action` one action or a family (`license` for every `license.*`)."""
        from tollgate import journal

        with self.db.read() as session:
            return journal.read(session, **_journal_filters(session, customer, since, until, action), limit=limit)

    def journal_actions(self) -> list[str]:
        """Every action the journal holds, sorted (what `log --action` can match)."""
        from tollgate import journal

        with self.db.read() as session:
            return journal.actions(session)

    def count_journal(self, *, customer: str | None = None, since: Moment | None = None,
                      until: Moment | None = None, action: str | None = None) -> int:
        """How many entries `journal` would give without a limit."""
        from tollgate import journal

        with self.db.read() as session:
            return journal.count(session, **_journal_filters(session, customer, since, until, action))

    def db_info(self) -> DatabaseInfo:
        """`db info`: location, engine and its version, schema version, size and row counts per table
        (a db_views.DatabaseInfo)."""
        return self.db.info()

    def check_database(self) -> DatabaseCheck:
        """`db check`: integrity and every usage rollup against the events (see dbcheck.py), as a
        db_views.DatabaseCheck; `.ok` is False when anything differs."""
        from tollgate.dbcheck import check_database

        return check_database(self.db)

    def backup(self, target: str | os.PathLike[str]) -> Path:
        return self.db.backup(Path(target))


def _journal_filters(session: Session, customer: str | None, since: Moment | None, until: Moment | None,
                     action: str | None) -> dict[str, Any]:
    """The journal's filters as journal.read and journal.count take them (times parsed, then the customer)."""
    from tollgate import customers

    from tollgate import journal

    start, end = moment(since, "--since time"), moment(until, "--until time")
    customer_id = customers.get_customer(session, customer).id if customer else None
    return {"customer_id": customer_id, "since": start, "until": end, "action": journal.action_filter(action)}
