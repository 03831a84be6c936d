"""The single error boundary, global options, and help text for every command."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest
import typer

from conftest import create_empty_database
from tollgate import __version__


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"tollgate {__version__}"


def test_no_arguments_shows_help(cli):
    result = cli()
    assert "customer" in (result.stdout + result.stderr)
    assert result.exit_code in (0, 2)


def test_unexpected_error_is_one_line_with_a_hint(cli, monkeypatch):
    from tollgate.api import Tollgate

    def broken(self, *args, **kwargs):
        raise ValueError("something internal")

    monkeypatch.setattr(Tollgate, "customers", broken)
    result = cli("customer", "list")
    assert result.exit_code == 70
    assert result.stderr.count("\n") == 1
    assert "unexpected ValueError: something internal" in result.stderr and "--debug" in result.stderr


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    env = dict(os.environ, TOLLGATE_DB=str(tmp_path / "t.db"))
    create_empty_database(tmp_path / "t.db")
    proc = subprocess.run([sys.executable, "-m", "tollgate", "--debug", "customer", "show", "ghost"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr and "NotFound" in proc.stderr
    plain = subprocess.run([sys.executable, "-m", "tollgate", "customer", "show", "ghost"],
                           capture_output=True, text=True, env=env)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert plain.stderr.startswith("error: No customer has the identifier 'ghost'")


def test_interrupt_exits_130(cli, monkeypatch):
    from tollgate.api import Tollgate

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Tollgate, "customers", interrupted)
    result = cli("customer", "list")
    assert result.exit_code == 130 and "Interrupted" in result.stderr


def test_sigint_to_a_real_process_exits_130(tmp_path):
    """A real Ctrl-C during an import: exit 130, and the all-or-nothing import wrote nothing."""
    import signal
    import time

    env = dict(os.environ, TOLLGATE_DB=str(tmp_path / "t.db"))
    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-m", "tollgate", "customer", "import", str(fifo)],
                            stderr=subprocess.PIPE, text=True, env=env)
    with open(fifo, "w") as writer:
        writer.write("name\nAcme\n")
        writer.flush()
        time.sleep(1.5)  # the importer is now blocked reading the rest of the file
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    listed = subprocess.run([sys.executable, "-m", "tollgate", "customer", "list", "--json"],
                            capture_output=True, text=True, env=env)
    assert listed.stdout.strip() == "[]"


def all_commands():
    from typer.main import get_command

    from tollgate.cli.app import app

    def walk(group, prefix):
        for name in sorted(group.list_commands(None)):
            command = group.get_command(None, name)
            if getattr(command, "commands", None):
                yield from walk(command, prefix + [name])
            else:
                yield prefix + [name], command

    return list(walk(get_command(app), []))


@pytest.mark.parametrize("path, command", all_commands(), ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_every_command_has_help_with_an_example(path, command):
    assert command.help, f"tollgate {' '.join(path)} has no help"
    assert "Example:" in command.help, f"tollgate {' '.join(path)} has no example in its help"


def test_help_runs_for_every_command(cli):
    for path, _ in all_commands():
        result = cli(*path, "--help")
        assert result.exit_code == 0, (path, result)
        assert "Example" in result.stdout


def test_the_cli_stands_on_public_typer_and_click_api_only():
    """No private names of Typer (or of the Click it vendors as typer._click) in src: they break on upgrade."""
    from pathlib import Path

    private = ("typer._", "_click", "HAS_RICH", "_main_shell_completion", "_TyperParameter")
    src = Path(__file__).resolve().parent.parent / "src" / "tollgate"
    found = [f"{path.relative_to(src)}: {word}" for path in sorted(src.rglob("*.py"))
             for word in private if word in path.read_text()]
    assert found == []


GETTING_STARTED = ("product create", "feature create", "plan create", "customer add", "sub add", "usage report",
                   "invoice preview")


def test_root_help_shows_the_getting_started_order_with_examples(tmp_path):
    piped = subprocess.run([sys.executable, "-m", "tollgate", "--help"], capture_output=True, text=True,
                           env=dict(os.environ, TOLLGATE_DB=str(tmp_path / "t.db")))
    assert piped.returncode == 0
    guide = piped.stdout.split("Getting started", 1)[1].replace(" \\\n", " ")  # a long line continues
    lines = [line.strip() for line in guide.splitlines() if line.strip().startswith("tollgate ")]
    assert [next(step for step in GETTING_STARTED if line.startswith(f"tollgate {step}")) for line in lines] == list(
        GETTING_STARTED)
    env = dict(os.environ, TOLLGATE_DB=str(tmp_path / "guide.db"))
    for line in lines:  # the examples, run in order on a new database, all succeed
        ran = subprocess.run([sys.executable, "-m", "tollgate", *shlex.split(line)[1:]], capture_output=True,
                             text=True, env=env)
        assert ran.returncode == 0, (line, ran.stderr)


def test_root_help_through_the_cli_runner_keeps_the_getting_started_lines(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for step in GETTING_STARTED:
        assert f"tollgate {step}" in result.stdout
