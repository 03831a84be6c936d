"""Column types of the schema that SQLAlchemy's generic ones do not give as they are.

`UtcDateTime` is every time column: a naive UTC datetime, DateTime on every database (the same DDL:
DATETIME on SQLite, TIMESTAMP WITHOUT TIME ZONE on PostgreSQL), stored by SQLite as the same text
SQLAlchemy's DATETIME writes (`2026-11-21 06:25:33.123456`). Only the writing of that text differs:
SQLAlchemy fills a format from a dict of seven fields per bound value, about 3.5 µs, and an access
check binds eleven times; `datetime.isoformat` writes the same text in a tenth of that. An aware
time (no caller of the library gives one) is stored as its UTC time on both databases.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


def sqlite_text(moment: datetime) -> str:
    """The text SQLite stores for a time: `2026-11-21 06:25:33.000000`, as SQLAlchemy's DATETIME
    writes it. An aware time (no caller of the library gives one: times are naive UTC) is stored as
    its UTC time."""
    if moment.tzinfo is not None:
        from tollgate.clock import to_utc_naive

        moment = to_utc_naive(moment)
    return moment.isoformat(" ", "microseconds")


@cache
def _sqlite_datetime() -> TypeEngine[Any]:
    """SQLite's DATETIME, a datetime written by `sqlite_text`; anything else (a date, a wrong type)
    goes to SQLAlchemy's own. Made on first use: a PostgreSQL process never loads SQLite's dialect
    (about 12 ms of start-up)."""
    from sqlalchemy.dialects import sqlite

    class SQLiteDateTime(sqlite.DATETIME):
        def bind_processor(self, dialect: Dialect) -> Any:
            general = super().bind_processor(dialect)

            def process(value: Any) -> Any:
                if type(value) is datetime:
                    return sqlite_text(value)
                return general(value) if general is not None else value

            return process

    return SQLiteDateTime()


_DATETIME = DateTime()  # what this type decorates, asked how to type values and made per dialect


class UtcDateTime(TypeDecorator[datetime]):
    """A naive UTC datetime column (see the module docstring). An aware time is bound as its UTC
    time on both databases (PostgreSQL would otherwise convert it by the session's time zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            from tollgate.clock import to_utc_naive

            return to_utc_naive(value)
        return value

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        """A plain value in an expression is typed as DateTime types it (a timedelta an Interval, a
        str a String, a date a Date); only a time is bound by this type. (TypeDecorator's default,
        `self` for every value, bound `column + timedelta` as a time.)"""
        coerced = _DATETIME.coerce_compared_value(op, value)
        return self if coerced is _DATETIME else coerced

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return _sqlite_datetime()
        return dialect.type_descriptor(_DATETIME)
