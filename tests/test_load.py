"""Load: a reader running `usage show` in a loop while writers hammer the database never errors.

The writers are the suite's two process storms, which use `ConcurrentReader` from here:
- tests/test_usage_concurrency.py: 16 processes x 250 usage reports, half re-sent with the same
  keys -> exactly 4,000 events, 2,000 duplicates, 0 errors, integrity_check ok;
- tests/test_consume_race.py: 8 processes racing `consume` against a hard allowance -> zero overshoot.

The reader is one more process that runs the real CLI command (`tollgate usage show CUSTOMER --json`,
through Click in-process, so that it reads many times a second instead of paying start-up each time)
from before the writers start until after they finish (pausing 50 ms between runs). Every run must exit 0 with JSON on stdout,
and, since the writers only add usage, the total it sees must never go down (each run reads one
consistent snapshot).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

READER = textwrap.dedent(
    """
    import json, os, sys, time
    from decimal import Decimal
    from typer.testing import CliRunner
    from tollgate.cli.app import app

    db, ready, stop, customer, *extra = sys.argv[1:]
    runner = CliRunner()
    runs, errors, totals = 0, [], []
    open(ready, "w").close()
    while True:
        finished = os.path.exists(stop)  # one more run after the writers are done
        result = runner.invoke(app, ["--db", db, "usage", "show", customer, "--json", *extra])
        runs += 1
        if result.exit_code != 0 or (result.exception is not None and not isinstance(result.exception, SystemExit)):
            errors.append(f"run {runs}: exit {result.exit_code}: {result.stderr.strip()[:300]} {result.exception!r}")
        else:
            try:
                data = json.loads(result.stdout)
                total = sum(Decimal(f["total"]) for f in data["features"])
            except (ValueError, KeyError, TypeError) as exc:
                errors.append(f"run {runs}: unreadable output ({exc!r}): {result.stdout[:200]!r}")
            else:
                if totals and total < totals[-1]:
                    errors.append(f"run {runs}: the total went down from {totals[-1]} to {total}")
                totals.append(total)
        if finished:
            break
        time.sleep(PAUSE)  # a reader, not a third writer's worth of CPU: the storms share two cores
    print(json.dumps({"runs": runs, "errors": errors[:20], "error_count": len(errors),
                      "last_total": str(totals[-1]) if totals else None}))
    """
).replace("PAUSE", "0.05")


class ConcurrentReader:
    """`usage show CUSTOMER --json EXTRA...` in a loop in its own process, from `start()` (returns once
    the reader is ready) to `finish()` (returns its report: runs, errors, error_count, last_total)."""

    def __init__(self, db: Path | str, folder: Path, customer: str, *extra: str) -> None:
        self.db, self.customer, self.extra = str(db), customer, extra
        self.ready, self.stop = folder / "reader-ready", folder / "reader-stop"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> ConcurrentReader:
        import time

        self.proc = subprocess.Popen([sys.executable, "-c", READER, self.db, str(self.ready), str(self.stop),
                                      self.customer, *self.extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while not self.ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out, err = self.proc.communicate()
                raise AssertionError(f"the reader did not start: {err[-2000:]}")
            time.sleep(0.01)
        return self

    def finish(self, timeout: float = 300) -> dict:
        assert self.proc is not None
        self.stop.touch()
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
        return json.loads(out)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def storm_with_reader(workers: list[list[str]], go: Path, reader: ConcurrentReader,
                      *, timeout: float) -> tuple[list[dict], str, dict]:
    """Start every worker (each waits for `go` to exist, then prints a JSON report), start the reader,
    release the workers at once, and collect: (the workers' reports, their stderr, the reader's report).
    Every worker must exit 0."""
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for argv in workers]
    try:
        reader.start()
        go.touch()
        reports, stderr = [], ""
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            stderr += err
            assert proc.returncode == 0, err
            reports.append(json.loads(out))
        return reports, stderr, reader.finish()
    finally:
        reader.kill()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


@pytest.mark.slow
@pytest.mark.sqlite_only("a file of random bytes")
def test_the_reader_reports_what_goes_wrong(tmp_path):
    """The reader can fail: on a database it can't read, every run is an error it reports."""
    db = tmp_path / "broken.db"
    db.write_bytes(os.urandom(8192))
    reader = ConcurrentReader(db, tmp_path, "acme").start()
    report = reader.finish()
    assert report["runs"] >= 1 and report["error_count"] == report["runs"]
    assert "exit 3" in report["errors"][0] and "not a valid SQLite database" in report["errors"][0]
