"""Start-up time: a TAB completion and `tollgate --help`, each against `python -c "import typer"`;
and a read command, `tollgate check CUSTOMER FEATURE`, against `python -c "import sqlalchemy, typer"`.

Every TAB press runs the whole program, so the first two must cost about what importing typer costs.
Their database holds 100,000 customers (the real schema, created by the library, then filled
with raw sqlite3 executemany). Targets: both ratios at most 1.5.
`check` is what a product calls before each request from a shell script or a hook: on an existing
small SQLite database (one customer on a plan with a metered feature and a few events, built through
the library), it must cost little more than importing the two libraries it needs. Target: at most
1.3. `customer show CUSTOMER` (table, piped) and `--json` read the whole profile of that customer
(subscription, entitlements, usage, a license key, a download, a link) against the same baseline.
Target: at most SHOW_TARGET. Exit 1 when a target is missed.

Run: python bench/startup.py            (benchmarks are not tests; the figures go in the notes)

Timings are medians of interleaved runs (the machine is shared; noise hits all commands alike).
Python's bytecode cache is on for the measured runs, as it is for any installed program (pip
compiles on install): if PYTHONDONTWRITEBYTECODE is set here, it is dropped for the children and
the cache is kept under bench/.work/pycache, out of the source tree.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import create_schema

WORK = Path(__file__).resolve().parent / ".work"
COUNT = 100_000
RUNS = 21
TARGET = 1.5
CHECK_TARGET = 1.3
SHOW_TARGET = 1.5
CHECK = ("acme", "api-calls")


def tollgate_command() -> list[str]:
    """The console script next to this interpreter (what a shell runs), else python -m tollgate."""
    script = Path(sys.executable).with_name("tollgate")
    if script.exists():
        return [str(script)]
    found = shutil.which("tollgate")
    return [found] if found else [sys.executable, "-m", "tollgate"]


def child_env(db: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(WORK / "pycache")
    env["TOLLGATE_DB"] = str(db)
    env.pop("NO_COLOR", None)
    return env


def build_database(tollgate: list[str]) -> Path:
    """100,000 customers, 1 in 10 archived; identifiers like `acme-00042`, so `ac` matches many."""
    WORK.mkdir(exist_ok=True)
    path = WORK / "startup-100k.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    create_schema(path)
    words = ["acme", "acorn", "active", "apex", "beta", "bolt", "cedar", "delta", "ember", "zenith"]
    now = "2026-01-01 00:00:00.000000"
    rows = []
    for i in range(COUNT):
        word = words[i % len(words)]
        ident = f"{word}-{i:05d}"
        name = f"{word.title()} {i} Ltd"
        status = "archived" if i % 10 == 3 else "active"
        rows.append((ident, f"cus_{i:014d}", name, f"billing{i}@{word}.example", status,
                     f"{ident} {name.lower()}", now, now))
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO customer (identifier, billing_id, name, email, status, search_text, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def build_small_database() -> Path:
    """One customer on a plan with a metered feature (and a boolean one) and a few usage events; the
    plan issues a license key and has a download and a link (so `customer show` has every section)."""
    from tollgate import Tollgate
    from tollgate.catalog import LicensePolicy

    path = WORK / "startup-small.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    customer, feature = CHECK
    with Tollgate(path) as tg:
        tg.add_customer("Acme, Inc.", identifier=customer)
        tg.create_product("API", identifier="api")
        tg.create_feature("API calls", type="metered", identifier=feature, unit="call")
        tg.create_feature("SSO", type="boolean", identifier="sso")
        tg.create_plan("pro", product="api", prices=[("month", "USD", "49.00")], license=LicensePolicy(3),
                       feature_values=[f"{feature}=100000", "sso=true"], hard=[feature])
        installer = WORK / "installer.bin"
        installer.write_bytes(b"installer" * 1000)
        tg.add_download("pro", installer)
        tg.add_link("pro", "Docs", "https://docs.example.com")
        tg.add_subscription(customer, "pro")
        for i in range(20):
            tg.report_usage(customer, feature, 5, key=f"startup-{i}")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def interleaved_medians(commands: dict[str, tuple[list[str], dict[str, str]]], runs: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(runs + 2):  # two warm-up rounds (bytecode cache, page cache)
        for name, (argv, env) in commands.items():
            start = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, check=False)
            if i >= 2:
                samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> int:
    tollgate = tollgate_command()
    db = build_database(tollgate)
    env = child_env(db)
    completion_env = {**env, "_TOLLGATE_COMPLETE": "complete_bash", "COMP_WORDS": "tollgate customer show ac",
                      "COMP_CWORD": "3"}
    candidates = subprocess.run(tollgate, env=completion_env, capture_output=True, text=True).stdout.split()
    helped = subprocess.run([*tollgate, "--help"], env=env, capture_output=True, text=True).stdout
    small_env = child_env(build_small_database())
    checked = subprocess.run([*tollgate, "check", *CHECK], env=small_env, capture_output=True, text=True)
    show = [*tollgate, "customer", "show", CHECK[0]]
    shown = subprocess.run([*show, "--json"], env=small_env, capture_output=True, text=True)
    if not candidates or "Commands:" not in helped or checked.returncode != 0 or '"links"' not in shown.stdout:
        print("the commands measured did not work:", candidates[:3], helped[:200], checked.stdout[:200],
              checked.stderr[-500:], shown.stderr[-500:], file=sys.stderr)
        return 2

    timings = interleaved_medians(
        {
            "typer": ([sys.executable, "-c", "import typer"], env),
            "complete": (tollgate, completion_env),
            "help": ([*tollgate, "--help"], env),
            "sqlalchemy+typer": ([sys.executable, "-c", "import sqlalchemy, typer"], small_env),
            "check": ([*tollgate, "check", *CHECK], small_env),
            "show": (show, small_env),
            "show --json": ([*show, "--json"], small_env),
        },
        RUNS,
    )
    base = timings["typer"]
    ok = True
    print(f"database: {db} ({COUNT:,} customers)")
    print(f"program: {' '.join(tollgate)}; python {sys.version.split()[0]}; median of {RUNS} interleaved runs")
    print(f"`tollgate customer show ac<TAB>` gives {len(candidates)} candidates, first: {' '.join(candidates[:4])} ...")
    print(f"  python -c 'import typer'              {base * 1000:7.1f} ms")
    for name, label in (("complete", "completion: customer show ac<TAB>"), ("help", "tollgate --help (piped)")):
        ratio = timings[name] / base
        verdict = "OK" if ratio <= TARGET else "MISSED"
        ok = ok and ratio <= TARGET
        print(f"  {label:<37} {timings[name] * 1000:7.1f} ms   ratio {ratio:.2f} (target <= {TARGET}) {verdict}")
    base = timings["sqlalchemy+typer"]
    ratio = timings["check"] / base
    ok = ok and ratio <= CHECK_TARGET
    print(f"  python -c 'import sqlalchemy, typer'  {base * 1000:7.1f} ms")
    print(f"  {'tollgate check ' + ' '.join(CHECK) + ' (small db)':<37} {timings['check'] * 1000:7.1f} ms   "
          f"ratio {ratio:.2f} (target <= {CHECK_TARGET}) {'OK' if ratio <= CHECK_TARGET else 'MISSED'}")
    for name in ("show", "show --json"):
        ratio = timings[name] / base
        ok = ok and ratio <= SHOW_TARGET
        label = f"tollgate customer {name.replace('show', 'show ' + CHECK[0])}"
        print(f"  {label:<37} {timings[name] * 1000:7.1f} ms   "
              f"ratio {ratio:.2f} (target <= {SHOW_TARGET}) {'OK' if ratio <= SHOW_TARGET else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
