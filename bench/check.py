"""`Tollgate.check` and `Tollgate.consume`, in process, against a hand-written O(1) design in raw sqlite3.

The database: 100,000 customers, each with a live subscription to a plan granting a metered feature
(a hard monthly allowance), anniversaries spread over the month, and 1,000,000 usage events over the
last 60 days (10 per customer), built with raw sqlite3 executemany into the real schema that
tollgate creates (the catalog itself through the library), then counted in the rollups
(usage.rollups.rebuild, as a schema migration does).

The baseline is what a careful hand-written design does, on its own connection to the same file: it
keeps a counter per (customer, feature, period start) in a table of its own, `raw_usage_counter`
(filled from the events at the start of each run, then kept by its own consume), so that
- check is three indexed reads in one read transaction: the customer by identifier (with its
  override of the feature), the live subscriptions' grants joined with the subscription's
  adjustment, and ONE counter row for the period (the monthly anniversary, computed in Python); the
  feature's id cached like tollgate's;
- consume is the same inside BEGIN IMMEDIATE, then an upsert of the counter row and the INSERT of
  the event, and COMMIT, with tollgate's pragmas (WAL, synchronous=FULL, foreign_keys=ON,
  busy_timeout).
Beside the figures it prints the floor of SQLAlchemy Core: the baseline's own statements and Python
run through Core in tollgate's read transaction, as three statements and merged into two (the
fewest a design can run, since the period follows from the grants). Not targets: what any design
on Core pays at least.
Customers are drawn at random (the same sequence for both); rounds alternate so that noise on this
shared machine hits both alike, and who goes first turns; the database file is read once before,
so that it is in the OS's cache for all. The figure is the rate (calls per second) over all rounds.

Targets: check at >= 50% of the raw rate, consume at >= 40%. Run: python bench/check.py [--reuse]
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
TARGETS = {"check": 0.5, "consume": 0.4}
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def build(path: Path, now: datetime) -> None:
    from tollgate import Tollgate
    from tollgate.usage.rollups import rebuild

    add_customers(path, CUSTOMERS)
    with Tollgate(path) as tg:
        tg.create_product("API", identifier="api")
        tg.create_feature("API calls", type="metered", identifier="api-calls", unit="call")
        tg.create_feature("SSO", type="boolean", identifier="sso")
        tg.create_plan("pro", product="api", prices=[("month", "USD", "49.00")],
                       feature_values=[f"api-calls={ALLOWANCE}", "sso=true"], hard=["api-calls"])
    conn = sqlite3.connect(path)
    plan_id, version_id = conn.execute(
        "SELECT p.id, v.id FROM plan p JOIN plan_version v ON v.plan_id = p.id WHERE p.identifier = 'pro'").fetchone()
    feature_id = conn.execute("SELECT id FROM feature WHERE identifier = 'api-calls'").fetchone()[0]
    ids = [row[0] for row in conn.execute("SELECT id FROM customer ORDER BY id")]
    created = (now - timedelta(days=400)).strftime(SQLITE_TIME)
    conn.executemany(
        "INSERT INTO subscription (public_id, customer_id, plan_id, plan_version_id, status, interval, currency,"
        " amount_minor, start_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'active', 'month', 'USD', 4900, ?, ?, ?)",
        (
            (f"sub_{cid:014d}", cid, plan_id, version_id,
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
    conn.close()
    with Tollgate(path) as tg, tg.db.write() as session:  # the events went in raw: count them in the rollups
        rebuild(session)
    conn = sqlite3.connect(path)
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


RAW_CUSTOMER = (
    "SELECT c.id, c.status, o.limit_micros, o.unlimited, o.expires_at FROM customer c"
    " LEFT JOIN override o ON o.customer_id = c.id AND o.feature_id = ? WHERE c.identifier = ?"
)
RAW_GRANTS = (
    "SELECT s.start_at, pe.limit_micros, pe.hard, pe.reset, sf.excluded, sf.limit_micros, sf.unlimited"
    " FROM subscription s JOIN plan p ON p.id = s.plan_id"
    " JOIN plan_entitlement pe ON pe.feature_id = ? AND pe.plan_version_id ="
    " CASE WHEN s.next_version_at <= ? THEN s.next_version_id ELSE s.plan_version_id END"
    " LEFT JOIN subscription_feature sf ON sf.subscription_id = s.id AND sf.feature_id = pe.feature_id"
    " WHERE s.customer_id = ? AND s.start_at <= ?"
    " AND ((s.status IN ('trialing', 'active', 'past_due') AND s.cancel_at IS NULL) OR s.cancel_at > ?)"
    " ORDER BY s.start_at, s.id"
)
RAW_ACCESS = (  # RAW_CUSTOMER and RAW_GRANTS in one statement (CoreFloorMerged)
    "SELECT c.id, c.status, o.limit_micros, o.unlimited, o.expires_at, pe.feature_id,"
    " s.start_at, pe.limit_micros, pe.hard, pe.reset, sf.excluded, sf.limit_micros, sf.unlimited"
    " FROM customer c LEFT JOIN override o ON o.customer_id = c.id AND o.feature_id = ?"
    " LEFT JOIN subscription s ON s.customer_id = c.id AND s.start_at <= ?"
    " AND ((s.status IN ('trialing', 'active', 'past_due') AND s.cancel_at IS NULL) OR s.cancel_at > ?)"
    " LEFT JOIN plan_entitlement pe ON pe.plan_version_id ="
    " CASE WHEN s.next_version_at <= ? THEN s.next_version_id ELSE s.plan_version_id END AND pe.feature_id = ?"
    " LEFT JOIN subscription_feature sf ON sf.subscription_id = s.id AND sf.feature_id = pe.feature_id"
    " WHERE c.identifier = ? ORDER BY s.start_at, s.id"
)
RAW_COUNTER = "SELECT total FROM raw_usage_counter WHERE customer_id = ? AND feature_id = ? AND period_start = ?"
RAW_COUNT = (
    "INSERT INTO raw_usage_counter (customer_id, feature_id, period_start, total) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (customer_id, feature_id, period_start) DO UPDATE SET total = total + excluded.total"
)
RAW_INSERT = (
    "INSERT INTO usage_event (key, customer_id, feature_id, quantity_micros, occurred_at, recorded_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
RAW_USED = (
    "SELECT COALESCE(SUM(quantity_micros), 0) FROM usage_event"
    " WHERE customer_id = ? AND feature_id = ? AND occurred_at >= ? AND occurred_at < ?"
)


def fill_counters(path: Path, now: datetime) -> None:
    """The baseline's own counters, from the events: each customer's total in its current period
    (what a design that keeps counters on every write would hold; tollgate's consume in an earlier
    run added events the counters did not see, so they are filled anew each run)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("DROP TABLE IF EXISTS raw_usage_counter")
    conn.execute(
        "CREATE TABLE raw_usage_counter (customer_id INTEGER NOT NULL, feature_id INTEGER NOT NULL,"
        " period_start TEXT NOT NULL, total BIGINT NOT NULL, PRIMARY KEY (customer_id, feature_id, period_start))"
    )
    conn.execute("CREATE TEMP TABLE period (customer_id INTEGER PRIMARY KEY, start TEXT, end TEXT)")
    periods = []
    for cid, start_at in conn.execute("SELECT customer_id, MIN(start_at) FROM subscription GROUP BY customer_id"):
        start, end = _month_anniversary(datetime.strptime(start_at, SQLITE_TIME), now)
        periods.append((cid, start.strftime(SQLITE_TIME), end.strftime(SQLITE_TIME)))
    conn.executemany("INSERT INTO period VALUES (?, ?, ?)", periods)
    conn.execute(
        "INSERT INTO raw_usage_counter (customer_id, feature_id, period_start, total)"
        " SELECT e.customer_id, e.feature_id, p.start, SUM(e.quantity_micros) FROM period p"
        " JOIN usage_event e ON e.customer_id = p.customer_id AND e.occurred_at >= p.start AND e.occurred_at < p.end"
        " GROUP BY e.customer_id, e.feature_id, p.start"
    )
    conn.execute("COMMIT")
    conn.execute("DROP TABLE period")
    conn.close()


class Raw:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=5)
        for pragma in ("busy_timeout = 5000", "journal_mode = WAL", "foreign_keys = ON", "synchronous = FULL"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.features: dict[str, int] = {}
        self.serial = 0

    def run(self, sql: str, params: tuple):
        return self.conn.execute(sql, params)

    def _decide(self, customer: str, feature: str, quantity_micros: int, now: datetime):
        fid = self.features.get(feature)
        if fid is None:
            fid = self.features[feature] = self.run("SELECT id FROM feature WHERE identifier = ?", (feature,)).fetchone()[0]
        stamp = now.strftime(SQLITE_TIME)
        (cid, status, o_limit, o_unlimited, o_expires), rows = self._access(customer, fid, stamp)
        if status == "archived":
            return False, cid, fid, None
        limit, hard, anchor = 0, True, None
        for start, plan_limit, plan_hard, _reset, excluded, adj_limit, adj_unlimited in rows:
            if excluded:
                continue
            anchor = anchor or datetime.strptime(start, SQLITE_TIME)
            this = None if adj_unlimited else (adj_limit if adj_limit is not None else plan_limit)
            limit = None if this is None or limit is None else limit + this
            hard = hard and bool(plan_hard)
        if o_unlimited is not None and (o_expires is None or o_expires > stamp):
            limit = None if o_unlimited else o_limit
        if anchor is None:
            return False, cid, fid, None
        period = _month_anniversary(anchor, now)[0].strftime(SQLITE_TIME)
        counter = self.run(RAW_COUNTER, (cid, fid, period)).fetchone()
        used = counter[0] if counter else 0
        allowed = limit is None or not hard or used + quantity_micros <= limit
        return allowed, cid, fid, period

    def _access(self, customer: str, fid: int, stamp: str) -> tuple[tuple, list]:
        """The customer with its override of the feature, then its live grants of it: two statements."""
        found = self.run(RAW_CUSTOMER, (fid, customer)).fetchone()
        rows = [] if found[1] == "archived" else self.run(RAW_GRANTS, (fid, stamp, found[0], stamp, stamp)).fetchall()
        return found, rows

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
            allowed, cid, fid, period = self._decide(customer, feature, 1_000_000, now)
            if allowed:
                self.serial += 1
                stamp = now.strftime(SQLITE_TIME)
                conn.execute(RAW_COUNT, (cid, fid, period, 1_000_000))
                conn.execute(RAW_INSERT, (f"raw-{time.time_ns()}-{self.serial}", cid, fid, 1_000_000, stamp, stamp))
            conn.execute("COMMIT")
            return allowed
        except BaseException:
            conn.execute("ROLLBACK")
            raise


class CoreFloor(Raw):
    """The baseline's own check (the same three statements, the same Python) run by SQLAlchemy Core
    in tollgate's read transaction (Database.connect: the engine's pool, BEGIN, COMMIT): what any
    design on SQLAlchemy Core pays at least. Printed beside the figures, not a target."""

    def __init__(self, db) -> None:
        self.db = db
        self.features: dict[str, int] = {}
        self.texts: dict[str, object] = {}

    def run(self, sql: str, params: tuple):
        from sqlalchemy import text

        statement = self.texts.get(sql)
        if statement is None:  # the baseline's ? placeholders as text()'s named ones
            parts = sql.split("?")
            statement = self.texts[sql] = text("".join(
                part + (f":p{i}" if i < len(parts) - 1 else "") for i, part in enumerate(parts)))
        return self.conn.execute(statement, {f"p{i}": value for i, value in enumerate(params)})

    def check(self, customer: str, feature: str) -> bool:
        with self.db.connect() as self.conn:
            return self._decide(customer, feature, 1_000_000, datetime.utcnow())[0]


class CoreFloorMerged(CoreFloor):
    """The same in two Core statements: the customer, its override and its live grants in one
    (RAW_ACCESS, outer joins), then the counter row. The fewest any design on Core can run here (the
    period, and so the counter row, follows from the grants)."""

    def _access(self, customer: str, fid: int, stamp: str) -> tuple[tuple, list]:
        rows = self.run(RAW_ACCESS, (fid, stamp, stamp, stamp, fid, customer)).fetchall()
        return rows[0][:5], [row[6:] for row in rows if row[5] is not None]


# -- measuring --------------------------------------------------------------------------------------------


def measure(rounds: int, calls: int, contestants: dict, seed: int) -> dict[str, float]:
    """Calls per second of each contestant over all rounds (the same customers for each; who goes
    first turns round by round, so that no contestant always meets pages the one before it read)."""
    elapsed = {name: 0.0 for name in contestants}
    rng = random.Random(seed)
    order = list(contestants.items())
    for round_number in range(rounds):
        customers = [f"customer-{rng.randrange(CUSTOMERS)}" for _ in range(calls)]
        shift = round_number % len(order)
        for name, call in order[shift:] + order[:shift]:
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
    fill_counters(path, now)
    with open(path, "rb") as whole:  # the file in the OS's cache first: no contestant pays the disk for the others
        while whole.read(1 << 24):
            pass
    raw = Raw(path)
    tg = Tollgate(path)
    # sanity: both give the same answer, and the baseline's counter holds tollgate's usage (the events' sum)
    sample = "customer-4242"
    ours = tg.check(sample, "api-calls")
    assert ours.allowed and raw.check(sample, "api-calls")
    cid, fid = raw.conn.execute(RAW_CUSTOMER, (raw.features["api-calls"], sample)).fetchone()[0], raw.features["api-calls"]
    counted = raw.conn.execute(RAW_COUNTER, (cid, fid, ours.period_start.strftime(SQLITE_TIME))).fetchone()[0]
    summed = raw.conn.execute(RAW_USED, (cid, fid, ours.period_start.strftime(SQLITE_TIME),
                                         ours.reset_at.strftime(SQLITE_TIME))).fetchone()[0]
    assert counted == summed == int(ours.used * 1_000_000), (counted, summed, ours.used)
    # warm-up (caches, compiled statements)
    for i in range(300):
        tg.check(f"customer-{i}", "api-calls")
        raw.check(f"customer-{i}", "api-calls")

    results = []
    floor, merged = CoreFloor(tg.db), CoreFloorMerged(tg.db)
    assert floor.check(sample, "api-calls") and merged.check(sample, "api-calls")
    check_rates = measure(CHECK_ROUNDS, CHECK_CALLS, {
        "raw": lambda c: raw.check(c, "api-calls"),
        "tollgate": lambda c: tg.check(c, "api-calls"),
        "core": lambda c: floor.check(c, "api-calls"),
        "core2": lambda c: merged.check(c, "api-calls"),
    }, seed=1)
    consume_rates = measure(CONSUME_ROUNDS, CONSUME_CALLS, {
        "raw": lambda c: raw.consume(c, "api-calls"),
        "tollgate": lambda c: tg.consume(c, "api-calls"),
    }, seed=2)
    print(f"database: {path.name}: {CUSTOMERS:,} customers, {EVENTS:,}+ usage events")
    for name, rates, calls in (("check", check_rates, CHECK_ROUNDS * CHECK_CALLS),
                               ("consume", consume_rates, CONSUME_ROUNDS * CONSUME_CALLS)):
        ratio = rates["tollgate"] / rates["raw"]
        ok = ratio >= TARGETS[name]
        results.append(ok)
        print(f"{name:8s} raw O(1) sqlite3: {rates['raw']:9,.0f}/s   Tollgate.{name}: {rates['tollgate']:9,.0f}/s   "
              f"({calls:,} calls each)")
        print(f"{name:8s} ratio {ratio:.2f} (target >= {TARGETS[name]}) {'OK' if ok else 'MISSED'}")
        if "core" in rates:
            print(f"{name:8s} the floor of SQLAlchemy Core (the baseline's three statements through it, in "
                  f"tollgate's read transaction): {rates['core']:,.0f}/s, ratio {rates['core'] / rates['raw']:.2f}; "
                  f"in two statements (the customer, its override and grants in one): {rates['core2']:,.0f}/s, "
                  f"ratio {rates['core2'] / rates['raw']:.2f}")
    tg.close()
    raw.conn.close()
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
