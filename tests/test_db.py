"""The database layer: location, permissions, pragmas, schema versions and migrations, backups, faults."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from tollgate import Tollgate, db, engines, location, migrations, schema
from tollgate.errors import StorageError
from conftest import table_counts

FIXTURES = Path(__file__).parent / "fixtures"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- location ------------------------------------------------------------------------------------


def test_location_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("TOLLGATE_DB", str(tmp_path / "env.db"))
    assert location.resolve_location(str(tmp_path / "flag.db")) == str(tmp_path / "flag.db")
    assert location.resolve_location(None) == str(tmp_path / "env.db")
    monkeypatch.delenv("TOLLGATE_DB")
    default = location.resolve_location(None)
    assert default.endswith(os.path.join("tollgate", "tollgate.db"))
    assert default.startswith(str(tmp_path / "xdg-data"))  # the fixture's XDG_DATA_HOME: never the real one


def test_db_path_command_follows_the_flag_and_the_environment(cli, tmp_path, db_path):
    assert cli("db", "path").stdout.strip() == str(db_path)
    assert cli("--db", str(tmp_path / "other.db"), "db", "path").stdout.strip() == str(tmp_path / "other.db")
    assert not (tmp_path / "other.db").exists()  # asking where it is creates nothing


def test_new_database_file_and_folder_are_private(tmp_path):
    target = tmp_path / "fresh" / "nested" / "t.db"
    with Tollgate(target) as tg:
        tg.add_customer("Acme")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700


@pytest.mark.sqlite_only("SQLite PRAGMAs")
def test_pragmas_on_every_connection(tg):
    tg.customers()
    with tg.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == engines.BUSY_TIMEOUT_MS


@pytest.mark.sqlite_only("BEGIN IMMEDIATE and the file lock")
@pytest.mark.parametrize("kind", ["session", "core"])
def test_write_transactions_begin_immediate(tg, kind):
    """A write, on a session or on a Core connection (consume's), holds the write lock from its
    start, before anything is read."""
    tg.customers()
    with (tg.db.write() if kind == "session" else tg.db.connect(write=True)):
        other = sqlite3.connect(tg.db.path, timeout=0)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
    other = sqlite3.connect(tg.db.path, timeout=0)
    other.execute("BEGIN IMMEDIATE")  # released at the end
    other.rollback()
    other.close()


@pytest.mark.parametrize("kind", ["session", "core"])
def test_read_transactions_are_one_snapshot(tg, kind):
    """A read, on a session or on a Core connection (check's), sees one snapshot: a customer added
    meanwhile by another connection is not in it, and blocks no writer."""
    from sqlalchemy import func, select

    from tollgate import tables

    tg.add_customer("First")
    count = select(func.count()).select_from(tables.customer)
    with (tg.db.read() if kind == "session" else tg.db.connect()) as reading:
        before = reading.execute(count).scalar_one()
        tg.add_customer("Second")  # another connection of the pool, committed
        assert reading.execute(count).scalar_one() == before == 1
    assert len(tg.customers()) == 2


def test_failed_write_rolls_back_everything(tg):
    with pytest.raises(RuntimeError):
        with tg.db.write() as session:
            from tollgate.customers import add_customer

            add_customer(session, name="Acme")
            raise RuntimeError("boom")
    assert tg.customers() == []


# -- schema versions -----------------------------------------------------------------------------


def test_new_database_records_the_current_schema_version(tg):
    assert tg.db_info().schema_version == schema.SCHEMA_VERSION


def released_fixtures() -> list[Path]:
    return sorted(FIXTURES.glob("schema-*.sqlite"))


def test_there_is_a_fixture_for_every_released_schema_version():
    versions = {int(p.stem.split("-")[1]) for p in released_fixtures()}
    assert versions == set(range(1, schema.SCHEMA_VERSION + 1))


@pytest.mark.parametrize("fixture", released_fixtures(), ids=lambda p: p.stem)
def test_every_released_schema_opens_and_upgrades_without_loss(fixture, tmp_path):
    copy = tmp_path / fixture.name
    shutil.copy(fixture, copy)
    before = table_counts(copy)
    with Tollgate(copy) as tg:
        info = tg.db_info()
        assert info.schema_version == schema.SCHEMA_VERSION
        rows = {t.table: t.rows for t in info.tables}
        for table, count in before.items():
            if table != "meta":
                assert rows[table] == count, table
        assert tg.customer("acme-inc").email == "billing@acme.example"
        assert "[plans.pro]" in tg.export_catalog()
        assert {s.plan for s in tg.subscriptions(customer="acme-inc")} >= {"pro"}
        assert tg.license(tg.licenses(customer="acme-inc")[0].key).activations
    assert db.integrity_check(copy) == "ok"


def test_a_read_that_migrated_first_still_stops_at_ctrl_c(tmp_path):
    """A migration is the database's upkeep, not the command's write: a read command that migrated
    the file first is still interrupted by Ctrl-C (it holds an interrupt only after its own commit)."""
    from tollgate import interrupts

    copy = tmp_path / "old.sqlite"
    shutil.copy(released_fixtures()[0], copy)
    interrupts.reset()
    try:
        with Tollgate(copy) as tg:
            tg.customers()  # opens the file: migrates it, then reads
            assert tg.db_info().schema_version == schema.SCHEMA_VERSION
            with pytest.raises(KeyboardInterrupt):
                interrupts.on_sigint(2, None)
    finally:
        interrupts.reset()


@pytest.mark.sqlite_only("VACUUM INTO backup of the file")
def test_migration_backs_up_then_upgrades_in_one_transaction(tg, monkeypatch, tmp_path):
    tg.add_customer("Acme")
    tg.close()

    def add_column(conn):
        conn.exec_driver_sql("ALTER TABLE customer ADD COLUMN nickname TEXT")
        conn.exec_driver_sql("UPDATE customer SET nickname = 'ac'")

    monkeypatch.setattr(schema, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    monkeypatch.setitem(migrations.MIGRATIONS, schema.SCHEMA_VERSION, add_column)
    with Tollgate(tg.db.path) as upgraded:
        assert upgraded.db_info().schema_version == schema.SCHEMA_VERSION
        assert upgraded.customer("acme").name == "Acme"
    backups = list(tg.db.path.parent.glob(f"{tg.db.path.name}.schema-{schema.SCHEMA_VERSION - 1}.*.bak"))
    assert len(backups) == 1
    assert stat.S_IMODE(backups[0].stat().st_mode) == 0o600
    assert table_counts(backups[0])["customer"] == 1
    conn = sqlite3.connect(tg.db.path)
    assert conn.execute("SELECT nickname FROM customer").fetchone() == ("ac",)
    conn.close()


@pytest.mark.sqlite_only("reads the file with sqlite3")
def test_failed_migration_leaves_the_database_as_it_was(tg, monkeypatch):
    tg.add_customer("Acme")
    tg.close()

    def broken(conn):
        conn.exec_driver_sql("ALTER TABLE customer ADD COLUMN nickname TEXT")
        raise sqlite3.OperationalError("disk I/O error")

    old_version = schema.SCHEMA_VERSION
    monkeypatch.setattr(schema, "SCHEMA_VERSION", old_version + 1)
    monkeypatch.setitem(migrations.MIGRATIONS, schema.SCHEMA_VERSION, broken)
    with pytest.raises(sqlite3.OperationalError):
        Tollgate(tg.db.path).customers()
    monkeypatch.setattr(schema, "SCHEMA_VERSION", old_version)
    conn = sqlite3.connect(tg.db.path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(customer)")]
    version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    conn.close()
    assert "nickname" not in columns and version == str(old_version)


@pytest.mark.sqlite_only("byte-identical file")
def test_database_from_a_newer_version_is_refused_untouched(cli, tg, db_path):
    tg.add_customer("Acme")
    tg.close()
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = sha(db_path)
    result = cli("customer", "list")
    assert result.exit_code == 3
    assert "newer tollgate" in result.stderr and "schema 999" in result.stderr
    assert sha(db_path) == before


@pytest.mark.sqlite_only("a corrupt file")
def test_a_file_that_is_not_a_database(cli, db_path):
    db_path.write_bytes(os.urandom(8192))
    before = sha(db_path)
    result = cli("customer", "list")
    assert result.exit_code == 3
    assert "not a valid SQLite database" in result.stderr
    assert sha(db_path) == before


@pytest.mark.sqlite_only("another program's SQLite file")
def test_a_sqlite_database_of_another_program(cli, db_path):
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    result = cli("customer", "list")
    assert result.exit_code == 3 and "not a tollgate one" in result.stderr


def test_missing_folder_that_cannot_be_created(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = cli("--db", str(blocker / "sub" / "t.db"), "customer", "add", "Acme")  # a write creates the file
    assert result.exit_code == 3 and "Cannot create the database" in result.stderr
    read = cli("--db", str(blocker / "sub" / "t.db"), "customer", "list")  # a read never creates one
    assert read.exit_code == 2 and "There is no database" in read.stderr


# -- info and backup -----------------------------------------------------------------------------


@pytest.mark.sqlite_only("file size and WAL journal mode")
def test_db_info_reports_version_size_and_counts(cli):
    cli("customer", "add", "Acme")
    data = cli("db", "info", "--json").json()
    assert data["schema_version"] == schema.SCHEMA_VERSION
    assert data["tables"]["customer"] == 1 and data["tables"]["journal"] == 1
    assert data["size_bytes"] > 0 and data["journal_mode"] == "wal"
    text = cli("db", "info").stdout
    assert "schema version" in text and "customer" in text


@pytest.mark.sqlite_only("VACUUM INTO backups")
def test_backup_is_a_consistent_private_copy(cli, tmp_path):
    cli("customer", "add", "Acme")
    target = tmp_path / "backups" / "copy.db"
    target.parent.mkdir()
    result = cli("db", "backup", str(target))
    assert result.exit_code == 0 and str(target) in result.stdout
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert db.integrity_check(target) == "ok"
    with Tollgate(target) as copy:
        assert [c.identifier for c in copy.customers()] == ["acme"]


@pytest.mark.sqlite_only("VACUUM INTO backups")
def test_backup_never_overwrites(cli, tmp_path):
    cli("customer", "add", "Acme")
    target = tmp_path / "exists.db"
    target.write_text("precious")
    result = cli("db", "backup", str(target))
    assert result.exit_code == 3 and "already exists" in result.stderr
    assert target.read_text() == "precious"


def test_db_info_counts_are_one_snapshot(tg):
    """`db info` counts every table in one read transaction: a feature another process adds while it
    counts is in none of its counts (on SQLite, a Core connection without `engines.begin` ran each
    count in a transaction of its own)."""
    from sqlalchemy import event

    tg.add_customer("First")
    before = {table.table: table.rows for table in tg.db.info().tables}
    other = Tollgate(tg.db.location)
    ran: list[str] = []

    def add_a_feature_after_the_first_count(conn, cursor, statement, *args):
        if not ran:
            ran.append(statement)
            other.create_feature("SSO", type="boolean", identifier="sso")

    event.listen(tg.db.engine, "after_cursor_execute", add_a_feature_after_the_first_count)
    try:
        during = {table.table: table.rows for table in tg.db.info().tables}
    finally:
        event.remove(tg.db.engine, "after_cursor_execute", add_a_feature_after_the_first_count)
        other.close()
    assert during == before
    assert {table.table: table.rows for table in tg.db.info().tables}["feature"] == before["feature"] + 1
