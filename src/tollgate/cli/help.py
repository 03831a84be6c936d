"""How a tollgate command describes itself in --help: one rule for the names of what it takes, and
one for wrapping its text.

Typer labels a parameter by its Python type (`CUSTOMER <str>`, `--out <path>`, `kid <str>`) and braces
a required argument in the usage line (`{CUSTOMER}`). tollgate's help names what a parameter takes
instead, as git and gh do: its metavar when it has one (`FEATURE=PERIOD`, `bash|zsh|fish`), else its
name in capitals; an optional argument in brackets, a repeatable one with `...`; a flag by its name
alone. Help is Click's plain text on a terminal too, so it reads the same piped, with NO_COLOR and at
80 columns (rich's boxes leave a few words per line there). Text wraps at spaces only, never inside
a word or at a hyphen (`sample-catalog.toml`, `acme-inc`, `never|day|week|month` stay whole), and an
example too long for the line continues with a shell's ` \\`, so it can still be pasted.

Everything here goes through Typer's documented `cls=` hook for a command's class and Click's
documented help methods (`collect_usage_pieces`, `format_options`).
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable

import typer
from typer.core import TyperCommand, TyperGroup

from tollgate.cli.output import wrap_words

EXAMPLE = "Example:"
_KEPT = "\b"  # Click's marker: a paragraph whose first line is this is printed as written
_NAME_COLUMN_MAX = 30  # as Click's: a longer name puts its help on the next line
_REMARK = re.compile(r"\s{3,}(?=\()")  # `Example: tollgate ...   (identifier: acme-inc)`


def value_name(param: Any) -> str:
    """What a parameter's value is called in help: its metavar, else its name in capitals."""
    return param.metavar or param.name.upper()


def _argument_name(param: Any) -> str:
    return value_name(param) + ("..." if param.nargs != 1 else "")


def _option_name(param: Any) -> str:
    def joined(opts: list[str]) -> str:  # short forms first: "-y, --yes"
        return ", ".join(sorted(opts, key=lambda opt: len(opt) - len(opt.lstrip("-"))))

    names = " / ".join(joined(opts) for opts in (param.opts, param.secondary_opts) if opts)
    if param.is_flag or param.count:
        return names
    return f"{names} {value_name(param)}" + ("..." if param.nargs != 1 else "")


def _command_lines(command: str, width: int) -> list[str]:
    """A shell command in lines of at most `width` (where its words allow), split between words
    (never inside quotes), each but the last ending in ` \\`, the rest indented two spaces."""
    import shlex  # only --help needs it; `check` starts without

    try:
        lexer = shlex.shlex(command, posix=False)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:  # unbalanced quotes: plain words
        words = command.split()
    units: list[str] = []  # an option stays on the line of its value: `--name build-server-1`
    for word in words:
        if units and units[-1].startswith("-") and " " not in units[-1] and word[0] not in "-|&>;":
            units[-1] += " " + word
        else:
            units.append(word)
    lines = [units[0]]
    for word in units[1:]:
        if len(lines[-1]) + 1 + len(word) + len(" \\") <= width:
            lines[-1] += " " + word
        else:
            lines[-1] += " \\"
            lines.append(f"  {word}")
    return lines


def _example_lines(line: str, width: int) -> list[str]:
    """`Example: COMMAND` on one line if it fits, else the command below it, and a remark after
    three spaces (`(identifier: acme-inc)`) on a line of its own."""
    command, *remark = _REMARK.split(line[len(EXAMPLE):].strip(), maxsplit=1)
    if len(EXAMPLE) + 1 + len(command) <= width:
        lines = [f"{EXAMPLE} {command}"]
    else:
        lines = [EXAMPLE, *("  " + part for part in _command_lines(command, width - 2))]
    return lines + ["  " + text for text in remark]


def _is_command(line: str) -> bool:
    return line.startswith("tollgate ") or " | tollgate " in line


def help_lines(text: str, width: int) -> list[str]:
    """A help text as lines of `width`: paragraphs wrapped at spaces; an `Example:` line, and each
    command in a kept (\\b) paragraph, laid out as a command."""
    out: list[str] = []
    for paragraph in re.split(r"\n[ \t]*\n", text.strip()):
        lines = paragraph.splitlines()
        if out:
            out.append("")
        if lines[0].strip() == _KEPT:
            for line in lines[1:]:
                stripped = line.lstrip()
                lead = line[:len(line) - len(stripped)]
                out.extend(lead + part for part in (
                    _command_lines(stripped, width - len(lead)) if _is_command(stripped) else [stripped]))
            continue
        prose: list[str] = []
        for line in lines + [EXAMPLE]:  # a sentinel flushes the last prose
            if not line.startswith(EXAMPLE):
                prose.append(line.strip())
                continue
            out.extend(wrap_words(" ".join(prose), max(width, 20)) if prose else [])
            if line != EXAMPLE:
                out.extend([""] * bool(prose) + _example_lines(line, width))  # set apart from prose
            prose = []
    return out


def write_text(formatter: Any, text: str) -> None:
    """Write a help text through Click's formatter, at its indentation and width."""
    indent = " " * formatter.current_indent
    for line in help_lines(text, formatter.width - formatter.current_indent):
        formatter.write(f"{indent}{line}\n" if line else "\n")


def write_paragraph(formatter: Any, text: str | None) -> None:
    """A command's help text or epilog (up to a form feed, as Click's), set apart and indented."""
    if text:
        formatter.write_paragraph()
        with formatter.indentation():
            write_text(formatter, inspect.cleandoc(text).partition("\f")[0])


def write_definitions(formatter: Any, rows: list[tuple[str, str]]) -> None:
    """Click's definition list (a name column, then its help), wrapped by `help_lines`."""
    indent = " " * formatter.current_indent
    column = min(max(len(name) for name, _ in rows), _NAME_COLUMN_MAX) + 2
    for name, text in rows:
        lines = help_lines(text, formatter.width - formatter.current_indent - column) or [""]
        if len(name) > column - 2:
            formatter.write(f"{indent}{name}\n")
        else:
            formatter.write(f"{indent}{name.ljust(column)}{lines.pop(0)}".rstrip() + "\n")
        for line in lines:
            formatter.write(f"{indent}{' ' * column}{line}".rstrip() + "\n")


class _LaidOut:
    """A command's or a group's help text and epilog, laid out by `help_lines`."""

    help: str | None
    epilog: str | None

    def format_help_text(self, ctx: Any, formatter: Any) -> None:
        write_paragraph(formatter, self.help)

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        write_paragraph(formatter, self.epilog)


class Command(_LaidOut, TyperCommand):
    """A tollgate command: plain help, each parameter named by what it takes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rich_markup_mode = None  # Click's plain help (Typer's rich help labels by Python type)
        for param in self.params:  # errors name it as help does: "Missing argument 'KID'"
            param.metavar = value_name(param)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = _argument_name(param)
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        sections: dict[str, list[tuple[str, str]]] = {"argument": [], "option": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)  # Typer's: its help text with [default ...; required]
            if record is None or param.param_type_name not in sections:
                continue
            name = _argument_name(param) if param.param_type_name == "argument" else _option_name(param)
            sections[param.param_type_name].append((name, record[1]))
        for title, kind in (("Arguments", "argument"), ("Options", "option")):
            if sections[kind]:
                with formatter.section(title):
                    write_definitions(formatter, sections[kind])


class Group(_LaidOut, TyperGroup):
    """A group of tollgate commands: its help text laid out as a command's, and its commands listed
    with their whole summaries, wrapped (Click cuts a summary at the width and writes '...')."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                write_definitions(formatter, rows)


class Typer(typer.Typer):
    """A noun's sub-app (`tollgate customer ...`): its commands are `Command`s, its groups `Group`s."""

    def command(self, name: str | None = None, *, cls: type[TyperCommand] | None = None,
                **kwargs: Any) -> Callable[[Any], Any]:
        return super().command(name, cls=cls or Command, **kwargs)

    def add_typer(self, typer_instance: typer.Typer, *, cls: type[TyperGroup] | None = None,
                  **kwargs: Any) -> None:
        super().add_typer(typer_instance, cls=cls or Group, **kwargs)
