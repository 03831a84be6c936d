"""Benchmark: importing a catalog of 1,000 plans x 20 entitlements.

Prints, in one run, the time of the import's database work (reading the current catalog, comparing,
the set-based inserts, the journal and the commit; not TOML parsing or validation) and the time of
inserting the same rows with the standard library's sqlite3 `executemany` into a fresh database of
the same schema, with the same pragmas, in one transaction. The ratio must stay at most 5 (adding
the rows one by one through the ORM is ~40x).

    python bench/catalog_import.py [--plans 1000] [--entitlements 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

FEATURE_TYPES = ("metered", "boolean", "config")


def write_catalog(path: Path, plans: int, entitlements: int) -> None:
    lines = ["version = 1", "", "[products.bench]", 'name = "Bench"', ""]
    for f in range(entitlements):
        kind = FEATURE_TYPES[f % 3]
        lines += [f"[features.f{f}]", f'name = "Feature {f}"', f'type = "{kind}"', ""]
    for p in range(plans):
        lines += [
            f"[plans.p{p}]",
            'product = "bench"',
            f'name = "Plan {p}"',
            "prices = [",
            f'  {{ interval = "month", currency = "USD", amount = "{p}.00" }},',
            f'  {{ interval = "year", currency = "EUR", amount = "{p * 10}.00" }},',
            "]",
            "",
            f"[plans.p{p}.entitlements]",
        ]
        for f in range(entitlements):
            kind = FEATURE_TYPES[f % 3]
            if kind == "metered":
                lines.append(f'f{f} = {{ limit = {1000 + p}, reset = "month", hard = {"true" if p % 2 else "false"}, alerts = [75, 90] }}')
            elif kind == "boolean":
                lines.append(f"f{f} = {'true' if (p + f) % 2 else 'false'}")
            else:
                lines.append(f"f{f} = {p + f}")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def tollgate_import(db_path: Path, catalog_path: Path) -> tuple[float, float, dict]:
    """(database seconds, validation seconds, counts) of one import into a fresh database."""
    from tollgate import Tollgate, catalog_toml

    tg = Tollgate(db_path)
    tg.db.engine  # create the schema before timing
    document = catalog_toml.read_document(catalog_path)
    started = time.perf_counter()
    with tg.db.write() as session:
        result = catalog_toml.import_catalog(
            session, document, source=str(catalog_path), base_dir=catalog_path.parent, data_dir=tg.data_dir
        )
    total = time.perf_counter() - started
    tg.close()
    validate = result.timings["validate"]
    return total - validate, validate, result.counts()


def raw_rows(plans: int, entitlements: int, now: str):
    """The same rows the import writes, as tuples for sqlite3."""
    products = [(1, "bench", "Bench", None, "active", now, now, None)]
    features = [
        (f + 1, f"f{f}", f"Feature {f}", FEATURE_TYPES[f % 3], None, None, "active", now, now, None)
        for f in range(entitlements)
    ]
    plan_rows, versions, prices, grants, journal = [], [], [], [], []
    for p in range(plans):
        pid = p + 1  # and its version 1's id
        plan_rows.append((pid, f"p{p}", 1, f"Plan {p}", None, "active", now, now, None))
        versions.append((pid, pid, 1, None, now))
        prices.append((pid, "month", "USD", p * 100))
        prices.append((pid, "year", "EUR", p * 1000))
        for f in range(entitlements):
            kind = FEATURE_TYPES[f % 3]
            if kind == "metered":
                grants.append((pid, f + 1, None, (1000 + p) * 1_000_000, "month", p % 2, "75,90"))
            elif kind == "boolean":
                grants.append((pid, f + 1, "true" if (p + f) % 2 else "false", None, None, 0, ""))
            else:
                grants.append((pid, f + 1, str(p + f), None, None, 0, ""))
        journal.append((now, "bench", "plan.create", "plan", f"p{p}", None,
                        json.dumps({"import": "catalog.toml"}, sort_keys=True)))
    journal += [(now, "bench", "feature.create", "feature", f"f{f}", None, "{}") for f in range(entitlements)]
    journal.append((now, "bench", "product.create", "product", "bench", None, "{}"))
    return products, features, plan_rows, versions, prices, grants, journal


def raw_insert(db_path: Path, plans: int, entitlements: int) -> float:
    from tollgate import Tollgate

    tg = Tollgate(db_path)
    tg.db.engine  # the same schema, created by tollgate
    tg.close()
    rows = raw_rows(plans, entitlements, datetime(2026, 1, 1).isoformat(" "))
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")
    products, features, plan_rows, versions, prices, grants, journal = rows
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO product (id, identifier, name, description, status, created_at, updated_at, archived_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", products)
    conn.executemany(
        "INSERT INTO feature (id, identifier, name, type, unit, description, status, created_at, updated_at, "
        "archived_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", features)
    conn.executemany(
        "INSERT INTO plan (id, identifier, product_id, name, description, status, created_at, "
        "updated_at, archived_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", plan_rows)
    conn.executemany("INSERT INTO plan_version (id, plan_id, version, trial_days, created_at) VALUES (?, ?, ?, ?, ?)",
                     versions)
    conn.executemany("INSERT INTO plan_price (plan_version_id, interval, currency, amount_minor) VALUES (?, ?, ?, ?)",
                     prices)
    conn.executemany(
        "INSERT INTO plan_entitlement (plan_version_id, feature_id, value, limit_micros, reset, hard, alerts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)", grants)
    conn.executemany(
        "INSERT INTO journal (at, actor, action, object_type, object_id, customer_id, details) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)", journal)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=1000)
    parser.add_argument("--entitlements", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        catalog_path = folder / "catalog.toml"
        write_catalog(catalog_path, args.plans, args.entitlements)
        ours, raw, validate, counts = [], [], [], {}
        for run in range(args.repeat):
            db_seconds, validate_seconds, counts = tollgate_import(folder / f"tollgate-{run}.db", catalog_path)
            ours.append(db_seconds)
            validate.append(validate_seconds)
            raw.append(raw_insert(folder / f"raw-{run}.db", args.plans, args.entitlements))
    rows = args.plans * (1 + 2 + args.entitlements) + args.entitlements + 1
    best_ours, best_raw = min(ours), min(raw)
    ratio = best_ours / best_raw
    print(f"catalog: {args.plans} plans x {args.entitlements} entitlements ({rows} rows + journal); "
          f"import created {counts.get('create')} objects")
    print(f"tollgate import, database work: {best_ours * 1000:8.1f} ms  (validation, not counted: {min(validate) * 1000:.1f} ms)")
    print(f"raw sqlite3 executemany:        {best_raw * 1000:8.1f} ms")
    print(f"ratio: {ratio:.2f} (limit 5) -> {'OK' if ratio <= 5 else 'TOO SLOW'}")
    return 0 if ratio <= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
