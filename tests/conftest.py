"""Shared fixtures: every test gets its own database file under tmp_path; nothing touches the real
user data folder. CLI tests run the real Typer app through CliRunner with stderr kept separate."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

os.environ["COLUMNS"] = "120"  # pin rich's width so table output is stable
os.environ.pop("NO_COLOR", None)


@pytest.fixture(autouse=True)
def isolated_db(tmp_path, monkeypatch) -> Path:
    """Point TOLLGATE_DB (and the user data folder) at tmp_path for every test."""
    path = tmp_path / "tollgate.db"
    monkeypatch.setenv("TOLLGATE_DB", str(path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    from tollgate.cli import context

    context.state.db = None
    context.state.debug = False
    context.state.handle = None
    yield path
    if context.state.handle is not None:
        context.state.handle.close()
        context.state.handle = None


@pytest.fixture
def db_path(isolated_db) -> Path:
    return isolated_db


@pytest.fixture
def tg(isolated_db):
    """The library handle on this test's database."""
    from tollgate import Tollgate

    handle = Tollgate(isolated_db)
    yield handle
    handle.close()


class Result:
    def __init__(self, raw):
        self.exit_code = raw.exit_code
        self.stdout = raw.stdout
        self.stderr = raw.stderr
        self.exception = raw.exception

    def json(self):
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"<Result exit={self.exit_code} stdout={self.stdout[:300]!r} stderr={self.stderr[:300]!r}>"


@pytest.fixture
def cli():
    """Run `tollgate ARGS...` in-process: cli("customer", "add", "Acme") -> Result (exit_code, stdout, stderr)."""
    from tollgate.cli.app import app

    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        from tollgate.cli import context

        context.state.db = None
        context.state.debug = False
        raw = runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=True)
        result = Result(raw)
        if raw.exception is not None and not isinstance(raw.exception, SystemExit):
            raise AssertionError(f"uncaught {raw.exception!r}: {result}") from raw.exception
        assert "Traceback" not in result.stderr, result.stderr
        return result

    return run
