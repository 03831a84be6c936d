"""usage.store: the lightweight table clauses match the models, set-based inserts, the time-blind
duplicate check, the bulk page cache."""

from __future__ import annotations

from datetime import datetime

import pytest

from tollgate.errors import Conflict


@pytest.fixture
def ids(tg):
    from sqlalchemy import text

    tg.add_customer("Acme", identifier="acme")
    tg.create_feature("API calls", type="metered", identifier="api-calls")
    with tg.db.read() as session:
        customer = session.execute(text("SELECT id FROM customer")).scalar_one()
        feature = session.execute(text("SELECT id FROM feature")).scalar_one()
    return customer, feature


def test_insert_event_compares_time_only_when_asked(tg, ids):
    from tollgate.usage.store import insert_event

    customer, feature = ids
    event = dict(customer_id=customer, feature_id=feature, quantity_micros=5_000_000,
                 recorded_at=datetime(2026, 11, 1))
    with tg.db.write() as session:
        assert insert_event(session, key="k", occurred_at=datetime(2026, 11, 1, 10), **event) is True
        assert insert_event(session, key="k", occurred_at=datetime(2026, 11, 1, 10), **event) is False
        assert insert_event(session, key="k", occurred_at=datetime(2026, 11, 1, 11), compare_time=False,
                            **event) is False
        with pytest.raises(Conflict):
            insert_event(session, key="k", occurred_at=datetime(2026, 11, 1, 11), **event)


def test_insert_event_rows_skips_duplicates_and_counts(tg, ids):
    from tollgate.usage.store import insert_event_rows, stored_rows, time_encoder

    customer, feature = ids
    with tg.db.write() as session:
        encode = time_encoder(session)
        at, now = encode(datetime(2026, 11, 1, 10, 0, 0, 5)), encode(datetime(2026, 11, 2))
        rows = [(f"k{i}", customer, feature, i, at, now) for i in range(5)]
        assert len(insert_event_rows(session, rows).rows) == 5
        again = insert_event_rows(session, rows[3:] + [("k9", customer, feature, 9, at, now), rows[0]])
        assert [row[0] for row in again.rows] == ["k9"]  # only the new key, counted in the rollups once
        assert sum(again.by_day.values()) == 9
        found = stored_rows(session, ["k1", "k9", "missing"], batch=1)
    assert set(found) == {"k1", "k9"}
    assert found["k1"].occurred_at == at  # read back in the form the rows were written
    assert found["k9"].quantity_micros == 9


def test_same_time_compares_moments_across_forms():
    from tollgate.usage.store import same_time

    moment = datetime(2026, 11, 1, 10, 0, 0, 5)
    assert same_time("2026-11-01 10:00:00.000005", "2026-11-01 10:00:00.000005")
    assert same_time("2026-11-01 10:00:00.000005", moment) and same_time(moment, "2026-11-01T10:00:00.000005")
    assert not same_time("2026-11-01 10:00:00.000006", "2026-11-01 10:00:00.000005")
    assert not same_time("garbage", "2026-11-01 10:00:00.000005")


def test_rows_written_by_sqlalchemy_and_by_the_driver_read_back_alike(tg, ids):
    from tollgate.usage.store import insert_event, insert_event_rows, same_time, stored_rows, time_encoder

    from sqlalchemy import insert

    from tollgate import tables

    customer, feature = ids
    for n, moment in enumerate([datetime(2026, 11, 1, 10), datetime(2026, 11, 1, 10, 0, 0, 5)]):
        with tg.db.write() as session:  # SQLAlchemy's form (db copy, migrations), one event's, a batch's
            session.execute(insert(tables.usage_event).values(key=f"orm{n}", customer_id=customer, feature_id=feature,
                                                              quantity_micros=1, occurred_at=moment, recorded_at=moment))
            insert_event(session, key=f"one{n}", customer_id=customer, feature_id=feature, quantity_micros=1,
                         occurred_at=moment, recorded_at=moment)
            encode = time_encoder(session)
            insert_event_rows(session, [(f"raw{n}", customer, feature, 1, encode(moment), encode(moment))])
            found = stored_rows(session, [f"orm{n}", f"one{n}", f"raw{n}"])
        # byte for byte: no false conflicts, and SQLite compares the text of windows' bounds with it
        assert found[f"orm{n}"][5:] == found[f"one{n}"][5:] == found[f"raw{n}"][5:]
        assert same_time(found[f"orm{n}"].occurred_at, moment)


@pytest.mark.sqlite_only("the SQLite page cache")
def test_bulk_cache_is_raised_then_restored(tg, ids):
    from sqlalchemy import text

    from tollgate.usage.store import BULK_CACHE_KIB, bulk_cache

    with tg.db.write() as session:
        before = session.execute(text("PRAGMA cache_size")).scalar_one()
        with bulk_cache(session):
            assert session.execute(text("PRAGMA cache_size")).scalar_one() == -BULK_CACHE_KIB
        assert session.execute(text("PRAGMA cache_size")).scalar_one() == before


def test_an_aware_time_is_stored_as_its_utc_time(tg, ids):
    """insert_event given an aware datetime (no public path gives one) stores its UTC time, the same
    text as the naive UTC datetime: never the wall time with an offset tacked on."""
    from datetime import timedelta, timezone

    from tollgate.usage.store import insert_event, stored_rows

    customer, feature = ids
    aware = datetime(2026, 11, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    with tg.db.write() as session:
        insert_event(session, key="aware", customer_id=customer, feature_id=feature, quantity_micros=1,
                     occurred_at=aware, recorded_at=aware)
        insert_event(session, key="naive", customer_id=customer, feature_id=feature, quantity_micros=1,
                     occurred_at=datetime(2026, 11, 1, 10, 30), recorded_at=datetime(2026, 11, 1, 10, 30))
        found = stored_rows(session, ["aware", "naive"])
    assert found["aware"][5:] == found["naive"][5:]
