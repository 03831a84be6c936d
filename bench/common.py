"""Shared helpers for the benchmark scripts: timing subprocesses and building large databases.

Benchmarks are not tests: they print figures as ratios against a baseline measured in the same run
(these machines are shared and noisy), and exit non-zero when a target is missed.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(__file__).parent / ".work"
TOLLGATE = [sys.executable, "-m", "tollgate"]


def median_seconds(argv: list[str], *, runs: int = 15, env: dict | None = None) -> float:
    """Median wall time of running argv (output discarded), after one warm-up run."""
    env = {**os.environ, **(env or {})}
    samples = []
    for i in range(runs + 1):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
        if i:
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def interleaved_samples(commands: dict, *, runs: int = 15, env: dict | None = None) -> dict:
    """Wall seconds of each run of each command (after one warm-up round), runs interleaved so machine
    noise hits all of them alike."""
    env = {**os.environ, **(env or {})}
    samples: dict = {name: [] for name in commands}
    for i in range(runs + 1):
        for name, argv in commands.items():
            start = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
            if i:
                samples[name].append(time.perf_counter() - start)
    return samples


def interleaved_medians(commands: dict[str, list[str]], *, runs: int = 15, env: dict | None = None) -> dict[str, float]:
    """Median wall time of each command, runs interleaved so machine noise hits all of them alike."""
    samples = interleaved_samples(commands, runs=runs, env=env)
    return {name: statistics.median(values) for name, values in samples.items()}


def fresh_database(name: str) -> Path:
    """An empty tollgate database with the real schema, created by tollgate itself."""
    WORK.mkdir(exist_ok=True)
    path = WORK / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    create_schema(path)
    return path


def create_schema(path: Path) -> None:
    """Create the database at `path` with tollgate's schema and nothing in it, as the library does on
    first use (the CLI creates a database only for a command that writes)."""
    subprocess.run([sys.executable, "-c", "import sys; from tollgate.db import Database; "
                    "Database(sys.argv[1]).engine.dispose()", str(path)], check=True)


def add_customers(path: Path, count: int) -> None:
    """`count` customers inserted with raw sqlite3 (the fixture, not the thing measured)."""
    conn = sqlite3.connect(path)
    now = "2026-01-01 00:00:00.000000"
    conn.executemany(
        "INSERT INTO customer (identifier, billing_id, name, email, status, search_text, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
        (
            (f"customer-{i}", f"cus_{i:014d}", f"Customer {i} Ltd", f"billing{i}@example.com",
             f"customer-{i} customer {i} ltd billing{i}@example.com", now, now)
            for i in range(count)
        ),
    )
    conn.commit()
    conn.close()


def verdict(name: str, ratio: float, limit: float) -> bool:
    ok = ratio <= limit
    print(f"{name}: ratio {ratio:.2f} (target <= {limit}) {'OK' if ok else 'MISSED'}")
    return ok
