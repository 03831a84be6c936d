"""Crash safety: SIGKILL a real `tollgate` process at random moments and look at what is left.

- `catalog import` of a large file: every time, the database passes integrity_check and holds all
  of the import or none of it (every table's row count equals the count before or the count after
  a complete import), and tollgate opens it again.
- `catalog export FILE`: FILE is always the old complete file or the new complete file, never a
  truncated one.
- `usage report --file` of 200,000 rows: integrity_check ok, and all the rows or none of them; and
  sending the same file again after the crash records each event exactly once.

The big inputs are generated once per module; each command's duration is measured by one complete
run, and the kill moments are drawn from a seeded RNG, uniformly over that duration (start-up,
parsing, validation, the write transaction and its commit all get their share).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import table_counts

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only("SIGKILL of processes writing a SQLite file")]

TRIALS = int(os.environ.get("TOLLGATE_CRASH_TRIALS", "20"))
SEED = 20261121
PLANS, FEATURES = 400, 20


def catalog_text(plans: int, features: int, *, price_offset: int = 0) -> str:
    kinds = ("metered", "boolean", "config")
    lines = ["version = 1", "", "[products.app]", 'name = "App"', ""]
    for f in range(features):
        lines += [f"[features.f{f}]", f'name = "Feature {f}"', f'type = "{kinds[f % 3]}"', ""]
    for p in range(plans):
        lines += [f"[plans.p{p}]", 'product = "app"', f'name = "Plan {p}"', "prices = [",
                  f'  {{ interval = "month", currency = "USD", amount = "{p + price_offset}.00" }},',
                  f'  {{ interval = "year", currency = "EUR", amount = "{(p + price_offset) * 10}.00" }},',
                  "]", "", f"[plans.p{p}.entitlements]"]
        for f in range(features):
            kind = kinds[f % 3]
            if kind == "metered":
                lines.append(f'f{f} = {{ limit = {1000 + p}, reset = "month", hard = {"true" if p % 2 else "false"}, '
                             "alerts = [75, 90] }")
            elif kind == "boolean":
                lines.append(f"f{f} = {'true' if (p + f) % 2 else 'false'}")
            else:
                lines.append(f"f{f} = {p + f}")
        lines.append("")
    return "\n".join(lines)


def tollgate(*args: str, db: Path) -> subprocess.Popen:
    env = dict(os.environ, TOLLGATE_DB=str(db))
    return subprocess.Popen([sys.executable, "-m", "tollgate", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def run_to_the_end(*args: str, db: Path) -> float:
    """Run a command to its end; returns how long it took (seconds)."""
    started = time.perf_counter()
    proc = tollgate(*args, db=db)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    return time.perf_counter() - started


class Schedule:
    """Kill moments from a seeded RNG, uniform over the command's duration. The duration is measured
    by a complete run, and measured again by every trial that finished before its kill (the machine
    may have become faster since), so that the kills keep landing while the command runs."""

    def __init__(self, seed: int, duration: float) -> None:
        self.rng = random.Random(seed)
        self.duration = duration

    def kill(self, args: tuple[str, ...], db: Path) -> tuple[float, int]:
        """Start the command and SIGKILL it at a random moment: (the moment, its exit status; -9 killed)."""
        delay = self.rng.uniform(0, self.duration)
        started = time.perf_counter()
        proc = tollgate(*args, db=db)
        try:
            proc.wait(timeout=delay)
            self.duration = time.perf_counter() - started  # it finished first: a fresh measurement
        except subprocess.TimeoutExpired:
            proc.kill()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (0, -9), err.decode()
        return delay, proc.returncode


def recovered_counts(path: Path) -> dict[str, int]:
    """Row counts of every table as the next process would see them (conftest.table_counts), and
    the usage rollups checked against the events."""
    counts = table_counts(path, read_only=False)
    if counts.get("usage_rollup") is not None:
        from tollgate import Tollgate

        with Tollgate(path) as tg:
            assert tg.check_database().ok  # the rollups hold all of the killed import's events, or none
    return counts


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("crash")


@pytest.fixture(scope="module")
def big_catalog(folder) -> Path:
    path = folder / "big.toml"
    path.write_text(catalog_text(PLANS, FEATURES), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def template(folder) -> Path:
    """A tollgate database with a customer and a small catalog, closed (one file, no WAL)."""
    from tollgate import Tollgate

    path = folder / "template.db"
    with Tollgate(path) as tg:
        tg.add_customer("Acme", identifier="acme")
        tg.create_product("Old", identifier="old")
        tg.create_feature("Old feature", type="boolean", identifier="old-feature")
        tg.create_plan("old-plan", product="old", feature_values=["old-feature=true"])
    assert not Path(f"{path}-wal").exists()
    return path


@pytest.fixture(scope="module")
def imported(folder, big_catalog, template) -> tuple[Path, float, dict[str, int], dict[str, int]]:
    """One complete import of the big catalog: (its database, how long it took, counts before, after)."""
    before = recovered_counts(template)
    complete = folder / "complete.db"
    shutil.copy(template, complete)
    duration = run_to_the_end("catalog", "import", str(big_catalog), db=complete)
    after = recovered_counts(complete)
    assert after["plan"] == before["plan"] + PLANS and after["plan_entitlement"] >= PLANS * FEATURES
    return complete, duration, before, after


def test_sigkill_during_catalog_import_leaves_all_or_nothing(folder, big_catalog, template, imported):
    from tollgate import Tollgate

    _, duration, before, after = imported
    schedule = Schedule(SEED, duration)
    outcomes: Counter[str] = Counter()
    for trial in range(TRIALS):
        db = folder / f"import-{trial}.db"
        shutil.copy(template, db)
        delay, status = schedule.kill(("catalog", "import", str(big_catalog)), db)
        counts = recovered_counts(db)  # integrity_check ok, or it raises
        if counts == before:
            outcomes["none"] += 1
        elif counts == after:
            outcomes["all"] += 1
        else:
            changed = {t: (before[t], counts[t], after[t]) for t in counts if counts[t] != before[t]}
            pytest.fail(f"trial {trial} (killed at {delay:.3f}s of {schedule.duration:.3f}s, status {status}): "
                        f"part of the import is in the database (before, found, after): {changed}")
        outcomes["killed" if status == -9 else "finished"] += 1
        with Tollgate(db) as tg:  # tollgate opens what is left and works on it
            assert tg.customer("acme").name == "Acme"
        db.unlink()
    print(f"catalog import ({duration:.2f}s), {TRIALS} kills: {dict(outcomes)}")
    assert outcomes["none"] + outcomes["all"] == TRIALS
    assert outcomes["killed"] >= TRIALS // 4, outcomes  # the kills did land while it ran


def test_sigkill_during_catalog_export_leaves_the_old_or_the_new_file(folder, imported):
    db = imported[0]
    target = folder / "out" / "catalog.toml"
    target.parent.mkdir()
    old = catalog_text(40, 5, price_offset=7).encode()  # a different, complete catalog file
    target.write_bytes(old)
    duration = run_to_the_end("catalog", "export", str(target), db=db)
    new = target.read_bytes()
    assert new != old and new.startswith(b"# The tollgate catalog") and len(new) > 300_000

    schedule = Schedule(SEED + 1, duration)
    outcomes: Counter[str] = Counter()
    for trial in range(TRIALS):
        target.write_bytes(old)
        delay, status = schedule.kill(("catalog", "export", str(target)), db)
        found = target.read_bytes()
        if found == old:
            outcomes["old"] += 1
        elif found == new:
            outcomes["new"] += 1
        else:
            pytest.fail(f"trial {trial} (killed at {delay:.3f}s of {schedule.duration:.3f}s, status {status}): "
                        f"{target} holds {len(found)} bytes, neither the old ({len(old)}) nor the new ({len(new)}) file")
        outcomes["killed" if status == -9 else "finished"] += 1
    leftovers = [p.name for p in target.parent.iterdir() if p != target]
    print(f"catalog export ({duration:.2f}s), {TRIALS} kills: {dict(outcomes)}; temp files left: {len(leftovers)}")
    assert all(name.startswith(".catalog.toml.") and name.endswith(".partial") for name in leftovers), leftovers
    assert outcomes["killed"] >= TRIALS // 4, outcomes


USAGE_ROWS = 200_000


@pytest.fixture(scope="module")
def usage_file(folder) -> Path:
    """200,000 usage events (CSV with timestamps and ids) for three customers and two features."""
    rng = random.Random(SEED)
    path = folder / "usage.csv"
    customers, features = ("acme", "globex", "initech"), ("calls", "tokens")
    with path.open("w", encoding="utf-8") as out:
        out.write("customer,feature,quantity,timestamp,id\n")
        for i in range(USAGE_ROWS):
            out.write(f"{customers[i % 3]},{features[rng.getrandbits(1)]},{rng.randint(1, 50)},"
                      f"2026-11-{1 + i % 20:02d}T{i % 24:02d}:{i % 60:02d}:00Z,ev-{i}\n")
    return path


@pytest.fixture(scope="module")
def usage_template(folder) -> Path:
    """Three customers on a plan metering calls (soft) and tokens (hard, alerts): closed, no WAL."""
    from tollgate import Tollgate

    path = folder / "usage-template.db"
    with Tollgate(path) as tg:
        tg.create_product("App", identifier="app")
        tg.create_feature("Calls", type="metered", identifier="calls")
        tg.create_feature("Tokens", type="metered", identifier="tokens")
        tg.create_plan("basic", product="app", feature_values=["calls=1000000", "tokens=5000"], hard=["tokens"],
                       alerts=["tokens=75", "tokens=90"])
        for name in ("acme", "globex", "initech"):
            tg.add_customer(name.title(), identifier=name)
            tg.add_subscription(name, "basic", start="2026-11-01")
    assert not Path(f"{path}-wal").exists()
    return path


def test_sigkill_during_usage_report_file_leaves_all_or_nothing(folder, usage_file, usage_template):
    from tollgate import Tollgate

    before = recovered_counts(usage_template)
    complete = folder / "usage-complete.db"
    shutil.copy(usage_template, complete)
    duration = run_to_the_end("usage", "report", "--file", str(usage_file), db=complete)
    after = recovered_counts(complete)
    assert after["usage_event"] == before["usage_event"] + USAGE_ROWS
    complete.unlink()

    schedule = Schedule(SEED + 2, duration)
    outcomes: Counter[str] = Counter()
    resent = False
    for trial in range(TRIALS):
        db = folder / f"usage-{trial}.db"
        shutil.copy(usage_template, db)
        delay, status = schedule.kill(("usage", "report", "--file", str(usage_file)), db)
        counts = recovered_counts(db)  # integrity_check ok, or it raises
        if counts == before:
            outcomes["none"] += 1
        elif counts == after:
            outcomes["all"] += 1
        else:
            changed = {t: (before[t], counts[t], after[t]) for t in counts if counts[t] != before[t]}
            pytest.fail(f"trial {trial} (killed at {delay:.3f}s of {schedule.duration:.3f}s, status {status}): "
                        f"part of the file is in the database (before, found, after): {changed}")
        outcomes["killed" if status == -9 else "finished"] += 1
        if not resent and counts == before:  # after a crash, the operator sends the same file again
            with Tollgate(db) as tg:
                result = tg.report_usage_file(usage_file)
            assert (result.inserted, result.duplicates) == (USAGE_ROWS, 0)
            assert recovered_counts(db)["usage_event"] == after["usage_event"]
            resent = True
        db.unlink()
    print(f"usage report --file ({duration:.2f}s), {TRIALS} kills: {dict(outcomes)}")
    assert outcomes["killed"] >= TRIALS // 4, outcomes
