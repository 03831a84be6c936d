"""Schema migrations: MIGRATIONS[n] upgrades a database at schema n-1 to schema n, in the caller's
transaction (schema._migrate runs them all in one, after a backup of a SQLite file; PostgreSQL's
DDL is transactional too). Each released schema keeps a fixture in tests/fixtures/ that must upgrade
without loss, and tests/test_migrations.py checks that a migrated database has exactly the schema of
a new one (tables, columns, types, nullability, keys, indexes), on SQLite and PostgreSQL.

A migration creates what changed from the models themselves (`Table.create`, `Index.create`), so the
new schema has one definition; what it drops is named here, as it was.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, text

from tollgate import models


def _to_2(conn: Connection) -> None:
    """Schema 2: usage rollups (usage/rollups.py), backfilled from the events; the events' index on
    (customer, feature, time) also holds the quantity (partial buckets are summed from the index
    alone), and the voids have an index of their own."""
    from tollgate.usage.rollups import rebuild

    models.load_all()
    events = models.UsageEvent.__table__
    conn.execute(text("DROP INDEX ix_usage_customer_feature_at"))  # schema 1's, without the quantity
    for index in events.indexes:  # the two of schema 2 (the unique key is a constraint, kept)
        index.create(conn)
    models.UsageRollup.__table__.create(conn)
    if conn.dialect.name == "sqlite":
        conn.execute(text("ANALYZE usage_event"))
    rebuild(conn)


def _to_3(conn: Connection) -> None:
    """Schema 3: license files (license_files.py): the keys that sign them, a row per file issued,
    and the policy's per-day limits (NULL: none)."""
    models.load_all()
    conn.execute(text("ALTER TABLE plan_license_policy ADD COLUMN activations_per_day INTEGER"))
    conn.execute(text("ALTER TABLE plan_license_policy ADD COLUMN files_per_day INTEGER"))
    models.SigningKey.__table__.create(conn)
    models.LicenseFile.__table__.create(conn)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {2: _to_2, 3: _to_3}
