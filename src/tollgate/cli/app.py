"""The `tollgate` command: global options, the error boundary, and the noun sub-apps.

Start-up cost matters (every TAB press runs this), so nothing here imports the database layer:
commands import the library inside their bodies.
"""

from __future__ import annotations

import sys
import traceback
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from tollgate import __version__
from tollgate.cli import context, output
from tollgate.errors import TollgateError

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class TollgateGroup(TyperGroup):
    """The single error boundary: a TollgateError becomes one plain stderr message and its exit code."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except TollgateError as exc:
            if context.state.debug:
                traceback.print_exc()
            output.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            output.error("Interrupted; nothing more was written.")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except Exception as exc:  # a bug: say so in one line, details only with --debug
            if context.state.debug or _is_usage_error(exc):
                raise
            output.error(f"unexpected {type(exc).__name__}: {exc}. Run with --debug for details.")
            raise typer.Exit(EXIT_INTERNAL) from None


def _is_usage_error(exc: Exception) -> bool:
    """Click's own usage errors (bad option, missing argument) pass through to be shown with usage."""
    return type(exc).__module__.startswith("typer")


app = typer.Typer(
    cls=TollgateGroup,
    name="tollgate",
    help="Run the commercial side of a software product: customers, plans, entitlements, usage, invoices.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"tollgate {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    db: Annotated[
        Optional[str],
        typer.Option("--db", help="Database file or URL (default: $TOLLGATE_DB, then the user data folder)."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback when something fails.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Run the commercial side of a software product from a shell.

    Example: tollgate customer add "Acme, Inc." --email billing@acme.example
    """
    context.state.db = db
    context.state.debug = debug


def _register() -> None:
    from tollgate.cli import customer, database, journal

    app.add_typer(customer.app, name="customer")
    app.add_typer(database.app, name="db")
    app.command("log")(journal.log)


_register()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="tollgate")
