"""Faults of the machine, not of the input: a full disk, a read-only file system, a database file that
is not SQLite, a database locked longer than the busy timeout. Every time: one clear sentence on
stderr, a documented exit code (3: the database or file system failed), no traceback, and nothing
half-written (an existing file keeps its old content; no partial file is left behind).

A full disk is real where the test runs as root (a 64 KiB tmpfs, nearly filled); elsewhere, and in
every run as well, the same failure is injected as OSError(ENOSPC) at the file write's fsync, which is
where a file system that reserves space lazily (NFS, some FUSE mounts) reports it.

(tests/test_db.py and tests/test_security.py cover the random-bytes file on `customer list`, the
read-only folder on `customer add`, and the locked database on `customer add`.)
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from conftest import table_counts

EXIT_STORAGE = 3

# -- helpers ----------------------------------------------------------------------------------------


def catalog_text(plans: int, features: int = 12) -> str:
    """A catalog of `plans` plans, each granting `features` features (about 0.8 KiB per plan)."""
    kinds = ("metered", "boolean", "config")
    lines = ["version = 1", "", "[products.app]", 'name = "App"', ""]
    for f in range(features):
        lines += [f"[features.f{f}]", f'name = "Feature {f}"', f'type = "{kinds[f % 3]}"', ""]
    for p in range(plans):
        lines += [f"[plans.p{p}]", 'product = "app"', f'name = "Plan {p}"',
                  f'prices = [ {{ interval = "month", currency = "USD", amount = "{p}.00" }} ]', "",
                  f"[plans.p{p}.entitlements]"]
        for f in range(features):
            kind = kinds[f % 3]
            if kind == "metered":
                lines.append(f'f{f} = {{ limit = {1000 + p}, reset = "month", hard = {"true" if p % 2 else "false"} }}')
            elif kind == "boolean":
                lines.append(f"f{f} = {'true' if (p + f) % 2 else 'false'}")
            else:
                lines.append(f"f{f} = {p + f}")
        lines.append("")
    return "\n".join(lines)


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file under a folder (names relative to it) with its content: what a failed write left."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_clear_sentence(result) -> None:
    assert result.exit_code == EXIT_STORAGE, result
    assert "Traceback" not in result.stderr and "error: unexpected " not in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == "", result


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def close_handle() -> None:
    """Close the CLI's database handle so the WAL is folded into the file (see snapshot())."""
    from tollgate.cli import context

    if context.state.handle is not None:
        context.state.handle.close()


def snapshot(db_path: Path) -> bytes:
    close_handle()
    wal = Path(f"{db_path}-wal")
    return db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


@pytest.fixture
def big_catalog(cli, tmp_path) -> str:
    """A database holding a catalog whose export is ~100 KiB (more than the tiny disk holds)."""
    source = tmp_path / "big.toml"
    source.write_text(catalog_text(200), encoding="utf-8")
    assert cli("catalog", "import", str(source)).exit_code == 0
    exported = cli("catalog", "export")
    assert exported.exit_code == 0 and len(exported.stdout) > 80_000
    return exported.stdout


def mounted_tmpfs(folder, options: str):
    """Mount a small tmpfs on `folder` for a test (root only; skipped where mount is not allowed)."""
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the injected ENOSPC tests still run)")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB file system: full after a few writes."""
    yield from mounted_tmpfs(tmp_path / "tiny", "size=64k,mode=0700")


@pytest.fixture
def read_only_disk(tmp_path):
    """An empty read-only file system."""
    yield from mounted_tmpfs(tmp_path / "ro", "size=64k,ro")


@pytest.fixture
def disk_full_on_fsync(monkeypatch):
    """Every os.fsync fails with ENOSPC (the library's file writes all end with one)."""

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)


# -- catalog export FILE ----------------------------------------------------------------------------------


def test_export_to_a_full_disk_keeps_the_old_file(cli, big_catalog, tiny_disk):
    target = tiny_disk / "catalog.toml"
    target.write_text("# the old catalog\nversion = 1\n" + "#" * 40_000 + "\n")
    before = files_in(tiny_disk)
    result = cli("catalog", "export", str(target))
    one_clear_sentence(result)
    assert "No space left on device" in result.stderr and str(target) in result.stderr
    assert files_in(tiny_disk) == before  # the old file, whole; no partial file


def test_export_with_an_injected_full_disk_keeps_the_old_file(cli, big_catalog, tmp_path, disk_full_on_fsync):
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "catalog.toml"
    target.write_text("# the old catalog\nversion = 1\n")
    before = files_in(folder)
    result = cli("catalog", "export", str(target))
    one_clear_sentence(result)
    assert "No space left on device" in result.stderr
    assert files_in(folder) == before


def test_export_to_a_read_only_file_system(cli, big_catalog, read_only_disk):
    result = cli("catalog", "export", str(read_only_disk / "catalog.toml"))
    one_clear_sentence(result)
    assert "Read-only file system" in result.stderr
    assert files_in(read_only_disk) == {}


def test_export_with_files_to_a_full_disk_writes_no_partial_file(cli, tg, tmp_path, tiny_disk):
    payload = tmp_path / "app.bin"
    payload.write_bytes(os.urandom(200_000))  # larger than the whole tiny disk
    tg.create_product("App", identifier="app")
    tg.create_plan("one", product="app", prices=[("once", "USD", "10.00")])
    tg.add_download("one", payload)
    result = cli("catalog", "export", "--with-files", str(tiny_disk / "catalog.toml"))
    one_clear_sentence(result)
    assert "No space left on device" in result.stderr
    assert files_in(tiny_disk) == {}  # empty folders at most


# -- db backup FILE -------------------------------------------------------------------------------------------


@pytest.mark.sqlite_only("db backup copies the SQLite file")
def test_backup_to_a_full_disk_leaves_nothing(cli, big_catalog, db_path, tiny_disk):
    before = snapshot(db_path)
    result = cli("db", "backup", str(tiny_disk / "copy.db"))
    one_clear_sentence(result)
    assert "full" in result.stderr and str(tiny_disk / "copy.db") in result.stderr
    assert files_in(tiny_disk) == {}  # no copy, no partial copy
    assert snapshot(db_path) == before
    # and a later backup to a folder with room works (no stale partial file is in the way)
    good = cli("db", "backup", str(tiny_disk.parent / "copy.db"))
    assert good.exit_code == 0, good
    conn = sqlite3.connect(tiny_disk.parent / "copy.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM plan").fetchone()[0] == 200
    conn.close()


@pytest.mark.sqlite_only("db backup copies the SQLite file")
def test_backup_to_a_read_only_file_system(cli, db_path, read_only_disk):
    cli("customer", "add", "Acme")
    result = cli("db", "backup", str(read_only_disk / "copy.db"))
    one_clear_sentence(result)
    assert "Read-only file system" in result.stderr and str(read_only_disk / "copy.db") in result.stderr


@pytest.mark.sqlite_only("db backup copies the SQLite file")
def test_backup_is_private_from_its_first_byte(cli, db_path, tmp_path, monkeypatch):
    """The copy is created 0600 before SQLite writes into it: no moment where others could read it."""
    from tollgate import schema

    cli("customer", "add", "Acme")
    seen = []
    original = schema.vacuum_into

    def spy(engine, target, **kwargs):
        real_open = os.open

        def watching_open(path, flags, mode=0o777, *args, **kw):
            fd = real_open(path, flags, mode, *args, **kw)
            if str(path) == str(target):
                seen.append(os.stat(path).st_mode & 0o777)
            return fd

        monkeypatch.setattr(os, "open", watching_open)
        try:
            return original(engine, target, **kwargs)
        finally:
            monkeypatch.setattr(os, "open", real_open)

    monkeypatch.setattr(schema, "vacuum_into", spy)
    assert cli("db", "backup", str(tmp_path / "copy.db")).exit_code == 0
    assert seen == [0o600]


# -- download get --to DIR --------------------------------------------------------------------------------------


@pytest.fixture
def entitled(tg, tmp_path):
    """acme is entitled to a 200 KB download of plan `one`; returns the download's id."""
    payload = tmp_path / "installer.bin"
    payload.write_bytes(os.urandom(200_000))
    tg.create_product("App", identifier="app")
    tg.create_plan("one", product="app", prices=[("once", "USD", "10.00")])
    tg.add_customer("Acme", identifier="acme")
    tg.add_subscription("acme", "one")
    return tg.add_download("one", payload).id


def test_download_to_a_full_disk_writes_no_partial_file(cli, entitled, tiny_disk):
    result = cli("download", "get", "acme", entitled, "--to", str(tiny_disk))
    one_clear_sentence(result)
    assert "No space left on device" in result.stderr
    assert files_in(tiny_disk) == {}


def test_download_with_an_injected_full_disk_writes_no_partial_file(cli, entitled, tmp_path, disk_full_on_fsync):
    folder = tmp_path / "to"
    folder.mkdir()
    result = cli("download", "get", "acme", entitled, "--to", str(folder))
    one_clear_sentence(result)
    assert "No space left on device" in result.stderr
    assert files_in(folder) == {}


# -- the database's own disk fills up in the middle of a write ------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs for the database itself (root only)."""
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.sqlite_only("the SQLite file on a small disk")
@pytest.mark.parametrize("what", ["usage report --file", "catalog import"])
def test_the_database_disk_filling_up_mid_transaction_writes_nothing(cli, tmp_path, small_disk, what):
    from tollgate import Tollgate

    db = small_disk / "t.db"
    with Tollgate(db) as tg:
        tg.create_product("App", identifier="app")
        tg.create_feature("Calls", type="metered", identifier="calls")
        tg.add_customer("Acme", identifier="acme")
    source = tmp_path / ("u.csv" if what.startswith("usage") else "c.toml")
    if what.startswith("usage"):
        source.write_text("customer,feature,quantity,id\n" + "".join(f"acme,calls,{i % 9 + 1},e{i}\n" for i in range(40_000)))
        command = ("usage", "report", "--file", str(source))
    else:
        source.write_text(catalog_text(1500))
        command = ("catalog", "import", str(source))
    before = {table: n for table, n in table_counts(db, read_only=False).items()}
    result = cli("--db", str(db), *command)
    one_clear_sentence(result)
    assert "is full" in result.stderr
    close_handle()
    assert table_counts(db, read_only=False) == before  # nothing of it, and integrity_check ok
    again = cli("--db", str(db), "customer", "list", "--json")
    assert again.exit_code == 0 and '"acme"' in again.stdout


# -- a database file that is not SQLite ----------------------------------------------------------------------

WRITERS = [
    ("catalog import", lambda folder: ["catalog", "import", str(folder / "c.toml")]),
    ("customer import", lambda folder: ["customer", "import", str(folder / "c.csv")]),
    ("customer add", lambda folder: ["customer", "add", "Acme"]),
    ("usage report", lambda folder: ["usage", "report", "acme", "calls", "1"]),
    ("usage report --file", lambda folder: ["usage", "report", "--file", str(folder / "u.csv")]),
    ("check --consume", lambda folder: ["check", "acme", "calls", "--consume"]),
    ("db backup", lambda folder: ["db", "backup", str(folder / "copy.db")]),
    ("catalog export", lambda folder: ["catalog", "export", str(folder / "out.toml")]),
]


@pytest.mark.sqlite_only("a corrupt file")
@pytest.mark.parametrize("command", [c for _, c in WRITERS], ids=[n for n, _ in WRITERS])
def test_a_file_of_random_bytes_is_refused_untouched_by_every_command(cli, db_path, tmp_path, command):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "c.toml").write_text('version = 1\n[products.app]\nname = "App"\n')
    (folder / "c.csv").write_text("name\nAcme\n")
    (folder / "u.csv").write_text("customer,feature,quantity\nacme,calls,1\n")
    db_path.write_bytes(os.urandom(16384))
    before = digest(db_path)
    result = cli(*command(folder))
    one_clear_sentence(result)
    assert "not a valid SQLite database" in result.stderr
    assert digest(db_path) == before
    assert sorted(p.name for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)) == [db_path.name]
    assert not (folder / "copy.db").exists() and not (folder / "out.toml").exists()


# -- locked longer than the busy timeout -----------------------------------------------------------------------

LOCKED = [
    ("catalog import", ["catalog", "import", "{folder}/c.toml"]),
    ("customer import", ["customer", "import", "{folder}/c.csv"]),
    ("sub add", ["sub", "add", "acme", "basic"]),
    ("override set", ["override", "set", "acme", "calls", "5"]),
    ("usage report", ["usage", "report", "acme", "calls", "1"]),
    ("usage report --file", ["usage", "report", "--file", "{folder}/u.csv"]),
    ("check --consume", ["check", "acme", "calls", "--consume"]),
    ("usage void", ["usage", "void", "nope", "--reason", "r", "--yes"]),
]


@pytest.mark.sqlite_only("the SQLite write lock")
@pytest.mark.parametrize("command", [c for _, c in LOCKED], ids=[n for n, _ in LOCKED])
def test_a_database_locked_longer_than_the_busy_timeout(cli, tg, db_path, tmp_path, monkeypatch, command):
    """Every writer gives up after the busy timeout the operator set (consume and usage report retry a
    busy lock, for up to 30 s by default, but never longer than TOLLGATE_BUSY_TIMEOUT_MS)."""
    import time

    tg.create_product("App", identifier="app")
    tg.create_feature("Calls", type="metered", identifier="calls")
    tg.create_plan("basic", product="app", feature_values=["calls=100"])
    tg.add_customer("Acme", identifier="acme")
    tg.close()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "c.toml").write_text('version = 1\n[products.other]\nname = "Other"\n')
    (folder / "c.csv").write_text("name\nGlobex\n")
    (folder / "u.csv").write_text("customer,feature,quantity\nacme,calls,1\n")
    monkeypatch.setenv("TOLLGATE_BUSY_TIMEOUT_MS", "200")
    before = snapshot(db_path)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    try:
        result = cli(*(part.format(folder=folder) for part in command))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    one_clear_sentence(result)
    assert "locked by another process" in result.stderr
    assert time.monotonic() - started < 10, "waited far longer than TOLLGATE_BUSY_TIMEOUT_MS"
    assert snapshot(db_path) == before


# -- a read-only database folder ---------------------------------------------------------------------------------


def make_read_only(folder: Path):
    """A read-only bind mount of the folder (root), or chmod 0555 (others). Returns an undo function."""
    if os.geteuid() != 0:
        os.chmod(folder, 0o555)
        return lambda: os.chmod(folder, 0o755)
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True, capture_output=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        subprocess.run(["umount", str(folder)], check=False)
        raise
    return lambda: subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.sqlite_only("the SQLite file's folder")
def test_reading_a_closed_database_in_a_read_only_folder(tmp_path):
    """WAL needs its -shm file next to the database: where it can't be created, a read is refused in
    one sentence (exit 3) and the file is left as it was; where it can, the read works."""
    import sys

    from tollgate import Tollgate

    folder = tmp_path / "ro"
    folder.mkdir()
    with Tollgate(folder / "t.db") as tg:
        tg.add_customer("Acme", identifier="acme")
    before = files_in(folder)
    try:
        undo = make_read_only(folder)
    except (subprocess.CalledProcessError, FileNotFoundError):
        pytest.skip("this machine cannot make a read-only folder")
    try:
        env = dict(os.environ, TOLLGATE_DB=str(folder / "t.db"))
        result = subprocess.run([sys.executable, "-m", "tollgate", "customer", "list", "--json"],
                                capture_output=True, text=True, env=env)
        export = subprocess.run([sys.executable, "-m", "tollgate", "catalog", "export", str(folder / "c.toml")],
                                capture_output=True, text=True, env=env)
    finally:
        undo()
    assert result.returncode in (0, EXIT_STORAGE), result
    assert "Traceback" not in result.stderr
    if result.returncode == 0:
        assert '"acme"' in result.stdout
    else:
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert export.returncode in (2, EXIT_STORAGE) and "Traceback" not in export.stderr, export
    assert export.stderr.startswith("error: ") and export.stderr.count("\n") == 1, export
    assert files_in(folder) == before


@pytest.mark.sqlite_only("the SQLite busy timeout")
@pytest.mark.parametrize("value", ["abc", "-5", "1.5", "99999999999", "٣"])
def test_a_busy_timeout_that_is_not_a_number(cli, empty_db, monkeypatch, value):
    monkeypatch.setenv("TOLLGATE_BUSY_TIMEOUT_MS", value)
    result = cli("customer", "list")
    assert result.exit_code == 2, result
    assert result.stderr.startswith("error: TOLLGATE_BUSY_TIMEOUT_MS is") and result.stderr.count("\n") == 1


# -- a permissive umask --------------------------------------------------------------------------------------------


@pytest.mark.sqlite_only("the SQLite file, its WAL and the data folder")
def test_a_permissive_umask_still_gives_owner_only_files(tmp_path):
    """With umask 000 (every new file world-writable by default), the database, its -wal and -shm
    files, its folder, the content store and a backup are still owner-only (0600 files, 0700 folders)."""
    import stat

    from tollgate import Tollgate

    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"content")
    data = tmp_path / "data" / "tollgate.db"
    previous = os.umask(0)
    try:
        with Tollgate(data) as tg:
            tg.add_customer("Acme")
            tg.create_product("App", identifier="app")
            tg.create_plan("one", product="app")
            tg.add_download("one", payload)
            modes = {str(p.relative_to(data.parent)): stat.S_IMODE(p.stat().st_mode)
                     for p in [data.parent, *data.parent.rglob("*")]}
            tg.backup(tmp_path / "backup.db")
    finally:
        os.umask(previous)
    assert {"tollgate.db", "tollgate.db-wal", "tollgate.db-shm", "blobs"} <= set(modes), modes
    for name, mode in modes.items():
        folder = (data.parent / name).is_dir()
        assert mode == (0o700 if folder else 0o600), (name, oct(mode))
    assert stat.S_IMODE((tmp_path / "backup.db").stat().st_mode) == 0o600


# -- the output itself can't be written ---------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("args", [("--version",), ("db", "path"), ("customer", "list", "--json"), ("catalog", "export"),
                                  ("--help",)], ids=lambda a: " ".join(a))
def test_output_to_a_full_disk_is_one_sentence_and_exit_3(empty_db, args):
    """`tollgate ... > file` on a full disk: the shell's file can't be whole, so the exit code must say so."""
    import sys

    env = dict(os.environ, TOLLGATE_DB=str(empty_db))
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "tollgate", *args], stdout=full, stderr=subprocess.PIPE,
                              text=True, env=env)
    assert proc.returncode == EXIT_STORAGE, proc.stderr
    assert proc.stderr == "error: The file system failed while writing the output: No space left on device.\n"


def test_an_io_error_inside_a_command_is_exit_3(cli, empty_db, monkeypatch):
    from tollgate.cli import output

    def full(*args, **kwargs):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(output, "emit_json", full)
    result = cli("customer", "list", "--json")
    assert result.exit_code == EXIT_STORAGE
    assert result.stderr == f"error: The file system failed while writing the output: {os.strerror(errno.EIO)}.\n"


# -- a driver error inside a statement run straight on the driver ---------------------------------------------


@pytest.mark.sqlite_only("SQLite's authorizer stands in for a failing statement")
@pytest.mark.parametrize("table", ["usage_event", "usage_rollup"])
@pytest.mark.parametrize("how", ["consume", "report", "file"])
def test_a_driver_error_in_a_usage_write_is_a_storage_error_and_writes_nothing(tg, tmp_path, table, how):
    """Statements that go straight to the driver (the event insert and the rollups' upsert on SQLite)
    fail as every other statement does: a StorageError in one sentence (exit 3), nothing written."""
    import sqlite3

    from tollgate.errors import StorageError

    tg.create_product("App", identifier="app")
    tg.create_feature("Calls", type="metered", identifier="calls")
    tg.create_plan("pro", product="app", feature_values=["calls=1000"])
    tg.add_customer("Acme", identifier="acme")
    tg.add_subscription("acme", "pro")
    before = table_counts(tg.db.path, read_only=False)

    def deny(action, name, *rest):
        return sqlite3.SQLITE_DENY if action == sqlite3.SQLITE_INSERT and name == table else sqlite3.SQLITE_OK

    with tg.db.engine.connect() as conn:  # the pool's one connection: the next transaction gets it again
        conn.connection.driver_connection.set_authorizer(deny)
    source = tmp_path / "u.csv"
    source.write_text("customer,feature,quantity\nacme,calls,2\n")
    with pytest.raises(StorageError) as caught:
        {"consume": lambda: tg.consume("acme", "calls", 1),
         "report": lambda: tg.report_usage("acme", "calls", 1),
         "file": lambda: tg.report_usage_file(str(source))}[how]()
    assert "\n" not in str(caught.value) and "not authorized" in str(caught.value)
    with tg.db.engine.connect() as conn:
        conn.connection.driver_connection.set_authorizer(None)
    assert table_counts(tg.db.path, read_only=False) == before
