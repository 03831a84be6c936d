"""Schema migrations (migrations.py): every released schema upgrades without loss to exactly the
schema a new database gets (tables, columns, types, nullability, keys, indexes), on SQLite and on
PostgreSQL, and the usage rollups of schema 2 are backfilled from the events (`db check` agrees)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, inspect, select

from tollgate import Tollgate, db, schema

FIXTURES = Path(__file__).parent / "fixtures"


def schema_shape(engine) -> dict:
    """Everything a schema is made of, in a comparable form."""
    insp = inspect(engine)
    shape = {}
    for table in sorted(insp.get_table_names()):
        pk = insp.get_pk_constraint(table)
        shape[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)],
            "primary_key": tuple(pk["constrained_columns"]),
            "foreign_keys": sorted((tuple(fk["constrained_columns"]), fk["referred_table"],
                                    tuple(fk["referred_columns"])) for fk in insp.get_foreign_keys(table)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]),
                               str((i.get("dialect_options") or {}).get(f"{engine.dialect.name}_where")))
                              for i in insp.get_indexes(table)),
            "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
        }
    return shape


def shape_of(location) -> dict:
    with Tollgate(location) as tg:
        tg.db_info()
        return schema_shape(tg.db.engine)


def released() -> list[Path]:
    return sorted(FIXTURES.glob("schema-*.sqlite"))


@pytest.mark.sqlite_only("the released fixtures are SQLite files")
@pytest.mark.parametrize("fixture", released(), ids=lambda p: p.stem)
def test_a_migrated_sqlite_database_has_the_schema_of_a_new_one(fixture, tmp_path):
    copy = tmp_path / fixture.name
    shutil.copy(fixture, copy)
    assert shape_of(copy) == shape_of(tmp_path / "new.db")


@pytest.mark.sqlite_only("the released fixtures are SQLite files")
@pytest.mark.parametrize("fixture", released(), ids=lambda p: p.stem)
def test_rollups_are_backfilled_and_db_check_agrees(fixture, tmp_path, cli):
    copy = tmp_path / fixture.name
    shutil.copy(fixture, copy)
    with Tollgate(copy) as tg:
        report = tg.check_database()
        assert report.ok and report.rollups > 0 and report.events > 0, report
        used = {e.feature: e.used for e in tg.entitlements("acme-inc", at="2026-10-20T00:00:00Z")}
    assert used["api-calls"] > 0
    assert cli("--db", str(copy), "db", "check").exit_code == 0
    assert db.integrity_check(copy) == "ok"


def schema_1_on_postgres(url: str) -> None:
    """The schema-1 fixture, tables and rows, recreated on a PostgreSQL database (reflected from the
    file: the schema as that release made it)."""
    from tollgate.copying import _move_sequences_past_copied_ids

    source = create_engine(f"sqlite:///{FIXTURES / 'schema-1.sqlite'}")
    meta = MetaData()
    meta.reflect(source)
    for table in meta.tables.values():
        for column in table.columns:
            column.type = column.type.as_generic()  # SQLite's DATETIME is PostgreSQL's TIMESTAMP
    target = db.Database(url).bare_engine()
    try:
        with source.connect() as reader, target.begin() as writer:
            meta.create_all(writer)
            for table in meta.sorted_tables:
                rows = [row._asdict() for row in reader.execute(select(table))]
                if rows:
                    writer.execute(table.insert(), rows)
            _move_sequences_past_copied_ids(writer, list(meta.sorted_tables))
    finally:
        source.dispose()
        target.dispose()


@pytest.mark.postgres
def test_a_migrated_postgres_database_has_the_schema_of_a_new_one(pg_server):
    old, new = pg_server.create(), pg_server.create()
    try:
        schema_1_on_postgres(old)
        with Tollgate(old) as tg:
            assert tg.db_info().schema_version == schema.SCHEMA_VERSION
            assert tg.check_database().ok
            assert {e.feature: e.used for e in tg.entitlements("acme-inc", at="2026-10-20T00:00:00Z")}["api-calls"] > 0
        assert shape_of(old) == shape_of(new)
    finally:
        pg_server.drop(old)
        pg_server.drop(new)
