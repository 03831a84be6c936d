"""The only place that prints. stdout carries data; messages, warnings and progress go to stderr.

On a terminal, tables are drawn with rich; piped (or with NO_COLOR / TERM=dumb), output is plain,
aligned text with no colour and no truncation, so scripts can read it. rich is imported only when
it is used, to keep start-up fast. User-supplied text is never interpreted as markup, and control
characters (escape codes) are shown escaped, never sent to the terminal.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SPARKS = "▁▂▃▄▅▆▇█"


def safe(value: Any) -> str:
    """Text for display: None as '', control characters (e.g. ESC) escaped as \\x1b."""
    if value is None:
        return ""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(value))


def is_terminal(stream=None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"


def color_enabled(stream=None) -> bool:
    return is_terminal(stream) and "NO_COLOR" not in os.environ


_consoles: dict[str, Any] = {}


def console(*, stderr: bool = False):
    """A rich Console for stdout (or stderr), created on first use."""
    key = "err" if stderr else "out"
    stream = sys.stderr if stderr else sys.stdout
    cached = _consoles.get(key)
    if cached is None or cached.file is not stream:
        from rich.console import Console

        cached = Console(
            file=stream,
            stderr=stderr,
            highlight=False,
            markup=False,
            emoji=False,
            no_color=not color_enabled(stream),
            soft_wrap=False,
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


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None,
          right: Sequence[str] = ()) -> None:
    """A table of rows: rich on a terminal, plain aligned columns otherwise. `right`: right-aligned columns."""
    rows = [[safe(cell) for cell in row] for row in rows]
    if not is_terminal():
        _plain_table(columns, rows, title=title, right=right)
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    grid = Table(title=title, box=box.SIMPLE_HEAD, header_style="bold", title_justify="left")
    for name in columns:
        grid.add_column(name, justify="right" if name in right else "left", overflow="fold")
    for row in rows:
        grid.add_row(*(Text(cell) for cell in row))
    console().print(grid)


def _plain_table(columns: Sequence[str], rows: list[list[str]], *, title: str | None, right: Sequence[str]) -> None:
    widths = [max([len(name)] + [len(row[i]) for row in rows]) for i, name in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if name in right else cell.ljust(width)
            for name, cell, width in zip(columns, cells, widths)
        ]
        return "  ".join(parts).rstrip()

    out = [title] if title else []
    out.append(line(columns))
    out.extend(line(row) for row in rows)
    sys.stdout.write("\n".join(out) + "\n")


def fields(pairs: Iterable[tuple[str, Any]], *, title: str | None = None) -> None:
    """A two-column 'label  value' block (a profile, a summary)."""
    pairs = [(label, safe(value)) for label, value in pairs]
    width = max((len(label) for label, _ in pairs), default=0)
    if title:
        heading(title)
    for label, value in pairs:
        sys.stdout.write(f"{label.ljust(width)}  {value}\n")


def heading(text: str) -> None:
    if is_terminal():
        from rich.text import Text

        console().print(Text(text, style="bold"))
    else:
        sys.stdout.write(f"{text}\n")


def say(text: str) -> None:
    """What a mutating command did, for a person (stdout; replaced by the object with --json)."""
    sys.stdout.write(safe(text) + "\n")


def result(data: Any, *, as_json: bool, message: str) -> None:
    """What a mutating command did: the resulting object with --json, else one sentence for a person."""
    if as_json:
        emit_json(data)
    else:
        say(message)


# -- messages on stderr ----------------------------------------------------------------------------


def _stderr(prefix: str, text: str, style: str) -> None:
    if color_enabled(sys.stderr):
        from rich.text import Text

        console(stderr=True).print(Text(prefix, style=style) + Text(safe(text)))
    else:
        sys.stderr.write(f"{prefix}{safe(text)}\n")


def error(text: str) -> None:
    _stderr("error: ", text, "bold red")


def warn(text: str) -> None:
    _stderr("warning: ", text, "yellow")


def notice(text: str) -> None:
    _stderr("notice: ", text, "cyan")


def progress(items: Iterable[T], *, total: int | None = None, label: str = "Working") -> Iterator[T]:
    """Yield items, drawing a progress bar on stderr when stderr is a terminal (otherwise silent)."""
    if not is_terminal(sys.stderr):
        yield from items
        return
    from rich.progress import Progress

    with Progress(console=console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        for item in items:
            yield item
            bar.advance(task)


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
