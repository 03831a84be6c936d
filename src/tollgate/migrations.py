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


# schema 3's tables keyed by plan_id that schema 4 keys by plan_version_id
_VERSIONED = ("plan_price", "plan_entitlement", "plan_usage_charge", "plan_license_policy")


def _to_4(conn: Connection) -> None:
    """Schema 4: plan versions (plan_versions.py). Every plan gets version 1, with the plan's id as
    its id (so the rows keyed by the plan keep their key) and the plan's trial; prices, entitlements,
    usage charges and license policies move onto the version (rebuilt: their keys change), and every
    subscription lands on version 1."""
    from sqlmodel import SQLModel

    from tollgate.copying import _move_sequences_past_copied_ids

    models.load_all()
    versions = models.PlanVersion.__table__
    versions.create(conn)
    conn.execute(text("INSERT INTO plan_version (id, plan_id, version, trial_days, created_at) "
                      "SELECT id, id, 1, trial_days, created_at FROM plan"))
    conn.execute(text("ALTER TABLE plan DROP COLUMN trial_days"))
    rebuilt = [versions]
    for name in _VERSIONED:
        table = SQLModel.metadata.tables[name]
        columns = [column.name for column in table.columns]
        source = ", ".join("plan_id" if column == "plan_version_id" else column for column in columns)
        conn.execute(text(f"CREATE TABLE schema3_{name} AS SELECT * FROM {name}"))  # sql-format-ok: fixed names
        conn.execute(text(f"DROP TABLE {name}"))  # sql-format-ok
        table.create(conn)
        conn.execute(text(f"INSERT INTO {name} ({', '.join(columns)}) SELECT {source} FROM schema3_{name}"))  # sql-format-ok
        conn.execute(text(f"DROP TABLE schema3_{name}"))  # sql-format-ok
        rebuilt.append(table)
    subscription = models.Subscription.__table__
    for name in ("plan_version_id", "next_version_id", "next_version_at", "next_amount_minor"):
        column = subscription.c[name]
        spelled = column.type.compile(dialect=conn.dialect)
        refers = " REFERENCES plan_version (id)" if column.foreign_keys else ""
        conn.execute(text(f"ALTER TABLE subscription ADD COLUMN {name} {spelled}{refers}"))  # sql-format-ok
    for index in subscription.indexes:
        if index.columns.keys() == ["plan_version_id"]:
            index.create(conn)
    conn.execute(text("UPDATE subscription SET plan_version_id = plan_id"))
    if conn.dialect.name == "postgresql":
        _move_sequences_past_copied_ids(conn, [table for table in rebuilt if table.autoincrement_column is not None])


MIGRATIONS: dict[int, Callable[[Connection], None]] = {2: _to_2, 3: _to_3, 4: _to_4}
