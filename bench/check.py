"""`Tollgate.check` and `Tollgate.consume`, in process, against hand-written raw sqlite3.

The database: 100,000 customers, each with a live subscription to a plan granting a metered feature
(a hard monthly allowance), anniversaries spread over the month, and 1,000,000 usage events over the
last 60 days (10 per customer), built with raw sqlite3 executemany into the real schema that
tollgate creates (the catalog itself through the library).

Baselines, on their own connection to the same file:
- check: what a careful hand-written check does: the customer (by identifier), the override row, the
  live subscriptions' grants joined with the subscription's adjustment, the monthly anniversary
  period computed in Python, and the usage sum over the (customer, feature, time) index, in one read
  transaction; the feature's id cached like tollgate's.
- consume: the same inside BEGIN IMMEDIATE, then the INSERT of the event and COMMIT, with tollgate's
  pragmas (WAL, synchronous=FULL, foreign_keys=ON, busy_timeout).
Customers are drawn at random (the same sequence for both); rounds alternate so that noise on this
shared machine hits both alike. The figure is the rate (calls per second) over all rounds.

Targets: check and consume each at >= 25% of the raw rate. Run: python bench/check.py [--reuse]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import time
from calendar import monthrange
from datetime import datetime, timedelta
from pathlib import Path

from common import WORK, add_customers, fresh_database

CUSTOMERS = 100_000
EVENTS = 1_000_000
ALLOWANCE = 1_000_000  # units per month: the benchmark never runs out
CHECK_ROUNDS, CHECK_CALLS = 7, 1_500
CONSUME_ROUNDS, CONSUME_CALLS = 5, 150
TARGET = 0.25
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def build(path: Path, now: datetime) -> None:
    from tollgate import Tollgate

    add_customers(path, CUSTOMERS)
    with Tollgate(path) as tg:
        tg.create_product("API", identifier="api")
        tg.create_feature("API calls", type="metered", identifier="api-calls", unit="call")
        tg.create_feature("SSO", type="boolean", identifier="sso")
        tg.create_plan("pro", product="api", prices=[("month", "USD", "49.00")],
                       feature_values=[f"api-calls={ALLOWANCE}", "sso=true"], hard=["api-calls"])
    conn = sqlite3.connect(path)
    plan_id = conn.execute("SELECT id FROM plan WHERE identifier = 'pro'").fetchone()[0]
    feature_id = conn.execute("SELECT id FROM feature WHERE identifier = 'api-calls'").fetchone()[0]
    ids = [row[0] for row in conn.execute("SELECT id FROM customer ORDER BY id")]
    created = (now - timedelta(days=400)).strftime(SQLITE_TIME)
    conn.executemany(
        "INSERT INTO subscription (public_id, customer_id, plan_id, status, interval, currency, amount_minor,"
        " start_at, created_at, updated_at) VALUES (?, ?, ?, 'active', 'month', 'USD', 4900, ?, ?, ?)",
        (
            (f"sub_{cid:014d}", cid, plan_id,
             (now - timedelta(days=365 + cid % 28, hours=cid % 24)).replace(microsecond=0).strftime(SQLITE_TIME),
             created, created)
            for cid in ids
        ),
    )
    rng = random.Random(7)
    span = 60 * 24 * 3600
    conn.executemany(
        "INSERT INTO usage_event (key, customer_id, feature_id, quantity_micros, occurred_at, recorded_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            (f"ev-{i}", ids[i % len(ids)], feature_id, rng.randint(1, 50) * 1_000_000,
             stamp, stamp)
            for i in range(EVENTS)
            for stamp in [(now - timedelta(seconds=rng.randint(0, span))).strftime(SQLITE_TIME)]
        ),
    )
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


# -- the hand-written baseline ------------------------------------------------------------------------------


def _month_anniversary(anchor: datetime, moment: datetime) -> tuple[datetime, datetime]:
    def shift(months: int) -> datetime:
        total = anchor.year * 12 + anchor.month - 1 + months
        year, month = divmod(total, 12)
        return anchor.replace(year=year, month=month + 1, day=min(anchor.day, monthrange(year, month + 1)[1]))

    n = (moment.year - anchor.year) * 12 + moment.month - anchor.month
    while shift(n) > moment:
        n -= 1
    while shift(n + 1) <= moment:
        n += 1
    return shift(n), shift(n + 1)


RAW_CUSTOMER = "SELECT id, status FROM customer WHERE identifier = ?"
RAW_OVERRIDE = "SELECT value, limit_micros, unlimited, hard, expires_at FROM override WHERE customer_id = ? AND feature_id = ?"
RAW_GRANTS = (
    "SELECT s.start_at, pe.limit_micros, pe.hard, pe.reset, sf.excluded, sf.limit_micros, sf.unlimited"
    " FROM subscription s JOIN plan p ON p.id = s.plan_id"
    " JOIN plan_entitlement pe ON pe.plan_id = s.plan_id AND pe.feature_id = ?"
    " LEFT JOIN subscription_feature sf ON sf.subscription_id = s.id AND sf.feature_id = pe.feature_id"
    " WHERE s.customer_id = ? AND s.start_at <= ?"
    " AND ((s.status IN ('trialing', 'active', 'past_due') AND s.cancel_at IS NULL) OR s.cancel_at > ?)"
    " ORDER BY s.start_at, s.id"
)
RAW_USED = (
    "SELECT COALESCE(SUM(quantity_micros), 0) FROM usage_event"
    " WHERE customer_id = ? AND feature_id = ? AND occurred_at >= ? AND occurred_at < ?"
)
RAW_INSERT = (
    "INSERT INTO usage_event (key, customer_id, feature_id, quantity_micros, occurred_at, recorded_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


class Raw:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=5)
        for pragma in ("busy_timeout = 5000", "journal_mode = WAL", "foreign_keys = ON", "synchronous = FULL"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.features: dict[str, int] = {}
        self.serial = 0

    def _decide(self, customer: str, feature: str, quantity_micros: int, now: datetime):
        conn = self.conn
        fid = self.features.get(feature)
        if fid is None:
            fid = self.features[feature] = conn.execute("SELECT id FROM feature WHERE identifier = ?", (feature,)).fetchone()[0]
        cid, status = conn.execute(RAW_CUSTOMER, (customer,)).fetchone()
        if status == "archived":
            return False, cid, fid
        stamp = now.strftime(SQLITE_TIME)
        override = conn.execute(RAW_OVERRIDE, (cid, fid)).fetchone()
        rows = conn.execute(RAW_GRANTS, (fid, cid, stamp, stamp)).fetchall()
        limit, hard, anchor = 0, True, None
        for start, plan_limit, plan_hard, _reset, excluded, adj_limit, adj_unlimited in rows:
            if excluded:
                continue
            anchor = anchor or datetime.strptime(start, SQLITE_TIME)
            this = None if adj_unlimited else (adj_limit if adj_limit is not None else plan_limit)
            limit = None if this is None or limit is None else limit + this
            hard = hard and bool(plan_hard)
        if override is not None and (override[4] is None or override[4] > stamp):
            limit = None if override[2] else override[1]
        if anchor is None:
            return False, cid, fid
        start, end = _month_anniversary(anchor, now)
        used = conn.execute(RAW_USED, (cid, fid, start.strftime(SQLITE_TIME), end.strftime(SQLITE_TIME))).fetchone()[0]
        allowed = limit is None or not hard or used + quantity_micros <= limit
        return allowed, cid, fid

    def check(self, customer: str, feature: str) -> bool:
        self.conn.execute("BEGIN")
        try:
            return self._decide(customer, feature, 1_000_000, datetime.utcnow())[0]
        finally:
            self.conn.execute("COMMIT")

    def consume(self, customer: str, feature: str) -> bool:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = datetime.utcnow()
            allowed, cid, fid = self._decide(customer, feature, 1_000_000, now)
            if allowed:
                self.serial += 1
                stamp = now.strftime(SQLITE_TIME)
                conn.execute(RAW_INSERT, (f"raw-{time.time_ns()}-{self.serial}", cid, fid, 1_000_000, stamp, stamp))
            conn.execute("COMMIT")
            return allowed
        except BaseException:
            conn.execute("ROLLBACK")
            raise


# -- measuring --------------------------------------------------------------------------------------------


def measure(rounds: int, calls: int, contestants: dict, seed: int) -> dict[str, float]:
    """Calls per second of each contestant over all rounds (rounds alternate, same customers)."""
    elapsed = {name: 0.0 for name in contestants}
    rng = random.Random(seed)
    for _ in range(rounds):
        customers = [f"customer-{rng.randrange(CUSTOMERS)}" for _ in range(calls)]
        for name, call in contestants.items():
            start = time.perf_counter()
            for customer in customers:
                call(customer)
            elapsed[name] += time.perf_counter() - start
    return {name: rounds * calls / seconds for name, seconds in elapsed.items()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reuse", action="store_true", help="Reuse bench/.work/check-100k.db if present.")
    args = parser.parse_args()
    from tollgate import Tollgate

    path = WORK / "check-100k.db"
    now = datetime.utcnow()
    if not (args.reuse and path.exists()):
        started = time.perf_counter()
        path = fresh_database("check-100k.db")
        build(path, now)
        print(f"built {CUSTOMERS:,} customers, {CUSTOMERS:,} subscriptions, {EVENTS:,} usage events "
              f"in {time.perf_counter() - started:.1f} s")
    raw = Raw(path)
    tg = Tollgate(path)
    # sanity: both give the same answer and the same usage
    sample = "customer-4242"
    ours = tg.check(sample, "api-calls")
    assert ours.allowed and raw.check(sample, "api-calls")
    used = raw.conn.execute(RAW_USED, (raw.conn.execute(RAW_CUSTOMER, (sample,)).fetchone()[0], raw.features["api-calls"],
                                       ours.period_start.strftime(SQLITE_TIME), ours.reset_at.strftime(SQLITE_TIME))).fetchone()[0]
    assert used == int(ours.used * 1_000_000), (used, ours.used)
    # warm-up (caches, compiled statements)
    for i in range(300):
        tg.check(f"customer-{i}", "api-calls")
        raw.check(f"customer-{i}", "api-calls")

    results = []
    check_rates = measure(CHECK_ROUNDS, CHECK_CALLS, {
        "raw": lambda c: raw.check(c, "api-calls"),
        "tollgate": lambda c: tg.check(c, "api-calls"),
    }, seed=1)
    consume_rates = measure(CONSUME_ROUNDS, CONSUME_CALLS, {
        "raw": lambda c: raw.consume(c, "api-calls"),
        "tollgate": lambda c: tg.consume(c, "api-calls"),
    }, seed=2)
    print(f"database: {path.name}: {CUSTOMERS:,} customers, {EVENTS:,}+ usage events")
    for name, rates, calls in (("check", check_rates, CHECK_ROUNDS * CHECK_CALLS),
                               ("consume", consume_rates, CONSUME_ROUNDS * CONSUME_CALLS)):
        ratio = rates["tollgate"] / rates["raw"]
        ok = ratio >= TARGET
        results.append(ok)
        print(f"{name:8s} raw sqlite3: {rates['raw']:9,.0f}/s   Tollgate.{name}: {rates['tollgate']:9,.0f}/s   "
              f"({calls:,} calls each)")
        print(f"{name:8s} ratio {ratio:.2f} (target >= {TARGET}) {'OK' if ok else 'MISSED'}")
    tg.close()
    raw.conn.close()
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
