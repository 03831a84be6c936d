"""coltypes.UtcDateTime, every time column: the same DDL as DateTime on both databases, and on SQLite
exactly the text SQLAlchemy's own DATETIME stores (databases written before it compare, sort and read
back the same), written faster; an aware time is stored as its UTC time."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone, tzinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, create_engine, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from tollgate import tables
from tollgate.clock import to_utc_naive
from tollgate.coltypes import UtcDateTime, sqlite_text


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "postgresql"])
def test_the_ddl_is_datetimes(dialect):
    assert UtcDateTime().compile(dialect=dialect) == DateTime().compile(dialect=dialect)


def test_every_time_column_of_the_schema_is_one():
    kinds = [type(c.type) for t in tables.ALL for c in t.columns if isinstance(c.type, (DateTime, UtcDateTime))]
    assert kinds.count(UtcDateTime) > 30 and DateTime not in kinds


def _stored(column_type, value):
    metadata = MetaData()
    table = Table("t", metadata, Column("id", Integer, primary_key=True), Column("at", column_type))
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table).values(id=1, at=value))
        text = conn.exec_driver_sql("SELECT at FROM t").scalar()
        back = conn.execute(select(table.c.at)).scalar()
        found = conn.execute(select(table.c.id).where(table.c.at == value)).scalar()
    engine.dispose()
    return text, back, found


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)))
def test_a_naive_time_is_stored_as_sqlalchemy_stores_it(moment):
    ours, theirs = _stored(UtcDateTime(), moment), _stored(DateTime(), moment)
    assert ours == theirs == (sqlite_text(moment), moment, 1)


def test_an_aware_time_is_stored_as_its_utc_time_and_a_date_as_sqlalchemy_stores_it():
    aware = datetime(2026, 11, 21, 8, 30, tzinfo=timezone(timedelta(hours=2)))
    assert _stored(UtcDateTime(), aware)[:2] == ("2026-11-21 06:30:00.000000", datetime(2026, 11, 21, 6, 30))
    assert _stored(UtcDateTime(), aware.astimezone(timezone.utc))[0] == "2026-11-21 06:30:00.000000"
    assert _stored(UtcDateTime(), date(2026, 11, 21))[0] == _stored(DateTime(), date(2026, 11, 21))[0]
    assert _stored(UtcDateTime(), None)[:2] == (None, None)


def test_what_is_not_a_time_is_refused_as_sqlalchemy_refuses_it():
    with pytest.raises(Exception, match="only accepts Python datetime"):
        _stored(UtcDateTime(), "2026-11-21 06:30:00")


@pytest.mark.postgres
def test_postgresql_stores_an_aware_time_as_its_utc_time_whatever_the_sessions_zone(pg_url):
    metadata = MetaData()
    table = Table("t", metadata, Column("id", Integer, primary_key=True), Column("at", UtcDateTime()))
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1),
                           connect_args={"options": "-c timezone=Asia/Kolkata"})
    try:
        metadata.create_all(engine)
        aware = datetime(2026, 11, 21, 8, 30, tzinfo=timezone(timedelta(hours=2)))
        with engine.begin() as conn:
            conn.execute(insert(table).values(id=1, at=aware))
            assert conn.exec_driver_sql("SHOW timezone").scalar() == "Asia/Kolkata"
            assert conn.exec_driver_sql("SELECT at::text FROM t").scalar() == "2026-11-21 06:30:00"
            assert conn.execute(select(table.c.id).where(table.c.at == aware)).scalar() == 1
    finally:
        engine.dispose()


class _NoOffset(tzinfo):
    """A tzinfo that does not know its offset: by Python's definition the datetime is naive."""

    def utcoffset(self, dt):
        return None

    def dst(self, dt):
        return None


def test_a_time_whose_zone_has_no_offset_is_naive_so_stored_as_it_reads(monkeypatch):
    # Python: a datetime whose tzinfo.utcoffset() is None is naive; astimezone() takes it as the
    # machine's local time. It must be stored as its wall time (as SQLAlchemy's DATETIME stores it),
    # not shifted by the local zone.
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        moment = datetime(2026, 11, 21, 6, 30, tzinfo=_NoOffset())
        assert _stored(UtcDateTime(), moment)[:2] == ("2026-11-21 06:30:00.000000", datetime(2026, 11, 21, 6, 30))
        assert sqlite_text(moment) == "2026-11-21 06:30:00.000000"
        assert to_utc_naive(moment) == datetime(2026, 11, 21, 6, 30)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def _pg_or_sqlite_engine(url):
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1) if url else "sqlite://")


@pytest.mark.parametrize("where", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_time_column_takes_arithmetic_and_text_as_datetime_does(where, request):
    # A TypeDecorator's coerce_compared_value is `self` by default: `column + timedelta` bound the
    # timedelta as a time (::TIMESTAMP on PostgreSQL: cannot cast interval), `column > "text"` and
    # `column == date` were refused or bound as a time on SQLite. DateTime types them by their value.
    url = request.getfixturevalue("pg_url") if where == "postgresql" else None
    metadata = MetaData()
    table = Table("t", metadata, Column("id", Integer, primary_key=True), Column("at", UtcDateTime()))
    engine = _pg_or_sqlite_engine(url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(insert(table).values(id=1, at=datetime(2026, 11, 21, 6, 30)))
            assert conn.execute(select(table.c.id).where(table.c.at == date(2026, 11, 21))).scalar() is None
            if where == "sqlite":  # text compares as text (PostgreSQL refuses timestamp > varchar, as with DateTime)
                assert conn.execute(select(table.c.id).where(table.c.at > "2026-11-21")).scalar() == 1
            else:  # interval arithmetic (SQLite has none, nor had it with DateTime)
                later = conn.execute(select(table.c.at + timedelta(days=1))).scalar()
                assert later == datetime(2026, 11, 22, 6, 30)
            aware = datetime(2026, 11, 21, 8, 30, tzinfo=timezone(timedelta(hours=2)))
            assert conn.execute(select(table.c.id).where(table.c.at == aware)).scalar() == 1
        metadata.drop_all(engine)
    finally:
        engine.dispose()


def test_the_schema_loads_without_sqlites_dialect_which_only_a_sqlite_database_needs():
    import subprocess
    import sys

    probe = ("import sys, tollgate.tables, tollgate.db, tollgate.models; "
             "print('sqlalchemy.dialects.sqlite' in sys.modules)")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "False"
