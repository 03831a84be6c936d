"""Real processes and real signals (issue #14, items 4 and 13).

A reader that goes away (`tollgate customer list --csv | head -1`) ends tollgate quietly, whatever
the output form. A Ctrl-C is told truthfully: exit 130 only when the work was rolled back; when the
commit happened first, exit 0 and the normal result. A Ctrl-C during start-up is one line, no traceback.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CUSTOMERS = 3000  # their listings are larger than a pipe's buffer (64 KiB)


def _env(location) -> dict[str, str]:
    return dict(os.environ, TOLLGATE_DB=str(location), PYTHONUNBUFFERED="")


def _tollgate(location, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tollgate", *args], env=_env(location), **kwargs)


@pytest.fixture(scope="module")
def crowd(tmp_path_factory) -> Path:
    """A SQLite database with CUSTOMERS customers and a catalog (the pipe tests only read)."""
    from tollgate import Tollgate
    from tollgate.rowfiles import Row

    location = tmp_path_factory.mktemp("crowd") / "t.db"
    tg = Tollgate(location)
    tg.import_customers([Row(f"line {n + 2}", {"name": f"Customer number {n} with a long enough name",
                                               "email": f"c{n}@example.com"}) for n in range(CUSTOMERS)])
    tg.create_product("Editor", identifier="editor")
    tg.create_plan("app", product="editor", prices=[("once", "USD", "39.00")])
    tg.close()
    return location


FORMS = [
    ["customer", "list"],
    ["customer", "list", "--csv"],
    ["customer", "list", "--json"],
    ["log", "--json"],
    ["log"],
    ["catalog", "export"],
    ["plan", "list", "--json"],
    ["--help"],
    ["--version"],
]


@pytest.mark.parametrize("args", FORMS, ids=" ".join)
@pytest.mark.parametrize("when", ["after one line", "at once"])
def test_a_reader_that_goes_away_ends_tollgate_quietly(crowd, args, when):
    proc = _tollgate(crowd, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if when == "after one line":
        proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert proc.returncode in (0, 141), (proc.returncode, err)
    assert err == ""
