"""`tollgate completion bash|zsh|fish`: print the shell's completion script.

The scripts are Typer's own and speak the same protocol as an `--install-completion` install (the
shell runs `tollgate` with `_TOLLGATE_COMPLETE=complete_<shell>` and reads the candidates), with
three small changes: bash and fish keep the order tollgate gives (active customers first, live
subscriptions first) instead of sorting it, and the zsh script also works installed in `$fpath` as
`_tollgate` (autoloaded, it completes on the very first TAB too).

This module is imported on every run: it imports nothing beyond typer and the standard library.
"""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated

import typer

PROG_NAME = "tollgate"
COMPLETE_VAR = "_TOLLGATE_COMPLETE"

_ZSH_AUTOLOAD = """
# Installed in $fpath as _tollgate, this file is the body of an autoloaded function: complete now.
if [[ "${funcstack[1]}" == "_tollgate" ]]; then
  _tollgate_completion "$@"
fi"""


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def script(shell: str) -> str:
    """The completion script for `shell` (bash, zsh or fish), ending with a newline."""
    from typer.completion import get_completion_script

    text = get_completion_script(prog_name=PROG_NAME, complete_var=COMPLETE_VAR, shell=str(shell))
    if shell == "bash":
        text = text.replace("IFS=$'\n'", "IFS=$'\\n'")  # the same value, written readably
        text = text.replace("complete -o default -F", "complete -o default -o nosort -F")  # our order
    elif shell == "zsh":
        text += "\n" + _ZSH_AUTOLOAD
    elif shell == "fish":
        text = text.replace("complete --command", "complete --keep-order --command")  # our order
    return text + "\n"


def completion(
    shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.", show_default=False, metavar="bash|zsh|fish")],
) -> None:
    """Print the shell completion script for SHELL (to save or source; see the README).

    TAB then completes commands, options, and identifiers from your database: customers (active
    ones first), plans, products, features, subscriptions, license keys.
    Example: tollgate completion bash > ~/.local/share/bash-completion/completions/tollgate
    """
    sys.stdout.write(script(shell.value))


# -- the completion protocol, without rich ----------------------------------------------------------


def plain_completion_help() -> None:
    """Answer a completion request (`_TOLLGATE_COMPLETE` set) without importing rich.

    Typer's zsh and fish answers strip markup from each candidate's help with rich, but only when
    rich can be found; our help texts carry no markup, so this run marks rich as not importable (a
    None in sys.modules, Python's documented way) and Typer prints the very same protocol from plain
    text. tests/test_startup.py checks that completion never loads rich, and test_completion.py the
    zsh and fish lines, escapes included.
    """
    sys.modules.setdefault("rich", None)  # type: ignore[arg-type]
