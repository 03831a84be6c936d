"""`tollgate db check`: the database engine's own integrity check (SQLite: PRAGMA integrity_check;
PostgreSQL keeps its own and has none to run) and every usage rollup recomputed from the events and
compared (usage.rollups.differences), in one read snapshot."""

from __future__ import annotations

from tollgate.db import Database
from tollgate.db_views import DatabaseCheck


def check_database(database: Database) -> DatabaseCheck:
    """What `db check` reports; `.ok` is False when anything differs."""
    from tollgate.usage.rollups import differences

    with database.connect() as conn:
        integrity = None
        if database.is_sqlite:
            integrity = "; ".join(str(row[0]) for row in conn.exec_driver_sql("PRAGMA integrity_check"))
        rollups = conn.exec_driver_sql("SELECT count(*) FROM usage_rollup").scalar_one()
        events = conn.exec_driver_sql("SELECT count(*) FROM usage_event").scalar_one()
        differing, shown = differences(conn)
    return DatabaseCheck(location=database.display_location, integrity=integrity, events=events, rollups=rollups,
                         rollup_differences=differing, differences=tuple(shown))
