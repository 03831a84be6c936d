"""--help as a person reads it: parameters named by what they take, no word split, the same on a terminal
as piped (issue 15, item 10; the layout rule is src/tollgate/cli/help.py)."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from terminal import in_terminal, piped
from test_cli_boundary import all_commands
from tollgate.cli.app import app
from tollgate.cli.help import help_lines

COMMANDS = all_commands()
TYPE_LABEL = re.compile(r"<(str|int|float|bool|path|file|dir|datetime|uuid|list\[[^\]]*\])>|\brange\b")


def help_of(path: list[str], columns: int) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=columns, env={"TOLLGATE_PAGER": ""})
    assert result.exit_code == 0, result.output
    return result.output


def source_words(command) -> set[str]:
    texts = [inspect.cleandoc(command.help).partition("\f")[0]]  # Click shows the help up to a form feed
    texts += [param.help or "" for param in command.params if not getattr(param, "hidden", False)]
    return {word for text in texts for word in text.split() if word != "\b"}


@pytest.mark.parametrize("columns", [80, 64])
@pytest.mark.parametrize("path, command", COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_help_names_what_each_parameter_takes_and_splits_no_word(path, command, columns):
    text = help_of(path, columns)
    assert not TYPE_LABEL.search(text), text
    usage = text.split("\n\n", 1)[0]
    assert not re.search(r"\{[A-Z_]+\}", usage), usage  # Typer's braces around a required argument
    printed = set(text.replace(" \\\n", "\n").split())
    split = sorted(word for word in source_words(command) if word not in printed)
    assert split == [], f"words broken across lines in `tollgate {' '.join(path)} --help`: {split}\n{text}"
    for param in command.params:
        if param.param_type_name == "argument":
            name = param.metavar or param.name.upper()
            assert re.search(rf"(^|\s|\[){re.escape(name)}(\]|\.\.\.|\s|$)", usage), (name, usage)


def test_every_group_has_an_example():
    from typer.main import get_command

    pending, groups = [get_command(app)], []
    while pending:
        group = pending.pop()
        groups.append(group)
        pending.extend(c for c in map(lambda name: group.get_command(None, name), group.list_commands(None))
                       if getattr(c, "commands", None))
    assert len(groups) > 10
    assert [g.name for g in groups if "Example:" not in (g.help or "") and "tollgate " not in (g.epilog or "")] == []


def test_a_too_long_example_continues_as_a_shell_would_read_it():
    command = ("tollgate plan create pro --product ai-studio --price 49.00 --currency USD --interval month "
               "--feature api-calls=10000 --feature sso=true --hard api-calls")
    lines = help_lines(f"Make a plan.\nExample: {command}   (identifier: pro)", 60)
    assert lines[:3] == ["Make a plan.", "", "Example:"]
    body = lines[3:-1]
    assert all(len(line) <= 60 for line in body) and len(body) > 1
    assert all(line.endswith(" \\") for line in body[:-1]) and not body[-1].endswith("\\")
    assert " ".join(line.removesuffix(" \\").strip() for line in body) == command
    assert "--price 49.00" in "\n".join(body) and lines[-1] == "  (identifier: pro)"  # an option keeps its value


def test_quoted_words_are_never_split_and_short_examples_stay_on_one_line():
    lines = help_lines('Example: tollgate license file K --fingerprint "$(cat /etc/machine-id)" --out app.lic', 50)
    assert any('"$(cat /etc/machine-id)"' in line for line in lines), lines
    assert help_lines("Example: tollgate customer show acme-inc", 60) == ["Example: tollgate customer show acme-inc"]


def test_the_usage_line_brackets_optional_and_marks_repeated_arguments():
    export = help_of(["catalog", "export"], 80)
    assert "Usage: tollgate catalog export [OPTIONS] [FILE]\n" in export
    assert "Usage: tollgate check [OPTIONS] CUSTOMER FEATURE\n" in help_of(["check"], 80)
    assert "Usage: tollgate completion [OPTIONS] bash|zsh|fish\n" in help_of(["completion"], 80)


@pytest.mark.parametrize("args", [["customer", "show", "--help"], ["plan", "create", "--help"], ["--help"]])
def test_help_on_an_80_column_terminal_is_the_piped_text(args, tmp_path):
    env = {"TOLLGATE_DB": str(tmp_path / "t.db"), "COLUMNS": "80"}
    on_terminal = in_terminal(args, columns=80, env={"TOLLGATE_DB": env["TOLLGATE_DB"]})
    assert on_terminal.code == 0
    assert "\x1b[" not in on_terminal.terminal  # no rich boxes or colours
    assert on_terminal.terminal == piped(args, env=env).stdout
    assert max(len(line) for line in on_terminal.terminal.splitlines()) <= 80


def test_a_usage_error_names_the_argument_as_help_does():
    result = CliRunner().invoke(app, ["license", "signing-key", "retire"])
    assert result.exit_code == 2
    assert "Usage: tollgate license signing-key retire [OPTIONS] KID" in result.output
    assert "Missing argument 'KID'" in result.output


@pytest.mark.parametrize("width", [80, 64])
def test_a_groups_command_list_shows_every_summary_whole_wrapped_under_itself(width):
    from tollgate.cli.app import COMMANDS

    shown = subprocess.run([sys.executable, "-m", "tollgate", "--help"], capture_output=True, text=True,
                           env={**os.environ, "COLUMNS": str(width)}).stdout
    listing = " ".join(shown.split("Commands:", 1)[1].split("\n\n", 1)[0].split())
    assert "..." not in listing and all(len(line) <= width for line in shown.splitlines())
    for name, (_, summary) in COMMANDS.items():
        assert f"{name} {summary}" in listing, name
