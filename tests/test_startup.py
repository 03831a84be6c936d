"""Fast start: what `--help`, `--version` and a completion request import, and how the command tree
is built (only what a run touches). Timings live in bench/startup.py; these tests assert behaviour."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import typer

from tollgate.cli import app as app_module
from tollgate.cli.app import app

HEAVY = ("sqlmodel", "sqlalchemy", "pydantic", "pydantic_core")

PROBE = """
import json, os, runpy, sys
sys.argv = ["tollgate", *json.loads(os.environ["PROBE_ARGS"])]
code = 0
try:
    runpy.run_module("tollgate", run_name="__main__")
except SystemExit as exc:
    code = exc.code
with open(os.environ["PROBE_OUT"], "w") as out:
    json.dump({"code": code, "modules": sorted(n for n, m in sys.modules.items() if m is not None)}, out)  # None: blocked
"""


def probe(tmp_path, args: list[str], **env: str) -> tuple[int, set[str], str]:
    """Run `tollgate ARGS` (through python -m tollgate) with stdout piped; return the exit code, the
    top-level packages imported by the end, and stdout."""
    out = tmp_path / "probe.json"
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, "PROBE_ARGS": json.dumps(args), "PROBE_OUT": str(out), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    data = json.loads(out.read_text())
    return data["code"], {name.split(".")[0] for name in data["modules"]}, result.stdout


COMPLETIONS = {
    "bash": {"_TOLLGATE_COMPLETE": "complete_bash", "COMP_WORDS": "tollgate customer show ac", "COMP_CWORD": "3"},
    "zsh": {"_TOLLGATE_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "tollgate customer show ac"},
    "fish": {
        "_TOLLGATE_COMPLETE": "complete_fish",
        "_TYPER_COMPLETE_FISH_ACTION": "get-args",
        "_TYPER_COMPLETE_ARGS": "tollgate customer show ac",
    },
}


@pytest.fixture
def customers(tg, db_path):
    tg.add_customer("Acme, Inc.")
    tg.add_customer("Acorn Ltd")
    tg.close()
    return db_path


@pytest.mark.parametrize("shell", sorted(COMPLETIONS))
@pytest.mark.sqlite_only("completion reads the file with sqlite3")
def test_completion_imports_neither_the_database_layer_nor_rich(tmp_path, customers, shell):
    code, modules, stdout = probe(tmp_path, [], **COMPLETIONS[shell])
    assert code == 0
    assert "acorn-ltd" in stdout and "acme-inc" in stdout  # it did complete, from the database
    assert not modules & {*HEAVY, "rich"}, modules & {*HEAVY, "rich"}
    assert "sqlite3" in modules


@pytest.mark.parametrize(
    "args",
    [["--help"], ["-h"], ["--version"], ["customer", "--help"], ["customer", "show", "--help"], ["log", "--help"],
     ["completion", "--help"], ["db", "backup", "--help"]],
)
def test_help_and_version_never_import_the_database_layer_and_piped_help_skips_rich(tmp_path, args):
    code, modules, stdout = probe(tmp_path, args)
    assert code == 0
    assert not modules & set(HEAVY), modules & set(HEAVY)
    assert "rich" not in modules  # stdout is a pipe here: plain help
    assert stdout.startswith("Usage: tollgate") or stdout.startswith("tollgate ")


def test_completion_command_never_touches_the_database_layer(tmp_path):
    # A real command: Typer validates its argument with pydantic, but nothing opens a database.
    code, modules, stdout = probe(tmp_path, ["completion", "bash"])
    assert code == 0 and "_TOLLGATE_COMPLETE=complete_bash" in stdout
    assert not modules & {"sqlmodel", "sqlalchemy", "rich"}


def test_a_real_command_still_works_and_loads_what_it_needs(tmp_path, customers):
    code, modules, stdout = probe(tmp_path, ["customer", "show", "acorn-ltd", "--json"])
    assert code == 0 and json.loads(stdout)["identifier"] == "acorn-ltd"
    assert "sqlalchemy" in modules  # the probe can see heavy imports when they happen


def test_piped_root_help_is_plain_and_lists_every_command(tmp_path):
    code, modules, stdout = probe(tmp_path, ["--help"])
    assert code == 0
    assert "╭" not in stdout and "\x1b[" not in stdout
    commands = stdout.split("Commands:", 1)[1].split("\n\n", 1)[0]
    listed = [line.split()[0] for line in commands.splitlines() if line.startswith("  ") and line[2] != " "]
    assert set(listed) == {name for name in _root().list_commands(None) if not _root().get_command(None, name).hidden}


# -- the command tree is built on first use --------------------------------------------------------------


def _root():
    return typer.main.get_command(app)


def test_building_the_root_builds_no_sub_command():
    root = _root()
    assert not any(type(c).__name__ != "_Unbuilt" for c in root.commands.values())
    assert {"customer", "db", "log", "completion"} <= set(root.list_commands(None))
    customer = root.get_command(None, "customer")
    assert [name for name, c in root.commands.items() if type(c).__name__ != "_Unbuilt"] == ["customer"]
    show = customer.get_command(None, "show")
    assert show.name == "show" and [p.name for p in show.params] == ["identifier", "html", "as_json"]
    assert root.get_command(None, "nope") is None


def _walk(group, path=()):
    for name in group.list_commands(None):
        command = group.get_command(None, name)
        yield (*path, name), command
        if hasattr(command, "commands"):
            yield from _walk(command, (*path, name))


def test_the_static_command_table_says_what_each_built_command_says():
    """COMMANDS' summaries (plain --help, `tollgate <TAB>`) are each built command's own short help."""
    root = _root()
    assert root.list_commands(None) == list(app_module.COMMANDS)
    for name, (_, summary) in app_module.COMMANDS.items():
        listed = root.commands[name]
        built = root.get_command(None, name)
        assert built is not listed and built.name == name and not built.hidden
        assert summary == built.get_short_help_str(10_000), name
        for limit in (45, 60, 80):
            assert listed.get_short_help_str(limit) == built.get_short_help_str(limit), (name, limit)


def test_listing_the_root_builds_nothing(capsys):
    root = _root()
    assert root.main(["--help"], prog_name="tollgate", standalone_mode=False) == 0
    listed = capsys.readouterr().out.split("Commands:", 1)[1].split("\n\n", 1)[0]
    names = [line.split()[0] for line in listed.splitlines() if line.startswith("  ") and line[2] != " "]
    assert names == list(app_module.COMMANDS)  # a summary's wrapped lines are indented under it
    assert all(type(c).__name__ == "_Unbuilt" for c in root.commands.values())


def test_the_cli_runner_still_drives_the_public_app(cli):
    result = cli("--help")
    assert result.exit_code == 0 and "customer" in result.stdout
    added = cli("customer", "add", "Acme, Inc.", "--json")
    assert added.exit_code == 0 and added.json()["identifier"] == "acme-inc"
    shown = cli("customer", "show", "acme-inc", "--json")
    assert shown.exit_code == 0 and shown.json()["name"] == "Acme, Inc."


def test_values_are_still_checked_when_a_command_really_runs(cli, empty_db):
    missing = cli("customer", "show")
    assert missing.exit_code == 2 and "Missing argument" in missing.stderr
    bad = cli("customer", "list", "--limit", "lots")
    assert bad.exit_code == 2 and "--limit" in bad.stderr
    too_small = cli("customer", "list", "--limit", "0")
    assert too_small.exit_code == 2
    none = cli("customer", "list", "--json")
    assert none.exit_code == 0 and none.json() == []


def test_unknown_commands_are_still_suggested(cli):
    result = cli("custmer")
    assert result.exit_code == 2 and "customer" in result.stderr


# -- every command, as it stands: help and completion stay light and never fail -----------------------

SWEEP = r"""
import io, json, os, sys
from contextlib import redirect_stdout, redirect_stderr
import typer
from tollgate.cli.app import app, main

report = {"failures": [], "runs": 0}

def run(argv, env):
    saved = dict(os.environ)
    os.environ.update(env)
    sys.argv = ["tollgate", *argv]
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code or 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    report["runs"] += 1
    if code not in (0, 1) or "Traceback" in err.getvalue() or (env and err.getvalue()):
        report["failures"].append([argv, env, code, err.getvalue()[-500:]])
    return out.getvalue()

def walk(group, path=()):
    for name in group.list_commands(None):
        command = group.get_command(None, name)
        yield (*path, name), command
        if hasattr(command, "commands"):
            yield from walk(command, (*path, name))

commands = list(walk(typer.main.get_command(app)))
mode = os.environ["SWEEP_MODE"]
for path, command in commands:
    if mode == "help":
        run([*path, "--help"], {})
        continue
    lines = [[*path, ""]]
    for param in command.params:
        if param.param_type_name == "option" and not getattr(param, "is_flag", False) and param.opts:
            lines.append([*path, param.opts[0], ""])
            lines.append([*path, param.opts[0], "a"])
    for words in lines:
        run([], {"_TOLLGATE_COMPLETE": "complete_bash", "COMP_WORDS": "\n".join(["tollgate", *words]),
                 "COMP_CWORD": str(len(words))})
report["commands"] = [" ".join(path) for path, _ in commands]
report["modules"] = sorted({n.split(".")[0] for n, m in sys.modules.items() if m is not None})
json.dump(report, open(os.environ["PROBE_OUT"], "w"))
"""


def sweep(tmp_path, mode: str) -> dict:
    """In one fresh interpreter: `--help` of every command, or completion of every command's
    arguments and option values; which packages got imported along the way."""
    out = tmp_path / f"sweep-{mode}.json"
    env = {**os.environ, "PROBE_OUT": str(out), "SWEEP_MODE": mode}
    # walking the tree builds every command (as rich help would); the import check still holds,
    # because building a command imports nothing beyond typer and the cli modules
    result = subprocess.run([sys.executable, "-c", SWEEP], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(out.read_text())


def test_every_commands_help_imports_nothing_heavy(tmp_path):
    report = sweep(tmp_path, "help")
    assert report["failures"] == []
    assert "customer show" in report["commands"] and report["runs"] == len(report["commands"])
    assert not set(report["modules"]) & {*HEAVY, "rich"}, set(report["modules"]) & {*HEAVY, "rich"}


def test_completing_every_argument_and_option_imports_nothing_heavy_and_never_fails(tmp_path, customers):
    report = sweep(tmp_path, "complete")
    assert report["failures"] == []
    assert report["runs"] > len(report["commands"])
    assert not set(report["modules"]) & {*HEAVY, "rich"}, set(report["modules"]) & {*HEAVY, "rich"}


# -- the read path: a read command on SQLite runs on Core, without the ORM --------------------------------

ORM = {"sqlmodel", "pydantic", "pydantic_core", "sqlalchemy.orm"}


@pytest.fixture
def account(tg, db_path, tmp_path):
    from tollgate.catalog import LicensePolicy

    tg.add_customer("Acme, Inc.", identifier="acme")
    tg.create_product("API", identifier="api")
    tg.create_feature("API calls", type="metered", identifier="api-calls", unit="call")
    tg.create_feature("SSO", type="boolean", identifier="sso")
    tg.create_plan("pro", product="api", feature_values=["api-calls=40", "sso=true"], hard=["api-calls"],
                   license=LicensePolicy(3))
    tg.add_subscription("acme", "pro")  # issues a license key
    tg.add_link("pro", "Docs", "https://docs.example.com")
    (tmp_path / "setup.bin").write_bytes(b"setup")
    tg.add_download("pro", tmp_path / "setup.bin")
    tg.report_usage("acme", "api-calls", 3)
    tg.close()
    return db_path


def probe_modules(tmp_path, args: list[str]) -> tuple[int, set[str], str]:
    """Like `probe`, but the full dotted module names (sqlalchemy.orm is a sub-package)."""
    out = tmp_path / "probe.json"
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PROBE_ARGS": json.dumps(args), "PROBE_OUT": str(out)})
    data = json.loads(out.read_text())
    return data["code"], set(data["modules"]), result.stdout + result.stderr


@pytest.mark.sqlite_only("the start-up of a read command on a SQLite file")
@pytest.mark.parametrize("args", [["check", "acme", "api-calls"], ["check", "acme", "sso", "--json"],
                                  ["entitlements", "acme"], ["entitlements", "acme", "--json"],
                                  ["usage", "show", "acme"], ["usage", "show", "acme", "--json"],
                                  ["customer", "show", "acme"], ["customer", "show", "acme", "--json"]])
def test_read_commands_never_load_the_orm(tmp_path, account, args):
    code, modules, output = probe_modules(tmp_path, ["--db", str(account), *args])
    assert code == 0, output
    assert "sqlalchemy" in modules and ("acme" in output or "api-calls" in output)
    if args[0] == "customer":  # every section of the profile was read
        assert "setup.bin" in output and "docs.example.com" in output, output
        assert re.search(r"[0-9A-Z]{5}(-[0-9A-Z]{5}){4}", output), output  # the license key
    assert not modules & ORM, sorted(modules & ORM)
    assert "anyascii" not in modules  # loaded only when an identifier is generated


@pytest.mark.sqlite_only("the start-up of the access check on a SQLite file")
def test_the_access_check_loads_no_views_of_other_nouns(tmp_path, account):
    """`check` is the hot command: the views of plans, deliverables and the database load where a
    method returns one, not with the façade."""
    code, modules, output = probe_modules(tmp_path, ["--db", str(account), "check", "acme", "api-calls"])
    assert code == 0, output
    assert "tollgate.entitlement_views" in modules  # what check does return
    assert not modules & {"tollgate.plan_views", "tollgate.deliverable_views", "tollgate.db_views"}


GC_PROBE = """
import gc, sys
from tollgate.cli import start
sys.argv = ["tollgate", *sys.argv[1:]]
try:
    start.main()
except SystemExit:
    pass
print(gc.isenabled(), gc.get_freeze_count() > 0, file=sys.stderr)
"""


@pytest.mark.parametrize("args, collecting", [(["--help"], False), (["customer", "list"], True)])
def test_the_collector_is_paused_for_start_up_only(tmp_path, args, collecting):
    """start.main pauses the cyclic collector while the program loads; a command that opens its
    database turns it back on (the start-up objects frozen), so its own work is collected as usual."""
    db = tmp_path / "t.db"
    subprocess.run([sys.executable, "-m", "tollgate", "--db", str(db), "customer", "add", "Acme"], check=True,
                   capture_output=True)
    probe = subprocess.run([sys.executable, "-c", GC_PROBE, "--db", str(db), *args], capture_output=True, text=True)
    assert probe.stderr.strip().splitlines()[-1] == f"{collecting} {collecting}", probe.stderr
