"""How a table is laid out: the kind of each column, its cells' text, and what fits a terminal.

Every table of the CLI names its columns with a kind (`Col("amount", AMOUNT)`): identifiers, keys,
amounts, quantities and dates are tokens that are never wrapped or split; free text may wrap. Amounts
and quantities are right-aligned and grouped (62,500,000; --json and --csv never go through here);
times are shown to the second. On a terminal too narrow for every token, the columns with the highest
`drop` rank are left out first (and named below the table); when even then the tokens don't fit, the
table becomes one block per row. Nothing here prints: output.table draws what `fit` decides.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

ID, KEY, AMOUNT, QUANTITY, DATE, TEXT = "id", "key", "amount", "quantity", "date", "text"
NUMBERS = frozenset({AMOUNT, QUANTITY})
GAP = 3  # rich's SIMPLE_HEAD box between two columns (no outer edge); the plain layout uses 2
TEXT_MIN = 12  # a free-text column is narrowed to this (or its header, or its longest word) first

_DIGITS = re.compile(r"(?<![\d.,])\d{4,}")
_FRACTION = re.compile(r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)\.\d+")


class Col(NamedTuple):
    """A table column: its header, its kind (ID ... TEXT) and its drop rank (0: always shown;
    a narrow terminal leaves out the highest ranks first)."""

    name: str
    kind: str = TEXT
    drop: int = 0

    @property
    def right(self) -> bool:
        return self.kind in NUMBERS


def columns(spec: Sequence[Col | str]) -> list[Col]:
    return [c if isinstance(c, Col) else Col(c) for c in spec]


def leaving_out(name: str | None, spec: Sequence[Col | str],
                rows: Sequence[Sequence[Any]]) -> tuple[list[Col], list[list[Any]]]:
    """A table without its column `name` (a customer's own profile needs no customer column); None
    leaves out nothing."""
    cols = columns(spec)
    keep = [i for i, c in enumerate(cols) if c.name != name]
    return [cols[i] for i in keep], [[row[i] for i in keep] for row in rows]


def grouped(text: str) -> str:
    """Digit groups in every whole number of `text`: 71550.00 -> 71,550.00 (fractions untouched)."""
    return _DIGITS.sub(lambda m: f"{int(m.group()):,}", text)


def cell(value: Any, kind: str, safe) -> str:
    """A cell's text: None as '', times to the second, numbers grouped; `safe` escapes control codes."""
    if isinstance(value, datetime):
        value = value.replace(microsecond=0).isoformat(sep=" ")
    text = safe(value)
    if kind in NUMBERS:
        return grouped(text)
    if kind == DATE:
        return _FRACTION.sub(r"\1", text)
    return text


class Layout(NamedTuple):
    keep: list[int]  # the indexes of the columns shown
    widths: list[int]  # their widths
    dropped: list[str]  # the headers left out


def _natural(cols: list[Col], rows: list[list[str]]) -> list[int]:
    return [max([len(c.name)] + [len(row[i]) for row in rows]) for i, c in enumerate(cols)]


def _longest_word(rows: list[list[str]], i: int) -> int:
    return max((len(word) for row in rows for word in row[i].split()), default=0)


def fit(cols: list[Col], rows: list[list[str]], width: int) -> Layout | None:
    """Column widths for a terminal `width` wide, or None when a block per row is needed."""
    natural = _natural(cols, rows)
    least = [natural[i] if c.kind != TEXT else max(len(c.name), _longest_word(rows, i), min(natural[i], TEXT_MIN))
             for i, c in enumerate(cols)]
    keep = list(range(len(cols)))
    while sum(least[i] for i in keep) + GAP * (len(keep) - 1) > width:
        droppable = [i for i in keep if cols[i].drop]
        if not droppable:
            return None
        keep.remove(max(droppable, key=lambda i: (cols[i].drop, i)))
    widths = {i: natural[i] for i in keep}
    excess = sum(widths.values()) + GAP * (len(keep) - 1) - width
    while excess > 0:  # narrow the widest text column, a character at a time
        widest = max((i for i in keep if cols[i].kind == TEXT and widths[i] > least[i]), key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return Layout(keep, [widths[i] for i in keep], [cols[i].name for i in range(len(cols)) if i not in keep])
