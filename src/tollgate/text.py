"""The one rule for text a person types into tollgate (names, titles, URLs, notes, descriptions).

Refused: control characters (Unicode category Cc, e.g. ESC), format characters (Cf: the bidi
overrides and isolates U+202A-202E and U+2066-2069, zero-width U+200B-200D, U+2060, U+FEFF), line and
paragraph separators (Zl, Zp: U+2028, U+2029) and lone surrogates (Cs). They are invisible or change
how the text around them displays: `x\\u202egpj.exe` shows as `xexe.jpg`. Multi-line text (a
description, a config value) may also hold tabs and newlines. The error names the field and the
character (U+202E RIGHT-TO-LEFT OVERRIDE), exit 2.
"""

from __future__ import annotations

import unicodedata

from tollgate.errors import InvalidInput

REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
EXPLICIT = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
                     "\u200b\u200c\u200d\u2060\ufeff")
"""Named in the rule for the reader; all are in REFUSED_CATEGORIES already."""
MULTILINE_ALLOWED = frozenset("\t\n\r")


def refused_character(text: str, *, multiline: bool = False) -> str | None:
    """The first character of `text` the rule refuses, or None."""
    for ch in text:
        if ch.isascii() and (ch.isprintable() or (multiline and ch in MULTILINE_ALLOWED)):
            continue
        if multiline and ch in MULTILINE_ALLOWED:
            continue
        if ch in EXPLICIT or unicodedata.category(ch) in REFUSED_CATEGORIES:
            return ch
    return None


def describe(ch: str) -> str:
    """U+202E (RIGHT-TO-LEFT OVERRIDE)."""
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" ({name})" if name else "")


def check(text: str, *, what: str, path: str | None = None, multiline: bool = False) -> str:
    """`text` unchanged, or InvalidInput naming `what` ("the customer name") and the character."""
    ch = refused_character(text, multiline=multiline)
    if ch is not None and unicodedata.category(ch) == "Cs":  # argv bytes that are not UTF-8, kept by Python
        raise InvalidInput(f"{what[:1].upper()}{what[1:]} is not valid UTF-8 text.",
                           hint="Give the text in UTF-8.", path=path)
    if ch is not None:
        raise InvalidInput(f"{what[:1].upper()}{what[1:]} contains {describe(ch)}: control characters and invisible "
                           "ones (bidi overrides, zero-width, line separators) are refused; remove it.", path=path)
    return text


def excerpt(text: str, limit: int = 40) -> str:
    """`text` for an error message: at most `limit` characters, then "..." and how many were left out."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def listing(items, limit: int = 5) -> str:
    """Items for an error message, comma-separated: at most `limit` (each an excerpt), then "... and N more"."""
    items = list(items)
    shown = ", ".join(excerpt(str(item)) for item in items[:limit])
    return shown if len(items) <= limit else f"{shown} ... and {len(items) - limit:,} more"
