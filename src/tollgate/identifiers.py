"""Identifiers: stable, human-readable keys (`acme-inc`) and random public ids (`cus_...`)."""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable

from tollgate.errors import InvalidInput

MAX_LENGTH = 64
_VALID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def validate(identifier: str, *, kind: str = "identifier", path: str | None = None) -> str:
    """Return the identifier if it is lower-case letters, digits and single inner dashes, else raise."""
    if not isinstance(identifier, str) or not _VALID.match(identifier) or len(identifier) > MAX_LENGTH:
        shown = identifier if isinstance(identifier, str) else repr(identifier)
        raise InvalidInput(
            f"'{shown}' is not a valid {kind}: use lower-case letters, digits and '-' "
            f"(at most {MAX_LENGTH} characters, e.g. acme-inc).",
            path=path,
        )
    return identifier


def slugify(name: str, *, fallback: str) -> str:
    """`"Acme, Inc."` -> `acme-inc`; `"Ørsted A/S"` -> `orsted-a-s`; `"Straße GmbH"` -> `strasse-gmbh`;
    `"Москва ООО"` -> `moskva-ooo`; nothing usable -> `fallback`. Letters are transliterated by
    anyascii (every script; imported here, only when an identifier is generated)."""
    from anyascii import anyascii

    ascii_only = anyascii(unicodedata.normalize("NFC", name))
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_only.lower()).strip("-")
    slug = slug[:MAX_LENGTH - 6].rstrip("-")  # leave room for a -NNNNN suffix
    return slug or fallback


def first_free(base: str, taken: Callable[[str], bool] | Iterable[str]) -> str:
    """`base`, or `base-2`, `base-3`, ... : the first one not taken (taken ones are never reused)."""
    is_taken = taken if callable(taken) else set(taken).__contains__
    if not is_taken(base):
        return base
    n = 2
    while is_taken(f"{base}-{n}"):
        n += 1
    return f"{base}-{n}"


class FreeNames:
    """`first_free` for many names at once (an import): each base's next suffix is remembered, so
    10,000 rows with the same name cost 10,000 look-ups, not 50 million. `taken` grows as names are given."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken
        self._next: dict[str, int] = {}

    def take(self, base: str) -> str:
        if base not in self.taken:
            name = base
        else:
            n = self._next.get(base, 2)
            while f"{base}-{n}" in self.taken:
                n += 1
            name = f"{base}-{n}"
            self._next[base] = n + 1
        self.taken.add(name)
        return name


def public_id(prefix: str, length: int = 14) -> str:
    """A random public id like `cus_4f9k2m0x7q1z8w` from the OS's secure source: every string of
    `length` characters of the alphabet equally likely (one draw, written in base 36)."""
    number = secrets.randbelow(len(_ALPHABET) ** length)
    digits = []
    for _ in range(length):
        number, digit = divmod(number, len(_ALPHABET))
        digits.append(_ALPHABET[digit])
    return prefix + "_" + "".join(digits)


def is_public_id(value: object, prefix: str, length: int = 14) -> bool:
    """Whether `value` is shaped as `public_id(prefix, length)` makes them."""
    return (isinstance(value, str) and len(value) == len(prefix) + 1 + length and value.startswith(prefix + "_")
            and all(ch in _ALPHABET for ch in value[len(prefix) + 1:]))
