"""Usage rollups (usage/rollups.py): every window's sum read from the rollups equals a plain sum of
the events, whatever was written and how (reports, files, consumes, voids, backdated and dense
events); `db check` proves them; no accepted sequence of events overflows a sum. On SQLite and, with
TOLLGATE_TEST_DB, PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from conftest import ok
from tollgate import tables
from tollgate.usage.rollups import REFINE_AFTER, window_total

BASE = datetime(2026, 10, 1)
NOW = datetime.now().replace(microsecond=0)


def plain_sum(tg, customer_id: int, feature_id: int, start: datetime | None, end: datetime | None) -> int:
    """The reference: every event in [start, end), added up in Python."""
    event = tables.usage_event
    where = [event.c.customer_id == customer_id, event.c.feature_id == feature_id]
    if start is not None:
        where.append(event.c.occurred_at >= start)
    if end is not None:
        where.append(event.c.occurred_at < end)
    with tg.db.connect() as conn:
        return sum(q for (q,) in conn.execute(select(event.c.quantity_micros).where(*where)))


def rollup_sum(tg, customer_id: int, feature_id: int, start, end) -> int:
    """The window's sum from the rollups, read alone (window_total) and in a batch (window_batch): equal."""
    from tollgate.usage.window_batch import window_totals

    with tg.db.connect() as conn:
        alone = window_total(conn, customer_id=customer_id, feature_id=feature_id, start=start, end=end)
        batched = window_totals(conn, [("w", customer_id, feature_id, start, end), ("other", customer_id + 1,
                                                                                     feature_id, start, end)])
    assert batched["w"] == alone
    return alone


def ids(tg, customer: str, feature: str) -> tuple[int, int]:
    with tg.db.connect() as conn:
        cid = conn.execute(select(tables.customer.c.id).where(tables.customer.c.identifier == customer)).scalar_one()
        fid = conn.execute(select(tables.feature.c.id).where(tables.feature.c.identifier == feature)).scalar_one()
    return cid, fid


@pytest.fixture
def metered(tg):
    tg.create_feature("API calls", type="metered", identifier="api-calls")
    tg.create_product("API", identifier="api")
    tg.create_plan("pro", product="api", feature_values=["api-calls=1000000"])
    tg.create_plan("big", product="api", feature_values=["api-calls=5000000"], resets=["api-calls=week"])
    return tg


# -- random histories ----------------------------------------------------------------------------------

offsets = st.one_of(
    st.integers(0, 40 * 86_400 * 1_000_000),  # anywhere in 40 days
    st.integers(0, 3_000_000),  # the first three seconds: dense buckets, refined to milliseconds
    st.integers(0, 2 * 3_600 * 1_000_000),  # the first two hours
)
operation = st.one_of(
    st.tuples(st.just("report"), offsets, st.integers(1, 10**6)),
    st.tuples(st.just("file"), st.lists(st.tuples(offsets, st.integers(1, 10**4)), min_size=1, max_size=150)),
    st.tuples(st.just("burst"), offsets, st.integers(REFINE_AFTER - 5, 3 * REFINE_AFTER)),
    st.tuples(st.just("void"), st.integers(0, 10**6)),
    st.tuples(st.just("consume"), st.integers(1, 1000)),
    st.tuples(st.just("plan"), st.sampled_from(["pro", "big"])),
)
window_edge = st.one_of(st.none(), offsets.map(lambda us: BASE + timedelta(microseconds=us)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(history=st.lists(operation, min_size=1, max_size=12), windows=st.lists(st.tuples(window_edge, window_edge),
                                                                                min_size=1, max_size=8))
def test_rollup_sums_equal_the_events_for_any_window(metered, tmp_path, history, windows):
    tg = metered
    customer = tg.add_customer("Acme").identifier
    sub = tg.add_subscription(customer, "pro", start=BASE.isoformat() + "Z")
    keys: list[str] = []
    for n, op in enumerate(history):
        kind = op[0]
        if kind == "report":
            keys.append(tg.report_usage(customer, "api-calls", op[2],
                                        at=(BASE + timedelta(microseconds=op[1])).isoformat() + "Z").key)
        elif kind in ("file", "burst"):
            rows = op[1] if kind == "file" else [(op[1] + i * 7, i + 1) for i in range(op[2])]
            path = tmp_path / f"{customer}-{n}.jsonl"
            path.write_text("".join(json.dumps({
                "customer": customer, "feature": "api-calls", "quantity": str(q), "id": f"{customer}-{n}-{i}",
                "timestamp": (BASE + timedelta(microseconds=us)).isoformat() + "Z"}) + "\n"
                for i, (us, q) in enumerate(rows)))
            tg.report_usage_file(str(path))
            keys.extend(f"{customer}-{n}-{i}" for i in range(len(rows)))
        elif kind == "void" and keys:
            key = keys.pop(op[1] % len(keys))
            tg.void_usage(key, reason="test")
        elif kind == "consume":
            tg.consume(customer, "api-calls", op[1])
        elif kind == "plan":
            tg.edit_subscription(sub.id, plan=op[1])
    cid, fid = ids(tg, customer, "api-calls")
    for start, end in windows + [(None, None), (BASE, None)]:
        assert rollup_sum(tg, cid, fid, start, end) == plain_sum(tg, cid, fid, start, end), (start, end)
    ent = next(e for e in tg.entitlements(customer) if e.feature == "api-calls")
    assert int(ent.used * 1_000_000) == plain_sum(tg, cid, fid, ent.period_start, ent.reset_at)
    assert tg.check_database().rollup_differences == 0


# -- the refinement itself -------------------------------------------------------------------------------


def test_a_dense_burst_is_refined_and_windows_inside_it_are_exact(metered, tmp_path):
    tg = metered
    tg.add_customer("Acme")
    start = NOW - timedelta(minutes=30)
    path = tmp_path / "burst.csv"
    lines = ["customer,feature,quantity,timestamp"]
    for i in range(5000):  # 5,000 events in 5 seconds: every level down to milliseconds is refined
        moment = start + timedelta(microseconds=i * 1000 + i % 3)
        lines.append(f"acme,api-calls,{i % 9 + 1},{moment.isoformat()}Z")
    path.write_text("\n".join(lines) + "\n")
    assert tg.report_usage_file(str(path)).inserted == 5000
    cid, fid = ids(tg, "acme", "api-calls")
    with tg.db.connect() as conn:
        levels = {lv for (lv,) in conn.execute(select(tables.usage_rollup.c.level).distinct())}
    assert levels == {0, 1, 2, 3, 4}
    for a, b in [(0, 1), (1234, 4_321_000), (999, 1001), (2_500_000, 2_500_001), (0, 5_000_000)]:
        lo, hi = start + timedelta(microseconds=a), start + timedelta(microseconds=b)
        assert rollup_sum(tg, cid, fid, lo, hi) == plain_sum(tg, cid, fid, lo, hi)
    assert tg.check_database().ok


def _statements_of_window(tg, cid, fid, lo, hi) -> tuple[int, int]:
    """(the window's sum, the statements it ran), counted on the engine's cursor."""
    from sqlalchemy import event

    ran: list[str] = []

    def count(conn, cursor, statement, *args):
        ran.append(statement)

    event.listen(tg.db.engine, "before_cursor_execute", count)
    try:
        with tg.db.connect() as conn:
            total = window_total(conn, customer_id=cid, feature_id=fid, start=lo, end=hi)
    finally:
        event.remove(tg.db.engine, "before_cursor_execute", count)
    return total, len(ran)


def test_a_window_with_small_partial_days_is_one_statement_and_a_dense_one_reads_its_buckets(metered, tmp_path):
    """A check reads its window in one statement when the window's first and last days hold
    REFINE_AFTER events or fewer (their events are summed in it); a denser partial day is read from
    its refined buckets, and the sum is exact either way."""
    tg = metered
    tg.add_customer("Acme")
    day = datetime(NOW.year, NOW.month, NOW.day) - timedelta(days=3)
    for hour in (1, 5, 9, 20):  # a few events on each of three days
        for offset in range(3):
            tg.report_usage("acme", "api-calls", hour + offset,
                            at=(day + timedelta(days=offset, hours=hour)).isoformat() + "Z")
    cid, fid = ids(tg, "acme", "api-calls")
    lo, hi = day + timedelta(hours=3), day + timedelta(days=2, hours=12)  # partial first and last days
    total, statements = _statements_of_window(tg, cid, fid, lo, hi)
    assert total == plain_sum(tg, cid, fid, lo, hi) > 0
    assert statements == 1
    path = tmp_path / "dense.csv"  # more than REFINE_AFTER events in the window's first day
    path.write_text("customer,feature,quantity,timestamp\n" + "".join(
        f"acme,api-calls,1,{(day + timedelta(hours=2, seconds=i)).isoformat()}Z\n" for i in range(2 * REFINE_AFTER)))
    assert tg.report_usage_file(str(path)).inserted == 2 * REFINE_AFTER
    total, statements = _statements_of_window(tg, cid, fid, day + timedelta(hours=1, minutes=30), hi)
    assert total == plain_sum(tg, cid, fid, day + timedelta(hours=1, minutes=30), hi)
    assert statements > 1  # the dense first day: its hours' buckets


# -- db check --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tamper", [
    "UPDATE usage_rollup SET total_micros = total_micros + 1 WHERE level = 0",
    "DELETE FROM usage_rollup",
    "INSERT INTO usage_rollup (customer_id, feature_id, level, start, total_micros, events) "
    "SELECT customer_id, feature_id, 1, start, 5, 1 FROM usage_rollup WHERE level = 0",
])
def test_db_check_finds_rollups_that_disagree_with_the_events(metered, cli, tamper):
    tg = metered
    tg.add_customer("Acme")
    tg.report_usage("acme", "api-calls", 5, at=(NOW - timedelta(hours=2)).isoformat() + "Z")
    good = cli("db", "check")
    assert good.exit_code == 0, good
    assert "all agree" in good.stdout
    with tg.db.engine.begin() as conn:
        conn.exec_driver_sql(tamper)
    bad = cli("db", "check", "--json")
    assert bad.exit_code == 1, bad
    data = bad.json()
    assert data["ok"] is False and data["rollup_differences"] >= 1 and data["differences"]
    plain = cli("db", "check")
    assert plain.exit_code == 1 and "differ" in plain.stdout and "customer id" in plain.stderr


# -- no overflow -----------------------------------------------------------------------------------------


def test_no_sequence_of_reports_overflows_and_the_refusal_is_exit_2(metered, cli):
    tg = metered
    tg.add_customer("Acme")
    tg.add_subscription("acme", "pro")
    at = (NOW - timedelta(hours=1)).isoformat() + "Z"
    codes = [cli("usage", "report", "acme", "api-calls", "1000000000000", "--at", at, "--id", f"big-{i}").exit_code
             for i in range(10)]
    assert codes[:4] == [0, 0, 0, 0]
    assert set(codes[4:]) == {2}, codes
    refused = cli("usage", "report", "acme", "api-calls", "1000000000000", "--at", at, "--id", "big-x")
    assert "most tollgate keeps" in refused.stderr and "Traceback" not in refused.stderr
    # the day after is a fresh day; everything still reads and bills
    tomorrow = (NOW - timedelta(hours=1) + timedelta(days=1, minutes=-1)).isoformat() + "Z"
    assert cli("usage", "report", "acme", "api-calls", "5", "--at", tomorrow).exit_code in (0, 2)
    assert cli("check", "acme", "api-calls").exit_code == 0
    assert cli("usage", "show", "acme", "--json").exit_code == 0
    assert cli("invoice", "preview", "acme", "--json").exit_code == 0
    assert cli("db", "check").exit_code == 0


@pytest.mark.parametrize("rows", [6, 10])  # 10: past what SQLite's own sum() of the day can hold (2**63)
def test_a_file_that_would_overflow_a_day_writes_nothing(metered, cli, tmp_path, rows):
    tg = metered
    tg.add_customer("Acme")
    at = (NOW - timedelta(hours=1)).isoformat() + "Z"
    path = tmp_path / "big.csv"
    path.write_text("customer,feature,quantity,timestamp,id\n" + "".join(
        f"acme,api-calls,1000000000000,{at},k{i}\n" for i in range(rows)))
    result = cli("usage", "report", "--file", str(path))
    assert result.exit_code == 2, result
    assert "most tollgate keeps" in result.stderr
    cid, fid = ids(tg, "acme", "api-calls")
    assert plain_sum(tg, cid, fid, None, None) == 0 and rollup_sum(tg, cid, fid, None, None) == 0


def test_a_file_chunk_groups_only_its_own_events_not_the_whole_table(metered, cli, tmp_path, db_path):
    """The day grouping of a file chunk (rollups._NEW_DAYS_SQLITE) reads the events past the high-water
    id by rowid range: a scan of the covering index would read every event in the table for every
    chunk, so an import's cost would grow with the square of its size."""
    import sqlite3

    from tollgate.usage.rollups import _NEW_DAYS_SQLITE

    if not metered.db.is_sqlite:
        pytest.skip("SQLite's statement")
    metered.add_customer("Acme")
    path = tmp_path / "events.csv"
    path.write_text("customer,feature,quantity\n" + "acme,api-calls,1\n" * 200)
    ok(cli("usage", "report", "--file", str(path)))
    conn = sqlite3.connect(db_path)
    plan = " | ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + _NEW_DAYS_SQLITE, (100,)))
    conn.close()
    assert "SEARCH usage_event USING INTEGER PRIMARY KEY (rowid>?)" in plan, plan


@pytest.mark.sqlite_only("SQLite's virtual machine steps (its progress handler)")
def test_a_windows_cost_does_not_grow_with_the_events_of_its_partial_day(metered, tmp_path):
    """The work SQLite does for a window (its virtual machine's steps, counted by the driver's
    progress handler) stays about the same whether the window's partial first day holds 200 events
    or 20,000: the dense day is read from its refined buckets, never scanned."""
    tg = metered
    day = datetime(NOW.year, NOW.month, NOW.day) - timedelta(days=2)

    def steps_for(customer: str, events: int) -> int:
        tg.add_customer(customer)
        path = tmp_path / f"{customer}.csv"
        step = timedelta(hours=20) / events
        path.write_text("customer,feature,quantity,timestamp\n" + "".join(
            f"{customer},api-calls,1,{(day + timedelta(hours=2) + step * i).isoformat()}Z\n" for i in range(events)))
        assert tg.report_usage_file(str(path)).inserted == events
        cid, fid = ids(tg, customer, "api-calls")
        lo, hi = day + timedelta(hours=12, minutes=30, seconds=7), day + timedelta(days=1, hours=1)
        counted = [0]

        def tick() -> int:
            counted[0] += 1
            return 0

        with tg.db.connect() as conn:
            driver = conn.connection.driver_connection
            driver.set_progress_handler(tick, 10)
            try:
                total = window_total(conn, customer_id=cid, feature_id=fid, start=lo, end=hi)
            finally:
                driver.set_progress_handler(None, 10)
        assert total == plain_sum(tg, cid, fid, lo, hi) > 0
        return counted[0]

    sparse, dense = steps_for("few", 200), steps_for("many", 20_000)
    assert dense < 3 * sparse, (sparse, dense)


def test_a_window_is_an_int_and_a_partial_day_past_2_63_is_summed_exactly(metered):
    """Only buckets are bounded, not any stretch of a day: +10**12 units at 10 moments early in a day,
    each taken back by a --set later that day, keep every bucket small, yet the morning holds 10**13
    units (past 2**63 millionths, SQLite's SUM). The window still reads, exactly, as an int (on
    PostgreSQL the union's SUM makes the day buckets NUMERIC too). So does a batch of windows.
    Three heavy days (their buckets' sum past 2**63) read in a batch as alone."""
    tg = metered
    tg.add_customer("Acme")
    tg.add_subscription("acme", "pro")
    morning = NOW - timedelta(hours=3)
    for i in range(10):
        tg.report_usage("acme", "api-calls", 10**12, at=(morning + timedelta(seconds=i)).isoformat() + "Z")
        tg.report_usage("acme", "api-calls", 0, at=(morning + timedelta(hours=2, seconds=i)).isoformat() + "Z",
                        set_total=True)
    cid, fid = ids(tg, "acme", "api-calls")
    for lo, hi in [(morning - timedelta(seconds=1), morning + timedelta(minutes=1)),  # inside one day
                   (morning - timedelta(days=2), morning + timedelta(minutes=1)),  # its partial last day
                   (morning - timedelta(days=2), None), (None, None)]:
        total = rollup_sum(tg, cid, fid, lo, hi)  # alone and in a batch (a bill run's)
        assert type(total) is int and total == plain_sum(tg, cid, fid, lo, hi), (lo, hi)
    assert total == 0
    for days in (1, 2, 3):
        for i in range(4):
            tg.report_usage("acme", "api-calls", 10**12, at=(morning - timedelta(days=days, seconds=i)).isoformat() + "Z")
    lo, hi = morning - timedelta(days=4), morning - timedelta(hours=1)
    assert rollup_sum(tg, cid, fid, lo, hi) == plain_sum(tg, cid, fid, lo, hi) == 12 * 10**18
