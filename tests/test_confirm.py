"""Irreversible commands ask first (cli/context.confirm_or_refuse, one helper for all): on a terminal
they look the object up, then ask; off one they need --yes (exit 2 naming it); an unknown id is
reported before any question; answering no exits 1 with one sentence and writes nothing."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def in_terminal(*args: str, answer: str | None, columns: int = 80, timeout: float = 30) -> tuple[int, str]:
    """Run `tollgate ARGS` with stdin, stdout and stderr on a pseudo-terminal; type `answer` (and
    Enter) once the question shows. Returns (exit code, everything the terminal showed)."""
    import fcntl
    import pty
    import struct
    import termios

    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "tollgate", *args], stdin=child, stdout=child, stderr=child,
                            env=env, close_fds=True)
    os.close(child)
    shown, typed, deadline = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if answer is not None and not typed and b"[y/N]" in shown:
                os.write(main, answer.encode() + b"\r")
                typed = True
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    return code, shown.decode(errors="replace").replace("\r\n", "\n")


@pytest.fixture
def shop(cli):
    """The sample catalog, zoe with a one-time purchase (a license key and a download), and one usage
    event of globex: an object for each irreversible command."""
    assert cli("catalog", "import", str(ROOT / "sample-catalog.toml")).exit_code == 0
    assert cli("customer", "import", str(ROOT / "examples" / "customers.csv")).exit_code == 0
    assert cli("sub", "add", "zoe", "markdown-studio-2", "--currency", "USD").exit_code == 0
    key = cli("license", "list", "--customer", "zoe", "--json").json()[0]["key"]
    download = cli("download", "list", "--customer", "zoe", "--json").json()[0]["id"]
    assert cli("usage", "report", "zoe", "ai-tokens", "5", "--id", "evt-1").exit_code in (0, 1)
    return {"key": key, "download": download}


def commands(shop: dict) -> dict[str, list[str]]:
    return {
        "license revoke": ["license", "revoke", shop["key"]],
        "license regenerate": ["license", "regenerate", shop["key"]],
        "download remove": ["download", "remove", shop["download"]],
        "customer archive": ["customer", "archive", "acme-inc"],
        "plan archive": ["plan", "archive", "free"],
    }


def state(cli, shop) -> tuple:
    return (cli("license", "show", shop["key"], "--json").json()["status"],
            [d["id"] for d in cli("download", "list", "markdown-studio-2", "--json").json()],
            cli("customer", "show", "acme-inc", "--json").json()["status"],
            cli("plan", "show", "free", "--json").json()["status"],
            len(cli("log", "--json").json()))


@pytest.mark.parametrize("name", ["license revoke", "license regenerate", "download remove", "customer archive",
                                  "plan archive"])
def test_off_a_terminal_it_needs_yes_and_writes_nothing(cli, shop, name):
    before = state(cli, shop)
    refused = cli(*commands(shop)[name])
    assert refused.exit_code == 2 and "--yes" in refused.stderr and refused.stdout == ""
    assert state(cli, shop) == before
    assert cli(*commands(shop)[name], "--yes").exit_code == 0


@pytest.mark.parametrize("args, unknown", [
    (["license", "revoke", "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE"], "AAAAA"),
    (["license", "regenerate", "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE"], "AAAAA"),
    (["download", "remove", "dl_nope"], "dl_nope"),
    (["usage", "void", "nope", "--reason", "x"], "nope"),
    (["customer", "archive", "nobody"], "nobody"),
    (["sub", "cancel", "sub_nope"], "sub_nope"),
])
def test_an_unknown_id_is_reported_before_any_question(cli, shop, args, unknown):
    refused = cli(*args)
    assert refused.exit_code == 2 and unknown in refused.stderr and "--yes" not in refused.stderr


def test_usage_void_asks_too(cli, shop):
    refused = cli("usage", "void", "evt-1", "--reason", "sent twice")
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert cli("usage", "export", "--format", "jsonl").stdout.count("evt-1") == 1


def test_on_a_terminal_no_exits_1_with_one_sentence_and_writes_nothing(cli, shop):
    before = state(cli, shop)
    code, shown = in_terminal("license", "revoke", shop["key"], answer="n")
    assert code == 1, shown
    assert f"Revoke {shop['key']} (zoe, markdown-studio-2)?" in shown
    assert "Not revoked: the key" in shown and "Traceback" not in shown
    assert "error" not in shown.lower()  # the person's answer, not a failure
    assert state(cli, shop) == before


def test_on_a_terminal_yes_goes_ahead(cli, shop):
    code, shown = in_terminal("download", "remove", shop["download"], answer="y")
    assert code == 0, shown
    assert "Removed download" in shown
    assert cli("download", "list", "markdown-studio-2", "--json").json() == []


def test_on_a_terminal_an_unknown_id_asks_nothing(cli, shop):
    code, shown = in_terminal("usage", "void", "nope", "--reason", "x", answer="y")
    assert code == 2 and "[y/N]" not in shown and "No usage event has the key 'nope'" in shown
