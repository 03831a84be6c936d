"""What every command shares: the global options' values, the Tollgate handle, common option types."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Optional

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
        from tollgate.cli.start import started

        started()
        state.handle = Tollgate(state.db)
        # only a command that writes creates the database; any other says there is none, wherever the
        # location came from (--db, TOLLGATE_DB or the user data folder)
        state.handle.db.create_on_read = False
    return state.handle


def _location() -> str:
    from tollgate.location import resolve_location

    return resolve_location(state.db)


def confirm_or_refuse(question: Callable[[], str], *, yes: bool, declined: str) -> None:
    """The one confirmation of every irreversible command. With --yes, go ahead. Otherwise first call
    `question`, which looks the object up (so an unknown id is reported before anything is asked) and
    returns the question; then ask it on a terminal, or refuse off one (exit 2: scripts must say
    --yes). Answering no prints `declined` (one sentence: what was not done) and exits 1."""
    if yes:
        return
    import sys

    from tollgate.errors import InvalidInput

    text = question()
    if not sys.stdin.isatty():
        raise InvalidInput("This command asks for confirmation and standard input is not a terminal.",
                           hint="Pass --yes to go ahead without asking.")
    if not typer.confirm(text, default=False):
        from tollgate.cli import output

        output.notice(declined)  # the person's own choice, not an error
        raise typer.Exit(1)


WHEN = "DATE|TIME|7d|2h|today|yesterday"
"""The metavar of every option that takes a time (clock.parse_moment reads them all): 7d = 7 days ago."""
UNTIL = "DATE|TIME|7d|2h|tomorrow"
"""The metavar of the options whose time is naturally ahead (an expiry, a trial end): 7d = 7 days from now."""

Json = Annotated[bool, typer.Option("--json", help="Print JSON (a stable shape) instead of a table.")]
Csv = Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")]
Limit = Annotated[Optional[int], typer.Option("--limit", "-n", min=1, metavar="N", help="At most N rows.")]
EveryRow = Annotated[bool, typer.Option("--all", help="Every row on a terminal too (it shows the first 50).")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
