"""Time: UTC everywhere, naive datetimes in the database, RFC 3339 at the edges."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from tollgate.errors import InvalidInput

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def utcnow() -> datetime:
    """Now, as a naive UTC datetime (the form every table stores)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def to_utc_naive(moment: datetime) -> datetime:
    """An aware datetime converted to naive UTC; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def parse_moment(text: str, *, what: str = "time", path: str | None = None) -> datetime:
    """Parse RFC 3339 / ISO 8601 (`2026-11-21`, `2026-11-21T10:00`, `...Z`, `...+02:00`) to naive UTC.

    A date alone means midnight UTC; a time without an offset is UTC.
    """
    raw = text.strip() if isinstance(text, str) else ""
    if not raw or len(raw) > 64:
        raise InvalidInput(f"'{text}' is not a {what}; use a date like 2026-11-21 or 2026-11-21T10:00:00Z.", path=path)
    try:
        if _DATE_ONLY.match(raw):
            return datetime.combine(date.fromisoformat(raw), datetime.min.time())
        return to_utc_naive(datetime.fromisoformat(raw.replace("z", "Z")))
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"'{text}' is not a {what}; use a date like 2026-11-21 or 2026-11-21T10:00:00Z.", path=path
        ) from None


def rfc3339(moment: datetime | None) -> str | None:
    """Naive UTC datetime -> `2026-11-21T06:25:33Z` (microseconds only when present)."""
    if moment is None:
        return None
    text = moment.replace(tzinfo=None).isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text + "Z"


def days(n: int) -> timedelta:
    return timedelta(days=n)
