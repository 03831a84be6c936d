"""`usage report --file`: streamed CSV / JSON lines, all-or-nothing by default, --skip-invalid with a
reject file, idempotent re-runs (derived keys), duplicates and conflicts sorted out set-based, and a
property test: the row parser never raises anything but InvalidInput."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tollgate.errors import InvalidInput
from tollgate.usage.ingest import UsageFileErrors
from tollgate.usage.values import derived_key


def pytest_generate_tests(metafunc):
    """Every test here runs twice: the file read in-process, and read by the helper process
    (usage.parsing, forced whatever the file's size); the property tests only in-process (their
    thousand examples would start a thousand helpers)."""
    if "parsing" in metafunc.fixturenames and not getattr(metafunc.function, "is_hypothesis_test", False):
        metafunc.parametrize("parsing", ["read here", "helper process"], indirect=True)


@pytest.fixture(autouse=True)
def parsing(request, monkeypatch):
    """The helpers started (their Popen objects) when forced; each has ended by the test's end."""
    from tollgate.usage import parsing as module

    started: list = []
    if getattr(request, "param", "read here") == "helper process":
        real = module.subprocess.Popen

        def popen(argv, **kwargs):
            started.append(real(argv, **kwargs))
            return started[-1]

        monkeypatch.setattr(module, "HELPER_FROM_BYTES", 0)
        monkeypatch.setattr(module, "second_core", lambda: True)
        monkeypatch.setattr(module.subprocess, "Popen", popen)
    yield started
    assert all(helper.poll() is not None for helper in started), "a helper process outlived its ingest"


@pytest.fixture
def acme(tg):
    tg.add_customer("Acme, Inc.")
    tg.add_customer("Globex")
    tg.create_feature("API calls", type="metered", identifier="api-calls")
    tg.create_feature("AI tokens", type="metered", identifier="ai-tokens")
    tg.create_feature("SSO", type="boolean", identifier="sso")
    return tg


def write(path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _count(tg) -> int:
    from sqlalchemy import text

    with tg.db.read() as session:
        return session.execute(text("SELECT COUNT(*) FROM usage_event")).scalar_one()


def _sum(tg, customer: str = "acme-inc", feature: str = "api-calls") -> Decimal:
    from sqlalchemy import text

    with tg.db.read() as session:
        micros = session.execute(
            text("SELECT COALESCE(SUM(quantity_micros), 0) FROM usage_event e JOIN customer c ON c.id = e.customer_id "
                 "JOIN feature f ON f.id = e.feature_id WHERE c.identifier = :c AND f.identifier = :f"),
            {"c": customer, "f": feature},
        ).scalar_one()
    return Decimal(micros) / 1_000_000


EVENTS = (
    "customer,feature,quantity,timestamp,id\n"
    "acme-inc,api-calls,10,2026-11-01T10:00:00Z,e-1\n"
    "acme-inc,api-calls,2.5,2026-11-01T11:00:00Z,\n"
    "globex,ai-tokens,1000,2026-11-02T00:00:00+02:00,\n"
    "acme-inc,ai-tokens,7,,\n"
)


# -- the happy path and idempotency ----------------------------------------------------------------------


def test_a_file_is_recorded_and_a_rerun_records_nothing(cli, acme, tmp_path):
    events = write(tmp_path / "events.csv", EVENTS)
    first = cli("usage", "report", "--file", str(events), "--json")
    assert first.exit_code == 0, first
    data = first.json()
    assert (data["rows"], data["inserted"], data["duplicates"], data["rejected"]) == (4, 4, 0, 0)
    again = cli("usage", "report", "--file", str(events), "--json")
    assert again.exit_code == 0, again
    assert (again.json()["inserted"], again.json()["duplicates"]) == (0, 4)
    plain = cli("usage", "report", "--file", str(events))
    assert plain.stdout.startswith("Inserted 0 event(s); 4 duplicate(s) skipped; 0 row(s) rejected.")
    assert _count(acme) == 4
    assert _sum(acme) == Decimal("12.5")
    assert _sum(acme, "globex", "ai-tokens") == 1000


def test_rows_without_an_id_get_the_documented_derived_key(acme, tmp_path):
    from datetime import datetime

    from sqlalchemy import text

    import hashlib

    acme.report_usage_file(write(tmp_path / "e.csv", EVENTS))
    file_id = hashlib.blake2b(EVENTS.encode(), digest_size=16).hexdigest()
    with acme.db.read() as session:
        keys = set(session.execute(text("SELECT key FROM usage_event")).scalars())
    assert "e-1" in keys
    assert derived_key("acme-inc", "api-calls", 2_500_000, datetime(2026, 11, 1, 11), 3) in keys
    assert derived_key("globex", "ai-tokens", 1_000_000_000, datetime(2026, 11, 1, 22), 4) in keys
    assert derived_key("acme-inc", "ai-tokens", 7_000_000, None, 5, file_id) in keys  # no time: file and line


def test_reordered_rows_with_times_are_still_duplicates(acme, tmp_path):
    acme.report_usage_file(write(tmp_path / "a.csv", EVENTS))
    lines = EVENTS.splitlines()
    reordered = "\n".join([lines[0], lines[3], lines[2], lines[1]]) + "\n"  # the timed rows only, shuffled
    result = acme.report_usage_file(write(tmp_path / "b.csv", reordered))
    assert (result.inserted, result.duplicates) == (0, 3)


def test_identical_rows_count_once_and_say_so(cli, acme, tmp_path):
    twins = write(tmp_path / "twins.csv", "customer,feature,quantity,timestamp\n"
                  + "acme-inc,api-calls,1,2026-11-01T10:00:00Z\n" * 3)
    result = cli("usage", "report", "--file", str(twins), "--json")
    assert result.exit_code == 0
    assert (result.json()["inserted"], result.json()["duplicates"], result.json()["repeated_in_file"]) == (1, 2, 2)
    assert "repeated an earlier row" in result.stderr


def test_rows_without_time_or_id_are_distinct_by_line(acme, tmp_path):
    rows = write(tmp_path / "no-time.csv", "customer,feature,quantity\n" + "acme-inc,api-calls,1\n" * 5)
    first = acme.report_usage_file(rows)
    again = acme.report_usage_file(rows)
    assert (first.inserted, again.inserted, again.duplicates) == (5, 0, 5)
    assert _sum(acme) == 5


def test_a_chunked_ingest_sorts_out_duplicates_across_chunks(acme, tmp_path, monkeypatch):
    from tollgate.usage import ingest

    monkeypatch.setattr(ingest, "CHUNK", 7)
    monkeypatch.setattr(ingest.ingest, "__kwdefaults__", {**ingest.ingest.__kwdefaults__, "chunk_size": 7})
    body = "".join(f"acme-inc,api-calls,{i % 25 % 4 + 1},2026-11-01T00:00:{i % 25:02d}Z,k-{i % 25}\n" for i in range(50))
    path = write(tmp_path / "chunks.csv", "customer,feature,quantity,timestamp,id\n" + body)
    result = acme.report_usage_file(path)
    assert (result.inserted, result.duplicates, result.repeated_in_file) == (25, 25, 25)
    assert _sum(acme) == sum(i % 4 + 1 for i in range(25))
    conflicting = write(tmp_path / "conflict.csv", "customer,feature,quantity,id\n"
                        + "".join(f"acme-inc,api-calls,1,c-{i}\n" for i in range(10)) + "acme-inc,api-calls,2,c-3\n")
    with pytest.raises(UsageFileErrors, match="line 12: the id 'c-3' was already used"):
        acme.report_usage_file(conflicting)


# -- all or nothing --------------------------------------------------------------------------------------


def test_a_bad_row_at_line_9999_of_10000_writes_nothing(cli, acme, tmp_path):
    rows = ["customer,feature,quantity,timestamp"]
    for i in range(2, 10_001):
        quantity = "-3" if i == 9_999 else str(i % 50 + 1)
        rows.append(f"acme-inc,api-calls,{quantity},2026-11-01T00:{i // 3600 % 60:02d}:{i % 60:02d}Z")
    path = write(tmp_path / "big.csv", "\n".join(rows) + "\n")
    result = cli("usage", "report", "--file", str(path))
    assert result.exit_code == 2
    assert "1 bad row(s); nothing was recorded" in result.stderr
    assert "line 9999: the quantity must not be negative" in result.stderr
    assert _count(acme) == 0
    assert all(e.action != "usage.import" for e in acme.journal())


def test_twenty_bad_lines_are_listed_and_all_are_counted(cli, acme, tmp_path):
    body = "".join(f"ghost-{i},api-calls,1\n" for i in range(30)) + "acme-inc,api-calls,1\n"
    result = cli("usage", "report", "--file", str(write(tmp_path / "bad.csv", "customer,feature,quantity\n" + body)))
    assert result.exit_code == 2
    assert "30 bad row(s) (the first 20 listed)" in result.stderr
    assert result.stderr.count("no customer has the identifier") == 20
    assert _count(acme) == 0


def test_a_conflicting_duplicate_is_refused(cli, acme, tmp_path):
    acme.report_usage("acme-inc", "api-calls", 5, key="dup", at="2026-11-01T00:00:00Z")
    path = write(tmp_path / "c.csv", "customer,feature,quantity,timestamp,id\n"
                                     "acme-inc,api-calls,1,2026-11-01T00:00:00Z,fresh\n"
                                     "acme-inc,api-calls,6,2026-11-01T00:00:00Z,dup\n")
    result = cli("usage", "report", "--file", str(path))
    assert result.exit_code == 1  # only conflicts: refused like a single conflicting report
    assert "line 3: the id 'dup' was already used for a different event" in result.stderr
    assert _sum(acme) == 5
    within = write(tmp_path / "w.csv", "customer,feature,quantity,id\nacme-inc,api-calls,1,x\nacme-inc,api-calls,2,x\n")
    assert cli("usage", "report", "--file", str(within)).exit_code == 1
    assert _count(acme) == 1


def test_skip_invalid_records_the_good_rows_and_writes_rejects(cli, acme, tmp_path):
    path = write(tmp_path / "mixed.csv",
                 "customer,feature,quantity,timestamp\n"
                 "acme-inc,api-calls,1,2026-11-01T00:00:00Z\n"
                 '"ghost, inc",api-calls,1,2026-11-01T00:00:00Z\n'
                 "acme-inc,api-calls,abc,2026-11-01T00:00:00Z\n"
                 "acme-inc,sso,1,2026-11-01T00:00:00Z\n"
                 "acme-inc,api-calls,2\n"
                 "acme-inc,api-calls,3,2026-11-01T00:00:01Z\n")
    result = cli("usage", "report", "--file", str(path), "--skip-invalid", "--json")
    assert result.exit_code == 0, result
    data = result.json()
    assert (data["inserted"], data["rejected"]) == (2, 4)
    rejects = Path(data["rejects"])
    assert rejects == tmp_path / "mixed.rejects.csv"
    rows = list(csv.reader(rejects.open(encoding="utf-8")))
    assert rows[0] == ["customer", "feature", "quantity", "timestamp", "line", "error"]
    assert [r[4] for r in rows[1:]] == ["3", "4", "5", "6"]
    assert rows[1][0] == "ghost, inc" and "no customer" in rows[1][5]
    assert "only metered" in rows[3][5]
    assert _sum(acme) == 4
    other = tmp_path / "elsewhere.csv"
    assert cli("usage", "report", "--file", str(path), "--skip-invalid", "--rejects", str(other)).exit_code == 0
    assert other.exists()


def test_rejects_of_json_lines_keep_the_row(acme, tmp_path):
    path = write(tmp_path / "e.jsonl", '{"customer": "acme-inc", "feature": "api-calls", "quantity": 1}\n'
                                       '{"customer": "acme-inc", "feature": "api-calls", "quantity": -1}\n'
                                       'not json\n')
    result = acme.report_usage_file(path, skip_invalid=True)
    assert (result.inserted, result.rejected) == (1, 2)
    lines = [json.loads(line) for line in (tmp_path / "e.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in lines] == [2, 3]
    assert lines[0]["row"]["quantity"] == -1 and lines[1]["row"] == "not json"


def test_dry_run_counts_and_records_nothing(cli, acme, tmp_path):
    result = cli("usage", "report", "--file", str(write(tmp_path / "e.csv", EVENTS)), "--dry-run", "--json")
    assert result.exit_code == 0 and result.json()["inserted"] == 4 and result.json()["dry_run"] is True
    assert _count(acme) == 0
    mixed = write(tmp_path / "m.csv", EVENTS + "ghost,api-calls,1,,\n")
    skipped = cli("usage", "report", "--file", str(mixed), "--dry-run", "--skip-invalid", "--json")
    assert skipped.exit_code == 0 and (skipped.json()["inserted"], skipped.json()["rejected"]) == (4, 1)
    assert not (tmp_path / "m.rejects.csv").exists() and _count(acme) == 0
    assert "Would insert 4" in cli("usage", "report", "--file", str(mixed), "--dry-run", "--skip-invalid").stdout


# -- CSV details -----------------------------------------------------------------------------------------


def test_bom_crlf_and_quoted_fields(cli, acme, tmp_path):
    text = ('\ufeff"customer","feature","quantity","timestamp","id"\r\n'
            '"acme-inc","api-calls","1.5","2026-11-01T10:00:00Z","id, with a comma"\r\n'
            '\r\n'
            'acme-inc,api-calls,2,2026-11-01T10:00:00Z,"multi\r\nline id"\r\n'
            'acme-inc,api-calls,3,2026-11-01T10:00:00Z,after\r\n')
    path = write(tmp_path / "bom.csv", text)
    strict = cli("usage", "report", "--file", str(path))
    assert strict.exit_code == 2
    assert "line 4: the id 'multi\\r\\nline id' is not a usable key" in strict.stderr  # shown escaped
    result = cli("usage", "report", "--file", str(path), "--skip-invalid", "--json")
    assert result.exit_code == 0, result
    assert (result.json()["inserted"], result.json()["rejected"]) == (2, 1)
    from sqlalchemy import text as sql

    with acme.db.read() as session:
        keys = set(session.execute(sql("SELECT key FROM usage_event")).scalars())
    assert keys == {"id, with a comma", "after"}
    rejected = list(csv.reader((tmp_path / "bom.rejects.csv").open(encoding="utf-8", newline="")))
    assert rejected[1][4] == "multi\r\nline id" and rejected[1][5] == "4"


@pytest.mark.parametrize(
    "header, message",
    [
        ("customer,feature", "lacks the column(s) quantity"),
        ("customer,feature,quantity,when", "unknown column(s) when"),
        ("customer,feature,quantity,quantity", "repeated column"),
    ],
)
def test_bad_headers_are_refused(cli, acme, tmp_path, header, message):
    result = cli("usage", "report", "--file", str(write(tmp_path / "h.csv", header + "\nacme-inc,api-calls,1\n")))
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    "row, message",
    [
        ("acme-inc,api-calls", "2 values for 4 columns"),
        ("acme-inc,api-calls,1,2026-11-01,extra", "5 values for 4 columns"),
        ("acme-inc,api-calls,-2,2026-11-01", "must not be negative"),
        ("acme-inc,api-calls,two,2026-11-01", "not a decimal number"),
        ("acme-inc,api-calls,,2026-11-01", "quantity is missing"),
        (",api-calls,1,2026-11-01", "customer is missing"),
        ("ghost,api-calls,1,2026-11-01", "no customer has the identifier 'ghost'"),
        ("acme-inc,nope,1,2026-11-01", "no feature has the identifier 'nope'"),
        ("acme-inc,sso,1,2026-11-01", "only metered features"),
        ("acme-inc,api-calls,1,tomorrow", "not a timestamp"),
        ("acme-inc,api-calls,1,2999-01-01T00:00:00Z", "future"),
        ("acme-inc,api-calls,1.0000001,2026-11-01", "6 decimal places"),
    ],
)
def test_bad_rows_name_their_line(cli, acme, tmp_path, row, message):
    path = write(tmp_path / "r.csv", "customer,feature,quantity,timestamp\nacme-inc,api-calls,1,2026-11-01\n" + row + "\n")
    result = cli("usage", "report", "--file", str(path))
    assert result.exit_code == 2, result
    assert "line 3: " in result.stderr and message in result.stderr
    assert _count(acme) == 0


def test_archived_customers_get_no_new_usage_from_a_file(acme, tmp_path):
    acme.archive_customer("globex")
    with pytest.raises(UsageFileErrors, match="archived"):
        acme.report_usage_file(write(tmp_path / "a.csv", "customer,feature,quantity\nglobex,api-calls,1\n"))


@pytest.mark.parametrize(
    "stamp, stored",
    [
        ("2026-11-01T10:00:00Z", "2026-11-01 10:00:00"),
        ("2026-11-01T10:00:00", "2026-11-01 10:00:00"),
        ("2026-11-01T12:30:00+02:30", "2026-11-01 10:00:00"),
        ("2026-11-01T05:00:00-05:00", "2026-11-01 10:00:00"),
        ("2026-11-01", "2026-11-01 00:00:00"),
        ("2026-11-01 10:00:00.5Z", "2026-11-01 10:00:00.500000"),
        ("2026-11-01T10:00:00z", "2026-11-01 10:00:00"),
    ],
)
def test_timestamps_with_and_without_offsets(acme, tmp_path, stamp, stored):
    from sqlalchemy import text

    acme.report_usage_file(write(tmp_path / "t.csv", f"customer,feature,quantity,timestamp\nacme-inc,api-calls,1,{stamp}\n"))
    with acme.db.read() as session:
        (at,) = session.execute(text("SELECT occurred_at FROM usage_event")).one()
    assert str(at).startswith(stored)


def test_a_file_that_is_not_utf8_writes_nothing(cli, acme, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("customer,feature,quantity\nacme-inc,api-calls,1\n".encode() + b"caf\xe9,api-calls,1\n")
    result = cli("usage", "report", "--file", str(path), "--skip-invalid")
    assert result.exit_code == 2 and "not UTF-8" in result.stderr
    assert _count(acme) == 0


def test_missing_file_empty_file_and_unknown_format(cli, acme, tmp_path):
    assert cli("usage", "report", "--file", str(tmp_path / "none.csv")).exit_code == 2
    empty = cli("usage", "report", "--file", str(write(tmp_path / "empty.csv", "")), "--json")
    assert empty.exit_code == 0 and empty.json()["rows"] == 0
    odd = cli("usage", "report", "--file", str(write(tmp_path / "events.txt", EVENTS)))
    assert odd.exit_code == 2 and "--format" in odd.stderr
    assert cli("usage", "report", "--file", str(tmp_path / "events.txt"), "--format", "csv").exit_code == 0
    assert cli("usage", "report", "--file", str(tmp_path / "events.txt"), "--format", "toml").exit_code == 2


def test_stdin_with_format(cli, acme):
    result = cli("usage", "report", "--file", "-", "--format", "csv", "--json", input=EVENTS)
    assert result.exit_code == 0, result
    assert result.json()["inserted"] == 4


# -- JSON lines ------------------------------------------------------------------------------------------


def test_json_lines_exact_numbers_and_malformed_lines(cli, acme, tmp_path):
    good = write(tmp_path / "ok.jsonl",
                 '{"customer": "acme-inc", "feature": "api-calls", "quantity": 0.1, "id": 1}\n'
                 '\n'
                 '{"customer": "acme-inc", "feature": "api-calls", "quantity": "0.2", "timestamp": "2026-11-01"}\n'
                 '{"customer": "acme-inc", "feature": "api-calls", "quantity": 7}\r\n')
    result = cli("usage", "report", "--file", str(good), "--json")
    assert result.exit_code == 0, result
    assert result.json()["inserted"] == 3
    assert _sum(acme) == Decimal("7.3")  # 0.1 read as an exact decimal, never a float
    bad = write(tmp_path / "bad.jsonl",
                '{"customer": "acme-inc", "feature": "api-calls", "quantity": 1}\n'
                '{"customer": "acme-inc", "feature": "api-calls", "quantity": 1\n'
                '[1, 2, 3]\n'
                '{"customer": "acme-inc", "feature": "api-calls", "quantity": NaN}\n'
                '{"customer": ["acme-inc"], "feature": "api-calls", "quantity": 1}\n'
                '{"customer": "acme-inc", "feature": "api-calls", "quantity": true}\n'
                '{"customer": "acme-inc", "feature": "api-calls", "qty": 1}\n'
                + "[" * 100_000 + "\n")
    result = cli("usage", "report", "--file", str(bad))
    assert result.exit_code == 2
    for line, message in [(2, "not valid JSON"), (3, "expected a JSON object"), (4, "floating-point"),
                          (5, "'customer' must be text"), (6, "must be a number"), (7, "unknown key(s) 'qty'"),
                          (8, "not valid JSON")]:
        listed = next(text for text in result.stderr.splitlines() if text.strip().startswith(f"line {line}:"))
        assert message in listed, (line, listed)
    assert _sum(acme) == Decimal("7.3")


# -- the row parser never raises anything but InvalidInput (hypothesis) ---------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30)
    | st.decimals(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
cells = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["acme-inc", "api-calls", "ghost", "sso", "1", "0.5", "-1", "1e3", "2026-11-01T10:00:00Z",
                     "2026-11-01T10:00:00+02:00", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00", "",
                     "void:x", "\x00", "１２", "٣", "²"]),
)


@pytest.mark.slow  # 1,000 examples: CI (-m slow)
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(cells, cells, cells, cells, cells), max_size=4),
       header=st.sampled_from(["customer,feature,quantity,timestamp,id", "customer,feature,quantity",
                               "quantity,customer,feature,id"]))
def test_csv_rows_never_crash(acme, tmp_path_factory, rows, header):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    width = len(header.split(","))
    writer.writerow(header.split(","))
    for row in rows:
        writer.writerow(row[:width])
    _ingest_text(acme, tmp_path_factory, buffer.getvalue(), "csv")


@pytest.mark.slow  # 1,000 examples: CI (-m slow)
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(
    st.dictionaries(st.sampled_from(["customer", "feature", "quantity", "timestamp", "id", "other"]),
                    st.one_of(cells, json_values), max_size=5).map(lambda d: json.dumps(d, default=str)),
    st.text(max_size=40),
), max_size=4))
def test_json_lines_never_crash(acme, tmp_path_factory, lines):
    _ingest_text(acme, tmp_path_factory, "\n".join(line.replace("\n", " ") for line in lines) + "\n",
                 "jsonl")


@settings(max_examples=1000, deadline=None)
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_readers(tmp_path_factory, raw):
    from tollgate.usage.file import read_items

    path = tmp_path_factory.mktemp("bytes") / "raw.csv"
    path.write_bytes(raw)
    for fmt in ("csv", "jsonl"):
        try:
            for item in read_items(str(path), fmt):
                assert len(item) == 8
        except InvalidInput:
            pass


def _ingest_text(tg, tmp_path_factory, text: str, fmt: str) -> None:
    """Both modes, as dry runs: only InvalidInput may escape, and every row is accounted for."""
    path = tmp_path_factory.mktemp("rows") / f"rows.{fmt}"
    path.write_bytes(text.encode("utf-8", errors="replace"))  # lone surrogates are not UTF-8 text
    try:
        result = tg.report_usage_file(path, dry_run=True)
    except InvalidInput as exc:
        assert str(exc)
    else:
        assert result.inserted + result.duplicates <= result.rows
    try:
        result = tg.report_usage_file(path, dry_run=True, skip_invalid=True, rejects=path.with_suffix(".rej"))
    except InvalidInput as exc:  # only a file-level problem (a bad header, not UTF-8) remains
        assert "line 1" in str(exc) or "UTF-8" in str(exc) or "cannot read on" in str(exc), str(exc)
    else:
        assert result.inserted + result.duplicates + result.rejected == result.rows


# -- limits and alerts crossed by a file -----------------------------------------------------------------


def test_a_file_crossing_thresholds_notifies_and_journals_once(cli, acme, tmp_path):
    acme.create_product("API", identifier="api")
    acme.create_plan("pro", product="api", feature_values=["api-calls=100"], hard=["api-calls"],
                     alerts=["api-calls=75"])
    acme.add_subscription("acme-inc", "pro", start="2026-01-15T10:30:00Z")
    acme.add_subscription("globex", "pro", start="2026-01-15T10:30:00Z")
    acme.report_usage("acme-inc", "api-calls", 50)
    rows = "customer,feature,quantity\n" + "acme-inc,api-calls,20\n" * 3 + "globex,api-calls,10\n"
    result = cli("usage", "report", "--file", str(write(tmp_path / "cross.csv", rows)), "--json")
    assert result.exit_code == 0, result
    data = result.json()
    assert data["inserted"] == 4
    assert len(data["notices"]) == 2  # acme-inc: 75% and the limit (50 -> 110); globex stays under
    assert any("passed 75%" in n for n in data["notices"]) and any("hard limit" in n for n in data["notices"])
    assert len(data["warnings"]) == 1 and "past its hard limit" in data["warnings"][0]
    assert "notice: 'acme-inc' passed 75%" in result.stderr and "warning:" in result.stderr
    actions = [e.action for e in acme.journal(customer="acme-inc")]
    assert actions.count("usage.alert") == 1 and actions.count("usage.limit") == 1
    assert not [e for e in acme.journal(customer="globex") if e.action in ("usage.alert", "usage.limit")]
    again = cli("usage", "report", "--file", str(tmp_path / "cross.csv"), "--json").json()
    assert again["inserted"] == 0 and again["notices"] == [] and again["duplicates"] == 4
    assert any(e.action == "usage.import" and e.details["inserted"] == 4 for e in acme.journal())


def test_a_files_rows_before_the_period_on_its_first_day_do_not_count_as_crossing(cli, acme, tmp_path):
    """The period starts at noon yesterday: the file's row at 11:00 that day is in the day's bucket but
    not in the period, so `before` is what the period held (80, past the 75% alert already), and only
    the limit is crossed (80 -> 105), not the alert a second time."""
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    noon = (now - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    stamp = lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    acme.create_product("API", identifier="api")
    acme.create_plan("pro", product="api", feature_values=["api-calls=100"], alerts=["api-calls=75"])
    acme.add_subscription("acme-inc", "pro", start=stamp(noon))
    acme.report_usage("acme-inc", "api-calls", 80, at=stamp(noon + timedelta(minutes=90)))
    rows = (f"customer,feature,quantity,timestamp\nacme-inc,api-calls,40,{stamp(noon - timedelta(hours=1))}\n"
            f"acme-inc,api-calls,15,{stamp(noon + timedelta(hours=1))}\n"
            f"acme-inc,api-calls,10,{stamp(now - timedelta(minutes=1))}\n")
    data = cli("usage", "report", "--file", str(write(tmp_path / "edge.csv", rows)), "--json").json()
    assert data["inserted"] == 3
    assert len(data["notices"]) == 1 and "reached its soft limit" in data["notices"][0], data["notices"]
    assert "105 of 100" in data["notices"][0]


# -- the fast timestamp path agrees with parse_moment ---------------------------------------------------

_moments = st.datetimes(min_value=__import__("datetime").datetime(1, 1, 2), max_value=__import__("datetime").datetime(9999, 12, 30))
_offsets = st.sampled_from(["Z", "", "+00:00", "+02:00", "-05:30", "+14:00", "z", "+0100", "-23:59"])


@settings(max_examples=1500, deadline=None)
@given(moment=_moments, offset=_offsets,
       shape=st.sampled_from(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "ms", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d",
                              "%Y-%m-%dT%H:%M", "%Y%m%dT%H%M%S", "%G-W%V-%uT%H:%M:%S"]))
def test_the_fast_timestamp_path_agrees_with_parse_moment(moment, offset, shape):
    from tollgate.clock import parse_moment
    from tollgate.usage.values import utc_stamp

    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] if shape == "ms" else moment.strftime(shape)
    if shape != "%Y-%m-%d":
        text += offset
    try:
        expected = parse_moment(text).isoformat(" ", "microseconds")
    except InvalidInput:
        expected = None
    try:
        got = utc_stamp(text)
    except (ValueError, OverflowError):
        got = None
    if got is None and expected is not None:  # the fast path may pass on to parse_moment, never disagree
        return
    assert got == expected, text


def test_untimed_rows_of_two_files_are_two_events_and_a_resent_file_is_idempotent(acme, tmp_path, cli):
    """Issue #14, item 2: day1.csv and day2.csv share their first line (no id, no timestamp): day 2's
    event must not be dropped as a duplicate of day 1's; re-sending either file records nothing."""
    day1 = write(tmp_path / "day1.csv", "customer,feature,quantity\nacme-inc,api-calls,5\n")
    day2 = write(tmp_path / "day2.csv", "customer,feature,quantity\nacme-inc,api-calls,5\nacme-inc,api-calls,1\n")
    assert acme.report_usage_file(day1).inserted == 1
    second = acme.report_usage_file(day2)
    assert (second.inserted, second.duplicates) == (2, 0)
    assert acme.report_usage_file(day1).inserted == 0 and acme.report_usage_file(day2).inserted == 0
    assert _count(acme) == 3
    piped = cli("usage", "report", "--file", "-", "--format", "csv",
                input="customer,feature,quantity\nacme-inc,api-calls,5\n")
    assert piped.exit_code == 0 and _count(acme) == 3  # stdin with day 1's bytes is day 1 again


@pytest.mark.parametrize("text", ["[\n00\n", "[\n{} {}\n]\n", "[\n{}\n", "[\n{}\n]\nmore\n"])
def test_a_broken_json_array_stops_the_file_even_with_skip_invalid(acme, tmp_path, text):
    # a bad JSON line is one rejected row; inside an array there is no next row to go on from
    path = tmp_path / "rows.jsonl"
    path.write_text(text)
    with pytest.raises(InvalidInput, match="cannot read on"):
        acme.report_usage_file(path, skip_invalid=True, rejects=tmp_path / "r.rej")
    assert not (tmp_path / "r.rej").exists()


# -- the helper process that reads a big file (usage.parsing) -------------------------------------------


def test_a_forced_helper_reads_the_file_and_ends_with_it(acme, tmp_path, parsing, request):
    result = acme.report_usage_file(write(tmp_path / "events.csv", EVENTS))
    assert result.inserted == 4
    helper_mode = request.node.callspec.params["parsing"] == "helper process"
    assert len(parsing) == (1 if helper_mode else 0)
    assert all(helper.returncode is not None for helper in parsing)



@pytest.mark.parametrize("field", ["customer", "feature", "quantity", "timestamp", "id"])
def test_a_json_text_with_a_lone_surrogate_is_a_bad_row(acme, tmp_path, field):
    """JSON may spell a lone surrogate (\\ud800): text no UTF-8 encodes, so no identifier nor key."""
    row = {"customer": "acme-inc", "feature": "api-calls", "quantity": "1", "timestamp": "2026-11-01T00:00:00Z",
           "id": "e-1"}
    line = json.dumps(row).replace(f'"{field}": "', f'"{field}": "\\ud800', 1)
    path = write(tmp_path / "events.jsonl", line + "\n" + json.dumps({**row, "id": "e-2"}) + "\n")
    with pytest.raises(UsageFileErrors, match="line 1: "):
        acme.report_usage_file(path)
    result = acme.report_usage_file(path, skip_invalid=True, rejects=tmp_path / "r.jsonl")
    assert (result.inserted, result.rejected) == (1, 1)
