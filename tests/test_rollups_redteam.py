"""Red team of the usage rollups (#13): attempts to make a window's sum from the rollups differ from a
plain sum of the events, to overflow a bucket, or to leave `db check` unhappy. On SQLite and, with
TOLLGATE_TEST_DB, PostgreSQL. Each was found failing (deadlocked files, --set past 64 bits, an over-full old day, a dense millisecond) and then fixed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.test_rollups import ids, plain_sum, rollup_sum
from tollgate import tables
from tollgate.usage.rollups import REFINE_AFTER

NOW = datetime.now().replace(microsecond=0)
TODAY = NOW.replace(hour=0, minute=0, second=0)
YESTERDAY = TODAY - timedelta(days=1)


@pytest.fixture
def metered(tg):
    tg.create_feature("API calls", type="metered", identifier="api-calls")
    tg.create_product("API", identifier="api")
    tg.create_plan("pro", product="api", feature_values=["api-calls=1000000"])
    return tg


def z(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds") + "Z"


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def rows_at(moments, *, prefix: str, quantity: int = 1, customer: str = "acme"):
    return [{"customer": customer, "feature": "api-calls", "quantity": str(quantity), "id": f"{prefix}-{i}",
             "timestamp": z(m)} for i, m in enumerate(moments)]


def assert_all_windows_agree(tg, windows) -> None:
    cid, fid = ids(tg, "acme", "api-calls")
    for lo, hi in list(windows) + [(None, None)]:
        assert rollup_sum(tg, cid, fid, lo, hi) == plain_sum(tg, cid, fid, lo, hi), (lo, hi)
    assert tg.check_database().rollup_differences == 0


def rollup_rows(tg) -> int:
    with tg.db.connect() as conn:
        return conn.execute(select(func.count()).select_from(tables.usage_rollup)).scalar_one()


# -- edges -----------------------------------------------------------------------------------------------


def test_windows_on_every_kind_of_edge_of_a_dense_day_boundary(metered, tmp_path, cli):
    """200 events in the last millisecond of yesterday and 200 in the first of today (both days refined
    to milliseconds), windows on exact bucket edges, microsecond edges, inside one millisecond."""
    tg = metered
    tg.add_customer("Acme")
    midnight = TODAY
    moments = [midnight - timedelta(microseconds=1 + i % 1000) for i in range(200)]
    moments += [midnight + timedelta(microseconds=i % 1000) for i in range(200)]
    moments += [midnight - timedelta(microseconds=1)] * 3 + [midnight] * 3
    path = write_jsonl(tmp_path / "edge.jsonl", rows_at(moments, prefix="e"))
    assert cli("usage", "report", "--file", str(path)).exit_code == 0
    us = timedelta(microseconds=1)
    ms = timedelta(milliseconds=1)
    windows = [
        (midnight, midnight + us), (midnight - us, midnight), (midnight - us, midnight + us),
        (midnight - ms, midnight), (midnight, midnight + ms), (midnight - ms + us, midnight + ms - us),
        (midnight - timedelta(days=1), midnight), (midnight, midnight + timedelta(days=1)),
        (midnight - timedelta(microseconds=500), midnight - timedelta(microseconds=499)),
        (midnight + timedelta(microseconds=17), midnight + timedelta(microseconds=18)),
        (None, midnight), (midnight, None), (None, midnight - us), (midnight + us, None),
        (midnight - timedelta(hours=1), midnight + timedelta(seconds=1)),
        (datetime(1, 1, 1), datetime(9999, 12, 31)),
    ]
    assert_all_windows_agree(tg, windows)


def test_a_day_ahead_and_far_past_are_summed(metered, cli):
    tg = metered
    tg.add_customer("Acme")
    for i, at in enumerate([NOW + timedelta(hours=23), datetime(1970, 1, 1), datetime(1, 1, 1, 0, 0, 1)]):
        assert cli("usage", "report", "acme", "api-calls", "3", "--at", z(at), "--id", f"k{i}").exit_code == 0
    assert_all_windows_agree(tg, [(None, NOW), (NOW, None), (datetime(1, 1, 1), datetime(1, 1, 2))])


# -- how a bucket passes 64 ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["one chunk", "chunk edge", "single reports", "file then reports"])
def test_crossing_the_threshold_any_way_gives_the_same_rollups(metered, tmp_path, cli, how, monkeypatch):
    tg = metered
    tg.add_customer("Acme")
    base = YESTERDAY + timedelta(hours=5, minutes=7, seconds=9, milliseconds=11)
    moments = [base + timedelta(microseconds=i) for i in range(2 * REFINE_AFTER + 3)]
    rows = rows_at(moments, prefix="c")
    if how == "one chunk":
        assert tg.report_usage_file(str(write_jsonl(tmp_path / "a.jsonl", rows))).inserted == len(rows)
    elif how == "chunk edge":
        from tollgate.usage import ingest

        # the 65th event is the first row of the second chunk
        monkeypatch.setitem(ingest.ingest.__kwdefaults__, "chunk_size", REFINE_AFTER)
        result = cli("usage", "report", "--file", str(write_jsonl(tmp_path / "a.jsonl", rows)))
        assert result.exit_code == 0, result
    elif how == "single reports":
        for row in rows:
            assert cli("usage", "report", "acme", "api-calls", "1", "--at", row["timestamp"],
                       "--id", row["id"]).exit_code == 0
    else:
        tg.report_usage_file(str(write_jsonl(tmp_path / "a.jsonl", rows[:REFINE_AFTER])))
        for row in rows[REFINE_AFTER:]:
            tg.report_usage("acme", "api-calls", 1, at=row["timestamp"], key=row["id"])
    with tg.db.connect() as conn:
        levels = {lv for (lv,) in conn.execute(select(tables.usage_rollup.c.level).distinct())}
    assert levels == {0, 1, 2, 3, 4, 5}  # the events share microseconds: refined to them
    assert_all_windows_agree(tg, [(base, base + timedelta(microseconds=70)),
                                  (base + timedelta(microseconds=64), base + timedelta(milliseconds=1))])


# -- files: duplicates, conflicts, skip-invalid, dry run ----------------------------------------------------


def test_only_inserted_rows_count_duplicates_and_conflicts_inside_and_across_chunks(metered, tmp_path, cli):
    tg = metered
    tg.add_customer("Acme")
    base = YESTERDAY + timedelta(hours=3)
    first = rows_at([base + timedelta(microseconds=i) for i in range(100)], prefix="d", quantity=2)
    assert cli("usage", "report", "--file", str(write_jsonl(tmp_path / "1.jsonl", first))).exit_code == 0
    again = first[:50] + [dict(r, quantity="7") for r in first[50:60]]  # 50 duplicates, 10 conflicts
    fresh = rows_at([base + timedelta(microseconds=200 + i) for i in range(80)], prefix="n", quantity=3)
    twins = fresh[:5] + [dict(r, quantity="9") for r in fresh[5:10]]  # repeated / conflicting in the file
    rows = again + fresh + twins
    refused = cli("usage", "report", "--file", str(write_jsonl(tmp_path / "2.jsonl", rows)))
    assert refused.exit_code in (1, 2), refused
    cid, fid = ids(tg, "acme", "api-calls")
    assert plain_sum(tg, cid, fid, None, None) == 200_000_000
    skipped = cli("usage", "report", "--file", str(tmp_path / "2.jsonl"), "--skip-invalid")
    assert skipped.exit_code == 0, skipped
    assert plain_sum(tg, cid, fid, None, None) == 200_000_000 + 80 * 3_000_000
    assert_all_windows_agree(tg, [(base, base + timedelta(microseconds=250)),
                                  (base + timedelta(microseconds=99), base + timedelta(microseconds=201))])


def test_dry_run_writes_no_rollup(metered, tmp_path, cli):
    tg = metered
    tg.add_customer("Acme")
    rows = rows_at([YESTERDAY + timedelta(microseconds=i) for i in range(300)], prefix="dry")
    result = cli("usage", "report", "--file", str(write_jsonl(tmp_path / "d.jsonl", rows)), "--dry-run")
    assert result.exit_code == 0, result
    assert rollup_rows(tg) == 0
    cid, fid = ids(tg, "acme", "api-calls")
    assert plain_sum(tg, cid, fid, None, None) == 0


# -- voids, --set, consume -----------------------------------------------------------------------------------


def test_voids_and_set_totals_and_retried_consumes(metered, tmp_path, cli):
    tg = metered
    tg.add_customer("Acme")
    tg.add_subscription("acme", "pro")
    base = NOW - timedelta(minutes=30)
    rows = rows_at([base + timedelta(microseconds=i * 3) for i in range(REFINE_AFTER + 10)], prefix="v")
    tg.report_usage_file(str(write_jsonl(tmp_path / "v.jsonl", rows)))
    for i in range(0, REFINE_AFTER + 10, 7):
        assert cli("usage", "void", f"v-{i}", "--reason", "test", "--yes").exit_code == 0
    assert cli("usage", "report", "acme", "api-calls", "5", "--set", "--id", "s1").exit_code == 0
    assert cli("usage", "report", "acme", "api-calls", "5", "--set", "--id", "s1").exit_code == 0  # retry
    for _ in range(3):
        assert cli("check", "acme", "api-calls", "--consume", "--quantity", "2", "--key", "c1").exit_code == 0
    assert_all_windows_agree(tg, [(base, base + timedelta(microseconds=3 * 40 + 1)), (base, NOW)])
    ent = next(e for e in tg.entitlements("acme") if e.feature == "api-calls")
    assert ent.used == 7


# -- overflow ------------------------------------------------------------------------------------------------


def test_set_total_cannot_push_an_hour_bucket_past_64_bits(metered, tmp_path, cli):
    tg = metered
    tg.add_customer("Acme")
    tg.add_subscription("acme", "pro", start="2026-01-01T00:00:00Z")
    day = YESTERDAY if NOW.hour < 3 else TODAY
    if day == YESTERDAY:
        pytest.skip("needs three hours of today in the current period")
    dense = rows_at([day + timedelta(microseconds=i) for i in range(REFINE_AFTER + 1)], prefix="dense")
    tg.report_usage_file(str(write_jsonl(tmp_path / "dense.jsonl", dense)))  # the day is refined
    codes = []
    for rnd in range(3):
        for i in range(4):
            at = z(day + timedelta(hours=1, microseconds=rnd * 10 + i))
            codes.append(cli("usage", "report", "acme", "api-calls", "1000000000000", "--at", at,
                             "--id", f"big-{rnd}-{i}").exit_code)
        at = z(day + timedelta(hours=2, microseconds=rnd))
        codes.append(cli("usage", "report", "acme", "api-calls", "0", "--set", "--at", at, "--id", f"zero-{rnd}")
                     .exit_code)
    assert set(codes) <= {0, 2}, codes
    assert cli("db", "check").exit_code == 0
    assert_all_windows_agree(tg, [(day + timedelta(hours=1), day + timedelta(hours=2))])


def test_voids_keep_every_bucket_within_bounds(metered, tmp_path, cli):
    tg = metered
    tg.add_customer("Acme")
    at = YESTERDAY + timedelta(hours=4)
    dense = rows_at([at + timedelta(microseconds=i) for i in range(REFINE_AFTER + 1)], prefix="dense",
                    quantity=10**12 // 100)
    tg.report_usage_file(str(write_jsonl(tmp_path / "dense.jsonl", dense)))
    for rnd in range(6):
        code = cli("usage", "report", "acme", "api-calls", "1000000000000", "--at", z(at), "--id", f"b{rnd}").exit_code
        assert code in (0, 2)
        if code == 0:
            assert cli("usage", "void", f"b{rnd}", "--reason", "oops", "--yes").exit_code == 0
    assert cli("db", "check").exit_code == 0
    assert_all_windows_agree(tg, [(at, at + timedelta(hours=1))])


# -- concurrency: real processes ------------------------------------------------------------------------------

WORKER = r"""
import json, sys
from tollgate import Tollgate
mode, n, path, base = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
tg = Tollgate()
if mode == "file":
    tg.report_usage_file(path)
else:
    from datetime import datetime, timedelta
    start = datetime.fromisoformat(base)
    for i in range(40):
        tg.report_usage("acme", "api-calls", 1, at=(start + timedelta(microseconds=n * 1000 + i)).isoformat() + "Z",
                        key=f"single-{n}-{i}")
tg.close()
"""


@pytest.mark.slow
def test_concurrent_writers_of_one_day_keep_the_rollups_exact(metered, tmp_path, cli):
    tg = metered
    tg.add_customer("Acme")
    base = YESTERDAY + timedelta(hours=6)
    procs = []
    env = dict(os.environ)
    for n in range(6):
        moments = [base + timedelta(microseconds=n * 1000 + 500 + i) for i in range(50)]
        path = write_jsonl(tmp_path / f"w{n}.jsonl", rows_at(moments, prefix=f"w{n}"))
        mode = "file" if n % 2 == 0 else "single"
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, mode, str(n), str(path), base.isoformat()],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    cid, fid = ids(tg, "acme", "api-calls")
    assert plain_sum(tg, cid, fid, None, None) == (3 * 50 + 3 * 40) * 1_000_000
    check = cli("db", "check")
    assert check.exit_code == 0, check
    assert_all_windows_agree(tg, [(base + timedelta(microseconds=a), base + timedelta(microseconds=b))
                                  for a, b in [(0, 1), (500, 1500), (1499, 3501), (0, 6000), (2000, 2040)]])


# -- migration ---------------------------------------------------------------------------------------------

FIXTURE = Path(__file__).parent / "fixtures" / "schema-1.sqlite"


@pytest.mark.sqlite_only("the released fixture is a SQLite file")
def test_the_schema_1_fixture_migrates_and_db_check_agrees(tmp_path, cli, monkeypatch):
    import shutil

    copy = tmp_path / "old.db"
    shutil.copy(FIXTURE, copy)
    monkeypatch.setenv("TOLLGATE_DB", str(copy))
    result = cli("db", "check")
    assert result.exit_code == 0, result


@pytest.mark.sqlite_only("the released fixture is a SQLite file")
def test_a_schema_1_day_past_the_new_bound_does_not_crash_the_upgrade(tmp_path, cli, monkeypatch):
    import shutil
    import sqlite3

    copy = tmp_path / "old.db"
    shutil.copy(FIXTURE, copy)
    raw = sqlite3.connect(copy)
    cid, fid = raw.execute("SELECT customer_id, feature_id FROM usage_event LIMIT 1").fetchone()
    raw.executemany(
        "INSERT INTO usage_event (key, customer_id, feature_id, quantity_micros, occurred_at, recorded_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(f"old-big-{i}", cid, fid, 10**18, "2026-06-01 10:00:00.000000", "2026-06-01 10:00:00.000000")
         for i in range(10)])
    raw.commit()
    raw.close()
    monkeypatch.setenv("TOLLGATE_DB", str(copy))
    result = cli("db", "check")
    assert result.exit_code in (0, 1, 2, 3) and "Traceback" not in result.stderr, result


# -- cost ---------------------------------------------------------------------------------------------------


class _CountingConnection:
    """A Connection that counts the usage_event rows its queries return (the read path's cost)."""

    def __init__(self, conn) -> None:
        self._conn = conn
        self.dialect = conn.dialect
        self.event_rows = 0

    def execute(self, statement, *args, **kwargs):
        rows = _Rows(self._conn.execute(statement, *args, **kwargs).all())
        if "usage_event" in str(statement):
            self.event_rows += len(rows)
        return rows


class _Rows(list):
    def all(self) -> list:
        return list(self)


def test_a_window_edge_inside_a_dense_millisecond_reads_a_bounded_number_of_events(metered, tmp_path, cli):
    from tollgate.usage.rollups import window_total

    tg = metered
    tg.add_customer("Acme")
    path = tmp_path / "now.csv"
    path.write_text("customer,feature,quantity,id\n" + "".join(f"acme,api-calls,1,n{i}\n" for i in range(3000)))
    assert cli("usage", "report", "--file", str(path)).exit_code == 0
    cid, fid = ids(tg, "acme", "api-calls")
    with tg.db.connect() as conn:
        (at,) = conn.execute(select(tables.usage_event.c.occurred_at).limit(1)).one()
        at = at if isinstance(at, datetime) else datetime.fromisoformat(at)
        if at.microsecond % 1000 != 999:
            lo, hi = at - timedelta(days=3), at + timedelta(microseconds=1)
        else:
            lo, hi = at, at + timedelta(days=3)
        counting = _CountingConnection(conn)
        assert window_total(counting, customer_id=cid, feature_id=fid, start=lo, end=hi) == 3000 * 10**6
    assert counting.event_rows <= 2 * REFINE_AFTER, counting.event_rows


# -- db copy -----------------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.sqlite_only("the source is this test's SQLite file")
def test_db_copy_sqlite_postgresql_sqlite_rebuilds_dense_rollups(metered, tmp_path, cli, pg_url, monkeypatch):
    tg = metered
    tg.add_customer("Acme")
    base = YESTERDAY + timedelta(hours=23, minutes=59, seconds=59, milliseconds=998)
    rows = rows_at([base + timedelta(microseconds=i * 7) for i in range(600)], prefix="cp")
    tg.report_usage_file(str(write_jsonl(tmp_path / "cp.jsonl", rows)))
    tg.void_usage("cp-3", reason="x")
    source = tg.db.display_location
    tg.close()
    back = tmp_path / "back" / "tollgate.db"
    assert cli("db", "copy", str(source), pg_url).exit_code == 0
    assert cli("db", "copy", pg_url, str(back)).exit_code == 0
    for location in (source, pg_url, str(back)):
        monkeypatch.setenv("TOLLGATE_DB", str(location))
        check = cli("db", "check", "--json")
        assert check.exit_code == 0, check
        assert check.json()["rollups"] > 5


DEADLOCK_WORKER = r"""
import sys
from tollgate import Tollgate
from tollgate.usage import ingest
ingest.ingest.__kwdefaults__["chunk_size"] = 50
tg = Tollgate()
tg.report_usage_file(sys.argv[1])
tg.close()
"""


@pytest.mark.skipif(not os.environ.get("TOLLGATE_TEST_DB"), reason="PostgreSQL's row locks (SQLite: one writer)")
def test_concurrent_files_touching_days_in_different_orders_do_not_deadlock(metered, tmp_path, cli):
    tg = metered
    tg.add_customer("Acme")
    days = [YESTERDAY - timedelta(days=1), YESTERDAY]
    procs = []
    for n in range(4):
        rows = []
        for part in range(8):  # chunks of 50 rows alternating between the two days
            day = days[(part + n) % 2] + timedelta(hours=n)
            rows += rows_at([day + timedelta(microseconds=part * 100 + i) for i in range(50)],
                            prefix=f"dl{n}-{part}")
        path = write_jsonl(tmp_path / f"dl{n}.jsonl", rows)
        procs.append(subprocess.Popen([sys.executable, "-c", DEADLOCK_WORKER, str(path)], env=dict(os.environ),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    errors = []
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        if proc.returncode != 0:
            errors.append(err[-300:])
    assert not errors, errors
    cid, fid = ids(tg, "acme", "api-calls")
    assert plain_sum(tg, cid, fid, None, None) == 4 * 8 * 50 * 1_000_000
    assert cli("db", "check").exit_code == 0
