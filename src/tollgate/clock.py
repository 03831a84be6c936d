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
    """An aware datetime converted to naive UTC; a naive one is taken to be UTC already (also one
    whose tzinfo gives no offset: Python calls it naive, and astimezone would take it as local time)."""
    if moment.tzinfo is None:
        return moment
    if moment.utcoffset() is None:
        return moment.replace(tzinfo=None)
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


_SPAN = r"(\d{1,5})\s*(s|min|h|d|w)"
_AHEAD = re.compile(rf"^(?:\+\s*|in\s+){_SPAN}$")
_BEHIND = re.compile(rf"^(?:-\s*{_SPAN}|{_SPAN}\s+ago)$")
_BARE = re.compile(rf"^{_SPAN}$")
_UNITS = {"s": "seconds", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_ABSOLUTE = "use a date like 2026-11-21, a time like 2026-11-21T10:00:00Z"


def parse_moment(text: str, *, what: str = "time", path: str | None = None, relative: bool = True,
                 future: bool = False, now: datetime | None = None) -> datetime:
    """The one parser of the times people type, to naive UTC: RFC 3339 / ISO 8601 (`2026-11-21`,
    `2026-11-21T10:00`, `...Z`, `...+02:00`; a date alone is midnight UTC, a time without an offset
    is UTC) and, unless `relative` is False (file rows, which must mean the same on every import),
    `now`, `today` / `yesterday` / `tomorrow` (midnight UTC) and a span of `90s`, `30min`, `2h`,
    `7d`, `4w`: `+7d` / `in 7d` from now, `-7d` / `7d ago` before now, and a bare `7d` in the
    direction the option faces (`future`: an expiry or a trial end; otherwise ago).
    """
    raw = text.strip() if isinstance(text, str) else ""
    if not raw or len(raw) > 64:
        raise InvalidInput(_not_a(text, what, relative, future), path=path)
    if relative and (moment := _relative(raw.lower(), now or utcnow(), future)) is not None:
        return moment
    try:
        if _DATE_ONLY.match(raw):
            return datetime.combine(date.fromisoformat(raw), datetime.min.time())
        return to_utc_naive(datetime.fromisoformat(raw.replace("z", "Z")))
    except (ValueError, OverflowError):
        raise InvalidInput(_not_a(text, what, relative, future), path=path) from None


def _not_a(text: str, what: str, relative: bool, future: bool) -> str:
    if not relative:
        forms = "use a date like 2026-11-21 or 2026-11-21T10:00:00Z"
    elif future:
        forms = f"{_ABSOLUTE}, or now, today, tomorrow, 2h or 7d (from now), -7d (ago)"
    else:
        forms = f"{_ABSOLUTE}, or now, today, yesterday, tomorrow, 2h or 7d (ago), +7d (from now)"
    return f"'{text}' is not {_article(what)} {what}; {forms}."


def _article(word: str) -> str:
    """"a" or "an" by the first letter of `word` ("an expiry date", "a trial end", "an --at time")."""
    letter = word.lstrip("-' ")[:1].lower()
    return "an" if letter and letter in "aeiou" else "a"


def _relative(raw: str, now: datetime, future: bool) -> datetime | None:
    midnight = datetime.combine(now.date(), datetime.min.time())
    named = {"now": now, "today": midnight, "yesterday": midnight - timedelta(days=1),
             "tomorrow": midnight + timedelta(days=1)}
    if raw in named:
        return named[raw]
    if match := _AHEAD.match(raw):
        return now + _span(match[1], match[2])
    if match := _BEHIND.match(raw):
        count, unit = (match[1], match[2]) if match[1] else (match[3], match[4])
        return now - _span(count, unit)
    if match := _BARE.match(raw):
        return now + _span(match[1], match[2]) if future else now - _span(match[1], match[2])
    return None


def _span(count: str, unit: str) -> timedelta:
    return timedelta(**{_UNITS[unit]: int(count)})


def rfc3339(moment: datetime | None) -> str | None:
    """Naive UTC datetime -> `2026-11-21T06:25:33Z` (microseconds only when present)."""
    if moment is None:
        return None
    text = moment.replace(tzinfo=None).isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text + "Z"


def days(n: int) -> timedelta:
    return timedelta(days=n)
