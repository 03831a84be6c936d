"""Downloads: stored by content, listed, fetched by entitled customers only, checksum-verified,
never written outside the target folder."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.fixture
def shop(tg):
    tg.create_product("Editor", identifier="editor")
    tg.create_plan("app", product="editor", prices=[("once", "USD", "39.00")])
    tg.create_plan("other", product="editor", prices=[("once", "USD", "9.00")])
    tg.add_customer("Acme", identifier="acme")
    tg.add_customer("Globex", identifier="globex")
    return tg


@pytest.fixture
def installer(tmp_path) -> Path:
    path = tmp_path / "src" / "editor-2.4.zip"
    path.parent.mkdir()
    path.write_bytes(b"PK\x03\x04" + os.urandom(5000))
    return path


def blobs_in(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "blobs").rglob("*") if p.is_file())


def add(cli, *args) -> dict:
    result = cli("download", "add", *args, "--json")
    assert result.exit_code == 0, result
    return result.json()


# -- add / list -------------------------------------------------------------------------------------------


def test_add_stores_the_file_by_its_sha256(shop, cli, installer):
    data = add(cli, "app", str(installer))
    content = installer.read_bytes()
    sha = hashlib.sha256(content).hexdigest()
    assert data == {"id": data["id"], "plan": "app", "name": "editor-2.4.zip", "size": len(content),
                    "sha256": sha, "enabled": True}
    assert data["id"].startswith("dl_")
    stored = shop.data_dir / "blobs" / sha[:2] / sha
    assert stored.read_bytes() == content
    assert cli("download", "list", "app", "--json").json() == [data]
    assert shop.plan("app").to_dict()["downloads"] == [data]
    assert "download.add" in [e.action for e in shop.journal()]


def test_the_same_content_is_stored_once(shop, cli, installer, tmp_path):
    copy = tmp_path / "copy.zip"
    copy.write_bytes(installer.read_bytes())
    first = add(cli, "app", str(installer))
    second = add(cli, "other", str(copy), "--name", "Installer")
    third = add(cli, "app", str(copy), "--name", "Installer (mirror)")
    assert first["sha256"] == second["sha256"] == third["sha256"]
    assert len(blobs_in(shop.data_dir)) == 1
    assert len({first["id"], second["id"], third["id"]}) == 3


def test_add_names_and_order(shop, cli, installer):
    add(cli, "app", str(installer), "--name", "Windows installer")
    add(cli, "app", str(installer), "--name", "macOS installer")
    assert [d["name"] for d in cli("download", "list", "app", "--json").json()] == ["Windows installer", "macOS installer"]
    taken = cli("download", "add", "app", str(installer), "--name", "macOS installer")
    assert taken.exit_code == 1 and "already has a download named" in taken.stderr


@pytest.mark.parametrize("args, needle", [
    (["ghost", "{file}"], "No plan has the identifier"),
    (["app", "{missing}"], "There is no file"),
    (["app", "{folder}"], "is a folder"),
    (["app", "{file}", "--name", "   "], "needs a name"),
    (["app", "{file}", "--name", "bad\x1b[2Jname"], "control characters"),
])
def test_add_refuses_bad_input_with_exit_2(shop, cli, installer, tmp_path, args, needle):
    values = {"file": str(installer), "missing": str(tmp_path / "nope.zip"), "folder": str(tmp_path)}
    result = cli("download", "add", *[a.format(**values) for a in args])
    assert result.exit_code == 2, result
    assert needle in result.stderr
    assert shop.downloads("app") == []
    assert blobs_in(shop.data_dir) == []


def test_list_needs_a_plan_or_a_customer(shop, cli):
    assert cli("download", "list").exit_code == 2
    assert cli("download", "list", "ghost").exit_code == 2
    assert cli("download", "list", "--customer", "ghost").exit_code == 2


def test_list_for_a_customer_shows_what_they_are_entitled_to(shop, cli, installer, tmp_path):
    app_dl = add(cli, "app", str(installer))
    add(cli, "other", str(installer))
    assert cli("download", "list", "--customer", "acme", "--json").json() == []
    shop.add_subscription("acme", "app")
    assert cli("download", "list", "--customer", "acme", "--json").json() == [app_dl]
    assert cli("download", "list", "--customer", "globex", "--json").json() == []
    table = cli("download", "list", "--customer", "acme")
    assert table.exit_code == 0 and app_dl["id"] in table.stdout


# -- get ------------------------------------------------------------------------------------------------------


def test_an_entitled_customer_gets_the_verified_file(shop, cli, installer, tmp_path):
    dl = add(cli, "app", str(installer))
    shop.add_subscription("acme", "app")
    out = tmp_path / "out"
    result = cli("download", "get", "acme", dl["id"], "--to", str(out), "--json")
    assert result.exit_code == 0, result
    data = result.json()
    assert data["path"] == str(out / "editor-2.4.zip") and data["customer"] == "acme"
    assert (out / "editor-2.4.zip").read_bytes() == installer.read_bytes()
    assert os.listdir(out) == ["editor-2.4.zip"]  # no temp file left behind
    delivered = [e for e in shop.journal(customer="acme") if e.action == "download.deliver"]
    assert [e.object_id for e in delivered] == [dl["id"]]
    plain = cli("download", "get", "acme", dl["id"], "--to", str(out), "--as", "copy.zip")
    assert plain.exit_code == 0 and "sha256 verified" in plain.stdout


def test_a_customer_without_a_subscription_is_refused(shop, cli, installer, tmp_path):
    dl = add(cli, "app", str(installer))
    shop.add_subscription("globex", "other")
    out = tmp_path / "out"
    result = cli("download", "get", "globex", dl["id"], "--to", str(out))
    assert result.exit_code == 1
    assert "not entitled" in result.stderr and result.stdout == ""
    assert not out.exists() or os.listdir(out) == []


def test_a_canceled_subscription_ends_the_entitlement(shop, cli, installer, tmp_path):
    dl = add(cli, "app", str(installer))
    sub = shop.add_subscription("acme", "app")
    shop.cancel_subscription(sub.id)
    result = cli("download", "get", "acme", dl["id"], "--to", str(tmp_path / "out"))
    assert result.exit_code == 1 and "not entitled" in result.stderr
    assert shop.downloads(customer="acme") == []


def test_a_disabled_download_is_refused_until_enabled(shop, cli, installer, tmp_path):
    dl = add(cli, "app", str(installer))
    shop.add_subscription("acme", "app")
    disabled = cli("download", "disable", dl["id"], "--json")
    assert disabled.exit_code == 0 and disabled.json()["enabled"] is False
    result = cli("download", "get", "acme", dl["id"], "--to", str(tmp_path / "out"))
    assert result.exit_code == 1 and "disabled" in result.stderr
    assert cli("download", "disable", dl["id"]).exit_code == 1  # already
    assert cli("download", "enable", dl["id"]).exit_code == 0
    assert cli("download", "get", "acme", dl["id"], "--to", str(tmp_path / "out")).exit_code == 0
    actions = [e.action for e in shop.journal()]
    assert "download.disable" in actions and "download.enable" in actions


def test_a_tampered_stored_file_is_refused_and_nothing_is_written(shop, cli, installer, tmp_path):
    dl = add(cli, "app", str(installer))
    shop.add_subscription("acme", "app")
    stored = shop.data_dir / "blobs" / dl["sha256"][:2] / dl["sha256"]
    tampered = bytearray(stored.read_bytes())
    tampered[100] ^= 0xFF  # same size, different content
    stored.chmod(0o600)
    stored.write_bytes(bytes(tampered))
    out = tmp_path / "out"
    result = cli("download", "get", "acme", dl["id"], "--to", str(out))
    assert result.exit_code == 1
    assert "corrupted" in result.stderr and result.stdout == ""
    assert os.listdir(out) == []  # neither the file nor a partial copy


def test_a_truncated_stored_file_is_corrupted(shop, cli, installer, tmp_path):
    dl = add(cli, "app", str(installer))
    shop.add_subscription("acme", "app")
    stored = shop.data_dir / "blobs" / dl["sha256"][:2] / dl["sha256"]
    stored.write_bytes(stored.read_bytes()[:10])
    result = cli("download", "get", "acme", dl["id"], "--to", str(tmp_path / "out"))
    assert result.exit_code == 1 and "corrupted" in result.stderr


def test_a_missing_stored_file_is_refused(shop, cli, installer, tmp_path):
    dl = add(cli, "app", str(installer))
    shop.add_subscription("acme", "app")
    (shop.data_dir / "blobs" / dl["sha256"][:2] / dl["sha256"]).unlink()
    result = cli("download", "get", "acme", dl["id"], "--to", str(tmp_path / "out"))
    assert result.exit_code == 1 and "missing" in result.stderr


def test_get_refuses_unknown_customer_or_download_with_exit_2(shop, cli, installer, tmp_path):
    dl = add(cli, "app", str(installer))
    assert cli("download", "get", "ghost", dl["id"], "--to", str(tmp_path)).exit_code == 2
    assert cli("download", "get", "acme", "dl_nothere", "--to", str(tmp_path)).exit_code == 2


def test_an_existing_file_is_kept_unless_overwrite(shop, cli, installer, tmp_path):
    dl = add(cli, "app", str(installer))
    shop.add_subscription("acme", "app")
    out = tmp_path / "out"
    out.mkdir()
    (out / "editor-2.4.zip").write_text("mine")
    refused = cli("download", "get", "acme", dl["id"], "--to", str(out))
    assert refused.exit_code == 1 and "already exists" in refused.stderr
    assert (out / "editor-2.4.zip").read_text() == "mine"
    assert cli("download", "get", "acme", dl["id"], "--to", str(out), "--overwrite").exit_code == 0
    assert (out / "editor-2.4.zip").read_bytes() == installer.read_bytes()


def test_to_must_be_a_folder(shop, cli, installer, tmp_path):
    dl = add(cli, "app", str(installer))
    shop.add_subscription("acme", "app")
    result = cli("download", "get", "acme", dl["id"], "--to", str(installer))
    assert result.exit_code == 2 and "not a folder" in result.stderr


# -- path traversal -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "..", "../..", "..\\..\\boot.ini", "./.bashrc",
                                  "a/../../b", "con"])  # a bidi override is refused at add (test_text_rule)
def test_names_never_leave_the_target_folder(shop, cli, installer, tmp_path, name):
    dl = add(cli, "app", str(installer), "--name", name)
    shop.add_subscription("acme", "app")
    out = tmp_path / "deep" / "er" / "out"
    before = {p for p in tmp_path.rglob("*")}
    result = cli("download", "get", "acme", dl["id"], "--to", str(out), "--json")
    assert result.exit_code == 0, result
    written = Path(result.json()["path"])
    assert written.parent == out and written.read_bytes() == installer.read_bytes()
    assert not written.name.startswith(".")
    created = {p for p in tmp_path.rglob("*")} - before
    assert created == {tmp_path / "deep", tmp_path / "deep" / "er", out, written}
    assert not (tmp_path / "deep" / "etc").exists() and not (tmp_path / "etc").exists()


def test_the_as_name_is_made_safe_too(shop, cli, installer, tmp_path):
    dl = add(cli, "app", str(installer))
    shop.add_subscription("acme", "app")
    out = tmp_path / "a" / "out"
    result = cli("download", "get", "acme", dl["id"], "--to", str(out), "--as", "../escaped.zip", "--json")
    assert result.exit_code == 0
    assert Path(result.json()["path"]).parent == out
    assert not (tmp_path / "a" / "escaped.zip").exists()


@given(st.text(max_size=300))
@settings(max_examples=400, deadline=None)
def test_safe_filename_is_always_one_plain_name(name):
    from tollgate.downloads import safe_filename

    safe = safe_filename(name, fallback="dl_x")
    assert safe and "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert safe not in (".", "..") and not safe.startswith(".")
    assert len(safe.encode("utf-8")) <= 200


def test_a_damaged_checksum_record_never_becomes_a_path(shop, installer, tmp_path):
    """Even a database row edited by hand can't point the copy outside the store."""
    from sqlmodel import select

    from tollgate import downloads
    from tollgate.models import PlanDownload

    dl = shop.add_download("app", installer)
    shop.add_subscription("acme", "app")
    with shop.db.write() as session:
        row = session.exec(select(PlanDownload).where(PlanDownload.public_id == dl.id)).one()
        row.sha256 = "../../../../etc/passwd"
        session.add(row)
    with pytest.raises(downloads.DownloadRefused) as caught:
        shop.fetch_download("acme", dl.id, tmp_path / "out")
    assert caught.value.reason == "corrupted"


# -- large files stream --------------------------------------------------------------------------------


def test_large_files_stream_with_bounded_memory(shop, tmp_path):
    import tracemalloc

    big = tmp_path / "big.bin"
    chunk = os.urandom(1 << 20)
    with open(big, "wb") as handle:
        for _ in range(24):
            handle.write(chunk)
    tracemalloc.start()
    try:
        dl = shop.add_download("app", big)
        shop.add_subscription("acme", "app")
        tracemalloc.reset_peak()
        result = shop.fetch_download("acme", dl.id, tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * (1 << 20), f"peak {peak:,} bytes for a 24 MiB file"
    assert dl.size == 24 << 20 and result.download == dl and result.customer == "acme"
    assert hashlib.sha256(result.path.read_bytes()).hexdigest() == dl.sha256


# -- remove ---------------------------------------------------------------------------------------------


def test_remove_deletes_the_record_and_keeps_shared_content(shop, cli, installer):
    first = add(cli, "app", str(installer))
    second = add(cli, "other", str(installer))
    result = cli("download", "remove", first["id"], "--yes", "--json")
    assert result.exit_code == 0 and result.json() == first
    assert cli("download", "list", "app", "--json").json() == []
    assert cli("download", "list", "other", "--json").json() == [second]
    assert len(blobs_in(shop.data_dir)) == 1
    again = cli("download", "remove", first["id"], "--yes")
    assert again.exit_code == 2 and "No download has the id" in again.stderr
    assert "download.remove" in [e.action for e in shop.journal()]


# -- customer show and the catalog ------------------------------------------------------------------------------


def test_customer_show_lists_entitled_downloads(shop, cli, installer):
    dl = add(cli, "app", str(installer))
    shop.add_subscription("acme", "app")
    assert cli("customer", "show", "acme", "--json").json()["downloads"] == [dl]
    text = cli("customer", "show", "acme").stdout
    assert "Downloads" in text and dl["id"] in text
    assert "Downloads: none" in cli("customer", "show", "globex").stdout


def test_catalog_export_and_import_carry_downloads_and_links(shop, cli, installer, tmp_path):
    dl = add(cli, "app", str(installer), "--name", "Installer")
    cli("download", "disable", dl["id"])
    assert cli("link", "add", "app", "Forum", "https://forum.example.com/").exit_code == 0
    exported = tmp_path / "export" / "catalog.toml"
    exported.parent.mkdir()
    assert cli("catalog", "export", str(exported), "--with-files").exit_code == 0
    text = exported.read_text()
    assert dl["sha256"] in text and "Installer" in text and "enabled = false" in text and "forum.example.com" in text

    fresh = tmp_path / "elsewhere" / "fresh.db"
    fresh.parent.mkdir()
    imported = cli("--db", str(fresh), "catalog", "import", str(exported))
    assert imported.exit_code == 0, imported
    again = cli("--db", str(fresh), "catalog", "export").stdout
    assert again == cli("catalog", "export").stdout
    [copied] = cli("--db", str(fresh), "download", "list", "app", "--json").json()
    assert (copied["name"], copied["sha256"], copied["size"], copied["enabled"]) == ("Installer", dl["sha256"], dl["size"], False)
    assert blobs_in(fresh.parent)[0].read_bytes() == installer.read_bytes()
