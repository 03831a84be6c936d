"""`tollgate invoice preview --all --period 2026-03 --json` over 10,000 customers and 1,000,000 usage
events, next to a single SQL aggregate over the same events (the lower bound). Target: ratio <= 5.

The database is real: the schema is created by tollgate, the catalog goes through `tollgate catalog
import`, and customers, subscriptions and usage events are inserted with the standard library's sqlite3
`executemany` into that schema (the fixture, not the thing measured). Every event lies in its customer's
billing period starting in March 2026, so the bill run counts exactly the events the aggregate sums;
the run's usage quantities are checked against the aggregate's total.

Both timings are whole processes (the bill run: `python -m tollgate ...`, start-up included; the
aggregate: `python -c` running the GROUP BY with sqlite3), runs interleaved, medians reported: wall
time (the target) and CPU time (user + system of the process, less sensitive to other work on a
shared machine; the load average is printed too).

    python bench/invoice_all.py [--customers 10000] [--events 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from common import TOLLGATE, WORK, add_customers, fresh_database, verdict

CATALOG = """
version = 1

[products.lumen]
name = "Lumen"

[features.ai-tokens]
name = "AI tokens"
type = "metered"
unit = "token"

[features.api-calls]
name = "API calls"
type = "metered"
unit = "call"

[features.images]
name = "Images"
type = "metered"
unit = "image"

[plans.pro]
product = "lumen"
name = "Pro"
prices = [ { interval = "month", currency = "USD", amount = "49.00" } ]
[plans.pro.entitlements]
ai-tokens = { limit = 100000 }
api-calls = { limit = "unlimited" }
images = { limit = 500 }
[[plans.pro.usage_charges]]
feature = "ai-tokens"
currency = "USD"
model = "tiered"
included = 1000
tiers = [ { up_to = 1000, unit_price = "0.10" }, { up_to = 5000, unit_price = "0.05" }, { unit_price = "0.01" } ]
[[plans.pro.usage_charges]]
feature = "api-calls"
currency = "USD"
model = "volume"
tiers = [ { up_to = 100000, unit_price = "0.01" }, { unit_price = "0.007" } ]
[[plans.pro.usage_charges]]
feature = "images"
currency = "USD"
model = "package"
package_size = 100
package_price = "10.00"

[plans.tokyo]
product = "lumen"
name = "Tokyo"
prices = [ { interval = "month", currency = "JPY", amount = "4900" } ]
[plans.tokyo.entitlements]
ai-tokens = { limit = "unlimited" }
api-calls = { limit = "unlimited" }
[[plans.tokyo.usage_charges]]
feature = "ai-tokens"
currency = "JPY"
model = "flat"
unit_price = "0.37"
[[plans.tokyo.usage_charges]]
feature = "api-calls"
currency = "JPY"
model = "stair-step"
tiers = [ { up_to = 10000, flat_price = "500" }, { up_to = 50000, flat_price = "1500" } ]

[plans.addon]
product = "lumen"
name = "Calls add-on"
prices = [ { interval = "month", currency = "USD", amount = "5.00" } ]
[plans.addon.entitlements]
api-calls = { limit = "unlimited" }
[[plans.addon.usage_charges]]
feature = "api-calls"
currency = "USD"
model = "flat"
unit_price = "0.002"
"""

STAMP = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DateTime in SQLite
AGGREGATE = "SELECT customer_id, feature_id, SUM(quantity_micros) FROM usage_event GROUP BY customer_id, feature_id"


def build(customers: int, events: int) -> Path:
    path = fresh_database("invoice-all.db")
    catalog = WORK / "invoice-all-catalog.toml"
    catalog.write_text(CATALOG, encoding="utf-8")
    subprocess.run([*TOLLGATE, "--db", str(path), "catalog", "import", str(catalog)], check=True,
                   stdout=subprocess.DEVNULL)
    add_customers(path, customers)
    rng = random.Random(20260301)
    conn = sqlite3.connect(path)
    plans = dict(conn.execute("SELECT identifier, id FROM plan"))
    features = dict(conn.execute("SELECT identifier, id FROM feature"))
    customer_ids = [row[0] for row in conn.execute("SELECT id FROM customer ORDER BY id")]
    now = datetime(2026, 1, 1).strftime(STAMP)
    subs, windows = [], {}
    for n, customer_id in enumerate(customer_ids):
        day = 1 + n % 28
        start = datetime(2026, 1, day, 9, 30)
        plan = "tokyo" if n % 7 == 0 else "pro"
        currency, amount = ("JPY", 4900) if plan == "tokyo" else ("USD", 4900)
        cancel_at = datetime(2026, 4, day, 9, 30) if n % 50 == 1 else None  # canceled at the end of March's period
        subs.append((f"sub_{n:016d}", customer_id, plans[plan], "active", "month", currency, amount,
                     start.strftime(STAMP), None, cancel_at and cancel_at.strftime(STAMP),
                     cancel_at and now, now, now))
        if n % 20 == 3:  # an add-on, younger: it charges only what the plan does not (nothing here)
            subs.append((f"sub_{n:016d}a", customer_id, plans["addon"], "active", "month", "USD", 500,
                         (start + timedelta(days=20)).strftime(STAMP), None, None, None, now, now))
        windows[customer_id] = (datetime(2026, 3, day, 9, 30), plan)
    conn.executemany(
        "INSERT INTO subscription (public_id, customer_id, plan_id, status, interval, currency, amount_minor,"
        " start_at, trial_end, cancel_at, canceled_at, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        subs,
    )
    conn.execute("UPDATE subscription SET plan_version_id = (SELECT v.id FROM plan_version v"
                 " WHERE v.plan_id = subscription.plan_id)")  # each plan has its first version only
    seconds = 28 * 24 * 3600  # inside every March period (the shortest, Mar 28 -> Apr 28, has 31 days)

    def rows():
        for i in range(events):
            customer_id = customer_ids[i % len(customer_ids)]
            start, plan = windows[customer_id]
            feature = ("ai-tokens", "api-calls", "images")[i % 3] if plan == "pro" else ("ai-tokens", "api-calls")[i % 2]
            micros = rng.randrange(1, 500) * 1_000_000 + (rng.randrange(1_000_000) if i % 5 == 0 else 0)
            at = (start + timedelta(seconds=rng.randrange(seconds))).strftime(STAMP)
            yield (f"bench-{i}", customer_id, features[feature], micros, at, at)

    conn.executemany(
        "INSERT INTO usage_event (key, customer_id, feature_id, quantity_micros, occurred_at, recorded_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        rows(),
    )
    conn.commit()
    conn.close()
    from tollgate import Tollgate
    from tollgate.usage.rollups import rebuild

    with Tollgate(path) as tg, tg.db.write() as session:  # the events went in raw: count them in the rollups
        rebuild(session)
    return path


def check(path: Path) -> tuple[int, int, dict]:
    """Run the bill run once: (previews, peak RSS in KiB of the process, totals per currency), and
    check its usage quantities against the aggregate."""
    proc = subprocess.run([*TOLLGATE, "--db", str(path), "invoice", "preview", "--all", "--period", "2026-03", "--json"],
                          capture_output=True, text=True, check=True)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    run = json.loads(proc.stdout)
    counted = sum(Decimal(line["quantity"]) for p in run for line in p["lines"] if line["kind"] == "usage")
    conn = sqlite3.connect(path)
    total = Decimal(conn.execute("SELECT SUM(quantity_micros) FROM usage_event").fetchone()[0]).scaleb(-6)
    conn.close()
    if counted != total:
        raise SystemExit(f"the bill run counted {counted} units; the events hold {total}")
    totals: dict[str, Decimal] = {}
    for p in run:
        for currency, amount in p["totals"].items():
            totals[currency] = totals.get(currency, Decimal(0)) + Decimal(amount)
    return len(run), peak_kib, totals


def timed(commands: dict[str, list[str]], runs: int) -> dict[str, tuple[float, float]]:
    """(median wall seconds, median CPU seconds of the process) per command, after a warm-up round;
    runs interleaved, so the noise of a shared machine hits every command alike."""
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(runs + 1):
        for name, argv in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            elapsed = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if i:
                wall[name].append(elapsed)
                cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in commands}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    started = time.perf_counter()
    path = build(args.customers, args.events)
    print(f"fixture: {args.customers:,} customers, {args.events:,} usage events "
          f"(built in {time.perf_counter() - started:.1f} s)")
    previews, peak_kib, totals = check(path)
    print(f"bill run: {previews:,} previews, usage quantities match the events' total; "
          f"totals {', '.join(f'{amount} {currency}' for currency, amount in sorted(totals.items()))}")
    print(f"bill run peak memory (max RSS of the process): {peak_kib / 1024:.0f} MiB")
    print(f"load average before timing: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    run = [*TOLLGATE, "--db", str(path), "invoice", "preview", "--all", "--period", "2026-03"]
    times = timed(
        {
            "aggregate": [sys.executable, "-c",
                          f"import sqlite3; sqlite3.connect({str(path)!r}).execute({AGGREGATE!r}).fetchall()"],
            "json": [*run, "--json"],
            "csv": [*run, "--csv"],
        },
        args.runs,
    )
    print(f"load average after timing:  {os.getloadavg()[0]:.1f}")
    print(f"medians of {args.runs} interleaved runs                                    wall      CPU")
    for name, label in (("aggregate", "single SQL aggregate (GROUP BY customer, feature; python -c)"),
                        ("json", "tollgate invoice preview --all --period 2026-03 --json"),
                        ("csv", "tollgate invoice preview --all --period 2026-03 --csv")):
        print(f"{label:<66} {times[name][0]:6.2f} s {times[name][1]:6.2f} s")
    for name in ("json", "csv"):
        print(f"  --{name}: CPU ratio {times[name][1] / times['aggregate'][1]:.2f}")
    ok = verdict("invoice preview --all --json (wall)", times["json"][0] / times["aggregate"][0], 5)
    ok = verdict("invoice preview --all --csv (wall)", times["csv"][0] / times["aggregate"][0], 5) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
