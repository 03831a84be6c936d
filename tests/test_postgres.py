"""tollgate on a real PostgreSQL server: URLs, schema creation and migrations, info, backup refusal,
storage errors in one sentence, transactions (snapshot reads, the consume lock).

These need a server (TOLLGATE_TEST_DB or TOLLGATE_TEST_PG; `scripts/pg-test-server start`) and skip
without one, except the first few, which need none. Each test gets a fresh, empty database (`pg_url`).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tollgate import Tollgate, db, location, locks, migrations, schema
from tollgate.errors import StorageError

# -- without a server ------------------------------------------------------------------------------


def test_postgresql_urls_mean_psycopg_3():
    assert location.engine_url("postgresql://u@h:5432/d") == "postgresql+psycopg://u@h:5432/d"
    assert location.engine_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert location.engine_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"
    assert location.is_postgres_url("postgresql+psycopg://u@h/d") and not location.is_postgres_url("mysql://u@h/d")
    assert location.sqlite_path("postgresql://u@h/d") is None


def test_a_password_is_never_shown():
    shown = location.display_location("postgresql://alice:s3cret@db.example:5432/billing")
    assert "s3cret" not in shown and "alice" in shown and "billing" in shown
    assert location.display_location("/tmp/x.db") == "/tmp/x.db"


def test_an_unsupported_url_is_one_clear_sentence(cli):
    result = cli("--db", "mysql://u:pw@h/d", "customer", "list")
    assert result.exit_code == 3
    assert "neither a SQLite file nor a PostgreSQL URL" in result.stderr and "pw" not in result.stderr


def test_a_missing_driver_names_the_extra_to_install(tmp_path):
    """Without psycopg (hidden from this process), a postgresql:// URL asks for the extra."""
    script = (
        "import sys; sys.modules['psycopg'] = None; sys.modules['psycopg2'] = None\n"
        "from tollgate.cli.app import main\n"
        "sys.argv = ['tollgate', '--db', 'postgresql://u@127.0.0.1:1/d', 'customer', 'list']\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result
    assert "pip install 'tollgate[postgres]'" in result.stderr and "Traceback" not in result.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _have_psycopg() -> bool:
    import importlib.util

    return importlib.util.find_spec("psycopg") is not None


@pytest.mark.skipif(not _have_psycopg(), reason="needs psycopg (pip install -e '.[postgres]'): without it the "
                    "connection is never tried (test_a_missing_driver_names_the_extra_to_install covers that case)")
def test_connection_refused_is_one_sentence(cli):
    url = f"postgresql://tollgate:secret-pw@127.0.0.1:{_closed_port()}/billing"
    result = cli("--db", url, "customer", "list")
    assert result.exit_code == 3
    assert "refused the connection" in result.stderr and "Check that PostgreSQL is running" in result.stderr
    assert "secret-pw" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


# -- on a server -----------------------------------------------------------------------------------

server = pytest.mark.postgres


def _on(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


@server
def test_a_new_database_gets_the_schema_and_every_command_works(pg_url, cli):
    with Tollgate(pg_url) as tg:
        tg.add_customer("Acme, Inc.", email="billing@acme.example")
        assert [c.identifier for c in tg.customers()] == ["acme-inc"]
        info = tg.db_info()
    assert info.engine == "postgresql" and info.schema_version == schema.SCHEMA_VERSION
    rows = {t.table: t.rows for t in info.tables}
    assert rows["customer"] == 1 and rows["journal"] == 1
    assert info.server_version[:2].isdigit() and info.size_bytes and info.journal_mode is None
    shown = cli("--db", pg_url, "customer", "show", "acme-inc", "--json")
    assert shown.exit_code == 0 and shown.json()["email"] == "billing@acme.example"


@server
def test_tollgate_db_environment_variable_selects_the_server(pg_url, cli, monkeypatch):
    monkeypatch.setenv("TOLLGATE_DB", pg_url)
    assert cli("customer", "add", "Globex").exit_code == 0
    assert [c["identifier"] for c in cli("customer", "list", "--json").json()] == ["globex"]
    assert cli("db", "path").stdout.strip() == pg_url


@server
def test_db_info_reports_the_server_version_and_row_counts(pg_url, cli):
    cli("--db", pg_url, "customer", "add", "Acme")
    data = cli("--db", pg_url, "db", "info", "--json").json()
    assert data["engine"] == "postgresql" and data["tables"]["customer"] == 1
    with Tollgate(pg_url) as tg, tg.db.engine.connect() as conn:
        assert data["server_version"] == conn.exec_driver_sql("SHOW server_version").scalar()
    shown = cli("--db", pg_url, "db", "info").stdout
    assert "postgresql" in shown and data["server_version"] in shown and "customer" in shown


@server
def test_db_backup_says_to_use_pg_dump(pg_url, cli, tmp_path):
    cli("--db", pg_url, "customer", "add", "Acme")
    target = tmp_path / "copy.db"
    result = cli("--db", pg_url, "db", "backup", str(target))
    assert result.exit_code == 3 and "pg_dump" in result.stderr
    assert not target.exists()


@server
def test_a_database_that_does_not_exist(pg_url, cli):
    url = _on(pg_url, "no_such_database_here")
    result = cli("--db", url, "customer", "list")
    assert result.exit_code == 3
    assert "does not exist on the server" in result.stderr and "createdb" in result.stderr


@server
def test_an_unknown_role_is_an_authentication_failure(pg_url, cli):
    url = make_url(pg_url).set(username="nobody_at_all").render_as_string(hide_password=False)
    result = cli("--db", url, "customer", "list")
    assert result.exit_code == 3 and "Authentication to" in result.stderr and "failed" in result.stderr


@server
def test_a_wrong_password_is_an_authentication_failure(pg_url, pg_server, cli):
    """scripts/pg-test-server makes the role tollgate_password_check use passwords (the rest: trust)."""
    admin = pg_server._connection()
    admin.execute("DROP ROLE IF EXISTS tollgate_password_check")
    admin.execute("CREATE ROLE tollgate_password_check LOGIN PASSWORD 'right-one'")
    try:
        right = make_url(pg_url).set(username="tollgate_password_check", password="right-one")
        wrong = right.set(password="wrong-one")
        attempt = cli("--db", wrong.render_as_string(hide_password=False), "customer", "list")
        checked = cli("--db", right.render_as_string(hide_password=False), "db", "path")
        if attempt.exit_code == 3 and "Authentication" not in attempt.stderr:
            pytest.fail(attempt.stderr)
        if attempt.exit_code != 3:
            pytest.skip("this server does not check passwords for tollgate_password_check (not pg-test-server's)")
    finally:
        admin.execute("DROP ROLE IF EXISTS tollgate_password_check")
    assert "Authentication to" in attempt.stderr and "password" in attempt.stderr
    assert "wrong-one" not in attempt.stderr and len(attempt.stderr.strip().splitlines()) == 1
    assert checked.exit_code == 0


@server
def test_a_database_of_another_program_is_refused_untouched(pg_url, cli):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (x int)")
    result = cli("--db", pg_url, "customer", "list")
    assert result.exit_code == 3 and "not a tollgate one" in result.stderr
    with psycopg.connect(pg_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables "
                                             "WHERE table_schema = 'public'")}
    assert tables == {"notes"}


@server
def test_a_database_from_a_newer_version_is_refused(pg_url, cli):
    with Tollgate(pg_url) as tg:
        tg.add_customer("Acme")
        with tg.db.engine.begin() as conn:
            conn.execute(text("UPDATE meta SET value = '999' WHERE key = 'schema_version'"))
    result = cli("--db", pg_url, "customer", "list")
    assert result.exit_code == 3 and "newer tollgate" in result.stderr and "schema 999" in result.stderr


@server
def test_migrations_run_in_one_transaction_with_transactional_ddl(pg_url, monkeypatch):
    with Tollgate(pg_url) as tg:
        tg.add_customer("Acme")

    def add_column(conn):
        conn.exec_driver_sql("ALTER TABLE customer ADD COLUMN nickname TEXT")
        conn.exec_driver_sql("UPDATE customer SET nickname = 'ac'")

    monkeypatch.setattr(schema, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    monkeypatch.setitem(migrations.MIGRATIONS, schema.SCHEMA_VERSION, add_column)
    with Tollgate(pg_url) as upgraded:
        assert upgraded.db_info().schema_version == schema.SCHEMA_VERSION
        with upgraded.db.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT nickname FROM customer").scalar() == "ac"


@server
def test_a_failed_migration_leaves_no_trace(pg_url, monkeypatch):
    """PostgreSQL's DDL is transactional: the column added before the failure is rolled back too."""
    with Tollgate(pg_url) as tg:
        tg.add_customer("Acme")
    old_version = schema.SCHEMA_VERSION

    def broken(conn):
        conn.exec_driver_sql("ALTER TABLE customer ADD COLUMN nickname TEXT")
        raise RuntimeError("the migration failed half-way")

    monkeypatch.setattr(schema, "SCHEMA_VERSION", old_version + 1)
    monkeypatch.setitem(migrations.MIGRATIONS, schema.SCHEMA_VERSION, broken)
    with pytest.raises(RuntimeError):
        Tollgate(pg_url).customers()
    monkeypatch.setattr(schema, "SCHEMA_VERSION", old_version)
    with Tollgate(pg_url) as tg, tg.db.engine.connect() as conn:
        columns = {r[0] for r in conn.exec_driver_sql(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'customer'")}
        assert "nickname" not in columns and tg.db_info().schema_version == old_version


OPENER = """
import sys, time
from tollgate import Tollgate
url, go, name = sys.argv[1], sys.argv[2], sys.argv[3]
import os
while not os.path.exists(go):
    time.sleep(0.001)
with Tollgate(url) as tg:
    tg.add_customer(name)
"""


@server
@pytest.mark.slow
def test_processes_opening_a_new_database_at_once_create_it_once(pg_url, tmp_path):
    go = tmp_path / "go"
    names = [f"Customer {i}" for i in range(6)]
    workers = [subprocess.Popen([sys.executable, "-c", OPENER, pg_url, str(go), name], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for name in names]
    time.sleep(0.5)
    go.touch()
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    with Tollgate(pg_url) as tg:
        assert len(tg.customers()) == len(names)
        with tg.db.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM meta").scalar() == 1


@server
def test_a_clash_with_another_writer_is_one_sentence(pg_url):
    from tollgate.models import Meta

    with Tollgate(pg_url) as tg:
        tg.customers()
        with pytest.raises(StorageError) as caught:
            with tg.db.write() as session:
                session.execute(Meta.__table__.insert().values(key="schema_version", value="1"))
    message = str(caught.value)
    assert "duplicate key" in message and "\n" not in message and "DETAIL" not in message


@server
def test_read_transactions_see_one_snapshot(pg_url):
    """A read session (REPEATABLE READ) does not see what commits while it runs; a new one does."""
    from tollgate.customers import list_customers

    with Tollgate(pg_url) as tg, Tollgate(pg_url) as other:
        tg.add_customer("Acme")
        with tg.db.read() as session:
            assert len(list_customers(session)) == 1
            other.add_customer("Globex")
            assert len(list_customers(session)) == 1
        assert len(tg.customers()) == 2


@server
def test_the_consume_lock_makes_a_second_caller_wait_for_the_first(pg_url):
    """lock_customer_feature: the same (customer, feature) waits; another feature does not."""
    with Tollgate(pg_url) as first, Tollgate(pg_url) as second:
        first.customers()
        second.customers()
        events: list[str] = []
        holding = threading.Event()

        def holder():
            with first.db.write() as session:
                locks.lock_customer_feature(session, 1, 2)
                holding.set()
                time.sleep(0.5)
                events.append("first commits")

        thread = threading.Thread(target=holder)
        thread.start()
        assert holding.wait(10)
        with second.db.write() as session:
            started = time.monotonic()
            locks.lock_customer_feature(session, 1, 3)  # another feature: no wait
            assert time.monotonic() - started < 0.4 and events == []
            locks.lock_customer_feature(session, 1, 2)
            events.append("second has the lock")
        thread.join()
    assert events == ["first commits", "second has the lock"]


def test_the_consume_lock_is_a_no_op_on_sqlite(tmp_path):
    with Tollgate(tmp_path / "t.db") as tg, tg.db.write() as session:
        locks.lock_customer_feature(session, 1, 2)  # nothing to do: BEGIN IMMEDIATE holds the write lock
        assert session.get_bind().dialect.name == "sqlite"


@server
def test_every_command_output_is_the_same_json_on_both_backends(pg_url, tmp_path, cli):
    """A short session of commands gives the same JSON (ids and times aside) on SQLite and PostgreSQL."""

    def session(location: str) -> list:
        out = []
        for args in (("customer", "add", "Acme, Inc.", "--email", "a@acme.example", "--json"),
                     ("customer", "add", "Acme, Inc.", "--json"),
                     ("customer", "edit", "acme-inc", "--name", "Acme Corp", "--json"),
                     ("customer", "list", "--search", "ACME", "--json"),
                     ("customer", "archive", "acme-inc-2", "--yes", "--json")):
            result = cli("--db", location, *args)
            assert result.exit_code == 0, result
            out.append(_without_volatile(result.json()))
        return out

    assert session(pg_url) == session(str(tmp_path / "same.db"))


def _without_volatile(value):
    if isinstance(value, list):
        return [_without_volatile(v) for v in value]
    if isinstance(value, dict):
        return {k: _without_volatile(v) for k, v in value.items()
                if k not in ("billing_id", "created_at", "updated_at", "archived_at")}
    return value



def _every_row(url: str) -> dict[str, list[tuple]]:
    """All rows of all tables, by primary key: on a server, "nothing was written" is this, unchanged
    (on SQLite the tests compare the file's bytes)."""
    from sqlalchemy import select
    from sqlmodel import SQLModel

    from tollgate import models

    models.load_all()
    with Tollgate(url) as tg, tg.db.engine.connect() as conn:
        return {t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                for t in SQLModel.metadata.sorted_tables}


@server
def test_refused_and_dry_run_imports_write_nothing(pg_url, cli, tmp_path):
    """All-or-nothing on PostgreSQL: a bad customer row, a bad catalog, and dry runs change no row."""
    import shutil
    from pathlib import Path

    sample = Path(__file__).parent.parent / "sample-catalog.toml"
    shutil.copytree(sample.parent / "assets", tmp_path / "assets")  # the catalog's download file
    assert cli("--db", pg_url, "catalog", "import", str(sample)).exit_code == 0
    cli("--db", pg_url, "customer", "add", "Existing")
    before = _every_row(pg_url)
    customers = tmp_path / "c.csv"
    customers.write_text("name,email\nAcme,a@acme.example\nGlobex,not-an-email\n")
    refused = cli("--db", pg_url, "customer", "import", str(customers))
    assert refused.exit_code == 2 and "not-an-email" in refused.stderr
    customers.write_text("name\nAcme\nGlobex\n")
    assert cli("--db", pg_url, "customer", "import", str(customers), "--dry-run").exit_code == 0
    changed = tmp_path / "catalog.toml"
    changed.write_text(sample.read_text().replace('name = "Pro"', 'name = "Pro Plus"', 1))
    assert cli("--db", pg_url, "catalog", "import", str(changed), "--dry-run").exit_code == 0
    broken = tmp_path / "broken.toml"
    broken.write_text(sample.read_text() + '\n[products.extra]\nname = "Extra"\nsurprise = 1\n')
    assert cli("--db", pg_url, "catalog", "import", str(broken)).exit_code == 2
    assert _every_row(pg_url) == before
    assert cli("--db", pg_url, "catalog", "import", str(changed)).exit_code == 0
    assert _every_row(pg_url) != before  # the comparison can see a change


@server
def test_text_with_a_nul_character_is_bad_input_not_a_storage_failure(pg_url, cli):
    """PostgreSQL can't hold NUL in text (SQLite can): asking for it is exit 2 in one sentence."""
    cli("--db", pg_url, "customer", "add", "Acme")
    for args in (("customer", "show", "ac\x00me"), ("customer", "list", "--search", "a\x00")):
        result = cli("--db", pg_url, *args)
        assert result.exit_code == 2, result
        assert "NUL character" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert [c["identifier"] for c in cli("--db", pg_url, "customer", "list", "--json").json()] == ["acme"]
