"""Hostile files and crafted rows (issue #14, items 5, 6 and 10): what tollgate reads is a regular
file (inside the catalog's folder, for a catalog's `file`), a stored checksum never becomes a path
outside the content store, and `catalog export --with-files` decides every target before it writes
one, replacing an operator's different file only with --overwrite."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

HANG = 30  # seconds: a command that reads an endless or blocking file would never return


def run(*args: str, timeout: float = HANG) -> subprocess.CompletedProcess:
    """The real CLI in its own process (TOLLGATE_DB from the test's environment), killed if it hangs."""
    try:
        return subprocess.run([sys.executable, "-m", "tollgate", *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        pytest.fail(f"`tollgate {' '.join(map(str, args))}` hung for {timeout} s")


@pytest.fixture
def shop(tg):
    tg.create_product("Editor", identifier="editor")
    tg.create_plan("pro", product="editor", prices=[("once", "USD", "39.00")])
    tg.add_customer("Acme", identifier="acme")
    return tg


def blob_files(tg) -> list[Path]:
    return sorted(p for p in (tg.data_dir / "blobs").rglob("*") if p.is_file())


CATALOG = """version = 1

[products.editor]
name = "Editor"

[plans.pro]
product = "editor"
prices = [{{ interval = "once", currency = "USD", amount = "39.00" }}]

[[plans.pro.downloads]]
name = "Guide"
file = {file}
"""


def write_catalog(folder: Path, file: str) -> Path:
    import json

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "catalog.toml"
    path.write_text(CATALOG.format(file=json.dumps(file)), encoding="utf-8")
    return path


@pytest.fixture
def secret(tmp_path) -> Path:
    """A file the operator can read that is not part of any catalog (standing in for /etc/shadow)."""
    path = tmp_path / "private" / "shadow"
    path.parent.mkdir()
    path.write_text("root:$6$secret-hash:19000:0:99999:7:::\n")
    return path


def assert_nothing_imported(cli, tg) -> None:
    assert cli("plan", "list", "--all", "--json").json() == []
    assert blob_files(tg) == []


# -- item 5: a catalog's `file` is a regular file inside the catalog's folder ------------------------------


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink", "symlinked-folder"])
def test_a_catalog_file_outside_the_catalogs_folder_is_refused(cli, tg, tmp_path, secret, how):
    folder = tmp_path / "repo"
    folder.mkdir()
    if how == "absolute":
        file = str(secret)
    elif how == "dotdot":
        file = "../private/shadow"
    elif how == "symlink":
        (folder / "guide.txt").symlink_to(secret)
        file = "guide.txt"
    else:
        (folder / "assets").symlink_to(secret.parent, target_is_directory=True)
        file = "assets/shadow"
    result = cli("catalog", "import", write_catalog(folder, file))
    assert result.exit_code == 2, result
    assert "plans.pro.downloads[0].file" in result.stderr
    assert "outside the catalog's folder" in result.stderr
    assert_nothing_imported(cli, tg)


@pytest.mark.parametrize("system_file", ["/etc/shadow", "/proc/self/environ", "/etc/passwd"])
def test_system_files_are_never_imported(cli, tg, tmp_path, system_file):
    if not os.path.exists(system_file):
        pytest.skip(f"no {system_file} here")
    result = cli("catalog", "import", write_catalog(tmp_path / "repo", system_file))
    assert result.exit_code == 2, result
    assert "plans.pro.downloads[0].file" in result.stderr and "outside the catalog's folder" in result.stderr
    assert_nothing_imported(cli, tg)


def test_a_symlink_that_stays_inside_the_folder_is_read(cli, tg, tmp_path):
    folder = tmp_path / "repo"
    (folder / "dist").mkdir(parents=True)
    (folder / "dist" / "guide-1.0.txt").write_text("the guide\n")
    (folder / "guide.txt").symlink_to(Path("dist") / "guide-1.0.txt")
    result = cli("catalog", "import", write_catalog(folder, "guide.txt"))
    assert result.exit_code == 0, result
    [stored] = blob_files(tg)
    assert stored.read_text() == "the guide\n"


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _zero_device(path: Path) -> None:
    """A character device like /dev/zero inside the folder (needs the right to mknod)."""
    zero = os.stat("/dev/zero")
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, zero.st_rdev)
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device file here: {exc}")


@pytest.mark.parametrize("make, kind", [(_fifo, "FIFO"), (_zero_device, "device")])
def test_a_fifo_or_device_in_the_catalogs_folder_is_refused_without_hanging(tg, tmp_path, make, kind):
    folder = tmp_path / "repo"
    folder.mkdir()
    make(folder / "guide.txt")
    result = run("catalog", "import", write_catalog(folder, "guide.txt"))
    assert result.returncode == 2, result
    assert "plans.pro.downloads[0].file" in result.stderr
    assert kind in result.stderr and "not a regular file" in result.stderr
    assert blob_files(tg) == []


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/urandom", "fifo"])
def test_download_add_refuses_a_fifo_or_device_without_hanging(shop, tmp_path, special):
    if special == "fifo":
        special = tmp_path / "pipe"
        os.mkfifo(special)
    result = run("download", "add", "pro", special)
    assert result.returncode == 2, result
    assert "not a regular file" in result.stderr and str(special) in result.stderr
    assert shop.downloads("pro") == []
    assert blob_files(shop) == []


def test_download_add_takes_any_regular_file_the_operator_names(shop, cli, tmp_path, secret):
    link = tmp_path / "link-to-it"
    link.symlink_to(secret)
    result = cli("download", "add", "pro", link, "--json")
    assert result.exit_code == 0, result
    assert result.json()["sha256"] == hashlib.sha256(secret.read_bytes()).hexdigest()


def test_open_regular_reads_from_the_descriptor_it_checked(tmp_path):
    """The library rule itself: a regular file opens; a folder, a FIFO or a path out of `inside` is refused."""
    from tollgate import files
    from tollgate.errors import InvalidInput

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("a")
    (tmp_path / "out.txt").write_text("b")
    os.mkfifo(tmp_path / "in" / "pipe")
    with files.open_regular(tmp_path / "in" / "a.txt", inside=tmp_path / "in") as handle:
        assert handle.read() == b"a"
    for path, needle in [(tmp_path / "in", "folder"), (tmp_path / "in" / "pipe", "FIFO"),
                         (tmp_path / "in" / ".." / "out.txt", "outside"), (tmp_path / "in" / "nope", "no file")]:
        with pytest.raises(InvalidInput, match=needle):
            files.open_regular(path, inside=tmp_path / "in").close()


# -- item 6: a stored sha256 never becomes a path out of the store ------------------------------------------


def crafted_sha256(target: Path) -> str:
    """A checksum column edited to lead from <data dir>/blobs/<aa>/ to `target`."""
    return "../" * 30 + str(target.resolve()).lstrip("/")


def craft_download(tg, sha256: str) -> None:
    from tollgate.models import PlanDownload

    with tg.db.write() as session:
        for row in session.exec(select(PlanDownload)).all():
            row.sha256 = sha256
            session.add(row)


@pytest.fixture
def crafted(shop, tmp_path, secret):
    guide = tmp_path / "guide.txt"
    guide.write_text("the guide\n")
    dl = shop.add_download("pro", guide)
    shop.add_subscription("acme", "pro")
    craft_download(shop, crafted_sha256(secret))
    return dl


def files_holding(folder: Path, content: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink() and p.read_bytes() == content]


def test_blob_path_refuses_anything_but_a_sha256(tmp_path):
    from tollgate import blobs
    from tollgate.errors import StorageError

    good = "ab" * 32
    assert blobs.blob_path(good, data_dir=tmp_path) == tmp_path / "blobs" / "ab" / good
    for bad in ["../../etc/passwd", good.upper(), good[:-1], good + "0", f"{good[:-1]}/", "", None, 7]:
        with pytest.raises(StorageError, match="not a sha256"):
            blobs.blob_path(bad, data_dir=tmp_path)


def test_export_with_files_never_copies_a_file_a_crafted_checksum_names(cli, crafted, tmp_path, secret):
    out = tmp_path / "export" / "catalog.toml"
    out.parent.mkdir()
    result = cli("catalog", "export", out, "--with-files")
    assert result.exit_code == 3, result
    assert "not a sha256" in result.stderr and "damaged" in result.stderr
    assert list(out.parent.iterdir()) == []  # no assets/, no catalog.toml
    assert files_holding(tmp_path, secret.read_bytes()) == [secret]


def test_db_copy_never_follows_a_crafted_checksum(cli, crafted, tmp_path, secret):
    target = tmp_path / "elsewhere" / "copy.db"
    target.parent.mkdir()
    result = cli("db", "copy", os.environ["TOLLGATE_DB"], target)
    assert result.exit_code == 3, result
    assert "not a sha256" in result.stderr
    assert list(target.parent.iterdir()) == []  # no database file, no blobs/
    assert files_holding(tmp_path, secret.read_bytes()) == [secret]


def test_download_get_refuses_a_crafted_checksum(cli, crafted, tmp_path, secret):
    out = tmp_path / "out"
    result = cli("download", "get", "acme", crafted.id, "--to", out, "--json")
    assert result.exit_code == 1, result
    assert "not a sha256" in result.stderr
    assert not out.exists()
    assert files_holding(tmp_path, secret.read_bytes()) == [secret]


# -- item 10: export --with-files decides everything, then writes ------------------------------------------


@pytest.fixture
def two_downloads(shop, tmp_path):
    first, second = tmp_path / "src" / "guide.txt", tmp_path / "src" / "setup.zip"
    first.parent.mkdir()
    first.write_text("the guide\n")
    second.write_bytes(b"PK\x03\x04 installer")
    shop.add_download("pro", first, name="Guide.txt")
    shop.add_download("pro", second, name="Setup.zip")
    return shop


def exported(tmp_path) -> Path:
    out = tmp_path / "repo" / "catalog.toml"
    out.parent.mkdir(exist_ok=True)
    return out


def test_export_refuses_to_replace_a_different_asset_and_writes_nothing(cli, two_downloads, tmp_path):
    out = exported(tmp_path)
    mine = out.parent / "assets" / "pro" / "setup.zip"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"the operator's own file")
    result = cli("catalog", "export", out, "--with-files")
    assert result.exit_code == 2, result
    assert str(mine) in result.stderr and "--overwrite" in result.stderr
    assert mine.read_bytes() == b"the operator's own file"
    assert sorted(p.name for p in out.parent.rglob("*")) == ["assets", "pro", "setup.zip"]  # guide.txt not written

    replaced = cli("catalog", "export", out, "--with-files", "--overwrite")
    assert replaced.exit_code == 0, replaced
    assert mine.read_bytes() == b"PK\x03\x04 installer"
    assert (out.parent / "assets" / "pro" / "guide.txt").read_text() == "the guide\n"
    assert 'file = "assets/pro/setup.zip"' in out.read_text()


def test_re_exporting_identical_assets_needs_no_overwrite(cli, two_downloads, tmp_path):
    out = exported(tmp_path)
    assert cli("catalog", "export", out, "--with-files").exit_code == 0
    again = cli("catalog", "export", out, "--with-files")
    assert again.exit_code == 0, again
    assert sorted(p.name for p in (out.parent / "assets" / "pro").iterdir()) == ["guide.txt", "setup.zip"]


def test_a_symlink_where_an_asset_goes_is_refused_without_overwrite(cli, two_downloads, tmp_path, secret):
    out = exported(tmp_path)
    (out.parent / "assets" / "pro").mkdir(parents=True)
    (out.parent / "assets" / "pro" / "guide.txt").symlink_to(secret)
    result = cli("catalog", "export", out, "--with-files")
    assert result.exit_code == 2 and "--overwrite" in result.stderr, result
    assert secret.read_text().startswith("root:")
    assert not out.exists() and not (out.parent / "assets" / "pro" / "setup.zip").exists()


def test_a_refused_export_writes_no_asset(cli, two_downloads, tmp_path):
    """The second download's content is gone from the store: the first one is not written either."""
    setup = two_downloads.downloads("pro")[1]
    (two_downloads.data_dir / "blobs" / setup.sha256[:2] / setup.sha256).unlink()
    out = exported(tmp_path)
    result = cli("catalog", "export", out, "--with-files")
    assert result.exit_code == 2, result
    assert setup.sha256 in result.stderr
    assert list(out.parent.iterdir()) == []


def test_a_file_where_the_assets_folder_goes_is_refused(cli, two_downloads, tmp_path):
    out = exported(tmp_path)
    (out.parent / "assets").write_text("not a folder")
    result = cli("catalog", "export", out, "--with-files")
    assert result.exit_code == 2, result
    assert str(out.parent / "assets") in result.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["assets"]


def test_a_crafted_plan_identifier_never_leads_an_asset_out_of_the_folder(cli, two_downloads, tmp_path):
    from tollgate.models import Plan

    with two_downloads.db.write() as session:
        plan = session.exec(select(Plan).where(Plan.identifier == "pro")).one()
        plan.identifier = "../../escaped"
        session.add(plan)
    out = exported(tmp_path)
    result = cli("catalog", "export", out, "--with-files")
    assert result.exit_code == 3, result
    assert "damaged" in result.stderr
    assert list(out.parent.iterdir()) == [] and not (tmp_path / "escaped").exists()
