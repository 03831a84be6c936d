"""The catalog through the Python API (the `tg` fixture) and the content store."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from decimal import Decimal

import pytest

from tollgate import Conflict, InvalidInput, NotFound, RuleViolation
from tollgate.grants import Grant


@pytest.fixture
def seeded(tg):
    tg.create_product("AI Studio")
    tg.create_feature("AI tokens", type="metered", unit="token")
    tg.create_feature("SSO", type="boolean")
    tg.create_feature("Region", type="config")
    return tg


def test_create_plan_with_grant_objects_and_read_it_back(seeded):
    grants = [
        Grant("ai-tokens", "metered", limit=Decimal("2.5"), reset="week", hard=True, alerts=(50,)),
        Grant("sso", "boolean", value=True),
        Grant("region", "config", value="eu"),
    ]
    data = seeded.create_plan("pro", product="ai-studio", prices=[("month", "JPY", Decimal("4900")),
                                                                   ("year", "KWD", "12.345")], grants=grants)
    assert data.to_dict()["prices"] == [{"interval": "month", "currency": "JPY", "amount": "4900"},
                                        {"interval": "year", "currency": "KWD", "amount": "12.345"}]
    assert data.entitlements == tuple(sorted(grants, key=lambda g: g.feature))
    assert seeded.plan("pro") == data
    from tollgate import catalog, plan_specs

    with seeded.db.read() as session:
        plan = catalog.get_plan(session, "pro")
        assert plan_specs.plan_grants(session, plan) == {g.feature: g for g in grants}
        prices = plan_specs.plan_specs(session, [plan])[plan.id].prices
        assert [p.amount for p in prices] == [Decimal("4900"), Decimal("12.345")]


def test_create_plan_refuses_a_grant_of_the_wrong_type(seeded):
    with pytest.raises(InvalidInput, match="boolean feature, not metered"):
        seeded.create_plan("pro", product="ai-studio", grants=[Grant("sso", "metered", limit=Decimal(1))])
    with pytest.raises(InvalidInput, match="given twice"):
        seeded.create_plan("pro", product="ai-studio", grants=[Grant("sso", "boolean", value=True)] * 2)
    assert seeded.plans(status="all") == []


def test_lookups_say_what_to_do(seeded):
    for call, kind in ((seeded.plan, "plan"), (seeded.product, "product"), (seeded.feature, "feature")):
        with pytest.raises(NotFound) as caught:
            call("nope")
        assert f"No {kind} has the identifier 'nope'" in str(caught.value)
        assert f"tollgate {kind} list" in str(caught.value)


def test_archive_rules(seeded):
    seeded.create_plan("a", product="ai-studio")
    assert seeded.archive_plan("a").status == "archived"
    with pytest.raises(RuleViolation):
        seeded.archive_plan("a")
    product = seeded.archive_product("ai-studio")
    assert product.status == "archived" and product.plans == ()
    with pytest.raises(Conflict):
        seeded.create_product("AI Studio", identifier="ai-studio")


def test_usage_charge_as_a_dict(seeded):
    seeded.create_plan("pro", product="ai-studio", feature_values=["ai-tokens=1000"], hard=["ai-tokens"])
    result = seeded.set_usage_charge(
        "pro", {"feature": "ai-tokens", "currency": "USD", "model": "flat", "unit_price": "0.01"})
    assert result.action == "create" and result.plan.usage_charges == (result.charge,)
    assert result.to_dict()["usage_charges"][0]["unit_price"] == "0.01"
    with pytest.raises(InvalidInput, match="usage charge.model"):
        seeded.set_usage_charge("pro", {"feature": "ai-tokens", "currency": "USD", "model": "free"})


def test_store_blob_writes_once_privately_and_atomically(tmp_path):
    from tollgate.blobs import blob_path, store_blob

    source = tmp_path / "file.bin"
    source.write_bytes(b"hello" * 1000)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    sha, size = store_blob(source, data_dir=data_dir)
    assert size == 5000 and len(sha) == 64
    stored = blob_path(sha, data_dir=data_dir)
    assert stored == data_dir / "blobs" / sha[:2] / sha and stored.read_bytes() == source.read_bytes()
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    first = stored.stat().st_mtime_ns
    assert store_blob(source, data_dir=data_dir) == (sha, size)
    assert stored.stat().st_mtime_ns == first  # the same content is stored once
    assert [p.name for p in (data_dir / "blobs").iterdir()] == [sha[:2]]  # no temp files left
    with pytest.raises(InvalidInput, match="There is no file"):
        store_blob(tmp_path / "missing", data_dir=data_dir)


@pytest.mark.sqlite_only("the data folder is the database file's folder")
def test_store_blob_defaults_to_the_folder_of_the_database(tmp_path, db_path):
    from tollgate.blobs import store_blob

    source = tmp_path / "x.txt"
    source.write_text("x")
    sha, _ = store_blob(source)
    assert (db_path.parent / "blobs" / sha[:2] / sha).exists()


def test_domain_modules_import_neither_typer_nor_rich():
    code = (
        "import sys; import tollgate.catalog, tollgate.catalog_toml, tollgate.grants, tollgate.blobs; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ}, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_modules_import_only_typer_at_start(tmp_path):
    code = (
        "import sys; import tollgate.cli.plan, tollgate.cli.product, tollgate.cli.feature, tollgate.cli.catalog; "
        "print([m for m in ('sqlmodel', 'sqlalchemy', 'tollgate.catalog', 'tollgate.catalog_toml') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
