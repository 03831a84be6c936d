"""What every command shares: the global options' values, the Tollgate handle, common option types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from tollgate.api import Tollgate


@dataclass
class State:
    db: str | None = None
    debug: bool = False
    handle: Tollgate | None = None


state = State()


def tollgate() -> Tollgate:
    """The library handle for this run, opened on first use (so --help never touches the database)."""
    if state.handle is None or state.handle.db.location != _location():
        from tollgate.api import Tollgate

        state.handle = Tollgate(state.db)
    return state.handle


def _location() -> str:
    from tollgate.db import resolve_location

    return resolve_location(state.db)


def confirm_or_refuse(question: str, *, yes: bool) -> None:
    """Ask on a terminal; off a terminal, refuse unless --yes was given (scripts must say so)."""
    if yes:
        return
    import sys

    from tollgate.errors import InvalidInput

    if not sys.stdin.isatty():
        raise InvalidInput("This needs confirmation and there is no terminal to ask on.", hint="Pass --yes.")
    if not typer.confirm(question, default=False):
        raise typer.Exit(1)


Json = Annotated[bool, typer.Option("--json", help="Print JSON (a stable shape) instead of a table.")]
Csv = Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
