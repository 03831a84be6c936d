"""The values of a usage event, checked: its idempotency key, its quantity (an exact decimal, stored
as integer millionths), its time, and the key derived for a file row without an id. Pure functions
(no database); they raise InvalidInput with the sentence to show.

A quantity is more than zero (a correction is a void) with at most 6 decimal places and at most
MAX_UNITS units. A time more than MAX_FUTURE ahead of now is refused: usage is what happened, and a
future time is nearly always a time-zone mistake.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from hashlib import blake2b
from typing import Any

from tollgate.clock import parse_moment, rfc3339
from tollgate.errors import InvalidInput

ZERO = Decimal(0)
MAX_KEY = 200
VOID_PREFIX = "void:"
MAX_FUTURE = timedelta(days=1)
"""Events may be stamped at most this far ahead of now (clock skew); later ones are refused."""
MAX_UNITS = 10**12
MICROS = 1_000_000
MAX_MICROS = MAX_UNITS * MICROS


def shown(value: Any) -> str:
    """A value quoted for an error message, cut at 40 characters."""
    text = value if isinstance(value, str) else repr(value)
    return repr(text if len(text) <= 40 else text[:40] + "…")


def parse_key(value: Any, *, path: str | None = None) -> str:
    """An idempotency key: 1 to 200 printable characters, not starting with `void:` (reserved)."""
    if not isinstance(value, str) or not value or len(value) > MAX_KEY or not value.isprintable() \
            or value != value.strip():
        raise InvalidInput(
            f"the id {shown(value)} is not a usable key: use 1 to {MAX_KEY} printable characters "
            "without leading or trailing spaces.",
            path=path,
        )
    if value.startswith(VOID_PREFIX):
        raise InvalidInput(f"ids starting with '{VOID_PREFIX}' are reserved for voids.", path=path)
    return value


def quantity_micros(value: Any, *, path: str | None = None) -> int:
    """A reported quantity (more than zero, at most 6 decimal places) as integer millionths."""
    if type(value) is str and value.isdigit() and value.isascii() and len(value) <= 13:
        units = int(value)
        if 0 < units <= MAX_UNITS:
            return units * MICROS
    return decimal_micros(value, path=path, allow_zero=False)


def plain_micros(text: str) -> int:
    """The millionths of `123` or `123.45` (ASCII digits, at most 6 decimals), else 0 (not plain: the
    full parser decides). Refuses nothing itself, so it can't disagree with `quantity_micros`."""
    whole, dot, fraction = text.partition(".")
    if not (whole.isdigit() and whole.isascii() and len(whole) <= 13):
        return 0
    if not dot:
        return int(whole) * MICROS
    if fraction.isdigit() and fraction.isascii() and len(fraction) <= 6:
        return int(whole) * MICROS + int(fraction.ljust(6, "0"))
    return 0


def decimal_micros(value: Any, *, path: str | None, allow_zero: bool, what: str = "quantity") -> int:
    """Any exact decimal (text, int or Decimal; never negative) as integer millionths."""
    from tollgate.money import format_decimal, parse_decimal, to_micros

    if isinstance(value, str) and not value.strip():
        raise InvalidInput(f"the {what} is missing.", path=path)
    number = parse_decimal(value, path=path, what=what, allow_negative=True)
    if number < 0:
        raise InvalidInput(
            f"the {what} must not be negative (got {format_decimal(number)}); "
            "to correct recorded usage, void the event (tollgate usage void KEY --reason ...).",
            path=path,
        )
    if number == 0 and not allow_zero:
        raise InvalidInput(f"the {what} must be more than zero.", path=path)
    try:
        return to_micros(number)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, path=path) from None


def event_time(value: Any, *, now: datetime, path: str | None = None) -> datetime:
    """An event's time from RFC 3339 / ISO 8601 text (UTC without an offset), at most a day ahead."""
    if isinstance(value, datetime):
        from tollgate.clock import to_utc_naive

        moment = to_utc_naive(value)
    elif isinstance(value, str):
        moment = parse_moment(value, what="timestamp", path=path)
    else:
        raise InvalidInput(f"the timestamp {shown(value)} is not a time.", path=path)
    if moment > now + MAX_FUTURE:
        raise InvalidInput(
            f"the timestamp {rfc3339(moment)} is more than a day in the future; usage is what happened.",
            hint="Give times in UTC, or with their offset (2026-11-21T10:00:00+02:00).",
            path=path,
        )
    return moment


def utc_stamp(text: str, fromiso: Callable[[str], datetime] = datetime.fromisoformat,
              combine: Callable[..., datetime] = datetime.combine) -> str:
    """The stored text of an ISO 8601 time in UTC (no offset: UTC), `2026-11-21 10:00:00.000000`; what
    `parse_moment(text).isoformat(" ", "microseconds")` gives, faster. Raises ValueError or
    OverflowError where parse_moment would refuse (the caller then calls it for the message).

    A file's rows are mostly `...T10:00:00Z`, `.123Z` or `.123456Z`: once fromisoformat has accepted
    one of those (separators checked, so no week or ordinal date slips through), the text is cut and
    pasted instead of going through two datetime conversions (a microsecond a row)."""
    size = len(text)
    if size > 64:
        raise ValueError(text)
    moment = fromiso(text)
    if (size == 27 or size == 24 or size == 20) and text[-1] == "Z" and text[4] == "-" and text[7] == "-" \
            and text[10] == "T" and text[13] == ":" and text[16] == ":":
        if size == 27 and text[19] == ".":
            return text[:10] + " " + text[11:26]
        if size == 24 and text[19] == ".":
            return text[:10] + " " + text[11:23] + "000"
        if size == 20:
            return text[:10] + " " + text[11:19] + ".000000"
    offset = moment.utcoffset()
    if offset is not None:  # to naive UTC without astimezone (isoformat is slow on aware times)
        moment = combine(moment.date(), moment.time()) - offset
    return moment.isoformat(" ", "microseconds")


def derived_key(customer: str, feature: str, micros: int, occurred: datetime | None, line: int,
                file_id: str = "") -> str:
    """The key of a file row without an id (see usage.ingest): `row-` and the BLAKE2b-128 of
    customer, feature, quantity in millionths and the UTC time (`2026-11-21 10:00:00.000000`), or
    `file <file_id> line N` for a row without a time. (`usage.parsing.converted` computes the same inline.)"""
    when = occurred.isoformat(" ", "microseconds") if occurred is not None else f"file {file_id} line {line}"
    digest = blake2b(f"{customer}\x1f{feature}\x1f{micros}\x1f{when}".encode(), digest_size=16)
    return "row-" + digest.hexdigest()


def micros_text(micros: int | None) -> str | None:
    """Millionths as an exact decimal string (`1.5`), None for None."""
    from tollgate.money import format_decimal, from_micros

    return None if micros is None else format_decimal(from_micros(micros))


def decimal_text(number: Decimal | None) -> str | None:
    """A Decimal as an exact decimal string, None for None."""
    from tollgate.money import format_decimal

    return None if number is None else format_decimal(number)
