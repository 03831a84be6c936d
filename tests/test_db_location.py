"""Hostile database locations (issue #14, items 7, 8, 9 and 11): a path is a path (never reparsed as a
URL), a file that is not a tollgate database is refused before anything is written to it, a location
that is not a regular file is refused before SQLite opens it, and a password never reaches output.

Every command here runs as a real process (`python -m tollgate`), so the files beside the database
are exactly what a user would find after the command exits."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tollgate import Tollgate, db
from tollgate.location import display_location
from tollgate.errors import StorageError

SRC = Path(__file__).resolve().parent.parent / "src" / "tollgate"
server = pytest.mark.postgres


def tollgate(*args: str, db_location: str | os.PathLike | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if db_location is not None:
        env["TOLLGATE_DB"] = str(db_location)
    return subprocess.run([sys.executable, "-m", "tollgate", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def snapshot(folder: Path) -> dict[str, tuple[bytes | None, int, int]]:
    """Every entry of a folder: (content of a regular file, mtime in ns, mode)."""
    found = {}
    for entry in sorted(folder.iterdir()):
        st = entry.lstat()
        content = entry.read_bytes() if stat.S_ISREG(st.st_mode) else None
        found[entry.name] = (content, st.st_mtime_ns, st.st_mode)
    return found


def one_sentence_error(proc: subprocess.CompletedProcess, code: int = 3) -> str:
    assert proc.returncode == code, proc
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr


# -- 7: a path is a path -----------------------------------------------------------------------------


@pytest.mark.sqlite_only("file names")
@pytest.mark.parametrize("name", ["a?mode=ro.db", "b#x.db", "c%41.db", "d;e.db", "file:e.db", ":memory:"])
def test_a_database_path_is_never_reparsed_as_a_url(tmp_path, name):
    folder = tmp_path / "data"
    folder.mkdir(mode=0o700)
    target = folder / name
    added = tollgate("customer", "add", "Acme", db_location=target)
    assert added.returncode == 0, added
    side = {name, f"{name}-wal", f"{name}-shm"}
    assert name in os.listdir(folder) and set(os.listdir(folder)) <= side  # that file (and its WAL), no other
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert db.integrity_check(target) == "ok"
    conn = sqlite3.connect(target.as_uri() + "?mode=ro", uri=True)
    assert conn.execute("SELECT name FROM customer").fetchall() == [("Acme",)]
    conn.close()
    assert tollgate("db", "path", db_location=target).stdout.strip() == str(target)
    info = tollgate("db", "info", "--json", db_location=target)
    assert info.returncode == 0, info
    assert '"location": ' + repr(str(target)).replace("'", '"') in info.stdout
    backup = folder.parent / f"copy-{name}"
    assert tollgate("db", "backup", str(backup), db_location=target).returncode == 0
    assert db.integrity_check(backup) == "ok" and set(os.listdir(folder)) <= side


@pytest.mark.sqlite_only("file names")
def test_a_sqlite_url_given_by_the_user_still_works(tmp_path):
    target = tmp_path / "u.db"
    assert tollgate("customer", "add", "Acme", db_location=f"sqlite:///{target}").returncode == 0
    assert "u.db" in os.listdir(tmp_path) and set(os.listdir(tmp_path)) <= {"u.db", "u.db-wal", "u.db-shm"}
    listed = tollgate("customer", "list", "--json", db_location=f"sqlite:///{target}")
    assert listed.returncode == 0 and "Acme" in listed.stdout
    assert tollgate("db", "path", db_location=f"sqlite:///{target}").stdout.strip() == str(target)


# -- 8: a file that is not a tollgate database is refused untouched ----------------------------------


def _sqlite_file(path: Path, *statements: str, wal: bool = False) -> None:
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode = WAL")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


FOREIGN_SQLITE = {
    "a table t": ("CREATE TABLE t (x)", "INSERT INTO t VALUES (1)"),
    "a meta table of other columns": ("CREATE TABLE meta (a, b)", "INSERT INTO meta VALUES (1, 2)"),
    "a meta table with a non-numeric version": (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)", "INSERT INTO meta VALUES ('schema_version', 'abc')"),
    "a meta table without a version": (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)", "INSERT INTO meta VALUES ('owner', 'someone')"),
    "no tables at all": ("PRAGMA user_version = 7",),
}


@pytest.mark.sqlite_only("another program's SQLite file")
@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "wal"])
@pytest.mark.parametrize("kind", list(FOREIGN_SQLITE))
def test_a_foreign_sqlite_file_is_refused_byte_identical(tmp_path, kind, wal):
    target = tmp_path / "theirs.db"
    _sqlite_file(target, *FOREIGN_SQLITE[kind], wal=wal)
    before = snapshot(tmp_path)
    for args in (("customer", "list"), ("customer", "add", "Acme"), ("db", "info")):
        stderr = one_sentence_error(tollgate(*args, db_location=target))
        assert str(target) in stderr and "not a tollgate" in stderr
        assert snapshot(tmp_path) == before  # same bytes, same mtime, no -wal/-shm/-journal, no backup


@pytest.mark.sqlite_only("files that are not databases")
@pytest.mark.parametrize("content", [os.urandom(8192), b"", b"name,email\nAcme,a@example.com\n",
                                     b"SQLite format 3\x00" + b"\x00" * 80], ids=["random", "empty", "text", "header"])
def test_a_file_that_is_not_a_database_is_refused_untouched(tmp_path, content):
    target = tmp_path / "not.db"
    target.write_bytes(content)
    before = snapshot(tmp_path)
    stderr = one_sentence_error(tollgate("customer", "add", "Acme", db_location=target))
    assert str(target) in stderr
    assert snapshot(tmp_path) == before


@pytest.mark.sqlite_only("the copy's target file")
def test_db_copy_into_a_foreign_file_leaves_it_untouched(tmp_path, db_path):
    with Tollgate(db_path) as tg:
        tg.add_customer("Acme")
    target_dir = tmp_path / "target"
    target_dir.mkdir()
    target = target_dir / "theirs.db"
    _sqlite_file(target, *FOREIGN_SQLITE["a table t"])
    before = snapshot(target_dir)
    stderr = one_sentence_error(tollgate("db", "copy", str(db_path), str(target)))
    assert "not a tollgate" in stderr
    assert snapshot(target_dir) == before


def test_one_schema_version_reader():
    """The version is read by schema_version_in alone (the migrations call it too)."""
    source = (SRC / "schema.py").read_text()
    assert "def schema_version_in(" in source
    assert "_stored_version" not in source and "def schema_version(" not in source
    assert source.count("FROM meta") == 1  # one query reads the version


@server
@pytest.mark.parametrize("statements", [
    ("CREATE TABLE t (x int)",),
    ("CREATE TABLE meta (a int, b int)",),
    ("CREATE TABLE meta (key text PRIMARY KEY, value text)", "INSERT INTO meta VALUES ('schema_version', 'abc')"),
    ("CREATE TABLE meta (key int, value int)", "INSERT INTO meta VALUES (1, 2)"),
], ids=["table-t", "meta-other-columns", "meta-not-a-number", "meta-int-key"])
def test_a_foreign_postgres_database_is_refused_and_nothing_is_created(pg_url, statements):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)

    def shape():
        with psycopg.connect(pg_url) as conn:
            return conn.execute("SELECT table_name, column_name FROM information_schema.columns "
                                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2").fetchall()

    before = shape()
    for args in (("customer", "list"), ("customer", "add", "Acme")):
        stderr = one_sentence_error(tollgate(*args, db_location=pg_url))
        assert "not a tollgate" in stderr
    assert shape() == before
    with pytest.raises(StorageError, match="not a tollgate"):
        Tollgate(pg_url).customers()


# -- 9: a location that is not a regular file ---------------------------------------------------------


@pytest.mark.sqlite_only("special files")
@pytest.mark.parametrize("kind", ["directory", "fifo", "symlink-to-null", "dangling-symlink"])
def test_a_location_that_is_not_a_regular_file_is_refused_writing_nothing(tmp_path, kind):
    target = tmp_path / "db"
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "symlink-to-null":
        target.symlink_to(os.devnull)
    else:
        target.symlink_to(tmp_path / "nowhere" / "t.db")
    before = snapshot(tmp_path)
    for args in (("customer", "list"), ("customer", "add", "Acme"), ("db", "info")):
        stderr = one_sentence_error(tollgate(*args, db_location=target, timeout=30))
        assert str(target) in stderr
        assert snapshot(tmp_path) == before
    if kind == "directory":
        assert list(target.iterdir()) == []


@pytest.mark.sqlite_only("the null device")
def test_the_null_device_is_refused_and_nothing_is_written_beside_it():
    journal = Path(os.devnull + "-journal")
    existed = journal.exists()
    stderr = one_sentence_error(tollgate("customer", "add", "Acme", db_location=os.devnull))
    assert "not a regular file" in stderr or "device" in stderr
    assert journal.exists() == existed
    for side in ("-wal", "-shm"):
        assert not Path(os.devnull + side).exists()


# -- 11: a password is never shown --------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("location", [
    "postgresql://bob:S3cret@db.example:5432/billing",
    "postgresql://bob:S3cret@db.example:notaport/billing",
    "postgresql://bob:p@S3cret@db.example/billing",
    "postgresql://bob@db.example/billing?password=S3cret&sslmode=require",
    "postgres://bob:S3cret@/billing?host=/run/postgresql",
    "sqlite://bob:S3cret@host/x.db",
    "mysql://bob:S3cret@h/d",
    "weird://bob:S3cret@",
    "postgresql://bob:S3cret@[::1/billing",
])
def test_display_location_masks_every_password(location):
    shown = display_location(location)
    assert "S3cret" not in shown and "bob" in shown


def test_display_location_of_a_file_is_the_file():
    assert display_location("/tmp/a?mode=ro.db") == "/tmp/a?mode=ro.db"
    assert display_location("sqlite:////tmp/b#x.db") == "/tmp/b#x.db"


@pytest.mark.parametrize("location", [
    "postgresql://bob:S3cret@127.0.0.1:{port}/billing",
    "postgresql://bob:S3cret@127.0.0.1:notaport/billing",
    "postgresql://bob@127.0.0.1:{port}/billing?password=S3cret",
    "sqlite://user:S3cret@host/x.db",
    "mysql://user:S3cret@host/x",
])
@pytest.mark.parametrize("args", [("db", "path"), ("db", "info"), ("customer", "list"), ("db", "copy", "{db}", "{tmp}/c.db")])
def test_no_command_prints_a_password(tmp_path, location, args):
    location = location.format(port=_closed_port())
    args = tuple(a.format(db=location, tmp=tmp_path) for a in args)
    proc = tollgate(*args, db_location=location, timeout=60)
    assert "S3cret" not in proc.stdout + proc.stderr, proc
    assert proc.returncode in (0, 3), proc
    if args == ("db", "path"):
        assert proc.returncode == 0 and ("bob" in proc.stdout or "user" in proc.stdout)


def test_db_copy_between_urls_that_do_not_parse_is_one_sentence(tmp_path):
    proc = tollgate("db", "copy", "postgresql://bob:S3cret@h:notaport/d", "postgresql://bob:S3cret@h2/d")
    stderr = one_sentence_error(proc)
    assert "not a valid PostgreSQL URL" in stderr and "S3cret" not in stderr


@server
def test_no_message_about_a_real_server_shows_its_password(pg_url, tmp_path):
    """The test server trusts local connections, so a URL with a password connects: every message
    that names it (info, copy, a refusal) shows it masked."""
    url = make_url(pg_url)
    with_password = url.set(password="S3cret").render_as_string(hide_password=False)
    outputs = [tollgate("customer", "add", "Acme", db_location=with_password),
               tollgate("db", "path", db_location=with_password),
               tollgate("db", "info", db_location=with_password),
               tollgate("db", "info", "--json", db_location=with_password),
               tollgate("db", "copy", with_password, str(tmp_path / "c.db")),
               tollgate("db", "copy", str(tmp_path / "c.db"), with_password)]
    assert outputs[0].returncode == 0 and outputs[2].returncode == 0 and outputs[4].returncode == 0, outputs
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    outputs.append(tollgate("customer", "list", db_location=with_password))
    assert outputs[-1].returncode == 3 and "newer tollgate" in outputs[-1].stderr
    for proc in outputs:
        assert "S3cret" not in proc.stdout + proc.stderr, proc
    assert "***" in outputs[1].stdout


def test_every_message_shows_a_location_through_display_location():
    """No f-string in the library or the CLI interpolates a raw location: they go through
    display_location (which masks a password and shows a file as its path)."""
    raw = re.compile(r"\{(?:[\w.]+\.)?location\b(?![\w(])")
    offenders = []
    for path in SRC.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if raw.search(line):
                offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert offenders == []


@pytest.mark.sqlite_only("a new file")
@pytest.mark.slow
def test_processes_creating_a_new_file_at_once_make_one_whole_database(tmp_path):
    """A new file appears whole (built beside it, then linked to the name): 6 processes starting on a
    file that does not exist yet all succeed, on one database, and leave no temporary file."""
    target = tmp_path / "new.db"
    env = dict(os.environ, TOLLGATE_DB=str(target))
    procs = [subprocess.Popen([sys.executable, "-m", "tollgate", "customer", "add", f"C{i}"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(6)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert all(code == 0 for code, _ in results), results
    assert set(os.listdir(tmp_path)) <= {"new.db", "new.db-wal", "new.db-shm"}
    with Tollgate(target) as tg:
        assert len(tg.customers()) == 6
