"""customer import: CSV, JSON lines and TOML; every row validated first; all or nothing; safe re-runs."""

from __future__ import annotations

import hashlib
import json

import pytest


def checksum(path):
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def test_csv_import_creates_all_rows(cli, tmp_path):
    source = tmp_path / "customers.csv"
    source.write_text('name,identifier,email\n"Acme, Inc.",,billing@acme.example\nGlobex,globex,\nZoë,,\n',
                      encoding="utf-8")
    result = cli("customer", "import", str(source), "--json")
    assert result.exit_code == 0, result
    assert result.json() == {"dry_run": False, "created": 3, "unchanged": 0,
                             "identifiers": ["acme-inc", "globex", "zoe"]}
    listed = cli("customer", "list", "--json").json()
    assert [(c["identifier"], c["email"]) for c in listed] == [
        ("acme-inc", "billing@acme.example"), ("globex", None), ("zoe", None)]
    assert len(cli("log", "--json").json()) == 3


def test_csv_with_bom_crlf_and_quoted_commas(cli, tmp_path):
    source = tmp_path / "c.csv"
    source.write_bytes('\ufeffName,Email\r\n"Smith, Jones & Co",sj@example.com\r\n\r\n'.encode("utf-8"))
    assert cli("customer", "import", str(source)).exit_code == 0
    assert cli("customer", "show", "smith-jones-co", "--json").json()["name"] == "Smith, Jones & Co"


def test_jsonl_and_toml_imports(cli, tmp_path):
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"name": "Acme"}\n\n{"name": "Globex", "id": "gx", "email": "a@gx.example"}\n')
    toml = tmp_path / "c.toml"
    toml.write_text('[[customers]]\nname = "Initech"\n\n[[customers]]\nname = "Umbrella"\nidentifier = "umb"\n')
    assert cli("customer", "import", str(jsonl)).exit_code == 0
    assert cli("customer", "import", str(toml)).exit_code == 0
    assert [c["identifier"] for c in cli("customer", "list", "--json").json()] == ["acme", "gx", "initech", "umb"]


def test_re_running_a_file_with_identifiers_changes_nothing(cli, tmp_path, db_path):
    source = tmp_path / "c.csv"
    source.write_text("name,identifier\nAcme,acme\nGlobex,globex\n")
    assert cli("customer", "import", str(source)).exit_code == 0
    again = cli("customer", "import", str(source), "--json")
    assert again.exit_code == 0
    assert again.json()["created"] == 0 and again.json()["unchanged"] == 2
    assert len(cli("customer", "list", "--json").json()) == 2


def test_existing_identifier_with_other_details_is_an_error(cli, tmp_path):
    cli("customer", "add", "Acme", "--id", "acme")
    source = tmp_path / "c.csv"
    source.write_text("name,identifier\nNew Co,newco\nAcme Renamed,acme\n")
    result = cli("customer", "import", str(source))
    assert result.exit_code == 2
    assert "line 3" in result.stderr and "different name" in result.stderr
    assert [c["identifier"] for c in cli("customer", "list", "--json").json()] == ["acme"]


@pytest.mark.sqlite_only("byte-identical file")
def test_10000_rows_with_one_bad_row_write_nothing(cli, tmp_path, db_path):
    cli("customer", "add", "Existing")  # so the database exists and has a checksum
    source = tmp_path / "big.csv"
    rows = ["name,email"] + [f"Customer {i},c{i}@example.com" for i in range(1, 10001)]
    rows[9999] = "Customer 9999,not-an-email"  # data row 9,999 is file line 10,000
    source.write_text("\n".join(rows) + "\n")
    before = checksum(db_path)
    result = cli("customer", "import", str(source))
    assert result.exit_code == 2
    assert "line 10000" in result.stderr and "not-an-email" in result.stderr
    assert "1 bad row" in result.stderr and "nothing was imported" in result.stderr
    assert checksum(db_path) == before
    assert len(cli("customer", "list", "--json").json()) == 1


def test_10000_good_rows_import_in_one_go(cli, tmp_path):
    source = tmp_path / "big.jsonl"
    source.write_text("".join(json.dumps({"name": f"Customer {i}"}) + "\n" for i in range(10000)))
    result = cli("customer", "import", str(source), "--json")
    assert result.exit_code == 0 and result.json()["created"] == 10000
    assert len(set(result.json()["identifiers"])) == 10000
    assert len(cli("customer", "list", "--json").json()) == 10000


def test_every_bad_row_is_listed(cli, tmp_path):
    source = tmp_path / "c.csv"
    source.write_text("name,email,identifier\n,x@y.example,\nOk,bad,\nDup,,same\nDup2,,same\nBad Id,,Not Valid\n")
    result = cli("customer", "import", str(source))
    assert result.exit_code == 2
    for needle in ("line 2", "line 3", "line 5", "line 6", "4 bad row"):
        assert needle in result.stderr, (needle, result.stderr)


@pytest.mark.sqlite_only("byte-identical file")
def test_dry_run_writes_nothing(cli, tmp_path, db_path):
    cli("customer", "add", "Existing")
    source = tmp_path / "c.csv"
    source.write_text("name\nAcme\nGlobex\n")
    before = checksum(db_path)
    result = cli("customer", "import", str(source), "--dry-run", "--json")
    assert result.exit_code == 0
    assert result.json()["dry_run"] is True and result.json()["identifiers"] == ["acme", "globex"]
    assert checksum(db_path) == before
    assert len(cli("customer", "list", "--json").json()) == 1


@pytest.mark.parametrize("name, content, needle", [
    ("c.csv", b"name,name\nA,B\n", "repeated column"),
    ("c.csv", b"name\n\xff\xfe\xfa\n", "not UTF-8"),
    ("c.csv", b"name,email\nA\n", "1 values for 2 columns"),
    ("c.csv", b"nom\nA\n", "unknown column"),
    ("c.jsonl", b'{"name": "A"}\n{broken\n', "line 2: not valid JSON"),
    ("c.jsonl", b'["A"]\n', "expected a JSON object"),
    ("c.jsonl", b"[" * 100000 + b"\n", "not valid JSON"),
    ("c.toml", b"[[customers]\nname=", "malformed TOML"),
    ("c.toml", b"customers = 3\n", "array of tables"),
    ("c.toml", b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    ("c.xlsx", b"whatever", "Cannot tell the format"),
])
def test_malformed_files_exit_2_with_a_clear_message(cli, empty_db, tmp_path, name, content, needle):
    source = tmp_path / name
    source.write_bytes(content)
    result = cli("customer", "import", str(source))
    assert result.exit_code == 2, result
    assert needle in result.stderr
    assert cli("customer", "list", "--all", "--json").json() == []


def test_missing_file(cli, tmp_path):
    result = cli("customer", "import", str(tmp_path / "nope.csv"))
    assert result.exit_code == 2 and "There is no file" in result.stderr
