"""`tollgate db copy SRC DST`: a whole database into a new or empty one, SQLite <-> PostgreSQL, in one
verified transaction on DST. The round trip through a real PostgreSQL server needs one (skips
without); the rest runs on SQLite files."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from tollgate import Tollgate, models
from tollgate.copying import copy_database

ROOT = Path(__file__).parent.parent
EVENTS = 137  # more than a few chunks of CHUNK below
CHUNK = 25


def populate(location) -> None:
    """A database with something in every kind of table: the sample catalog (with a download file),
    customers (one archived), subscriptions with adjustments, a plan's second version and a move to
    it scheduled, an override, usage (bulk + consumed),
    a license with an activation, and the journal of it all."""
    from tollgate.usage import store as usage_store

    with Tollgate(location) as tg:
        tg.import_catalog(ROOT / "sample-catalog.toml")
        tg.add_customer("Acme, Inc.", email="billing@acme.example")
        tg.add_customer("Globex")
        tg.add_customer("Gone Ltd")
        tg.archive_customer("gone-ltd")
        tg.add_subscription("acme-inc", "pro", interval="month", currency="USD", start="2026-01-15",
                            features={"api-calls": "20000"})
        tg.add_subscription("globex", "ai-builder", start="2026-02-01")
        tg.add_subscription("globex", "markdown-studio-2", currency="EUR", start="2026-02-03")
        tg.set_override("acme-inc", "sso", False, note="security review")
        tg.set_usage_charge("pro", {"feature": "api-calls", "currency": "USD", "model": "flat",  # pro's version 2
                                    "unit_price": "0.002"})
        tg.migrate("pro", to=2, at="period-end")  # acme-inc's move, scheduled
        with tg.db.write() as session:
            ids = dict(session.execute(select(models.Customer.identifier, models.Customer.id)).all())
            feature = session.execute(
                select(models.Feature.id).where(models.Feature.identifier == "api-calls")).scalar_one()
            start = datetime(2026, 3, 1, 12, 0, 0, 123456)
            encode = usage_store.time_encoder(session)
            usage_store.insert_event_rows(session, [
                (f"evt-{i}", ids["acme-inc"], feature, 1_000_000 * (i % 7 + 1) + 250_000,
                 encode(start + timedelta(minutes=i)), encode(start + timedelta(minutes=i, seconds=1)))
                for i in range(EVENTS)
            ])
        tg.consume("acme-inc", "api-calls", 3, key="consumed-1")
        licenses = tg.licenses(customer="globex")
        if licenses:
            tg.activate_license(licenses[0].key, "laptop")


def rows_of(location) -> dict[str, list[tuple]]:
    """Every row of every table, ordered by primary key (the strongest "identical" there is)."""
    models.load_all()
    with Tollgate(location) as tg, tg.db.engine.connect() as conn:
        return {
            table.name: [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
            for table in SQLModel.metadata.sorted_tables
        }


def usage_totals(location) -> dict[tuple[str, str], int]:
    events, customers, features = (models.UsageEvent.__table__, models.Customer.__table__,
                                   models.Feature.__table__)
    with Tollgate(location) as tg, tg.db.engine.connect() as conn:
        rows = conn.execute(
            select(customers.c.identifier, features.c.identifier, func.sum(events.c.quantity_micros))
            .join(customers, customers.c.id == events.c.customer_id)
            .join(features, features.c.id == events.c.feature_id)
            .group_by(customers.c.identifier, features.c.identifier)
        ).all()
    return {(c, f): int(total) for c, f, total in rows}


def export(location) -> str:
    with Tollgate(location) as tg:
        return tg.export_catalog()


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "source" / "tollgate.db"
    populate(path)
    return path


def test_a_copy_between_files_is_identical_row_for_row(source, tmp_path):
    target = tmp_path / "target" / "copy.db"
    seen: list[tuple[str, int, int]] = []
    result = copy_database(source, target, chunk_rows=CHUNK, progress=lambda *a: seen.append(a))
    assert rows_of(target) == rows_of(source)
    assert export(target) == export(source)
    assert len(rows_of(target)["plan_version"]) == len(rows_of(target)["plan"]) + 1  # every version
    assert result.tables["usage_event"] == EVENTS + 1 and result.rows == sum(len(r) for r in rows_of(source).values())
    assert list(result.tables) == [t.name for t in SQLModel.metadata.sorted_tables]  # parents first
    usage_chunks = [done for table, done, total in seen if table == "usage_event"]
    assert usage_chunks == [0, *range(CHUNK, EVENTS + 1, CHUNK), EVENTS + 1]
    assert result.blobs_copied == 1 and not result.blobs_missing  # the sample catalog's download file
    with Tollgate(target) as tg:
        download = tg.plan("markdown-studio-2").downloads[0]
        from tollgate import blobs

        assert blobs.has_blob(download.sha256, data_dir=target.parent)
        tg.add_customer("Initech", identifier="initech")
    copied = {row[1]: row[0] for row in rows_of(target)["customer"]}  # identifier -> id: the ids go on
    assert copied["initech"] == max(r[0] for r in rows_of(source)["customer"]) + 1


@pytest.mark.postgres
def test_round_trip_sqlite_postgresql_sqlite_keeps_catalog_usage_and_every_row(source, pg_url, tmp_path, cli):
    back = tmp_path / "back" / "tollgate.db"
    there = cli("db", "copy", str(source), pg_url, "--json")
    assert there.exit_code == 0, there
    again = cli("db", "copy", pg_url, str(back), "--json")
    assert again.exit_code == 0, again
    assert export(back) == export(pg_url) == export(source)
    assert usage_totals(back) == usage_totals(pg_url) == usage_totals(source)
    assert sum(usage_totals(source).values()) > 0
    assert rows_of(back) == rows_of(pg_url) == rows_of(source)
    assert there.json()["catalog_sha256"] == again.json()["catalog_sha256"]
    assert there.json()["tables"] == again.json()["tables"]
    assert there.json()["usage_total"] == again.json()["usage_total"] != "0"


@pytest.mark.postgres
def test_postgresql_sequences_continue_past_the_copied_ids(source, pg_url):
    copy_database(source, pg_url)
    largest = {name: max((r[0] for r in rows), default=0) for name, rows in rows_of(source).items()
               if name in ("customer", "usage_event", "journal")}
    with Tollgate(pg_url) as tg:
        tg.add_customer("Initech")  # journal and customer rows get new ids, no clash
        assert tg.consume("initech", "api-calls", 1).allowed is False  # no subscription: denied, no write
        tg.add_subscription("initech", "pro", interval="month", currency="USD")
        assert tg.consume("initech", "api-calls", 1, key="after-copy").recorded
    after = rows_of(pg_url)
    assert {row[1]: row[0] for row in after["customer"]}["initech"] == largest["customer"] + 1
    assert max(r[0] for r in after["usage_event"]) == largest["usage_event"] + 1
    assert max(r[0] for r in after["journal"]) > largest["journal"]


@pytest.mark.postgres
def test_a_failed_copy_into_postgresql_leaves_it_empty(tmp_path, pg_url, cli):
    """PostgreSQL's text can't hold NUL characters, SQLite's can: the copy fails in the middle, and
    the whole transaction (schema included) rolls back."""
    path = tmp_path / "nul.db"
    with Tollgate(path) as tg:
        tg.add_customer("Acme")
    conn = sqlite3.connect(path)
    conn.execute("UPDATE customer SET name = ?", ("Ac\x00me",))
    conn.commit()
    conn.close()
    result = cli("db", "copy", str(path), pg_url)
    assert result.exit_code == 3 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    import psycopg

    with psycopg.connect(pg_url) as check:
        assert check.execute("SELECT count(*) FROM information_schema.tables "
                             "WHERE table_schema = 'public'").fetchone() == (0,)


def test_a_failed_copy_into_a_new_file_leaves_no_file(tmp_path, cli):
    """A subscription whose customer is gone (written with foreign keys off) can't be copied: the
    target enforces them; nothing is kept."""
    path = tmp_path / "orphan.db"
    with Tollgate(path) as tg:
        tg.add_customer("Acme")
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO product (identifier, name, status, created_at, updated_at) "
                  "VALUES ('p', 'P', 'active', '2026-01-01 00:00:00', '2026-01-01 00:00:00')")
    conn.execute("INSERT INTO plan (identifier, product_id, name, status, created_at, updated_at) "
                  "VALUES ('x', 1, 'X', 'active', '2026-01-01 00:00:00', '2026-01-01 00:00:00')")
    conn.execute("INSERT INTO subscription (public_id, customer_id, plan_id, status, start_at, created_at, "
                  "updated_at) VALUES ('sub_x', 99, 1, 'active', '2026-01-01 00:00:00', '2026-01-01 00:00:00', "
                  "'2026-01-01 00:00:00')")
    conn.commit()
    conn.close()
    target = tmp_path / "copy.db"
    result = cli("db", "copy", str(path), str(target))
    assert result.exit_code == 3 and "FOREIGN KEY" in result.stderr.upper()
    assert not target.exists() and not Path(f"{target}-wal").exists()


def test_the_target_must_be_new_or_empty(source, tmp_path, cli):
    full = tmp_path / "full.db"
    with Tollgate(full) as tg:
        tg.add_customer("Somebody")
    before = rows_of(full)
    result = cli("db", "copy", str(source), str(full))
    assert result.exit_code == 3 and "not empty" in result.stderr and "customer 1" in result.stderr
    assert rows_of(full) == before
    empty = tmp_path / "empty.db"
    Tollgate(empty).db_info()  # an empty tollgate schema is a fine target
    assert cli("db", "copy", str(source), str(empty)).exit_code == 0
    assert export(empty) == export(source)


def test_a_database_of_another_program_is_not_a_target(source, tmp_path, cli):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    result = cli("db", "copy", str(source), str(other))
    assert result.exit_code == 3 and "another program" in result.stderr


def test_the_source_must_exist_and_differ_from_the_target(source, tmp_path, cli):
    missing = cli("db", "copy", str(tmp_path / "nope.db"), str(tmp_path / "new.db"))
    assert missing.exit_code == 3 and "no tollgate database" in missing.stderr
    assert not (tmp_path / "nope.db").exists() and not (tmp_path / "new.db").exists()
    same = cli("db", "copy", str(source), str(source))
    assert same.exit_code == 2 and "same database" in same.stderr


def test_copy_prints_what_it_did(source, tmp_path, cli):
    target = tmp_path / "t.db"
    result = cli("db", "copy", str(source), str(target))
    assert result.exit_code == 0
    assert "usage_event" in result.stdout and f"{EVENTS + 1}" in result.stdout
    assert "catalog (sha256" in result.stdout and "match" in result.stdout
    assert "Copied 1 download file" in result.stdout
