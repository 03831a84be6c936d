"""Process-level: many processes consuming at once can never push usage past a hard limit; meanwhile a
reader runs `usage show` in a loop and never errors (tests/test_load.py)."""

from __future__ import annotations

import sys
import textwrap

import pytest

PROCESSES = 8
ATTEMPTS = 300
ALLOWANCE = 1000

WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from tollgate import Tollgate

    db, go = sys.argv[1], sys.argv[2]
    tg = Tollgate(db)
    tg.check("acme", "api-calls")  # open the database and warm up before the start line
    while not os.path.exists(go):
        time.sleep(0.001)
    allowed = denied = 0
    errors = []
    for _ in range({attempts}):
        try:
            result = tg.consume("acme", "api-calls", 1)
        except Exception as exc:  # counted and reported: the test expects none
            errors.append(f"{{type(exc).__name__}}: {{exc}}")
            continue
        if result.allowed:
            allowed += 1
        else:
            denied += 1
    tg.close()
    print(json.dumps({{"allowed": allowed, "denied": denied, "errors": errors}}))
    """
).format(attempts=ATTEMPTS)


@pytest.mark.slow
def test_concurrent_consumers_never_exceed_a_hard_allowance(isolated_db, tmp_path):
    """8 processes x 300 `consume(1)` against a hard allowance of 1,000 (a SQLite file, or the
    PostgreSQL database of this test when the suite runs there)."""
    from pathlib import Path

    from sqlalchemy import func, select

    from tollgate import Tollgate
    from tollgate.db import integrity_check
    from tollgate.models import UsageEvent

    db = isolated_db
    with Tollgate(db) as tg:
        tg.create_product("API", identifier="api")
        tg.create_feature("API calls", type="metered", identifier="api-calls")
        tg.create_plan("metered", product="api", feature_values=[f"api-calls={ALLOWANCE}"], hard=["api-calls"])
        tg.add_customer("Acme", identifier="acme")
        tg.add_subscription("acme", "metered")
    from test_load import ConcurrentReader, storm_with_reader

    go = tmp_path / "go"
    reports, stderr, seen = storm_with_reader(
        [[sys.executable, "-c", WORKER, str(db), str(go)] for _ in range(PROCESSES)], go,
        ConcurrentReader(db, tmp_path, "acme", "--feature", "api-calls"), timeout=600,
    )
    assert seen["errors"] == [] and seen["error_count"] == 0, seen
    assert seen["runs"] >= 2 and seen["last_total"] == str(ALLOWANCE)
    errors = [e for report in reports for e in report["errors"]]
    assert errors == []
    assert "locked" not in stderr.lower() and "Traceback" not in stderr
    assert sum(r["allowed"] for r in reports) == ALLOWANCE
    assert sum(r["denied"] for r in reports) == PROCESSES * ATTEMPTS - ALLOWANCE
    with Tollgate(db) as tg:
        with tg.db.read() as session:
            count, total = session.execute(
                select(func.count(), func.sum(UsageEvent.quantity_micros)).select_from(UsageEvent)
            ).one()
        assert (count, total) == (ALLOWANCE, ALLOWANCE * 1_000_000)
        final = tg.check("acme", "api-calls")
        assert not final.allowed and final.used == ALLOWANCE and final.remaining == 0
        assert tg.check_database().ok  # every rollup agrees with the events after the race
    if isinstance(db, Path):
        assert integrity_check(db) == "ok"
