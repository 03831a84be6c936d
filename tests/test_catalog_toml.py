"""catalog export / import: round trips, dry runs, idempotence, validation with TOML paths, prune."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample-catalog.toml"

BASE = """\
version = 1

[products.ai]
name = "AI"

[features.tokens]
name = "Tokens"
type = "metered"

[features.sso]
name = "SSO"
type = "boolean"

[plans.pro]
product = "ai"
name = "Pro"
prices = [ { interval = "month", currency = "USD", amount = "49.00" } ]

[plans.pro.entitlements]
tokens = { limit = 1000 }
sso = true
"""


def snapshot(db_path: Path) -> bytes:
    """The database's bytes, with every connection closed (so the WAL is folded into the file)."""
    from tollgate.cli import context

    if context.state.handle is not None:
        context.state.handle.close()
    wal = Path(f"{db_path}-wal")
    return db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def write(tmp_path: Path, text: str | bytes, name: str = "catalog.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def copy_sample(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLE, folder / "sample-catalog.toml")
    shutil.copytree(REPO / "assets", folder / "assets", dirs_exist_ok=True)
    return folder / "sample-catalog.toml"


# -- the sample catalog and round trips --------------------------------------------------------------------


def test_sample_catalog_imports_and_shows_the_three_ways_of_selling(cli, db_path):
    result = cli("catalog", "import", str(SAMPLE), "--json")
    assert result.exit_code == 0, result
    summary = result.json()
    assert summary["summary"] == {"create": 20, "update": 0, "unchanged": 0, "archive": 0}
    plans = {p["identifier"]: p for p in cli("plan", "list", "--json").json()}
    assert set(plans) == {"ai-builder", "ai-scale", "markdown-studio-2", "free", "starter", "pro", "enterprise"}
    tokens = next(e for e in plans["ai-builder"]["entitlements"] if e["feature"] == "ai-tokens")
    images = next(e for e in plans["ai-builder"]["entitlements"] if e["feature"] == "image-generations")
    assert (tokens["hard"], images["hard"]) == (False, True)
    assert plans["ai-builder"]["usage_charges"][0]["model"] == "tiered"
    one_time = plans["markdown-studio-2"]
    assert {p["interval"] for p in one_time["prices"]} == {"once"}
    assert one_time["license"] == {"activation_limit": 3, "expires_after": "never", "activations_per_day": 10,
                                   "files_per_day": 50}
    assert [d["name"] for d in one_time["downloads"]] == ["Quick-start guide.txt"]
    assert len(one_time["links"]) == 2
    assert {e["type"] for e in plans["pro"]["entitlements"]} == {"boolean", "config", "metered"}
    assert {(p["interval"], p["currency"]) for p in plans["pro"]["prices"]} == {
        ("month", "USD"), ("month", "EUR"), ("year", "USD"), ("year", "EUR")}
    assert plans["free"]["prices"] == []


@pytest.mark.sqlite_only("the data folder is the database file's folder")
def test_downloads_are_stored_by_content_owner_only(cli, db_path):
    assert cli("catalog", "import", str(SAMPLE)).exit_code == 0
    download = cli("plan", "show", "markdown-studio-2", "--json").json()["downloads"][0]
    blob = db_path.parent / "blobs" / download["sha256"][:2] / download["sha256"]
    assert blob.read_bytes() == (REPO / "assets" / "markdown-studio-quickstart.txt").read_bytes()
    assert download["size"] == blob.stat().st_size
    assert stat.S_IMODE(blob.stat().st_mode) == 0o600
    assert stat.S_IMODE(blob.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((db_path.parent / "blobs").stat().st_mode) == 0o700


@pytest.mark.sqlite_only("both databases use the file's folder as data folder")
def test_export_import_into_an_empty_database_export_is_byte_identical(cli, tmp_path):
    assert cli("catalog", "import", str(SAMPLE)).exit_code == 0
    first = cli("catalog", "export")
    assert first.exit_code == 0, first
    exported = write(tmp_path, first.stdout, "export.toml")
    second_db = tmp_path / "second.db"  # the same folder: the download content is already in its store
    assert cli("--db", str(second_db), "catalog", "import", str(exported)).exit_code == 0
    second = cli("--db", str(second_db), "catalog", "export")
    assert second.stdout == first.stdout
    assert cli("--db", str(second_db), "catalog", "import", str(exported), "--json").json()["changed"] is False


def test_export_is_canonical_whatever_the_order_and_spelling_of_the_file(cli, tmp_path):
    messy = write(tmp_path, """\
version = 1
[plans.b]
product = "p"
prices = [ { interval = "year", currency = "usd", amount = "100" }, { interval = "month", currency = "EUR", amount = "9.5" } ]
[plans.b.entitlements]
sso = true
tokens = 5000
[plans.a]
product = "p"
[products.p]
name = "  P  "
[features.tokens]
type = "metered"
name = "Tokens"
[features.sso]
type = "boolean"
name = "SSO"
""")
    assert cli("catalog", "import", str(messy)).exit_code == 0
    text = cli("catalog", "export").stdout
    assert text.index("[features.sso]") < text.index("[features.tokens]") < text.index("[plans.a]") < text.index("[plans.b]")
    assert 'prices = [\n  { interval = "month", currency = "EUR", amount = "9.50" },\n' \
           '  { interval = "year", currency = "USD", amount = "100.00" },\n]' in text
    assert 'tokens = { limit = 5000, reset = "month", hard = false }' in text
    assert '[plans.a]\nproduct = "p"\nname = "A"\n' in text
    assert '[products.p]\nname = "P"\n' in text


def test_export_to_a_file_is_atomic_and_matches_stdout(cli, tmp_path):
    cli("catalog", "import", str(SAMPLE))
    target = tmp_path / "out" / "catalog.toml"
    target.parent.mkdir()
    target.write_text("old content")
    written = cli("catalog", "export", str(target))
    assert written.exit_code == 0, written
    assert written.stdout == f"Wrote the catalog to {target}.\n"
    assert target.read_text(encoding="utf-8") == cli("catalog", "export").stdout
    assert sorted(p.name for p in target.parent.iterdir()) == ["catalog.toml"]  # no temp file left behind
    missing = cli("catalog", "export", str(tmp_path / "no" / "such" / "dir.toml"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_export_with_files_carries_downloads_to_another_machine(cli, tmp_path):
    cli("catalog", "import", str(SAMPLE))
    out = tmp_path / "repo" / "catalog.toml"
    out.parent.mkdir()
    assert cli("catalog", "export", str(out), "--with-files").exit_code == 0
    text = out.read_text(encoding="utf-8")
    assert 'file = "assets/markdown-studio-2/quick-start-guide.txt"' in text
    assert (out.parent / "assets" / "markdown-studio-2" / "quick-start-guide.txt").read_bytes() == (
        REPO / "assets" / "markdown-studio-quickstart.txt").read_bytes()
    elsewhere = tmp_path / "elsewhere" / "tollgate.db"  # a new data directory: an empty store
    elsewhere.parent.mkdir()
    assert cli("--db", str(elsewhere), "catalog", "import", str(out)).exit_code == 0
    assert cli("--db", str(elsewhere), "catalog", "export").stdout == cli("catalog", "export").stdout
    no_file = cli("catalog", "export", "--with-files")
    assert no_file.exit_code == 2 and "FILE" in no_file.stderr


# -- dry run and idempotence --------------------------------------------------------------------------------


@pytest.mark.sqlite_only("byte-identical file")
def test_dry_run_prints_the_plan_and_writes_nothing(cli, empty_db):
    db_path = empty_db
    before = snapshot(db_path)
    result = cli("catalog", "import", str(SAMPLE), "--dry-run")
    assert result.exit_code == 0, result
    lines = result.stdout.splitlines()
    assert lines[0] == f"Plan for {SAMPLE} (dry run: nothing written)"
    assert "create  product  lumen-ai" in result.stdout
    assert "create  plan     markdown-studio-2" in result.stdout
    assert lines[-1] == "Dry run, nothing written: would create 20; 0 unchanged."
    assert snapshot(db_path) == before
    assert not (db_path.parent / "blobs").exists()
    assert cli("plan", "list", "--all", "--json").json() == []


@pytest.mark.sqlite_only("byte-identical file")
def test_dry_run_of_changes_lists_update_and_archive_and_writes_nothing(cli, db_path, tmp_path):
    cli("catalog", "import", str(SAMPLE))
    changed = SAMPLE.read_text(encoding="utf-8").replace('amount = "49.00"', 'amount = "59.00"')
    changed = changed.replace('[plans.free]\nproduct = "teamboard"\nname = "Free"', '[plans.free]\nproduct = "teamboard"\nname = "Free forever"')
    folder = tmp_path / "edited"
    path = copy_sample(folder)
    path.write_text(changed.replace("[plans.enterprise]", "[plans.enterprise-gone]").split("[plans.enterprise-gone]")[0],
                    encoding="utf-8")
    before = snapshot(db_path)
    result = cli("catalog", "import", str(path), "--dry-run", "--prune", "--json")
    assert result.exit_code == 0, result
    actions = {(c["kind"], c["identifier"]): (c["action"], c["fields"]) for c in result.json()["changes"]}
    assert actions[("plan", "pro")] == ("update", ["prices"])
    assert actions[("plan", "free")] == ("update", ["name"])
    assert actions[("plan", "enterprise")] == ("archive", [])
    assert actions[("plan", "starter")] == ("unchanged", [])
    assert snapshot(db_path) == before


def test_reimport_is_a_no_op_that_says_so(cli, tg):
    cli("catalog", "import", str(SAMPLE))
    journal_before = len(tg.journal())
    again = cli("catalog", "import", str(SAMPLE))
    assert again.exit_code == 0, again
    assert again.stdout == f"Nothing to change: the database already matches {SAMPLE} (20 object(s) unchanged).\n"
    assert len(tg.journal()) == journal_before


def test_import_journals_each_change(cli, tg):
    cli("catalog", "import", str(SAMPLE))
    entries = tg.journal()
    assert ("plan.create", "pro") in [(e.action, e.object_id) for e in entries]
    assert entries[-1].action == "catalog.import" and entries[-1].details == {"create": 20}


# -- updates, prune, restore ---------------------------------------------------------------------------------


def test_update_keeps_download_and_link_ids_and_replaces_contents(cli, tmp_path):
    folder = tmp_path / "cat"
    path = copy_sample(folder)
    cli("catalog", "import", str(path))
    before = cli("plan", "show", "markdown-studio-2", "--json").json()
    text = path.read_text(encoding="utf-8")
    text = text.replace('url = "https://markdown-studio.example/changelog"', 'url = "https://markdown-studio.example/news"')
    text = text.replace("activation_limit = 3", 'activation_limit = "unlimited"')
    path.write_text(text, encoding="utf-8")
    result = cli("catalog", "import", str(path))
    assert result.exit_code == 0, result
    assert "Updated plan markdown-studio-2 (license, links)." in result.stdout
    after = cli("plan", "show", "markdown-studio-2", "--json").json()
    assert after["license"]["activation_limit"] is None
    assert [ln["id"] for ln in after["links"]] == [ln["id"] for ln in before["links"]]
    assert after["links"][1]["url"] == "https://markdown-studio.example/news"
    assert after["downloads"] == before["downloads"]


def test_without_prune_missing_objects_stay_and_with_prune_they_are_archived(cli, tmp_path):
    cli("catalog", "import", str(SAMPLE))
    partial = write(tmp_path, BASE)
    kept = cli("catalog", "import", str(partial))
    assert kept.exit_code == 0, kept
    assert "are not in" in kept.stderr and "--prune archives them" in kept.stderr
    plans = {p["identifier"]: p for p in cli("plan", "list", "--json").json()}
    assert len(plans) == 7 and plans["pro"]["product"] == "ai"  # the file's pro moved to its product
    pruned = cli("catalog", "import", str(partial), "--prune", "--json")
    assert pruned.exit_code == 0, pruned
    assert pruned.json()["summary"]["archive"] == 6 + 3 + 9  # plans, products, features (sso stays)
    assert [p["identifier"] for p in cli("plan", "list", "--json").json()] == ["pro"]
    assert [p["identifier"] for p in cli("product", "list", "--json").json()] == ["ai"]
    again = cli("catalog", "import", str(partial), "--prune")
    assert again.stdout.startswith("Nothing to change")


def test_plan_named_in_another_file_is_moved_and_archived_objects_are_restored(cli, tmp_path):
    cli("catalog", "import", str(write(tmp_path, BASE)))
    archived = BASE.replace('name = "Pro"', 'name = "Pro"\narchived = true')
    assert cli("catalog", "import", str(write(tmp_path, archived, "a.toml"))).exit_code == 0
    assert cli("plan", "show", "pro", "--json").json()["status"] == "archived"
    assert 'archived = true' in cli("catalog", "export").stdout
    restored = cli("catalog", "import", str(write(tmp_path, BASE, "b.toml")))
    assert "Updated plan pro (archived)." in restored.stdout
    assert cli("plan", "show", "pro", "--json").json()["status"] == "active"


def test_archiving_a_product_in_the_file_needs_its_plans_archived(cli, tmp_path):
    text = BASE.replace('name = "AI"', 'name = "AI"\narchived = true')
    result = cli("catalog", "import", str(write(tmp_path, text)))
    assert result.exit_code == 2
    assert "plans.pro.product" in result.stderr and "archived" in result.stderr
    both = text.replace('name = "Pro"', 'name = "Pro"\narchived = true')
    assert cli("catalog", "import", str(write(tmp_path, both, "both.toml"))).exit_code == 0


# -- refusals ----------------------------------------------------------------------------------------------


@pytest.mark.sqlite_only("byte-identical file")
def test_changing_a_feature_type_is_refused(cli, db_path, tmp_path):
    cli("catalog", "import", str(write(tmp_path, BASE)))
    before = snapshot(db_path)
    changed = BASE.replace('[features.sso]\nname = "SSO"\ntype = "boolean"', '[features.sso]\nname = "SSO"\ntype = "config"')
    result = cli("catalog", "import", str(write(tmp_path, changed, "changed.toml")))
    assert result.exit_code == 2
    assert "features.sso.type" in result.stderr and "never changes" in result.stderr
    assert snapshot(db_path) == before


@pytest.mark.sqlite_only("byte-identical file")
def test_changing_an_identifier_is_refused(cli, db_path, tmp_path):
    cli("catalog", "import", str(write(tmp_path, BASE)))
    before = snapshot(db_path)
    renamed = BASE.replace("[features.sso]", "[features.single-sign-on]").replace("sso = true", "single-sign-on = true")
    result = cli("catalog", "import", str(write(tmp_path, renamed, "renamed.toml")), "--prune")
    assert result.exit_code == 2, result
    assert "features.single-sign-on" in result.stderr and "identifiers never change" in result.stderr
    assert snapshot(db_path) == before


INVALID = [
    ("unknown feature", ("sso = true", "sso = true\nnope = 3"), "plans.pro.entitlements.nope"),
    ("unknown product", ('product = "ai"', 'product = "nope"'), "plans.pro.product"),
    ("negative price", ('"49.00"', '"-49.00"'), "plans.pro.prices[0].amount"),
    ("float price", ('amount = "49.00"', "amount = 49.0"), "plans.pro.prices[0].amount"),
    ("integer price", ('amount = "49.00"', "amount = 49"), "plans.pro.prices[0].amount"),
    ("too many decimals", ('"49.00"', '"49.001"'), "plans.pro.prices[0].amount"),
    ("bad currency", ('"USD"', '"XYZ"'), "plans.pro.prices[0].currency"),
    ("bad interval", ('"month"', '"weekly"'), "plans.pro.prices[0].interval"),
    ("duplicate plan", ("[plans.pro.entitlements]", '[plans.pro]\nproduct = "ai"\n\n[plans.pro.entitlements]'),
     "plans.pro is declared twice"),
    ("duplicate price", ('prices = [ { interval = "month", currency = "USD", amount = "49.00" } ]',
                         'prices = [ { interval = "month", currency = "USD", amount = "49.00" }, '
                         '{ interval = "month", currency = "USD", amount = "50.00" } ]'), "plans.pro.prices[1]"),
    ("duplicate key", ('name = "Pro"', 'name = "Pro"\nname = "Pro 2"'), "line"),
    ("negative limit", ("limit = 1000", "limit = -5"), "plans.pro.entitlements.tokens.limit"),
    ("float limit", ("limit = 1000", "limit = 10.5"), "plans.pro.entitlements.tokens.limit"),
    ("bad reset", ("limit = 1000", 'limit = 1000, reset = "hourly"'), "plans.pro.entitlements.tokens.reset"),
    ("boolean as text", ("sso = true", 'sso = "yes"'), "plans.pro.entitlements.sso"),
    ("unknown key", ('name = "Pro"', 'name = "Pro"\ntrail_days = 3'), "plans.pro.trail_days"),
    ("bad identifier", ("[features.sso]", "[features.Single_Sign_On]"), 'features.Single_Sign_On'),
    ("bad type", ('type = "boolean"', 'type = "switch"'), "features.sso.type"),
    ("missing name", ('[products.ai]\nname = "AI"', "[products.ai]"), "products.ai.name"),
    ("version", ("version = 1", "version = 2"), "version"),
    ("charge on unknown feature", ("sso = true", 'sso = true\n\n[[plans.pro.usage_charges]]\nfeature = "nope"\n'
                                   'currency = "USD"\nmodel = "flat"\nunit_price = "0.01"'),
     "plans.pro.usage_charges[0].feature"),
    ("charge as float", ("sso = true", 'sso = true\n\n[[plans.pro.usage_charges]]\nfeature = "tokens"\n'
                         'currency = "USD"\nmodel = "flat"\nunit_price = 0.01'),
     "plans.pro.usage_charges[0].unit_price"),
    ("charge on a boolean", ("sso = true", 'sso = true\n\n[[plans.pro.usage_charges]]\nfeature = "sso"\n'
                             'currency = "USD"\nmodel = "flat"\nunit_price = "0.01"'),
     "plans.pro.usage_charges[0].feature"),
    ("license", ("sso = true", "sso = true\n\n[plans.pro.license]\nactivation_limit = 0"),
     "plans.pro.license.activation_limit"),
    ("link", ("sso = true", 'sso = true\n\n[[plans.pro.links]]\nname = "Docs"\nurl = "javascript:alert(1)"'),
     "plans.pro.links[0].url"),
    ("download without file", ("sso = true", 'sso = true\n\n[[plans.pro.downloads]]\nname = "App"\nsha256 = "'
                               + "ab" * 32 + '"'), "plans.pro.downloads[0].file"),
    ("download missing", ("sso = true", 'sso = true\n\n[[plans.pro.downloads]]\nname = "App"\nfile = "nope.zip"'),
     "plans.pro.downloads[0].file"),
    ("malformed TOML", ("[plans.pro]", "[plans.pro"), "malformed TOML"),
]


@pytest.mark.parametrize("mutation, expected", [(m, e) for _, m, e in INVALID], ids=[n for n, _, _ in INVALID])
@pytest.mark.sqlite_only("byte-identical file")
def test_every_validation_error_is_exit_2_names_the_path_and_writes_nothing(cli, db_path, tmp_path, mutation, expected):
    old, new = mutation
    assert old in BASE
    cli("product", "create", "existing")
    before = snapshot(db_path)
    path = write(tmp_path, BASE.replace(old, new, 1))
    result = cli("catalog", "import", str(path))
    assert result.exit_code == 2, result
    assert expected in result.stderr, result.stderr
    assert "Nothing was imported" in result.stderr or "nothing was imported" in result.stderr
    assert result.stdout == ""
    assert snapshot(db_path) == before


@pytest.mark.parametrize(
    "content, expected",
    [
        (b'version = 1\n[products.ai]\nname = "\xff\xfe"\n', "not UTF-8"),
        (("a = " + "[" * 3000 + "]" * 3000 + "\n").encode(), "nested too deeply"),
        (b"version = 1\n[products\n", "malformed TOML"),
    ],
    ids=["invalid utf-8", "deeply nested", "malformed"],
)
@pytest.mark.sqlite_only("byte-identical file")
def test_unreadable_files_are_exit_2(cli, empty_db, tmp_path, content, expected):
    db_path = empty_db
    before = snapshot(db_path)
    result = cli("catalog", "import", str(write(tmp_path, content)))
    assert result.exit_code == 2, result
    assert expected in result.stderr
    assert snapshot(db_path) == before
    missing = cli("catalog", "import", str(tmp_path / "nope.toml"))
    assert missing.exit_code == 2 and "There is no file" in missing.stderr


def test_all_problems_are_reported_at_once(cli, tmp_path):
    text = BASE.replace('"USD"', '"XYZ"').replace("sso = true", "sso = 3\nnope = 1").replace('[products.ai]\nname = "AI"', "[products.ai]")
    result = cli("catalog", "import", str(write(tmp_path, text)))
    assert result.exit_code == 2
    for path in ("products.ai.name", "plans.pro.prices[0].currency", "plans.pro.entitlements.sso",
                 "plans.pro.entitlements.nope"):
        assert path in result.stderr
    assert "4 problems" in result.stderr


def test_download_checksum_is_checked(cli, tmp_path):
    (tmp_path / "app.zip").write_bytes(b"the app")
    wrong = BASE + '\n[[plans.pro.downloads]]\nname = "App"\nfile = "app.zip"\nsha256 = "' + "0" * 64 + '"\n'
    result = cli("catalog", "import", str(write(tmp_path, wrong)))
    assert result.exit_code == 2
    assert "plans.pro.downloads[0].sha256" in result.stderr
    right = BASE + '\n[[plans.pro.downloads]]\nname = "App"\nfile = "app.zip"\n'
    assert cli("catalog", "import", str(write(tmp_path, right, "right.toml"))).exit_code == 0
    sha = cli("plan", "show", "pro", "--json").json()["downloads"][0]["sha256"]
    by_content = BASE + f'\n[[plans.pro.downloads]]\nname = "App"\nsha256 = "{sha}"\nsize = 7\n'
    assert cli("catalog", "import", str(write(tmp_path, by_content, "sha.toml"))).stdout.startswith("Nothing to change")


def test_large_imports_list_fifty_changes_for_people(cli, tmp_path):
    features = "".join(f'\n[features.f{i}]\nname = "F{i}"\ntype = "boolean"\n' for i in range(60))
    result = cli("catalog", "import", str(write(tmp_path, "version = 1\n" + features)))
    assert result.exit_code == 0, result
    lines = result.stdout.splitlines()
    assert len(lines) == 52
    assert lines[-2] == "... and 10 more (--json lists every change)."
    assert lines[-1] == "Done: created 60; 0 unchanged."
