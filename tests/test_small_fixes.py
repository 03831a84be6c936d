"""Issue #14, item 16: folders made 0700 whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.sqlite_only
def test_every_folder_tollgate_creates_is_0700_under_umask_000(tmp_path, cli):
    from tollgate import Tollgate

    old = os.umask(0)
    try:
        location = tmp_path / "a" / "b" / "t.db"
        tg = Tollgate(location)
        tg.create_product("Editor", identifier="editor")
        tg.create_plan("app", product="editor", prices=[("once", "USD", "39.00")])
        tg.add_customer("Acme", identifier="acme")
        payload = tmp_path / "guide.pdf"
        payload.write_bytes(b"%PDF")
        download_id = tg.add_download("app", payload).id
        tg.add_subscription("acme", "app")
        out = tmp_path / "x" / "y"
        tg.fetch_download("acme", download_id, out)
        tg.close()
    finally:
        os.umask(old)
    made = [tmp_path / "a", tmp_path / "a" / "b", tmp_path / "x", out]
    made += [p for p in (tmp_path / "a" / "b" / "blobs").rglob("*") if p.is_dir()] + [tmp_path / "a" / "b" / "blobs"]
    assert {str(p): oct(_mode(p)) for p in made} == {str(p): oct(0o700) for p in made}


def test_a_customer_file_that_is_not_utf8_names_the_right_line(cli, tmp_path):
    rows = tmp_path / "customers.csv"
    good = "".join(f"Customer {n},c{n}@example.com\n" for n in range(2000))
    rows.write_bytes(b"name,email\n" + good.encode() + b"Caf\xe9 Latin-1,x@example.com\n")
    result = cli("customer", "import", rows)
    assert result.exit_code == 2, result
    offset = len(b"name,email\n" + good.encode()) + 3
    assert f"line 2002 (byte {offset})" in result.stderr and "not UTF-8" in result.stderr
    assert "line 0" not in result.stderr


def test_a_quantity_with_too_many_places_is_shown_as_written(cli, tg):
    tg.add_customer("Acme", identifier="acme")
    tg.create_feature("API calls", type="metered", identifier="api-calls")
    result = cli("usage", "report", "acme", "api-calls", "0.0000001")
    assert result.exit_code == 2, result
    assert "0.0000001" in result.stderr and "Decimal(" not in result.stderr


@pytest.mark.parametrize("command", [["usage", "report", "--file"], ["customer", "import"]])
def test_a_100000_column_header_gives_a_short_message(cli, tg, tmp_path, command):
    wide = tmp_path / "wide.csv"
    extra = ",".join(f"c{i}" for i in range(100_000))
    values = ",".join(f"v{i}" for i in range(100_000))
    wide.write_text(f"name,email,customer,feature,quantity,{extra}\nAcme,a@example.com,x,y,1,{values}\n")
    result = cli(*command, wide)
    assert result.exit_code == 2, result
    assert len(result.stderr) < 500, result.stderr[:300]


def test_importing_many_customers_with_one_name_is_linear(tg):
    """10,000 rows named alike: each base's next suffix is remembered (it probed base-2, base-3...)."""
    import time

    from tollgate.rowfiles import Row

    def run(count: int, name: str) -> float:
        start = time.perf_counter()
        tg.import_customers([Row(f"line {n + 2}", {"name": name}) for n in range(count)], dry_run=True)
        return time.perf_counter() - start

    alike = run(10_000, "Компания")
    different = run(10_000, "x")  # warm-up done; now the same number of distinct names
    distinct_start = time.perf_counter()
    tg.import_customers([Row(f"line {n + 2}", {"name": f"Company {n}"}) for n in range(10_000)], dry_run=True)
    distinct = time.perf_counter() - distinct_start
    assert alike < 3 * distinct + 0.5, (alike, distinct, different)
    result = tg.import_customers([Row(f"line {n + 2}", {"name": "Компания"}) for n in range(3)])
    assert [c["identifier"] for c in result.created] == ["kompaniya", "kompaniya-2", "kompaniya-3"]


def test_public_ids_use_the_whole_alphabet_at_every_position():
    """public_id draws every string of its length alike: over 3,000 ids each character of the
    alphabet appears at every position (a biased or truncated draw would leave some out)."""
    from tollgate.identifiers import _ALPHABET, is_public_id, public_id

    made = [public_id("use", 14) for _ in range(3000)]
    assert all(is_public_id(value, "use", 14) for value in made)
    assert len(set(made)) == len(made)
    for position in range(4, 4 + 14):
        assert {value[position] for value in made} == set(_ALPHABET)
