"""The `tollgate` command: global options, the error boundary, and the noun sub-apps.

Start-up cost matters (every TAB press runs this), so nothing here imports the database layer:
commands import the library inside their bodies.
"""

from __future__ import annotations

import signal as _signal
import sys
from collections.abc import Iterator, MutableMapping
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from tollgate import __version__
from tollgate.cli import context, output
from tollgate.errors import TollgateError

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_READER_GONE = 141
"""stdout's reader closed the pipe (`tollgate customer list | head -1`): 128 + SIGPIPE, as a shell
reports a program that SIGPIPE ended, and nothing on stderr."""


# -- start-up: commands are built on first use ---------------------------------------------------------
# Typer turns every command's signature into Click parameters before anything runs (about 1 ms per
# command); with dozens of commands that would be most of the time of a TAB press. So the root and
# every sub-app keep their registrations (Typer's own CommandInfo / TyperInfo) and build a command
# the first time it is looked up, exactly as Typer would have built it: `tollgate customer show ...`
# builds `customer` and `show`, nothing else. Listings (plain --help, `tollgate <TAB>`) use each
# entry's name and short help, which need no building. Rich help (on a terminal) builds what it shows.


class _LazyListing:
    """Mixed into a TyperGroup whose `commands` is a _LazyCommands: lists without building."""

    commands: Any

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return list(self.commands)

    def _visible(self, incomplete: str = "") -> list[tuple[str, Any]]:
        return [
            (name, entry)
            for name, entry in self.commands.entries()
            if name.startswith(incomplete) and not entry.hidden
        ]

    def format_commands(self, ctx: typer.Context, formatter: Any) -> None:
        visible = self._visible()
        if visible:
            limit = formatter.width - 6 - max(len(name) for name, _ in visible)
            with formatter.section("Commands"):
                formatter.write_dl([(name, entry.get_short_help_str(limit)) for name, entry in visible])

    def shell_complete(self, ctx: typer.Context, incomplete: str) -> list:
        from typer._click.shell_completion import CompletionItem

        # command names in alphabetical order (the shell scripts keep tollgate's order, which for
        # identifiers is a ranking), then the group's own options
        visible = sorted(self._visible(incomplete), key=lambda pair: pair[0])
        results = [CompletionItem(name, help=entry.get_short_help_str()) for name, entry in visible]
        results.extend(super(TyperGroup, self).shell_complete(ctx, incomplete))
        return results


class LazyGroup(_LazyListing, TyperGroup):
    """A sub-app's group whose commands are built on first use."""


class _Summary:
    """A command not built yet, as a listing sees it: its short help (Click's rules) and visibility."""

    def __init__(self, info: Any) -> None:
        from typer.models import CommandInfo

        if isinstance(info, CommandInfo):
            import inspect

            self.help = inspect.cleandoc(info.help) if info.help else inspect.getdoc(info.callback) or ""
            self.short_help, self.hidden, self.deprecated = info.short_help, bool(info.hidden), info.deprecated
        else:
            solved = typer.main.solve_typer_info_defaults(info)
            self.help = solved.help or ""
            self.short_help, self.hidden, self.deprecated = solved.short_help, bool(solved.hidden), solved.deprecated

    def get_short_help_str(self, limit: int = 45) -> str:
        return typer._click.core.Command.get_short_help_str(self, limit)  # type: ignore[arg-type]


class _LazyCommands(MutableMapping):
    """A group's commands by name, in registration order; each is built from its Typer
    registration (a CommandInfo or a sub-app's TyperInfo) the first time it is looked up."""

    def __init__(self, built: Any, deferred: dict[str, Any]) -> None:
        self._built: dict[str, Any] = dict(built)
        self._deferred = {name: info for name, info in deferred.items() if name not in self._built}
        self._order = [*self._built, *self._deferred]

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            info = self._deferred.pop(name)  # KeyError: no such command
            self._built[name] = _build(info)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._deferred.pop(name, None)
        if name not in self._built:
            self._order.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        if name in self._built:
            del self._built[name]
        else:
            del self._deferred[name]  # KeyError: no such command
        self._order.remove(name)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._built or name in self._deferred

    def entries(self) -> Iterator[tuple[str, Any]]:
        """(name, the built command or a _Summary of it), building nothing."""
        for name in list(self._order):
            built = self._built.get(name)
            yield name, built if built is not None else _Summary(self._deferred[name])


def _registrations(typer_app: typer.Typer) -> dict[str, Any] | None:
    """A Typer app's commands and named sub-apps by name, or None when they can't be deferred
    (a nameless add_typer merges its commands into the parent: left to Typer)."""
    entries: dict[str, Any] = {}
    for info in typer_app.registered_commands:
        entries[info.name or typer.main.get_command_name(info.callback.__name__)] = info
    for info in typer_app.registered_groups:
        name = typer.main.solve_typer_info_defaults(info).name
        if not name:
            return None
        entries[name] = info
    return entries


def _build(info: Any) -> Any:
    """The Click command for a registration, as Typer builds it; a sub-app becomes a LazyGroup
    (unless it asked for its own group class) whose commands are built on first use in turn."""
    import copy

    from typer.models import CommandInfo

    options = {"pretty_exceptions_short": app.pretty_exceptions_short, "rich_markup_mode": app.rich_markup_mode}
    if isinstance(info, CommandInfo):
        return typer.main.get_command_from_info(info, **options)
    sub_app = info.typer_instance
    entries = _registrations(sub_app)
    cls = typer.main.solve_typer_info_defaults(info).cls
    if entries is None or cls not in (None, TyperGroup):
        return typer.main.get_group_from_info(info, suggest_commands=app.suggest_commands, **options)
    hollow = copy.copy(sub_app)  # the same app without its commands: Typer builds just the group
    hollow.registered_commands, hollow.registered_groups = [], []
    hollow_info = copy.copy(info)
    hollow_info.typer_instance, hollow_info.cls = hollow, LazyGroup
    group = typer.main.get_group_from_info(hollow_info, suggest_commands=app.suggest_commands, **options)
    group.commands = _LazyCommands({}, entries)
    return group


class TollgateGroup(_LazyListing, TyperGroup):
    """The root: the single error boundary (a TollgateError becomes one plain stderr message and its
    exit code), and the sub-apps registered in `_register`, built on first use."""

    def invoke(self, ctx: typer.Context):
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

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = _LazyCommands(self.commands, _DEFERRED)

    def _main_shell_completion(self, ctx_args: Any, prog_name: str, complete_var: str | None = None) -> None:
        from tollgate.cli.completion import use_plain_completion_classes

        use_plain_completion_classes()
        super()._main_shell_completion(ctx_args, prog_name, complete_var)


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


def _is_file_system_failure(exc: BaseException) -> bool:
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


def _is_undecodable_text(exc: Exception) -> bool:
    """Text that can't be stored or sent: an argument holding bytes that are not UTF-8 (Python keeps
    them as lone surrogates, `\\udcff`), or a lone surrogate escape from a JSON file (`"\\ud800"`)."""
    return (isinstance(exc, UnicodeEncodeError) and isinstance(exc.object, str)
            and any("\ud800" <= ch <= "\udfff" for ch in exc.object[exc.start:exc.end]))


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


def _cheap_value_processing() -> None:
    """Keep pydantic out of --help and completion runs.

    Typer (0.29) coerces every parameter's value through a pydantic TypeAdapter built on first use,
    even a missing value, so merely parsing `--db` (absent: None) imports pydantic (~60 ms). Two
    shortcuts, applied to Typer's parameter class: a missing value is what coercion would make of it
    anyway (None, or () for a multi-value parameter), so it skips the adapter; and while a shell is
    completing a line (Click's resilient parsing), values stay the raw strings typed, which is all
    the completers read. A plain text parameter given a text value (what coercion returns as it
    is) skips the adapter too, so a read command (`check C F`) never loads pydantic. Everything
    else goes through Typer's own processing unchanged.
    """
    from typer.core import _TyperParameter

    original = _TyperParameter.process_value
    if getattr(original, "_tollgate", False) or not hasattr(_TyperParameter, "get_runtime_param"):
        return

    def process_value(self, ctx, value):
        if value is not None and not ctx.resilient_parsing and not _plain_text(self, value):
            return original(self, ctx, value)
        if value is None and (self.nargs != 1 or self.multiple):
            value = ()
        if self.required and self.value_is_missing(value) and not ctx.resilient_parsing:
            raise typer._click.exceptions.MissingParameter(ctx=ctx, param=self)
        if self.callback is not None:
            value = self.callback(ctx, self, value)
        return value

    def _plain_text(param, value) -> bool:
        kind = param.type_descriptor
        return (kind.annotation is str and isinstance(value, str) and not kind.is_choice
                and kind.file_annotation is None and param.nargs == 1 and not param.multiple)

    process_value._tollgate = True  # type: ignore[attr-defined]
    _TyperParameter.process_value = process_value


_cheap_value_processing()


def _defer_registrations() -> None:
    """Move what `_register` put on `app` into the root's lazy table (built on first use)."""
    entries = _registrations(app)
    if entries is None:
        return
    _DEFERRED.update(entries)
    app.registered_commands.clear()
    app.registered_groups.clear()


# name -> the registration (CommandInfo / TyperInfo) of every root command, built on first use
_DEFERRED: dict[str, Any] = {}


def _register() -> None:
    from tollgate.cli import access, catalog, completion, customer, database, feature, journal, override, plan, product, sub
    from tollgate.cli import download, license, link
    from tollgate.cli import invoice
    from tollgate.cli import usage

    app.add_typer(customer.app, name="customer")
    app.add_typer(product.app, name="product")
    app.add_typer(feature.app, name="feature")
    app.add_typer(plan.app, name="plan")
    app.add_typer(sub.app, name="sub")
    app.add_typer(override.app, name="override")
    app.command("entitlements")(access.entitlements)
    app.command("check")(access.check)
    app.add_typer(usage.app, name="usage")
    app.add_typer(license.app, name="license")
    app.add_typer(download.app, name="download")
    app.add_typer(link.app, name="link")
    app.add_typer(invoice.app, name="invoice")
    app.add_typer(catalog.app, name="catalog")
    app.add_typer(database.app, name="db")
    app.command("log")(journal.log)
    app.command("completion")(completion.completion)


_register()
_defer_registrations()


def main() -> None:
    """Console-script entry point.

    Help and usage errors are drawn with rich only when stdout is a terminal: piped (`tollgate
    --help | less`, scripts, a shell's completion call), Click's plain text is printed and rich is
    never imported, which keeps those runs as fast as importing typer itself.
    """
    if not output.styled(sys.stdout) or "--no-color" in sys.argv:
        import typer.core

        typer.core.HAS_RICH = False
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
