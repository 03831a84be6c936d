"""What every part of `Tollgate` shares: the database handle, the data folder, the coercion of the
arguments people pass (times, feature values) and the retry of one-event writes while the lock is busy."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from tollgate.db import Database

T = TypeVar("T")

Moment = datetime | str
"""A time argument: a datetime (aware ones are converted to UTC; naive ones are UTC) or RFC 3339 text."""

FeatureValue = bool | int | str | Decimal
"""A feature's value: True/False, a number (exact: never a float) or text."""

Assignments = Mapping[str, FeatureValue] | Iterable[str | tuple[str, str]]
"""Feature values: {"api-calls": "20000"}, or ["api-calls=20000"] / [("api-calls", "20000")]."""


class Base:
    """A handle on one tollgate database (SQLite path or server URL; default: see `db.resolve_location`)."""

    consume_patience: float = 30.0
    """Seconds `consume` (and the other one-event writes) keep trying to take the write lock while
    other writers hold it. TOLLGATE_BUSY_TIMEOUT_MS, when set, caps it: the operator's limit."""

    def __init__(self, db: str | os.PathLike[str] | None = None) -> None:
        self.db = Database(db)

    @property
    def data_dir(self) -> Path:
        """Where files (downloads) are stored: the folder of the SQLite file, or the user data folder."""
        from tollgate.blobs import data_dir_for

        return data_dir_for(self.db.location)

    def _retrying_lock(self, attempt: Callable[[], T]) -> T:
        """Run a one-event write transaction, trying again while another writer holds the lock, for up
        to `consume_patience` seconds: SQLite's busy handler backs off to 100 ms sleeps and is not fair,
        so under heavy contention one caller could wait out the whole busy timeout. Safe: a transaction
        that failed to get the lock (or rolled back) did nothing."""
        import random
        import time

        from tollgate.engines import explicit_busy_timeout_ms
        from tollgate.errors import StorageError

        explicit = explicit_busy_timeout_ms()
        patience = self.consume_patience if explicit is None else min(self.consume_patience, explicit / 1000)
        deadline = time.monotonic() + patience
        while True:
            try:
                return attempt()
            except StorageError as exc:
                if not _is_lock_error(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(random.uniform(0, 0.002))


def moment(value: Moment | None, what: str, *, future: bool = False) -> datetime | None:
    """None, a datetime (aware -> UTC; naive = UTC) or text (clock.parse_moment: RFC 3339, or `7d`
    counted towards the `future` or the past), as a naive UTC datetime."""
    from tollgate.clock import parse_moment, to_utc_naive

    if value is None or isinstance(value, datetime):
        return None if value is None else to_utc_naive(value)
    return parse_moment(value, what=what, future=future)


def assignments(features: Assignments) -> list[str | tuple[str, str]]:
    """{"f": "v"} or ["f=v", ("f", "v")] -> a list of "f=v" / (f, v) items."""
    if isinstance(features, Mapping):
        return [(name, value_text(value)) for name, value in features.items()]
    return list(features)


def value_text(value: FeatureValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        from tollgate.errors import InvalidInput

        raise InvalidInput(f"{value!r} is a floating-point number, which is not exact; pass a string or a Decimal.")
    if isinstance(value, Decimal) and value.is_finite():
        from tollgate.money import format_decimal

        return format_decimal(value)
    return str(value)


def _is_lock_error(exc: BaseException) -> bool:
    """A StorageError that means "the database is locked" (busy), as opposed to any other failure."""
    original = getattr(exc.__context__, "orig", exc.__context__)
    text = str(original).lower() if original is not None else str(exc).lower()
    return "locked" in text or "busy" in text
