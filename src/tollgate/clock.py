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


_AGO = re.compile(r"^(\d{1,5})\s*(s|min|h|d|w)$")
_UNITS = {"s": "seconds", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_FORMS = "use a date like 2026-11-21, a time like 2026-11-21T10:00:00Z, or now, today, yesterday, 2h, 7d, 4w"


def parse_moment(text: str, *, what: str = "time", path: str | None = None, relative: bool = True,
                 now: datetime | None = None) -> datetime:
    """The one parser of the times people type, to naive UTC: RFC 3339 / ISO 8601 (`2026-11-21`,
    `2026-11-21T10:00`, `...Z`, `...+02:00`; a date alone is midnight UTC, a time without an offset
    is UTC) and, unless `relative` is False (file rows, which must mean the same on every import),
    `now`, `today` / `yesterday` (midnight UTC) and an age: `90s`, `30min`, `2h`, `7d`, `4w` ago.
    """
    raw = text.strip() if isinstance(text, str) else ""
    forms = _FORMS if relative else "use a date like 2026-11-21 or 2026-11-21T10:00:00Z"
    if not raw or len(raw) > 64:
        raise InvalidInput(f"'{text}' is not a {what}; {forms}.", path=path)
    if relative and (moment := _relative(raw.lower(), now or utcnow())) is not None:
        return moment
    try:
        if _DATE_ONLY.match(raw):
            return datetime.combine(date.fromisoformat(raw), datetime.min.time())
        return to_utc_naive(datetime.fromisoformat(raw.replace("z", "Z")))
    except (ValueError, OverflowError):
        raise InvalidInput(f"'{text}' is not a {what}; {forms}.", path=path) from None


def _relative(raw: str, now: datetime) -> datetime | None:
    midnight = datetime.combine(now.date(), datetime.min.time())
    named = {"now": now, "today": midnight, "yesterday": midnight - timedelta(days=1)}
    if raw in named:
        return named[raw]
    if match := _AGO.match(raw):
        return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    return None


def rfc3339(moment: datetime | None) -> str | None:
    """Naive UTC datetime -> `2026-11-21T06:25:33Z` (microseconds only when present)."""
    if moment is None:
        return None
    text = moment.replace(tzinfo=None).isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text + "Z"


def days(n: int) -> timedelta:
    return timedelta(days=n)
