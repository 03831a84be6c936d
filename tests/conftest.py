"""Shared fixtures: every test gets its own database file under tmp_path; nothing touches the real
user data folder. CLI tests run the real Typer app through CliRunner with stderr kept separate.

The same suite runs against PostgreSQL: with `TOLLGATE_TEST_DB=postgresql://USER@HOST:PORT/postgres`
(a server where USER may create databases; `scripts/pg-test-server start` makes one), every test gets
a fresh database `t_<random>` on that server instead of a file (TOLLGATE_DB points at it; it is
dropped afterwards). Tests of the SQLite file itself are marked `@pytest.mark.sqlite_only("why")`
and skipped there. Tests marked `@pytest.mark.postgres` need a server (TOLLGATE_TEST_DB, or
TOLLGATE_TEST_PG for a run that stays on SQLite otherwise) and skip without one.

Shared helpers, imported by the tests that use them (`from conftest import ok, table_counts`).
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner


def ok(result, code: int = 0):
    """A CLI Result that exited with `code` (0: success), else the assertion shows it whole."""
    assert result.exit_code == code, result
    return result


def table_counts(path: Path, *, read_only: bool = True) -> dict[str, int]:
    """Row counts of every table of a SQLite file, after an integrity check. `read_only=False` reads
    it the way the next process would (the WAL recovered; closing folds the WAL into the file)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True) if read_only else sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}
    finally:
        conn.close()


os.environ["COLUMNS"] = "120"  # pin rich's width so table output is stable
if "TMPDIR" not in os.environ and os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
    # tmp_path (and every test database) on tmpfs: on a disk, SQLite's fsync at each commit is most
    # of a CLI test's time (durability across power loss is not what these tests check). TMPDIR wins.
    tempfile.tempdir = "/dev/shm"
os.environ.pop("NO_COLOR", None)

TEST_DB = os.environ.get("TOLLGATE_TEST_DB", "")
"""A PostgreSQL server's admin URL: run every test on a fresh database there (empty: SQLite files)."""
ON_POSTGRES = TEST_DB.startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))
PG_ADMIN = TEST_DB if ON_POSTGRES else os.environ.get("TOLLGATE_TEST_PG", "")
if TEST_DB and not ON_POSTGRES:
    raise pytest.UsageError(f"TOLLGATE_TEST_DB must be a postgresql:// URL, not {TEST_DB!r}.")


def pytest_report_header(config):
    if ON_POSTGRES:
        return f"tollgate backend: PostgreSQL ({_without_password(TEST_DB)}), a fresh database per test"
    extra = f"; PostgreSQL tests on {_without_password(PG_ADMIN)}" if PG_ADMIN else ""
    return f"tollgate backend: SQLite (a file per test){extra}"


def pytest_runtest_setup(item):
    marker = item.get_closest_marker("sqlite_only")
    if marker is not None and ON_POSTGRES:
        why = f" ({marker.args[0]})" if marker.args else ""
        pytest.skip(f"a SQLite-file test{why}: skipped on PostgreSQL (TOLLGATE_TEST_DB is set)")
    if item.get_closest_marker("postgres") is not None and not PG_ADMIN:
        pytest.skip("needs a PostgreSQL server: set TOLLGATE_TEST_DB or TOLLGATE_TEST_PG to its admin URL "
                    "(scripts/pg-test-server start prints one)")


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class PostgresServer:
    """Throw-away databases on the server at an admin URL (psycopg, autocommit).

    `create()` makes a new empty database; `fresh()` gives each test a database holding the current
    schema and no rows. CREATE DATABASE costs 0.3-1 s, so by default `fresh()` reuses one work
    database per session and empties it between tests (other connections to it terminated, every
    row deleted, sequences restarted, `meta` restored): a few tens of ms. If a test changed the
    schema (tables or columns differ from a new database's), the work database is dropped and
    made anew. TOLLGATE_TEST_PG_FRESH=1 makes a new database for every test instead."""

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy.engine import make_url

        self.url = make_url(admin_url).set(drivername="postgresql")
        self.strict = os.environ.get("TOLLGATE_TEST_PG_FRESH") == "1"
        self._admin = None
        self._work: str | None = None
        self._work_conn = None
        self._shape = None
        self._meta_rows = None

    def _connect(self, url: str):
        import psycopg

        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            pytest.exit(f"cannot reach the PostgreSQL server of TOLLGATE_TEST_DB/TOLLGATE_TEST_PG "
                        f"({_without_password(url)}): {exc}", returncode=3)

    def _connection(self):
        if self._admin is None or self._admin.closed:
            self._admin = self._connect(self.url.render_as_string(hide_password=False))
        return self._admin

    def create(self) -> str:
        """A new empty database; returns its URL (postgresql://...)."""
        from psycopg import sql

        name = f"t_{secrets.token_hex(6)}"
        self._connection().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        from psycopg import sql
        from sqlalchemy.engine import make_url

        name = make_url(url).database
        self._connection().execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def fresh(self) -> str:
        """A database with tollgate's current schema and no rows, for one test."""
        if self.strict:
            return self.create()
        if self._work is not None and not self._reset():
            self._close_work()
        if self._work is None:
            self._work = self.create()
            from tollgate.db import Database

            database = Database(self._work)
            database.engine  # creates the schema
            database.dispose()
            self._work_conn = self._connect(self._work)
            self._shape = self._schema_shape()
            self._meta_rows = self._work_conn.execute("SELECT key, value FROM meta").fetchall()
        return self._work

    def release(self, url: str) -> None:
        """The end of a test on `url` (from `fresh`)."""
        if self.strict:
            self.drop(url)

    def _schema_shape(self):
        return self._work_conn.execute(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3"
        ).fetchall()

    def _reset(self) -> bool:
        """Empty the work database in place; False when it can't be (its schema was changed)."""
        from psycopg import sql

        from tollgate import models
        from sqlmodel import SQLModel

        conn = self._work_conn
        if conn is None or conn.closed:
            return False
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        if self._schema_shape() != self._shape:
            return False
        models.load_all()
        with conn.transaction():
            conn.execute("SET LOCAL lock_timeout = '20s'")
            for table in reversed(SQLModel.metadata.sorted_tables):
                conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table.name)))
            for (sequence,) in conn.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"):
                conn.execute(sql.SQL("ALTER SEQUENCE {} RESTART").format(sql.Identifier(sequence)))
            conn.cursor().executemany("INSERT INTO meta (key, value) VALUES (%s, %s)", self._meta_rows)
        return True

    def _close_work(self) -> None:
        if self._work_conn is not None:
            self._work_conn.close()
            self._work_conn = None
        if self._work is not None:
            self.drop(self._work)
            self._work = None

    def close(self) -> None:
        self._close_work()
        if self._admin is not None:
            self._admin.close()
            self._admin = None


@pytest.fixture(scope="session")
def pg_server():
    """The PostgreSQL server the tests may use (skips the test without one)."""
    if not PG_ADMIN:
        pytest.skip("needs a PostgreSQL server: set TOLLGATE_TEST_DB or TOLLGATE_TEST_PG")
    server = PostgresServer(PG_ADMIN)
    yield server
    server.close()


@pytest.fixture
def pg_url(pg_server):
    """A fresh, empty PostgreSQL database for this test (dropped afterwards): its URL."""
    url = pg_server.create()
    yield url
    pg_server.drop(url)


@pytest.fixture(autouse=True)
def isolated_db(tmp_path, monkeypatch, request) -> Path | str:
    """Point TOLLGATE_DB (and the user data folder) at tmp_path for every test: a file there, or,
    with TOLLGATE_TEST_DB, a fresh database on that server (the value is then its URL, a str)."""
    server = request.getfixturevalue("pg_server") if ON_POSTGRES else None
    location = server.fresh() if server is not None else tmp_path / "tollgate.db"
    monkeypatch.setenv("TOLLGATE_DB", str(location))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    from tollgate.cli import context

    context.state.db = None
    context.state.debug = False
    context.state.handle = None
    yield location
    if context.state.handle is not None:
        context.state.handle.close()
        context.state.handle = None
    if server is not None:
        server.release(str(location))


@pytest.fixture
def db_path(isolated_db) -> Path:
    return isolated_db


def create_empty_database(location: Path | str) -> None:
    """Make a tollgate database with nothing in it at `location` (the CLI refuses to read or report on
    a database that does not exist: only a command that writes creates one)."""
    from tollgate.db import Database

    Database(location).engine.dispose()


@pytest.fixture
def empty_db(isolated_db) -> Path | str:
    """This test's database, already created and empty."""
    create_empty_database(isolated_db)
    return isolated_db


@pytest.fixture
def tg(isolated_db):
    """The library handle on this test's database."""
    from tollgate import Tollgate

    handle = Tollgate(isolated_db)
    yield handle
    handle.close()


class Result:
    def __init__(self, raw):
        self.exit_code = raw.exit_code
        self.stdout = raw.stdout
        self.stderr = raw.stderr
        self.exception = raw.exception

    def json(self):
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"<Result exit={self.exit_code} stdout={self.stdout[:300]!r} stderr={self.stderr[:300]!r}>"


@pytest.fixture
def cli():
    """Run `tollgate ARGS...` in-process: cli("customer", "add", "Acme") -> Result (exit_code, stdout, stderr)."""
    from tollgate.cli.app import app

    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        from tollgate.cli import context

        context.state.db = None
        context.state.debug = False
        raw = runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=True)
        result = Result(raw)
        if raw.exception is not None and not isinstance(raw.exception, SystemExit):
            raise AssertionError(f"uncaught {raw.exception!r}: {result}") from raw.exception
        assert "Traceback" not in result.stderr, result.stderr
        return result

    return run
