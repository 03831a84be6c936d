"""One rule for single-line text (issue #14, item 12): control characters, bidi overrides and
isolates, zero-width characters and line / paragraph separators are refused everywhere text comes
in (CLI, library, catalog TOML, customer import), with exit 2 and the field and U+XXXX named."""

from __future__ import annotations

import pytest

from tollgate.errors import InvalidInput

BAD = ["\u202e", "\u202a", "\u2066", "\u2069", "\u2028", "\u2029", "\u200b", "\u200d", "\ufeff", "\u2060", "\x1b"]


@pytest.fixture
def shop(tg):
    tg.create_product("Editor", identifier="editor")
    tg.create_plan("app", product="editor", prices=[("once", "USD", "39.00")])
    tg.add_customer("Acme", identifier="acme")
    return tg


@pytest.mark.parametrize("ch", BAD, ids=lambda ch: f"U+{ord(ch):04X}")
def test_customer_names_refuse_invisible_characters(cli, ch):
    result = cli("customer", "add", f"x{ch}gpj.exe")
    assert result.exit_code == 2, result
    assert f"U+{ord(ch):04X}" in result.stderr and "name" in result.stderr
    assert cli("customer", "list", "--json").json() == []


@pytest.mark.parametrize("args, field", [
    (["product", "create", "--name", "Ed\u202eitor"], "name"),
    (["feature", "create", "--name", "A\u200bPI", "--type", "boolean"], "name"),
    (["link", "add", "app", "Docs", "https://example.com/\u202edocs"], "web address"),
    (["link", "add", "app", "Do\u2066cs", "https://example.com/docs"], "link name"),
])
def test_catalog_text_refuses_invisible_characters(cli, shop, args, field):
    result = cli(*args)
    assert result.exit_code == 2, result
    assert field in result.stderr
    assert "U+" in result.stderr or field == "web address"


def test_download_names_refuse_a_right_to_left_override(cli, shop, tmp_path):
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"MZ")
    result = cli("download", "add", "app", payload, "--name", "x\u202egpj.exe")
    assert result.exit_code == 2, result
    assert "download name" in result.stderr and "U+202E" in result.stderr
    assert shop.downloads(plan="app") == []


def test_the_library_refuses_too(shop):
    with pytest.raises(InvalidInput, match=r"U\+2028"):
        shop.add_customer("Line\u2028break")
    with pytest.raises(InvalidInput, match=r"U\+FEFF"):
        shop.create_product("\ufeffBOM product")


def test_catalog_import_names_the_toml_path_and_the_character(cli, tmp_path):
    catalog = tmp_path / "catalog.toml"
    catalog.write_text('[products.editor]\nname = "Edi\u202etor"\n', encoding="utf-8")
    result = cli("catalog", "import", catalog)
    assert result.exit_code == 2, result
    assert "products.editor.name" in result.stderr and "U+202E" in result.stderr


def test_customer_import_names_the_line_and_the_character(cli, tmp_path):
    rows = tmp_path / "customers.csv"
    rows.write_text("name,email\nAcme,a@example.com\nEvil\u200bCorp,e@example.com\n", encoding="utf-8")
    result = cli("customer", "import", rows)
    assert result.exit_code == 2, result
    assert "line 3" in result.stderr and "U+200B" in result.stderr
    assert cli("customer", "list", "--json").json() == []


def test_descriptions_keep_newlines_but_not_bidi_overrides(shop):
    shop.create_product("Viewer", identifier="viewer", description="Line one\nLine two\tand a tab")
    with pytest.raises(InvalidInput, match=r"U\+202E"):
        shop.create_product("Other", description="fine\n\u202eevil")


def test_ordinary_text_in_any_script_is_kept(shop):
    for name in ("Müller GmbH", "株式会社テスト", "שלום", "Ελληνικά ΑΕ", "Café\u00a0Crème", "🚀 Rocket"):
        assert shop.add_customer(name).name == name
