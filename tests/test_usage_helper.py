"""The helper process that reads a big usage file while the ingest inserts (usage.parsing): when it
is used, and every way it can end. (tests/test_usage_file.py runs each of its tests with the file
read in-process and by the helper, for the same results.)"""

from __future__ import annotations

from decimal import Decimal

import pytest

from test_usage_file import EVENTS, _count, _sum, acme, write  # noqa: F401 (acme: the fixture)


def forced(monkeypatch) -> list:
    """Every file through the helper; returns the helpers started (Popen objects)."""
    from tollgate.usage import parsing as module

    started: list = []
    real = module.subprocess.Popen
    monkeypatch.setattr(module, "HELPER_FROM_BYTES", 0)
    monkeypatch.setattr(module, "second_core", lambda: True)
    monkeypatch.setattr(module.subprocess, "Popen", lambda argv, **kw: started.append(real(argv, **kw)) or started[-1])
    return started


def test_a_big_file_on_two_cores_goes_to_the_helper_and_a_small_one_does_not(acme, tmp_path, monkeypatch):
    from tollgate.usage import parsing as module

    monkeypatch.setattr(module, "second_core", lambda: True)
    started = []
    monkeypatch.setattr(module, "_helper", lambda *args: started.append(args) or None)  # then read here
    body = "".join(f"acme-inc,api-calls,1,2026-11-01T00:00:00Z,k-{n:07d}\n" for n in range(90_000))
    big = write(tmp_path / "big.csv", "customer,feature,quantity,timestamp,id\n" + body)
    assert big.stat().st_size >= module.HELPER_FROM_BYTES
    assert acme.report_usage_file(big).inserted == 90_000
    assert acme.report_usage_file(write(tmp_path / "small.csv", EVENTS)).inserted == 4
    assert [args[0] for args in started] == [str(big)]
    monkeypatch.setattr(module, "second_core", lambda: False)
    assert acme.report_usage_file(big).duplicates == 90_000
    assert len(started) == 1  # one core: read here


@pytest.mark.parametrize("sends", [b"", b"\x10\x00\x00\x00\x00\x00\x00\x00xx", b"\x03\x00\x00\x00\x00\x00\x00\x00\xe9\x01\x00"])
def test_a_helper_that_stops_short_is_a_storage_error_and_nothing_is_recorded(cli, acme, tmp_path, monkeypatch,
                                                                               sends):
    import sys

    from tollgate.usage import parsing as module

    forced(monkeypatch)
    monkeypatch.setattr(module, "helper_argv", lambda *args: [
        sys.executable, "-c", f"import sys; sys.stdout.buffer.write({sends!r})"])
    result = cli("usage", "report", "--file", str(write(tmp_path / "events.csv", EVENTS)))
    assert result.exit_code == 3, result
    assert "stopped before its end; nothing was recorded" in result.stderr
    assert "Traceback" not in result.stderr
    assert _count(acme) == 0


def test_a_helper_that_cannot_start_leaves_the_file_to_be_read_here(acme, tmp_path, monkeypatch):
    from tollgate.usage import parsing as module

    forced(monkeypatch)
    monkeypatch.setattr(module, "helper_argv", lambda *args: [str(tmp_path / "no-such-python")])
    assert acme.report_usage_file(write(tmp_path / "events.csv", EVENTS)).inserted == 4
    assert _sum(acme) == Decimal("12.5")


def test_the_helper_does_not_run_code_from_the_current_folder(acme, tmp_path, monkeypatch):
    """-P: a `csv.py` (or a `tollgate/`) where the command runs is not imported by the helper."""
    parsing = forced(monkeypatch)
    planted = tmp_path / "planted"
    (tmp_path / "csv.py").write_text(f"open({str(planted)!r}, 'w').write('ran')\n")
    monkeypatch.chdir(tmp_path)
    assert acme.report_usage_file(write(tmp_path / "events.csv", EVENTS)).inserted == 4
    assert len(parsing) == 1 and not planted.exists()


def test_the_helper_reads_the_file_this_process_opened_even_a_dev_fd_path(acme, tmp_path, monkeypatch):
    """`--file /dev/stdin < big.csv` or `/dev/fd/N`: the helper has other descriptors (its stdin is
    /dev/null), so it must read the file tollgate opened, not open the path again."""
    import os

    forced(monkeypatch)
    fd = os.open(write(tmp_path / "events.csv", EVENTS), os.O_RDONLY)
    try:
        assert acme.report_usage_file(f"/dev/fd/{fd}", format="csv").inserted == 4
    finally:
        os.close(fd)


@pytest.mark.parametrize("sends", [b"Welcome!\n", b"\xff" * 8, b"\x00\x00\x00\x00\x00\x01\x00\x00xx"])
def test_a_helper_that_writes_anything_else_is_a_storage_error_not_a_hang(acme, tmp_path, monkeypatch, sends):
    """Say a sitecustomize prints a banner: the frame length read is absurd (MemoryError, OverflowError
    in the reading thread), and the import must still end."""
    import sys
    import threading

    from tollgate.errors import StorageError
    from tollgate.usage import parsing as module

    forced(monkeypatch)
    monkeypatch.setattr(module, "helper_argv", lambda *args: [
        sys.executable, "-c", f"import sys; sys.stdout.buffer.write({sends!r})"])
    path = write(tmp_path / "events.csv", EVENTS)
    outcome: list = []

    def run() -> None:
        try:
            acme.report_usage_file(path)
        except Exception as exc:  # noqa: BLE001 (the test looks at it)
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the import hangs"
    assert len(outcome) == 1 and isinstance(outcome[0], StorageError), outcome
    assert _count(acme) == 0


@pytest.mark.parametrize("flag", ["-E", "-I"])
def test_a_tollgate_run_to_ignore_the_environment_starts_a_helper_that_ignores_it_too(tmp_path, flag):
    """`python -E` / `-I`: PYTHONPATH is not read; the helper must not import a `csv.py` it names."""
    import os
    import subprocess
    import sys

    evil, planted = tmp_path / "evil", tmp_path / "planted"
    evil.mkdir()
    (evil / "csv.py").write_text(f"open({str(planted)!r}, 'w').write('ran')\nfrom _csv import *\n")
    path = write(tmp_path / "events.csv", EVENTS)
    script = (
        "import sys\n"
        "from tollgate import Tollgate\n"
        "from tollgate.usage import parsing\n"
        "parsing.HELPER_FROM_BYTES = 0\n"
        "parsing.second_core = lambda: True\n"
        f"tg = Tollgate({str(tmp_path / 'tg.db')!r})\n"
        "tg.add_customer('Acme, Inc.')\n"
        "try:\n"
        f"    tg.report_usage_file({str(path)!r})\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(evil))
    done = subprocess.run([sys.executable, flag, "-c", script], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not planted.exists()


def test_a_frozen_program_reads_the_file_here(acme, tmp_path, monkeypatch):
    """In a frozen program (PyInstaller and the like) sys.executable is the program, not a Python."""
    import sys

    started = forced(monkeypatch)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert acme.report_usage_file(write(tmp_path / "events.csv", EVENTS)).inserted == 4
    assert started == []
