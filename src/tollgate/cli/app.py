"""The `tollgate` command: global options, the error boundary, and the noun sub-apps.

Start-up cost matters (every TAB press runs this), so nothing here imports the database layer:
commands import the library inside their bodies.
"""

from __future__ import annotations

import functools
import os
import signal as _signal
import sys
from typing import Annotated, Any, Optional, TypeGuard

import typer
from typer.core import TyperGroup

from tollgate import __version__
from tollgate.cli import context, output
from tollgate.cli.help import Command, Group
from tollgate.errors import TollgateError

ClickContext = Any
"""Click's Context, which the group methods below receive. typer.Context is a subclass, and Typer
vendors Click under a private name, so Click's own class can't be named here."""

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_READER_GONE = 141
"""stdout's reader closed the pipe (`tollgate customer list | head -1`): 128 + SIGPIPE, as a shell
reports a program that SIGPIPE ended, and nothing on stderr."""


# -- start-up: commands are built on first use ---------------------------------------------------------
# Typer turns every command's signature into Click parameters before anything runs (about 1 ms per
# command), and the noun modules import what their commands need. So the root follows Click's lazy
# group pattern: it lists its commands from the table below, and builds one (importing its module,
# through Typer's public builders) the first time a run looks it up: `tollgate customer show ...` builds
# `customer`, nothing else. Listings (plain --help, `tollgate <TAB>`) read the table and build nothing;
# tests/test_startup.py checks that every summary here is what the built command says.
# A new root command is one line: "name": ("module", summary) for a noun module's Typer `app`, or
# "name": ("module:function", summary) for a single command.

COMMANDS: dict[str, tuple[str, str]] = {  # in the order --help lists them: getting started first
    "product": ("product", "Products: the things you sell (each sold through plans)."),
    "feature": ("feature", "Features: what plans grant (boolean, metered or config)."),
    "plan": ("plan", "Plans: how a product is packaged and priced, and what each grants."),
    "customer": ("customer", "Customers: the people and companies you sell to."),
    "sub": ("sub", "Subscriptions: a customer on a plan, with its own feature adjustments."),
    "override": ("override", "Overrides: one customer's own value for a feature, winning over every plan."),
    "entitlements": ("access:entitlements", "Show a customer's effective entitlements: value or allowance, usage this period, reset, source."),
    "check": ("access:check", "May the customer use this feature (this much) now? Exit 0 allowed, 1 denied."),
    "usage": ("usage", "Metered usage: report it, chart it, correct it."),
    "license": ("license", "License keys: issued by plans with a license policy; validated and activated by apps."),
    "download": ("download", "Digital downloads: files a plan delivers, stored by checksum, fetched by entitled customers."),
    "link": ("link", "Links: named web addresses a plan shows its customers (a community, a dashboard)."),
    "invoice": ("invoice", "Invoices: what customers owe, previewed exactly (nothing is issued)."),
    "catalog": ("catalog", "The catalog as code: products, features and plans in one TOML file."),
    "db": ("database", "The database: its location, contents and backups."),
    "log": ("journal:log", "Show the journal: what changed, on which object, when, and by which OS user."),
    "completion": ("completion:completion", "Print the shell completion script for SHELL (to save or source; see the README)."),
}


def light_values(command: Any) -> None:
    """Keep pydantic out of --help, completion and the read commands.

    Typer (0.29) coerces every parameter's value through a pydantic TypeAdapter built on first use,
    even a missing value, so merely parsing `--db` (absent: None) imports pydantic (~60 ms, as much as
    importing typer). Each parameter of a command built here skips that where coercion could not
    change the value: a missing value (None, or () for a multi-value parameter); any value while a
    shell is completing a line (Click's resilient parsing: the completers read the raw strings); and
    a plain text parameter given text. Everything else goes through Typer's processing unchanged.
    """
    for param in command.params:
        _lighten(param)
    if not hasattr(command.get_help_option, "light"):  # Click makes the help option on first use
        clicks = command.get_help_option

        def get_help_option(ctx: typer.Context) -> Any:
            option = clicks(ctx)
            if option is not None:
                _lighten(option)
            return option

        get_help_option.light = True  # type: ignore[attr-defined]
        command.get_help_option = get_help_option


def _lighten(param: Any) -> None:
    if getattr(param, "type_descriptor", None) is not None and not hasattr(param.process_value, "light"):
        param.process_value = _light_processing(param, param.process_value)


def _light_processing(param: Any, typers: Any) -> Any:
    multi = param.nargs != 1 or param.multiple
    kind = param.type_descriptor
    plain_text = (kind.annotation is str and not kind.is_choice and kind.file_annotation is None and not multi)

    def process_value(ctx: typer.Context, value: Any) -> Any:
        resilient = ctx.resilient_parsing
        if not resilient and (value is None and param.required or value is not None and not (
                plain_text and isinstance(value, str))):
            return typers(ctx, value)  # Typer's own: coercion, and its error for a missing value
        if value is None and multi:
            value = ()
        return param.callback(ctx, param, value) if param.callback is not None else value

    process_value.light = True  # type: ignore[attr-defined]
    return process_value


class NounGroup(Group):
    """A group of tollgate commands: light parameter values, and command names completed in
    alphabetical order (the shell scripts keep tollgate's order, which for identifiers is a ranking)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        light_values(self)
        pending = list(self.commands.values())
        while pending:  # sub-groups too (`license signing-key rotate`)
            command = pending.pop()
            light_values(command)
            pending.extend(getattr(command, "commands", {}).values())

    def shell_complete(self, ctx: ClickContext, incomplete: str) -> list:
        items = super().shell_complete(ctx, incomplete)
        names = set(self.list_commands(ctx))
        return sorted((i for i in items if i.value in names), key=lambda i: i.value) + [
            i for i in items if i.value not in names]


class _Unbuilt(typer.core.TyperCommand):
    """A root command not built yet, as a listing sees it: its name and summary."""


@functools.lru_cache(maxsize=None)
def _build(name: str) -> Any:
    """The Click command for a root command, built by Typer from its module (once per process: a
    program that invokes the app many times, as the tests do, reuses it)."""
    import importlib

    target = COMMANDS[name][0]
    module_name, _, function = target.partition(":")
    module = importlib.import_module(f"tollgate.cli.{module_name}")
    holder = typer.Typer(add_completion=False, rich_markup_mode=None)
    if function:
        holder.command(name, cls=Command)(getattr(module, function))
        command = typer.main.get_command(holder)  # a single command
        light_values(command)
        return command
    holder.add_typer(module.app, name=name, cls=NounGroup)
    group = typer.main.get_command(holder)
    assert isinstance(group, TyperGroup)  # an app with a sub-app is a group
    return group.commands[name]


class TollgateGroup(NounGroup):
    """The root: the single error boundary (a TollgateError becomes one plain stderr message and its
    exit code), and the commands of COMMANDS, each built on first use."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands.update({name: _Unbuilt(name, help=summary) for name, (_, summary) in COMMANDS.items()})
        self._listing = False

    def get_command(self, ctx: ClickContext, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        if isinstance(command, _Unbuilt) and not self._listing:
            command = self.commands[cmd_name] = _build(cmd_name)
        return command

    def format_commands(self, ctx: ClickContext, formatter: Any) -> None:
        self._listing = True  # Click lists through get_command: the summaries do, unbuilt
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False

    def shell_complete(self, ctx: ClickContext, incomplete: str) -> list:
        self._listing = True
        try:
            return super().shell_complete(ctx, incomplete)
        finally:
            self._listing = False

    def invoke(self, ctx: ClickContext):
        from tollgate import interrupts

        interrupts.reset()
        mine = not interrupts.installed()  # in-process (tests): the entry point did not install it
        previous = _signal.getsignal(_signal.SIGINT) if mine else None
        if mine:
            interrupts.install()
        try:
            result = self._guarded_invoke(ctx)
        finally:
            if mine and interrupts.installed():
                _signal.signal(_signal.SIGINT, previous)
        _held_interrupt()
        return result

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        light_values(self)  # again: Typer appends --install-completion and --show-completion after __init__
        try:
            return super().make_context(info_name, args, parent, **extra)
        except KeyboardInterrupt:  # while parsing the command line: Click would say "Aborted!", exit 1
            from tollgate import interrupts

            output.error(interrupts.message())
            raise typer.Exit(EXIT_INTERRUPTED) from None

    def _guarded_invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except typer.Exit as exc:
            if exc.exit_code == 0:
                _held_interrupt()
            raise
        except TollgateError as exc:
            if context.state.debug:
                import traceback

                traceback.print_exc()
            output.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:  # raised only before a commit (interrupts.on_sigint): rolled back
            from tollgate import interrupts

            output.error(interrupts.message())
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:
            _drop_stdout()
            raise typer.Exit(EXIT_READER_GONE) from None
        except (typer.Abort, typer.BadParameter):
            raise
        except Exception as exc:  # a bug: say so in one line, details only with --debug
            if context.state.debug or _is_usage_error(exc):
                raise
            if _is_undecodable_text(exc):  # bad input, not a bug: exit 2 (the transaction rolled back)
                shown = exc.object[:80].encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
                output.error(f"Some text given to tollgate is not valid UTF-8 ('{shown}'); nothing was written.")
                raise typer.Exit(2) from None
            if _is_file_system_failure(exc):  # a full disk, an I/O error: exit 3, not a bug
                _file_system_failed(exc)
                raise typer.Exit(3) from None
            output.error(f"unexpected {type(exc).__name__}: {exc}. Run with --debug for details.")
            raise typer.Exit(EXIT_INTERNAL) from None


def _held_interrupt() -> None:
    """A Ctrl-C that came once the command's work was committed: the command finished; say so."""
    from tollgate import interrupts

    if interrupts.state.pending:
        interrupts.state.pending = False
        output.notice("interrupted after the changes were committed: they are kept, and reported above.")


def _is_usage_error(exc: Exception) -> bool:
    """Click's own usage errors (bad option, missing argument) pass through to be shown with usage."""
    return type(exc).__module__.startswith("typer")


_FILE_SYSTEM_ERRNOS = ("ENOSPC", "EDQUOT", "EIO", "EROFS", "EFBIG")


def _is_file_system_failure(exc: BaseException) -> TypeGuard[OSError]:
    """An OSError of the machine (full disk, quota, I/O error, read-only file system), not of tollgate:
    e.g. writing the output to a full disk (`tollgate catalog export > catalog.toml`)."""
    import errno

    return isinstance(exc, OSError) and exc.errno in {getattr(errno, n) for n in _FILE_SYSTEM_ERRNOS if hasattr(errno, n)}


def _file_system_failed(exc: OSError) -> None:
    """Say what failed in one sentence, and drop the output still buffered for stdout."""
    where = f" ({exc.filename})" if exc.filename else " while writing the output"
    output.error(f"The file system failed{where}: {exc.strerror}.")
    _drop_stdout()


def _drop_stdout() -> None:
    """Point stdout at /dev/null, dropping what is still buffered for it: flushing it at exit would
    fail again (a full disk, a reader gone), with a traceback."""
    import os

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests capture stdout)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _is_undecodable_text(exc: Exception) -> TypeGuard[UnicodeEncodeError]:
    """Text that can't be stored or sent: an argument holding bytes that are not UTF-8 (Python keeps
    them as lone surrogates, `\\udcff`), or a lone surrogate escape from a JSON file (`"\\ud800"`)."""
    return (isinstance(exc, UnicodeEncodeError) and isinstance(exc.object, str)
            and any("\ud800" <= ch <= "\udfff" for ch in exc.object[exc.start:exc.end]))


GETTING_STARTED = """Getting started, in this order (each command's --help says more):

\b
  tollgate product create --name "AI Studio"
  tollgate feature create --name "API calls" --type metered --unit call
  tollgate plan create pro --product ai-studio --price 49 --currency USD --interval month --feature api-calls=10000
  tollgate customer add "Acme, Inc."
  tollgate sub add acme-inc pro
  tollgate usage report acme-inc api-calls 250 --id req-1
  tollgate invoice preview acme-inc"""

app = typer.Typer(
    cls=TollgateGroup,
    name="tollgate",
    help="Run the commercial side of a software product: customers, plans, entitlements, usage, invoices.",
    epilog=GETTING_STARTED,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help and usage errors in Click's plain text, on a terminal too (cli/help.py)
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
        typer.Option("--db", metavar="PATH|URL", help="Database file or URL (default: $TOLLGATE_DB, then the user data folder)."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback when something fails.")] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="Plain output, exactly as when piped (as NO_COLOR or TERM=dumb do).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Run the commercial side of a software product from a shell.

    Example: tollgate customer add "Acme, Inc." --email billing@acme.example
    """
    context.state.db = db
    context.state.debug = debug
    output.set_plain(no_color)


def main() -> None:
    """Console-script entry point. Help and usage errors are Click's plain text (rich is not imported
    for them), which keeps those runs as fast as importing typer itself."""
    from tollgate.cli.completion import COMPLETE_VAR, plain_completion_help

    if COMPLETE_VAR in os.environ:
        plain_completion_help()
    try:
        try:
            app(prog_name="tollgate")
        finally:
            sys.stdout.flush()  # here, where a failure can still be told in one sentence
    except BrokenPipeError:  # outside a command (--version) or at the final flush
        _drop_stdout()
        sys.exit(EXIT_READER_GONE)
    except SystemExit:
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":  # Click met a broken pipe (--help) and exits 1
            _drop_stdout()
            sys.exit(EXIT_READER_GONE)
        raise
    except OSError as exc:
        if not _is_file_system_failure(exc):
            raise
        _file_system_failed(exc)
        sys.exit(3)
