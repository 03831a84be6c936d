"""How the hot path grows with a customer's usage: 100 events against 10,000, 100,000 and 1,000,000.

One customer on a plan with one metered feature (a soft monthly allowance far above the usage, and a
usage charge so that the invoice rates it), and N usage events in the CURRENT period, for each N in
--sizes (default 100, 10,000, 100,000, 1,000,000). Two ways of placing them, each its own set of
databases:
- spread: over the current period so far (the subscription is a year old; its period began about 15
  days ago), up to the moment the database was built;
- recent: all in the first few minutes right after the subscription started (a fresh customer
  bursting: the worst case for designs that keep usage in time buckets).

Measured at each size, through the public API and the CLI only:
- `Tollgate.check` and `Tollgate.consume` in process (median µs per call; rounds interleaved over
  the sizes so that noise on this shared machine hits all of them alike; time-boxed per round);
- `tollgate usage show CUSTOMER` and `tollgate invoice preview CUSTOMER` (wall ms of a subprocess,
  best and median of --runs interleaved runs after a warm-up).
Each is shown with its ratio to the 100-event case (the smallest size) of the same placement.
Targets, judged at the largest size (1,000,000 by default): check and consume at most 3x, usage show
and invoice preview at most 1.5x; exit 1 when one is missed.

Databases are built once (through the library: the catalog, then `report_usage_file` of a generated
CSV) and cached under bench/.work/ by placement and size; a cached one is used again while its events
are still all in the customer's current period (checked through `check`), else rebuilt. Each run
measures a copy, so consume's events never pile up in the cache. --rebuild forces new databases.

Run: python bench/check_scale.py [--sizes 100,10000] [--runs 5] [--rebuild]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sqlite3
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from common import TOLLGATE, WORK, fresh_database, interleaved_samples, verdict

CUSTOMER, FEATURE = "acme", "api-calls"
SIZES = (100, 10_000, 100_000, 1_000_000)
ALLOWANCE = 10_000_000_000  # units per month, soft: the benchmark never gets near it
PLACEMENTS = ("spread", "recent")
CALL_TARGETS = {"check": 3.0, "consume": 3.0}
CLI_TARGETS = {"usage show": 1.5, "invoice preview": 1.5}
ROUNDS, ROUND_SECONDS, MAX_CALLS = 5, 0.4, 400
"""In-process calls: ROUNDS rounds over every database, each running calls for ROUND_SECONDS (at
least 3, at most MAX_CALLS)."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _year_before(moment: datetime) -> datetime:
    return moment.replace(year=moment.year - 1, day=min(moment.day, 28))


def build(path: Path, size: int, placement: str) -> dict:
    """A database with one customer, the plan and `size` events placed as `placement` says."""
    from tollgate import Tollgate

    now = utcnow().replace(microsecond=0)
    start = _year_before(now - timedelta(days=15)) if placement == "spread" else now - timedelta(minutes=10)
    fresh_database(path.name)
    with Tollgate(path) as tg:
        tg.add_customer("Acme, Inc.", identifier=CUSTOMER)
        tg.create_product("API", identifier="api")
        tg.create_feature("API calls", type="metered", identifier=FEATURE, unit="call")
        tg.create_plan("pro", product="api", prices=[("month", "USD", "49.00")],
                       feature_values=[f"{FEATURE}={ALLOWANCE}"])
        tg.set_usage_charge("pro", {"feature": FEATURE, "currency": "USD", "model": "flat", "unit_price": "0.001",
                                    "included": "1000"})
        tg.add_subscription(CUSTOMER, "pro", start=start.strftime("%Y-%m-%dT%H:%M:%SZ"))
        period_start = tg.check(CUSTOMER, FEATURE).period_start
        first, last = (period_start, now) if placement == "spread" else (start, start + timedelta(minutes=5))
        events = WORK / f"scale-{placement}-{size}.csv"
        step = (last - first) / size
        with open(events, "w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle, lineterminator="\n")
            out.writerow(["customer", "feature", "quantity", "timestamp", "id"])
            for i in range(size):
                moment = first + step * i
                out.writerow([CUSTOMER, FEATURE, "1", moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), f"ev-{i}"])
        result = tg.report_usage_file(events)
        events.unlink()
        if result.inserted != size:
            sys.exit(f"building {path.name}: {result.inserted:,} events inserted, not {size:,}")
    checkpoint(path)
    facts = {"size": size, "placement": placement, "built_at": now.isoformat(), "start": start.isoformat()}
    path.with_suffix(".json").write_text(json.dumps(facts))
    return facts


def checkpoint(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def still_valid(path: Path, size: int) -> bool:
    """Whether a cached database still has all its events in the customer's current period."""
    from tollgate import Tollgate

    if not path.exists() or not path.with_suffix(".json").exists():
        return False
    with Tollgate(path) as tg:
        used = tg.check(CUSTOMER, FEATURE).used
    return used == size


def database(size: int, placement: str, rebuild: bool) -> Path:
    path = WORK / f"scale-{placement}-{size}.db"
    if rebuild or not still_valid(path, size):
        started = time.perf_counter()
        build(path, size, placement)
        print(f"  built {path.name} ({size:,} events, {placement}) in {time.perf_counter() - started:.1f} s",
              flush=True)
    checkpoint(path)
    copy = WORK / f"scale-{placement}-{size}-run.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(path, copy)
    return copy


def time_calls(contestants: dict[tuple, object]) -> dict[tuple, float]:
    """Median seconds per call of each contestant, rounds interleaved, each round time-boxed."""
    samples: dict[tuple, list[float]] = {name: [] for name in contestants}
    for _ in range(ROUNDS):
        for name, call in contestants.items():
            round_start = time.perf_counter()
            calls = 0
            while calls < 3 or (calls < MAX_CALLS and time.perf_counter() - round_start < ROUND_SECONDS):
                start = time.perf_counter()
                call()
                samples[name].append(time.perf_counter() - start)
                calls += 1
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES),
                        help="Comma-separated event counts; the smallest is the baseline (default %(default)s).")
    parser.add_argument("--runs", type=int, default=5, help="CLI runs per command, after a warm-up (default 5).")
    parser.add_argument("--rebuild", action="store_true", help="Build every database anew.")
    args = parser.parse_args()
    try:
        sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes must be comma-separated whole numbers, not {args.sizes!r}")
    if len(sizes) < 2 or sizes[0] < 1:
        parser.error("--sizes needs at least two positive sizes (the smallest is the baseline)")
    WORK.mkdir(exist_ok=True)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as for an installed program: see bench/startup.py
    os.environ["PYTHONPYCACHEPREFIX"] = str(WORK / "pycache")
    from tollgate import Tollgate

    print("databases:", flush=True)
    paths = {(p, n): database(n, p, args.rebuild) for p in PLACEMENTS for n in sizes}
    opened = {key: Tollgate(path) for key, path in paths.items()}
    for (placement, size), tg in opened.items():  # the answer is right, and warm-up
        found = tg.check(CUSTOMER, FEATURE)
        assert found.allowed and found.used == size, (placement, size, found.used)
        for _ in range(20):
            tg.check(CUSTOMER, FEATURE)
    figures: dict[str, dict[tuple, float]] = {}
    figures["check"] = time_calls({key: (lambda tg=tg: tg.check(CUSTOMER, FEATURE)) for key, tg in opened.items()})
    figures["consume"] = time_calls({key: (lambda tg=tg: tg.consume(CUSTOMER, FEATURE)) for key, tg in opened.items()})
    for tg in opened.values():
        tg.close()
    commands = {}
    for key, path in paths.items():
        commands[("usage show", *key)] = [*TOLLGATE, "--db", str(path), "usage", "show", CUSTOMER]
        commands[("invoice preview", *key)] = [*TOLLGATE, "--db", str(path), "invoice", "preview", CUSTOMER]
    samples = interleaved_samples(commands, runs=args.runs)
    best = {}
    for (what, *key), values in samples.items():
        figures.setdefault(what, {})[tuple(key)] = statistics.median(values)
        best[(what, *key)] = min(values)

    ok = True
    largest = sizes[-1]
    for placement in PLACEMENTS:
        print(f"\n{placement}: {'events over the current period so far' if placement == 'spread' else 'events all in the first minutes after the subscription started'}")
        print(f"{'events':>10}  {'check µs':>9} {'ratio':>6}  {'consume µs':>10} {'ratio':>6}  "
              f"{'usage show ms':>19} {'ratio':>6}  {'invoice preview ms':>19} {'ratio':>6}")
        for size in sizes:
            cells = [f"{size:>10,}"]
            for what in ("check", "consume"):
                value, base = figures[what][(placement, size)], figures[what][(placement, sizes[0])]
                cells.append(f"{value * 1e6:>{9 if what == 'check' else 10},.0f} {value / base:>5.2f}x")
            for what in CLI_TARGETS:
                value, base = figures[what][(placement, size)], figures[what][(placement, sizes[0])]
                shown = f"{best[(what, placement, size)] * 1000:,.0f} / {value * 1000:,.0f}"
                cells.append(f"{shown:>19} {value / base:>5.2f}x")
            print("  ".join(cells))
        print(f"(CLI: best / median of {args.runs} runs, ratio on the median; in process: median per call)")
        for what, target in {**CALL_TARGETS, **CLI_TARGETS}.items():
            ratio = figures[what][(placement, largest)] / figures[what][(placement, sizes[0])]
            ok = verdict(f"{placement}: {what} at {largest:,} events vs {sizes[0]:,}", ratio, target) and ok
    if largest != SIZES[-1]:
        print(f"(the targets are meant for {SIZES[-1]:,} events; this run's largest size was {largest:,})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
