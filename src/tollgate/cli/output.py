"""The only place that prints. stdout carries data; messages, warnings and progress go to stderr.

On a terminal, tables are drawn with rich; piped (or with NO_COLOR / TERM=dumb), output is plain,
aligned text with no colour and no truncation, so scripts can read it. rich is imported only when
it is used, to keep start-up fast. User-supplied text is never interpreted as markup, and control
characters (escape codes) are shown escaped, never sent to the terminal.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from rich.progress import Progress, Task

    from tollgate.cli.grid import Col

T = TypeVar("T")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SPARKS = "▁▂▃▄▅▆▇█"


def safe(value: Any) -> str:
    """Text for display: None as '', control characters (e.g. ESC) escaped as \\x1b."""
    if value is None:
        return ""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(value))


_QUOTED = re.compile(r"`[^`\n]*`")  # a command or a value quoted in a sentence: `tollgate customer list`
_GLUE = "\x00"  # stands for a space inside a quoted span while wrapping (no text shown here has NUL)


def wrap_words(text: str, width: int, *, items: bool = False) -> list[str]:
    """`text` in lines of at most `width` where its words allow, broken at spaces only: never inside
    a word, at a hyphen (`acme-inc`), or inside a `quoted command` (so it can be copied whole); a
    longer word or command gets a line of its own. Newlines in `text` are kept, and so is a line's
    indentation on the lines it wraps into. `items`: a value listing items ("45.00 EUR / month,
    49.00 USD / month") breaks after a comma, keeping each item that fits a line whole.

    The one wrapping rule of what a terminal shows: sentences, field values and table cells."""
    import textwrap

    kept = _QUOTED.sub(lambda match: match.group().replace(" ", _GLUE), text)
    lines = []
    for paragraph in kept.split("\n"):
        indent = paragraph[:len(paragraph) - len(paragraph.lstrip(" "))]
        # no deeper than lets each word that fits the width fit after it (a word is never folded)
        longest = max((len(word) for word in paragraph.split() if len(word) <= width), default=0)
        indent = indent[:max(width - longest, 0)]
        if items:
            room = width - len(indent)
            parts = paragraph.split(", ")
            paragraph = ", ".join(item.replace(" ", _GLUE) if len(item) + (n < len(parts) - 1) <= room else item
                                  for n, item in enumerate(parts))  # an item but the last has its comma
        lines += textwrap.wrap(paragraph, width, subsequent_indent=indent, break_long_words=False,
                               break_on_hyphens=False) or [""]
    return [line.replace(_GLUE, " ") for line in lines]


def is_terminal(stream=None) -> bool:
    """Whether `stream` is a terminal that can be drawn on (TERM=dumb can't)."""
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"


_plain = False  # --no-color


def set_plain(plain: bool) -> None:
    """--no-color: output exactly as when piped (plain text, no colour, no pager, every row)."""
    global _plain
    _plain = plain
    _consoles.clear()


def styled(stream=None) -> bool:
    """Whether to draw for a person (rich tables, colour, 50-row lists, the pager): a terminal,
    and neither NO_COLOR (any value) nor --no-color. Otherwise output is what a pipe gets."""
    return is_terminal(stream) and "NO_COLOR" not in os.environ and not _plain


def color_enabled(stream=None) -> bool:
    return styled(stream)


_consoles: dict[str, Any] = {}


def console(*, stderr: bool = False):
    """A rich Console for stdout (or stderr), created on first use."""
    key = "err" if stderr else "out"
    stream = sys.stderr if stderr else sys.stdout
    cached = _consoles.get(key)
    if cached is None or cached.file is not stream:
        import shutil

        from rich.console import Console

        cached = Console(
            file=stream,
            stderr=stderr,
            highlight=False,
            markup=False,
            emoji=False,
            no_color=not color_enabled(stream),
            soft_wrap=False,
            width=shutil.get_terminal_size().columns if isinstance(stream, _PagerBuffer) else None,
        )
        _consoles[key] = cached
    return cached


# -- data on stdout ------------------------------------------------------------------------------


def emit_json(data: Any) -> None:
    """Stable, plain JSON (keys in the order the library built them), one document on stdout."""
    import json  # here, not at the top: --help and completion never need it

    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def emit_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    import csv

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if cell is None else cell for cell in row])


def table(spec: Sequence[Col | str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> None:
    """A table of rows, laid out by the kinds of its columns (cli/grid.py): rich on a terminal, fitted
    to its width without splitting a token; plain aligned columns otherwise (piped, NO_COLOR)."""
    from tollgate.cli import grid

    cols = grid.columns(spec)
    cells = [[grid.cell(value, c.kind, safe) for c, value in zip(cols, row)] for row in rows]
    if not styled():
        _plain_table(cols, cells, title=title)
        return
    layout = grid.fit(cols, cells, console().width)
    if layout is None:
        _blocks(cols, cells, title=title)
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    if title:  # wrapped to the terminal's width (a table's own title wraps to the table's)
        heading(title)
    drawn = Table(box=box.SIMPLE_HEAD, header_style="bold", show_edge=False, pad_edge=False)
    # A token is never cut (overflow "ignore"), and rich then justifies nothing: a number column's
    # header and cells come right-aligned to its width (every token fits its width: grid.fit).
    shown = [(cols[i], width) for i, width in zip(layout.keep, layout.widths)]
    for c, width in shown:
        token = c.kind != grid.TEXT
        drawn.add_column(c.name.rjust(width) if c.right else c.name, width=width, no_wrap=token,
                         overflow="ignore" if token else "fold")
    for row in cells:
        drawn.add_row(*(Text(_fitted(row[i], c, width)) for i, (c, width) in zip(layout.keep, shown)))
    console().print(drawn)
    if layout.dropped:
        console().print(Text(f"(not shown at this width: {', '.join(layout.dropped)}; --json has every field)"))


def _fitted(text: str, c: Col, width: int) -> str:
    """A cell's text in its column: a number right-aligned, free text wrapped by `wrap_words` (a
    list breaks after its commas; an indented line stays indented), a token as it is."""
    from tollgate.cli import grid

    if c.right:
        return text.rjust(width)
    if c.kind == grid.TEXT:
        return "\n".join(wrap_words(text, width, items=True))
    return text


def _blocks(cols: Sequence[Col], rows: list[list[str]], *, title: str | None) -> None:
    """A table too wide for the terminal: per row, its first cell, then 'header  value' lines."""
    if title:
        heading(title)
    width = max(len(c.name) for c in cols[1:]) if len(cols) > 1 else 0
    for number, row in enumerate(rows):
        if number:
            sys.stdout.write("\n")
        heading(row[0])
        for c, value in zip(cols[1:], row[1:]):
            if value:
                sys.stdout.write(f"  {c.name.ljust(width)}  {value}\n")


def _plain_table(cols: Sequence[Col], rows: list[list[str]], *, title: str | None) -> None:
    widths = [max([len(c.name)] + [len(row[i]) for row in rows]) for i, c in enumerate(cols)]

    def line(cells: Sequence[str]) -> str:
        parts = [cell.rjust(width) if c.right else cell.ljust(width) for c, cell, width in zip(cols, cells, widths)]
        return "  ".join(parts).rstrip()

    out = [title] if title else []
    out.append(line([c.name for c in cols]))
    out.extend(line(row) for row in rows)
    sys.stdout.write("\n".join(out) + "\n")


# -- long lists on a terminal ------------------------------------------------------------------------

SHOWN_ROWS = 50  # a list on a terminal shows this many rows unless --limit or --all


def list_limit(limit: int | None, every: bool) -> int | None:
    """The rows a list reads: --limit; else, drawn for a person, SHOWN_ROWS (unless --all); else all."""
    if limit is not None or every or not styled():
        return limit
    return SHOWN_ROWS


def list_table(columns: Any, rows: Sequence[Any], *, limit: int | None = None, every: bool = False,
               title: str | None = None) -> None:
    """A list read in full, drawn as a table through the pager: on a terminal its first SHOWN_ROWS
    (unless --limit or --all) and the footer saying how many there are."""
    shown = list_limit(limit, every)
    visible = rows if shown is None else rows[:shown]
    counted_table(columns, visible, cut=shown != limit, total=lambda: len(rows), title=title)


def counted_table(columns: Any, rows: Sequence[Any], *, cut: bool, total: Callable[[], int],
                  title: str | None = None) -> None:
    """A list drawn as a table through the pager. `cut`: it was bounded by list_limit's SHOWN_ROWS (not
    by --limit), so when `total()` says there are more, a footer follows: '50 of 100,006 - --limit N
    or --all' (`total` is called only then: it may be a COUNT query)."""
    with paged():
        table(columns, rows, title=title)
        if cut and len(rows) == SHOWN_ROWS and (count := total()) > len(rows):
            sys.stdout.write(f"{len(rows):,} of {count:,} - --limit N or --all\n")


class _PagerBuffer(io.StringIO):
    """Where output for the pager collects: rich draws into it as onto the terminal."""

    def isatty(self) -> bool:
        return True


def _pager_command() -> list[str] | None:
    """$TOLLGATE_PAGER, else $PAGER, else `less -R`, split as a shell would; None for '' or cat."""
    import shlex

    for name in ("TOLLGATE_PAGER", "PAGER"):
        if name in os.environ:
            words = shlex.split(os.environ[name])
            break
    else:
        words = ["less", "-R"]
    return None if not words or words == ["cat"] else words


@contextmanager
def paged() -> Iterator[None]:
    """Output longer than the terminal goes through the pager, as git does; never when not styled."""
    command = _pager_command() if styled() and not isinstance(sys.stdout, _PagerBuffer) else None
    if command is None:
        yield
        return
    import shutil

    real, buffer = sys.stdout, _PagerBuffer()
    sys.stdout = buffer
    try:
        yield
    finally:
        sys.stdout = real
        _consoles.clear()
        text = buffer.getvalue()
        if text.count("\n") < shutil.get_terminal_size().lines:
            real.write(text)
        else:
            _page(command, text, real)


def _page(command: list[str], text: str, real) -> None:
    import signal
    import subprocess

    env = dict(os.environ)
    env.setdefault("LESS", "FRX")  # as git: quit when it fits, keep colour, leave the text on screen
    real.flush()
    try:
        pager = subprocess.Popen(command, stdin=subprocess.PIPE, env=env)
    except OSError:  # no such pager: the text, unpaged
        real.write(text)
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the pager's, as in git
    try:
        pager.communicate(text.encode("utf-8", "replace"))
    except BrokenPipeError:  # the reader quit early
        pass
    finally:
        pager.wait()
        signal.signal(signal.SIGINT, previous)


def fields(pairs: Iterable[tuple[str, Any]], *, title: str | None = None) -> None:
    """A two-column 'label  value' block (a profile, a summary)."""
    from tollgate.cli import grid

    pairs = [(label, grid.cell(value, grid.DATE, safe)) for label, value in pairs]  # times to the second
    width = max((len(label) for label, _ in pairs), default=0)
    room = console().width - width - 2 if styled() else 0  # a terminal's: values wrap under themselves
    if title:
        heading(title)
    for label, value in pairs:
        lines = wrap_words(value, room, items=True) if room >= 20 else [value]
        sys.stdout.write(f"{label.ljust(width)}  " + ("\n" + " " * (width + 2)).join(lines) + "\n")


def heading(text: str) -> None:
    if styled():
        from rich.text import Text

        console().print(Text(text, style="bold"))
    else:
        sys.stdout.write(f"{text}\n")


def say(text: str) -> None:
    """A sentence for a person on stdout: on a terminal, wrapped between words (never mid-token)."""
    if styled():
        _print_wrapped(console(), "", "", safe(text))
    else:
        sys.stdout.write(safe(text) + "\n")


def result(data: Any, *, as_json: bool, message: str) -> None:
    """What a mutating command did: the resulting object with --json, else one sentence for a person."""
    if as_json:
        emit_json(data)
    else:
        say(message)


# -- messages on stderr ----------------------------------------------------------------------------


def _print_wrapped(to: Any, prefix: str, style: str, text: str) -> None:
    """A sentence on a terminal, wrapped by `wrap_words` to its width (rich would break a quoted
    command between its words), the prefix styled."""
    from rich.text import Text

    wrapped = "\n".join(wrap_words(prefix + text, max(to.width, 20)))
    shown = Text(wrapped)
    shown.stylize(style, 0, len(prefix))
    to.print(shown, soft_wrap=True)


def _stderr(prefix: str, text: str, style: str) -> None:
    if color_enabled(sys.stderr):
        _print_wrapped(console(stderr=True), prefix, style, safe(text))
    else:
        sys.stderr.write(f"{prefix}{safe(text)}\n")


def error(text: str) -> None:
    _stderr("error: ", text, "bold red")


def warn(text: str) -> None:
    _stderr("warning: ", text, "yellow")


def notice(text: str) -> None:
    _stderr("notice: ", text, "cyan")


def progress_bar() -> Progress:
    """A rich Progress on stderr: label, bar, done of total (grouped), rate per second and ETA."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, \
        TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(" of "), TaskProgressColumn(),
                    TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), TimeElapsedColumn(),
                    console=console(stderr=True), transient=True)


def rate(task: Task) -> str:
    return f"{task.speed:,.0f}/s" if task.speed else ""


@contextmanager
def progress(*, total: int | None, label: str, then: str = "Writing to the database"
             ) -> Iterator[Callable[[Iterable[T]], Iterable[T]]]:
    """`with progress(total=N, label=...) as count:` count(rows) yields the rows, counted on a bar on
    stderr when it is a terminal (silent otherwise): done of total, rate and ETA. Once every row is
    read, the bar says `then`, with the time elapsed, until the block ends (the database's work)."""
    if not is_terminal(sys.stderr):
        yield lambda items: items
        return
    bar = progress_bar()
    task = bar.add_task(label, total=total, rate="")

    def count(items: Iterable[T]) -> Iterator[T]:
        for item in items:
            yield item
            bar.advance(task)
            bar.update(task, rate=rate(bar.tasks[task]))
        bar.update(task, description=then, total=bar.tasks[task].completed, rate="")

    with bar:
        yield count


def rows_in(path: str, fmt: str) -> int | None:
    """About how many rows a CSV or JSON lines file holds (its lines, less a CSV header; a fast count
    of newlines), for a progress total; None for stdin, TOML or a file that can't be read (reading
    it then says why); None too when stderr is no terminal."""
    if path == "-" or fmt not in ("csv", "jsonl") or not is_terminal(sys.stderr):
        return None  # no bar is drawn off a terminal: no need to read the file twice
    lines, last = 0, b"\n"
    try:
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                lines += block.count(b"\n")
                last = block[-1:]
    except OSError:
        return None
    lines += last != b"\n"
    return max(lines - (fmt == "csv"), 0)


# -- small charts --------------------------------------------------------------------------------


def sparkline(values: Sequence[float | int | Any]) -> str:
    """▁▂▃▄▅▆▇█ scaled to the largest value; empty input gives ''. Zero is always the lowest bar."""
    numbers = [max(float(v), 0.0) for v in values]
    top = max(numbers, default=0.0)
    if top <= 0:
        return SPARKS[0] * len(numbers)
    return "".join(SPARKS[min(len(SPARKS) - 1, int(n / top * (len(SPARKS) - 1) + 0.5))] for n in numbers)


def bar(fraction: float, width: int = 20) -> str:
    """A usage bar like ██████░░░░ (capped at full; overage is shown in the figures, not the bar)."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = int(round(fraction * width))
    return "█" * filled + "░" * (width - filled)
