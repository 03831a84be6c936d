"""tollgate reads back what it writes: `customer list --csv/--json` -> `customer import`, `usage
export` -> `usage report --file` (every row a duplicate), a JSON array wherever JSON lines are read,
and `catalog import -` from standard input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def customers(cli):
    assert cli("customer", "import", str(ROOT / "examples" / "customers.csv")).exit_code == 0
    assert cli("customer", "add", "Ørsted A/S", "--email", "ops@orsted.example").exit_code == 0


@pytest.mark.parametrize("form, suffix", [("--csv", "csv"), ("--json", "json")])
def test_customer_list_reads_back(cli, customers, tmp_path, form, suffix):
    listed = cli("customer", "list", form)
    assert listed.exit_code == 0
    path = tmp_path / f"c.{suffix}"
    path.write_text(listed.stdout, encoding="utf-8")
    again = cli("customer", "import", str(path), "--json")
    assert again.exit_code == 0, again
    assert again.json()["created"] == 0 and again.json()["unchanged"] == 5


def test_customer_list_reads_into_another_database(cli, customers, tmp_path):
    path = tmp_path / "c.json"
    path.write_text(cli("customer", "list", "--json").stdout, encoding="utf-8")
    other = tmp_path / "other.db"
    created = cli("--db", str(other), "customer", "import", str(path), "--json")
    assert created.exit_code == 0, created
    assert sorted(created.json()["identifiers"]) == sorted(c["identifier"] for c in json.loads(path.read_text()))
    listed = {c["identifier"]: c["billing_id"] for c in json.loads(path.read_text())}
    copied = cli("--db", str(other), "customer", "list", "--json").json()
    assert {c["identifier"]: c["billing_id"] for c in copied} == listed  # the ids other systems know stay
    again = cli("--db", str(other), "customer", "import", str(path), "--json")  # a script's re-run
    assert again.exit_code == 0, again
    assert again.json()["created"] == 0 and again.json()["unchanged"] == len(listed)


def test_a_new_customers_billing_id_must_be_well_formed_and_free(cli, customers, tmp_path):
    taken = cli("customer", "list", "--json").json()[0]["billing_id"]
    path = tmp_path / "new.csv"
    path.write_text(f"name,billing_id\nNew Co,{taken}\nBad Co,xyz\nTwin A,cus_aaaaaaaaaaaaaa\n"
                    "Twin B,cus_aaaaaaaaaaaaaa\n", encoding="utf-8")
    refused = cli("customer", "import", str(path))
    assert refused.exit_code == 2, refused
    assert "line 2: the billing id" in refused.stderr and "line 3: 'xyz' is not a billing id" in refused.stderr
    assert "line 5: the billing id 'cus_aaaaaaaaaaaaaa' is taken (by line 4)" in refused.stderr
    assert len(cli("customer", "list", "--json").json()) == 5  # nothing was imported


@pytest.mark.parametrize("form", ["--json", "--csv"])
def test_a_list_piped_into_import_needs_no_format(tmp_path, form):
    import os
    import subprocess
    import sys

    def run(db: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tollgate", "--db", db, *args], input=stdin,
                              capture_output=True, text=True, env={**os.environ, "TOLLGATE_PAGER": ""})

    source, target = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    assert run(source, "customer", "add", "Acme, Inc.", "--email", "a@acme.example").returncode == 0
    listed = run(source, "customer", "list", form).stdout
    imported = run(target, "customer", "import", "-", stdin=listed)
    assert imported.returncode == 0, imported.stderr
    def people(db: str) -> list[tuple]:
        return [(c["identifier"], c["billing_id"], c["name"], c["email"])
                for c in json.loads(run(db, "customer", "list", "--json").stdout)]

    assert people(target) == people(source)


def test_a_billing_id_of_another_customer_is_refused(cli, customers, tmp_path):
    rows = json.loads(cli("customer", "list", "--json").stdout)
    rows[0]["billing_id"] = "cus_someoneelse00"
    path = tmp_path / "c.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    refused = cli("customer", "import", str(path))
    assert refused.exit_code == 2 and "billing id" in refused.stderr
    assert "unknown column" not in refused.stderr


def test_a_broken_json_array_is_one_sentence(cli, tmp_path):
    path = tmp_path / "c.json"
    path.write_text('[\n  {"name": "A"},\n  {"name": "B"}\n', encoding="utf-8")
    refused = cli("customer", "import", str(path))
    assert refused.exit_code == 2 and "not closed" in refused.stderr
    assert cli("customer", "list", "--json").json() == []


@pytest.fixture
def events(tg):
    tg.create_product("App", identifier="app")
    tg.create_feature("Calls", type="metered", identifier="calls", unit="call")
    tg.create_feature("Tokens", type="metered", identifier="tokens")
    tg.create_plan("basic", product="app", feature_values=["calls=1000", "tokens=1000000"])
    for name in ("acme", "globex"):
        tg.add_customer(name.title(), identifier=name)
        tg.add_subscription(name, "basic")
    tg.report_usage("acme", "calls", "2.5", key="a1", at="2026-11-01T10:00:00.123456Z")
    tg.report_usage("acme", "tokens", "7", key="a2", at="2026-11-02T00:00:00Z")
    tg.report_usage("globex", "calls", "0.000001", key="g1", at="2026-11-03T23:59:59.999999Z")
    tg.report_usage("acme", "calls", 1, key="a3", at="2026-11-04T12:00:00Z")
    tg.void_usage("a3", reason="sent twice")
    return tg


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_usage_export_reimports_as_all_duplicates(cli, events, tmp_path, fmt):
    out = tmp_path / f"u.{fmt}"
    wrote = cli("usage", "export", "--out", str(out))
    assert wrote.exit_code == 0 and "Wrote 4 event(s)" in wrote.stdout
    text = out.read_text(encoding="utf-8")
    assert "2026-11-01T10:00:00.123456Z" in text and "0.000001" in text and "void:" not in text
    again = cli("usage", "report", "--file", str(out), "--json")
    assert again.exit_code == 0, again
    assert again.json()["inserted"] == 0 and again.json()["duplicates"] == 4 and again.json()["rejected"] == 0


def test_usage_export_to_stdout_filters_and_a_json_array_reads_back(cli, events, tmp_path):
    lines = cli("usage", "export", "--customer", "acme", "--feature", "calls", "--format", "jsonl").stdout
    assert [json.loads(line)["id"] for line in lines.splitlines()] == ["a1", "a3"]
    window = cli("usage", "export", "--from", "2026-11-02", "--to", "2026-11-04").stdout
    assert [row.split(",")[-1] for row in window.splitlines()[1:]] == ["a2", "g1"]
    array = tmp_path / "u.json"  # the same rows as one JSON array, as a --json list would give them
    array.write_text(json.dumps([json.loads(line) for line in lines.splitlines()], indent=2), encoding="utf-8")
    again = cli("usage", "report", "--file", str(array), "--json")
    assert again.exit_code == 0 and again.json()["duplicates"] == 2 and again.json()["inserted"] == 0


def test_usage_export_refuses_unknown_names_and_bad_formats(cli, events, tmp_path):
    unknown = cli("usage", "export", "--customer", "nobody", "--out", str(tmp_path / "x.csv"))
    assert unknown.exit_code == 2 and "nobody" in unknown.stderr and not (tmp_path / "x.csv").exists()
    bad = cli("usage", "export", "--format", "xml")
    assert bad.exit_code == 2 and bad.stdout == ""


def test_catalog_import_reads_stdin(cli):
    catalog = 'version = 1\n\n[products.app]\nname = "App"\n'
    done = cli("catalog", "import", "-", input=catalog)
    assert done.exit_code == 0, done
    assert "Created product app." in done.stdout
    again = cli("catalog", "import", "-", input=catalog)
    assert "already matches standard input" in again.stdout
