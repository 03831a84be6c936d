"""Process-level: 16 processes report usage at once into one database (a SQLite file, or PostgreSQL
with TOLLGATE_TEST_DB), half of the events sent twice (by another process, racing the first send):
every event is recorded exactly once. Meanwhile a reader runs `usage show` in a loop and never errors
(tests/test_load.py)."""

from __future__ import annotations

import sys
import textwrap

import pytest

PROCESSES = 16
EVENTS = 250

WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from tollgate import Tollgate

    db, go, me, processes, events = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    neighbour = (me + 1) % processes
    tg = Tollgate(db)
    tg.usage("acme")  # open the database and warm up before the start line
    while not os.path.exists(go):
        time.sleep(0.001)
    recorded = duplicates = 0
    errors = []

    def send(owner, i):
        global recorded, duplicates
        try:
            result = tg.report_usage("acme", "api-calls", f"{i % 7 + 1}.5", key=f"p{owner}-e{i}",
                                     at=f"2026-11-01T{owner:02d}:{i // 60:02d}:{i % 60:02d}Z")
        except Exception as exc:  # counted and reported: the test expects none
            errors.append(f"{type(exc).__name__}: {exc}")
            return
        if result.recorded:
            recorded += 1
        else:
            duplicates += 1

    for i in range(events):
        send(me, i)
        if i % 2 == 0:
            send(neighbour, i)  # the same event again, as the neighbour sends it: a race on the key
    tg.close()
    print(json.dumps({"recorded": recorded, "duplicates": duplicates, "errors": errors}))
    """
)


@pytest.mark.slow
def test_sixteen_processes_record_every_event_exactly_once(tmp_path, isolated_db):
    """On a SQLite file, or on the PostgreSQL database of this test when the suite runs there."""
    from pathlib import Path

    from tollgate import Tollgate
    from tollgate.db import integrity_check

    db = isolated_db
    with Tollgate(db) as tg:
        tg.add_customer("Acme", identifier="acme")
        tg.create_feature("API calls", type="metered", identifier="api-calls")
    from test_load import ConcurrentReader, storm_with_reader

    go = tmp_path / "go"
    reports, stderr, seen = storm_with_reader(
        [[sys.executable, "-c", WORKER, str(db), str(go), str(p), str(PROCESSES), str(EVENTS)]
         for p in range(PROCESSES)], go,
        ConcurrentReader(db, tmp_path, "acme", "--feature", "api-calls", "--from", "2026-11-01",
                         "--to", "2026-11-01"),
        timeout=900,
    )
    assert seen["errors"] == [] and seen["error_count"] == 0, seen
    assert seen["runs"] >= 2
    assert [e for r in reports for e in r["errors"]] == []
    assert "Traceback" not in stderr
    assert sum(r["recorded"] for r in reports) == PROCESSES * EVENTS == 4000
    assert sum(r["duplicates"] for r in reports) == PROCESSES * EVENTS // 2 == 2000
    with Tollgate(db) as tg, tg.db.engine.connect() as conn:
        count, total = conn.exec_driver_sql("SELECT COUNT(*), SUM(quantity_micros) FROM usage_event").one()
        journaled = conn.exec_driver_sql("SELECT COUNT(*) FROM journal WHERE action = 'usage.report'").scalar()
    assert count == 4000 and journaled == 4000
    assert total == PROCESSES * sum((i % 7 + 1) * 1_000_000 + 500_000 for i in range(EVENTS))
    assert seen["last_total"] == str(total // 1_000_000)  # the reader's last run saw every event
    with Tollgate(db) as tg:
        assert tg.check_database().ok  # every rollup agrees with the events after the storm
    if isinstance(db, Path):
        assert integrity_check(db) == "ok"
