"""Real processes and real signals (issue #14, items 4 and 13).

A reader that goes away (`tollgate customer list --csv | head -1`) ends tollgate quietly, whatever
the output form. A Ctrl-C is told truthfully: exit 130 only when the work was rolled back; when the
commit happened first, exit 0 and the normal result. A Ctrl-C during start-up is one line, no traceback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import create_empty_database

pytestmark = pytest.mark.slow

CUSTOMERS = 3000  # their listings are larger than a pipe's buffer (64 KiB)


def _env(location) -> dict[str, str]:
    return dict(os.environ, TOLLGATE_DB=str(location))


PROGRAM = str(Path(sys.executable).with_name("tollgate"))  # the console script, as a shell runs it
PACKAGE = str(Path(__file__).resolve().parents[1] / "src" / "tollgate")


def _before_tollgate(err: str) -> bool:
    """A traceback of Python starting (site, the console script's own `import re`) with no frame in
    tollgate: the Ctrl-C came before a line of tollgate ran, which is not tollgate's to tell."""
    import tollgate

    ours = PACKAGE in err or str(Path(tollgate.__file__).parent) in err
    return ("Traceback" in err or "Fatal Python error" in err) and not ours


def _tollgate(location, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([PROGRAM, *args], env=_env(location), **kwargs)


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


# -- Ctrl-C ----------------------------------------------------------------------------------------------

ROWS = 60_000


@pytest.fixture(params=["sqlite", "postgres"])
def metered(request, tmp_path):
    """A database (a SQLite file, or a fresh PostgreSQL database) with a customer and a metered
    feature, a file of ROWS events for them, and a function counting the events recorded."""
    from sqlalchemy import text

    from tollgate import Tollgate

    location = request.getfixturevalue("pg_url") if request.param == "postgres" else tmp_path / "t.db"
    tg = Tollgate(location)
    tg.add_customer("Acme", identifier="acme")
    tg.create_feature("API calls", type="metered", identifier="api-calls")
    events = tmp_path / "events.csv"
    with events.open("w") as out:
        out.write("customer,feature,quantity,timestamp,id\n")
        out.writelines(f"acme,api-calls,1,2026-11-01T00:00:00Z,e{n}\n" for n in range(ROWS))

    def recorded() -> int:
        with tg.db.read() as session:
            return session.execute(text("SELECT COUNT(*) FROM usage_event")).scalar_one()

    yield location, events, recorded
    tg.close()


def test_ctrl_c_once_the_file_is_committed_exits_0_with_the_result(metered):
    """The interrupt lands the moment the commit is visible (during COMMIT or right after it): the
    rows are kept, so the command reports them and exits 0, not 130 "nothing was written"."""
    location, events, recorded = metered
    proc = _tollgate(location, "usage", "report", "--file", str(events), stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not recorded() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert recorded() == ROWS
    assert proc.returncode == 0, (proc.returncode, err)
    assert f"Inserted {ROWS} event(s)" in out and "Traceback" not in err


def test_ctrl_c_during_the_work_rolls_back_and_exits_130(metered):
    location, events, recorded = metered
    proc = _tollgate(location, "usage", "report", "--file", str(events), "--json", stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)  # well into reading and inserting (the run takes several seconds)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:  # a fast machine finished first: then it is all there
        assert recorded() == ROWS and json.loads(out)["inserted"] == ROWS
        return
    assert proc.returncode == 130, err
    assert recorded() == 0 and out == ""
    assert err.count("\n") == 1 and "rolled back" in err and "Traceback" not in err


@pytest.mark.parametrize("delay", [0.0, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4])
def test_ctrl_c_during_start_up_is_one_line_and_130(tmp_path, delay):
    """While Python imports the program (before the command's error boundary): no traceback."""
    create_empty_database(tmp_path / "t.db")  # the command reads it (a read creates no database)
    proc = _tollgate(tmp_path / "t.db", "customer", "list", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if _before_tollgate(err):
        return
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert proc.returncode in (0, 130, -signal.SIGINT), (proc.returncode, err)  # -2: before Python's handler
    if proc.returncode == 130:
        assert err.count("\n") == 1 and "Interrupted" in err, err
    else:
        assert err == "", (proc.returncode, err)


# -- the helper process of a big usage file (usage.parsing) ----------------------------------------------


@pytest.fixture
def big_file(tmp_path):
    """A SQLite database with a customer and a metered feature, and a usage file big enough for the
    helper process (usage.parsing.HELPER_FROM_BYTES)."""
    from tollgate import Tollgate
    from tollgate.usage.parsing import HELPER_FROM_BYTES

    location = tmp_path / "t.db"
    with Tollgate(location) as tg:
        tg.add_customer("Acme", identifier="acme")
        tg.create_feature("API calls", type="metered", identifier="api-calls")
    events = tmp_path / "events.csv"
    with events.open("w") as out:
        out.write("customer,feature,quantity,timestamp,id\n")
        out.writelines(f"acme,api-calls,1,2026-11-01T00:00:00Z,event-number-{n:09d}\n" for n in range(120_000))
    assert events.stat().st_size > HELPER_FROM_BYTES
    return location, events


def _helpers_of(events: Path) -> list[int]:
    """The pids of the running helper processes reading `events`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"tollgate.usage.parsing" in arg for arg in argv) and _holds(entry, events):
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
            if state != "Z":
                found.append(int(entry.name))
    return found


def _holds(process: Path, events: Path) -> bool:
    """Whether the process has `events` open (the helper reads the file by the descriptor it was given)."""
    try:
        return any(os.path.realpath(fd) == os.path.realpath(events) for fd in (process / "fd").iterdir())
    except OSError:
        return False


def _wait_for(condition, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return False


def _import_with_its_helper(location, events: Path, **popen) -> subprocess.Popen:
    """`usage report --file` running, once its helper process is seen."""
    from tollgate.usage.parsing import second_core

    if not second_core():
        pytest.skip("one core: the file is read in-process")
    proc = _tollgate(location, "usage", "report", "--file", str(events), **popen)
    assert _wait_for(lambda: _helpers_of(events) or proc.poll() is not None)
    assert proc.poll() is None, "the import ended before its helper was seen"
    return proc


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the helper through /proc")
def test_ctrl_c_while_the_helper_reads_rolls_back_and_stops_the_helper(big_file):
    location, events = big_file
    proc = _import_with_its_helper(location, events, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert err.count("\n") == 1 and ("rolled back" in err or "nothing was written" in err), err
    assert "Traceback" not in err
    assert _helpers_of(events) == []
    import sqlite3

    assert sqlite3.connect(location).execute("SELECT COUNT(*) FROM usage_event").fetchone() == (0,)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the helper through /proc")
def test_a_killed_import_leaves_no_helper_behind(big_file):
    location, events = big_file
    proc = _import_with_its_helper(location, events, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.kill()
    proc.wait(timeout=60)
    assert _wait_for(lambda: not _helpers_of(events), seconds=30), "the helper outlived a killed tollgate"


def test_a_ctrl_c_in_importlibs_callback_is_delivered_again_not_lost():
    """A SIGINT landing in importlib's weakref callback (`_get_module_lock.<locals>.cb`) can't raise
    there (Python prints "Exception ignored" and drops it): on_sigint sends it again a moment later."""
    from types import SimpleNamespace

    from tollgate import interrupts

    interrupts.reset()  # no commit yet: an interrupt is not held
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        in_callback = SimpleNamespace(f_code=SimpleNamespace(co_name="cb",
                                                             co_filename="<frozen importlib._bootstrap>"))
        interrupts.on_sigint(signal.SIGINT, in_callback)  # returns: nothing raised in the callback
        assert _wait_for(lambda: received, seconds=5), "the interrupt was lost"
        with pytest.raises(KeyboardInterrupt):
            interrupts.on_sigint(signal.SIGINT, SimpleNamespace(f_code=SimpleNamespace(co_name="main",
                                                                                       co_filename="x.py")))
    finally:
        signal.signal(signal.SIGINT, previous)
        interrupts.reset()
