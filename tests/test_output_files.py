"""Files tollgate writes where the user says (issue #14, item 1): never the database or its -wal /
-shm / -journal (not even with --overwrite; by path, symlink or hard link), an existing reject file
only with --overwrite, and every one written whole (temp file, fsync, rename)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest


BAD_FILE = "customer,feature,quantity\nacme-inc,api-calls,1\nghost,api-calls,1\n"


@pytest.fixture
def acme(tg):
    tg.add_customer("Acme, Inc.")
    tg.create_feature("API calls", type="metered", identifier="api-calls")
    return tg


def _events(tg) -> int:
    from sqlalchemy import text

    with tg.db.read() as session:
        return session.execute(text("SELECT COUNT(*) FROM usage_event")).scalar_one()


@pytest.mark.sqlite_only
@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
def test_rejects_never_go_over_the_database_or_its_files(cli, acme, db_path, tmp_path, suffix):
    events = tmp_path / "ev.csv"
    events.write_text(BAD_FILE)
    target = Path(f"{db_path}{suffix}")
    before = target.read_bytes() if target.exists() else None
    for extra in ([], ["--overwrite"]):
        result = cli("usage", "report", "--file", events, "--skip-invalid", "--rejects", target, *extra)
        assert result.exit_code == 2, result
        assert str(target) in result.stderr and "database" in result.stderr
    assert (target.read_bytes() if target.exists() else None) == before or suffix in ("-wal", "-shm")
    assert _events(acme) == 0
    assert sqlite3.connect(db_path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.sqlite_only
def test_a_symlink_or_hard_link_to_the_database_is_the_database(acme, db_path, tmp_path):
    from tollgate.outfiles import is_database_file

    (tmp_path / "alias.db").symlink_to(db_path)
    os.link(db_path, tmp_path / "hard.db")
    (tmp_path / "sub").mkdir()
    assert is_database_file(tmp_path / "alias.db", db_path)
    assert is_database_file(tmp_path / "hard.db", db_path)
    assert is_database_file(tmp_path / "sub" / ".." / "tollgate.db-wal", db_path)
    assert not is_database_file(tmp_path / "other.db", db_path)


def test_an_existing_reject_file_needs_overwrite(cli, acme, tmp_path):
    events = tmp_path / "ev.csv"
    events.write_text(BAD_FILE)
    mine = tmp_path / "precious.csv"
    mine.write_text("my data\n")
    result = cli("usage", "report", "--file", events, "--skip-invalid", "--rejects", mine)
    assert result.exit_code == 2, result
    assert str(mine) in result.stderr and "--overwrite" in result.stderr
    assert mine.read_text() == "my data\n" and _events(acme) == 0
    result = cli("usage", "report", "--file", events, "--skip-invalid", "--rejects", mine, "--overwrite")
    assert result.exit_code == 0, result
    assert "ghost" in mine.read_text() and _events(acme) == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_overwrite_goes_only_with_file(cli, acme):
    result = cli("usage", "report", "acme-inc", "api-calls", "1", "--overwrite")
    assert result.exit_code == 2 and "--overwrite" in result.stderr


def test_a_failed_import_leaves_no_reject_file(acme, tmp_path):
    """The reject file appears with the commit: an import that fails writes none (and no temp file)."""
    events = tmp_path / "ev.csv"
    events.write_text(BAD_FILE + "acme-inc,api-calls,1,extra\n" * 3 + '"unterminated\n')
    with pytest.raises(Exception):
        acme.report_usage_file(events, skip_invalid=True, rejects=tmp_path / "r.csv",
                               progress=lambda rows: _fail_after(rows, 2))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(("r.csv", ".r.csv"))] == []


def _fail_after(rows, n):
    for i, row in enumerate(rows):
        if i == n:
            raise RuntimeError("the disk went away")
        yield row


@pytest.mark.sqlite_only
@pytest.mark.parametrize("suffix", ["", "-wal", "-journal"])
def test_no_other_output_can_be_the_database(cli, acme, db_path, tmp_path, suffix):
    target = Path(f"{db_path}{suffix}")
    before = target.read_bytes() if target.exists() else None
    for args in (["catalog", "export", target], ["db", "backup", target]):
        result = cli(*args)
        assert result.exit_code == 2, (args, result)
        assert "database" in result.stderr
    assert (target.read_bytes() if target.exists() else None) == before
    result = cli("db", "copy", db_path, target)
    assert result.exit_code == 2, result
    assert sqlite3.connect(db_path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.sqlite_only
def test_download_get_never_writes_over_the_database(cli, tg, db_path, tmp_path):
    tg.create_product("Editor", identifier="editor")
    tg.create_plan("app", product="editor", prices=[("once", "USD", "39.00")])
    tg.add_customer("Acme", identifier="acme")
    payload = tmp_path / "guide.pdf"
    payload.write_bytes(b"%PDF-1.4 guide")
    download_id = tg.add_download("app", payload).id
    tg.add_subscription("acme", "app")
    before = db_path.read_bytes()
    result = cli("download", "get", "acme", download_id, "--to", db_path.parent, "--as", db_path.name,
                 "--overwrite")
    assert result.exit_code == 2, result
    assert "database" in result.stderr
    assert db_path.read_bytes() == before


def test_atomic_file_keeps_the_old_file_when_the_writer_fails(tmp_path):
    from tollgate.files import atomic_file

    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as handle:
            handle.write("new, half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    with atomic_file(target) as handle:
        handle.write("new")
    assert target.read_text() == "new"


def test_check_target_refuses_an_existing_file_unless_allowed(tmp_path):
    from tollgate.errors import InvalidInput
    from tollgate.outfiles import check_target

    (tmp_path / "x").write_text("")
    with pytest.raises(InvalidInput, match="--overwrite"):
        check_target(tmp_path / "x", database=None, what="The file", overwrite=False)
    assert check_target(tmp_path / "x", database=None, what="The file", overwrite=True) == tmp_path / "x"
