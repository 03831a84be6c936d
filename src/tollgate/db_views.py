"""What `db info` and `db check` report: frozen views with `to_dict()` (their `--json` shapes).

Built by db.Database.info and dbcheck.check_database; nothing here imports the database layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TableRows:
    table: str
    rows: int


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    """Where the database is, its engine and that engine's version, its schema version, its size in
    bytes (None when unknown) and the rows of each table (in the schema's order)."""

    location: str  # a server URL's password masked
    engine: str  # sqlite | postgresql
    server_version: str
    schema_version: int | None  # None: an empty database
    size_bytes: int | None
    journal_mode: str | None  # SQLite's (wal); None on a server
    tables: tuple[TableRows, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"location": self.location, "engine": self.engine, "server_version": self.server_version,
                "schema_version": self.schema_version, "size_bytes": self.size_bytes,
                "journal_mode": self.journal_mode, "tables": {t.table: t.rows for t in self.tables}}


@dataclass(frozen=True, slots=True)
class DatabaseCheck:
    """The engine's integrity check ("ok", what it found, or None where there is none to run) and the
    usage rollups recomputed from the events: how many rows differ, and the first few of them."""

    location: str
    integrity: str | None
    events: int
    rollups: int
    rollup_differences: int
    differences: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.integrity in (None, "ok") and self.rollup_differences == 0

    def to_dict(self) -> dict[str, Any]:
        return {"location": self.location, "integrity": self.integrity, "events": self.events,
                "rollups": self.rollups, "rollup_differences": self.rollup_differences,
                "differences": list(self.differences), "ok": self.ok}
