"""Copy a whole tollgate database to another location: SQLite -> PostgreSQL, PostgreSQL -> SQLite
(or between two of a kind), the way a team moves off one machine, or takes a server's data home.

How (`copy_database`):
1. The source is opened like any command opens it (it must exist and be a tollgate database; an
   older schema is migrated first) and read in ONE read transaction: a consistent snapshot, while
   others keep writing.
2. The target must be new (a file that does not exist yet, an empty PostgreSQL database) or hold an
   empty tollgate schema of the same version. Everything that follows happens in ONE write
   transaction on the target: the schema is created (PostgreSQL: under the schema's advisory lock),
   every table is copied in dependency order (parents before children) with Core executemany
   inserts in chunks (bounded memory), primary keys as they are, and PostgreSQL's sequences are
   moved past the largest id copied, so the next row gets a fresh id.
   The usage rollups are not copied: they are rebuilt from the copied events.
3. Before committing, the copy is verified: row counts per table, the sum of all usage, and the
   sha256 of the catalog export (`catalog export` text) are compared with the source's. Any
   difference rolls everything back (a new target file is removed) and raises StorageError.
4. Downloads' files (content-addressed blobs in the data folder) are copied into the target's data
   folder when it is a different folder; blobs missing at the source are counted, not fatal. So
   are the private files of the unretired license-file signing keys kept at the source (signing.py).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, func, inspect, select
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel

from tollgate import db, engines, models, schema, storage_errors
from tollgate.location import engine_url
from tollgate.errors import InvalidInput, StorageError, TollgateError

CHUNK_ROWS = 5000
"""Rows per executemany (and per fetch from the source)."""

ROLLUPS = "usage_rollup"
"""Not copied: the target's rollups are rebuilt from the copied events (usage.rollups.rebuild)."""

Progress = Callable[[str, int, int], None]
"""progress(table, rows copied so far, rows in the table): called after every chunk."""


@dataclass(frozen=True)
class CopyResult:
    source: str
    target: str
    tables: dict[str, int]
    """Rows copied per table, in the order they were copied (every table, 0 included)."""
    catalog_sha256: str
    """sha256 of the catalog export, the same on both sides."""
    usage_total_micros: int
    """The sum of every usage event's quantity (millionths), the same on both sides."""
    blobs_copied: int = 0
    blobs_missing: list[str] = field(default_factory=list)
    signing_keys_copied: int = 0

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "rows": self.rows,
            "tables": dict(self.tables),
            "catalog_sha256": self.catalog_sha256,
            "usage_total": str(_decimal(self.usage_total_micros)),
            "blobs_copied": self.blobs_copied,
            "blobs_missing": list(self.blobs_missing),
            "signing_keys_copied": self.signing_keys_copied,
        }


def copy_database(
    source: str | os.PathLike,
    target: str | os.PathLike,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
) -> CopyResult:
    """Copy every row of the tollgate database at `source` into `target` (a new or empty database),
    in one transaction on the target, verified before it commits. See the module's docstring."""
    source_db = db.Database(source, create=False)
    target_db = db.Database(target)
    _refuse_same(source_db, target_db)
    models.load_all()
    new_file = target_db.path is not None and not target_db.path.exists()
    source_engine = source_db.engine  # opened as every command opens it (checked, migrated)
    target_engine = None
    committed = False
    try:
        target_engine = target_db.bare_engine()
        with engines.transaction(source_engine, write=False) as reader:
            try:
                with engines.transaction(target_engine, write=True) as writer:
                    result = _copy(reader, writer, source_db, target_db, chunk_rows=chunk_rows, progress=progress)
                committed = True
            except DBAPIError as exc:
                raise _nothing_written(storage_errors.storage_error(exc, target_db.location)) from None
    except DBAPIError as exc:
        raise _nothing_written(storage_errors.storage_error(exc, source_db.location)) from None
    finally:
        source_db.dispose()
        if target_engine is not None:
            target_engine.dispose()
        if new_file and not committed and target_db.path is not None:
            for leftover in (target_db.path, Path(f"{target_db.path}-wal"), Path(f"{target_db.path}-shm")):
                leftover.unlink(missing_ok=True)
    return result


def _nothing_written(error: TollgateError) -> StorageError:
    if not isinstance(error, StorageError):  # e.g. text PostgreSQL can't hold: the source's data, not input
        error = StorageError(f"The copy failed: {error.message}")
    error.hint = "Nothing was copied."
    return error


def _refuse_same(source: db.Database, target: db.Database) -> None:
    from tollgate.outfiles import is_database_file

    if source.path is not None and target.path is not None:
        same = is_database_file(target.path, source.path)  # also SRC's -wal, -shm or -journal
    elif source.path is None and target.path is None:
        from sqlalchemy.engine import make_url

        def where(location: str) -> tuple:
            url = make_url(engine_url(location))
            return url.host or "localhost", url.port or 5432, url.database

        same = where(source.location) == where(target.location)
    else:
        same = False
    if same:
        raise InvalidInput("SRC and DST are the same database (or DST is one of SRC's files).",
                           hint="Copy into a new file or an empty database.")


def _copy(
    reader: Connection, writer: Connection, source_db: db.Database, target_db: db.Database, *, chunk_rows: int,
    progress: Progress | None,
) -> CopyResult:
    tables = list(SQLModel.metadata.sorted_tables)  # parents before children
    _prepare_target(writer, target_db, tables)
    meta = models.Meta.__table__
    writer.execute(meta.delete())  # the target's own schema_version row: the source's rows replace it
    copied: dict[str, int] = {}
    for table in tables:
        if table.name == ROLLUPS:  # recomputed from the copied events below, never trusted from the source
            copied[table.name] = 0
            continue
        copied[table.name] = _copy_table(reader, writer, table, chunk_rows=chunk_rows, progress=progress)
    from tollgate.usage.rollups import rebuild

    copied[ROLLUPS] = rebuild(writer)
    if writer.dialect.name == "postgresql":
        _move_sequences_past_copied_ids(writer, tables)
    facts_source = _facts(reader, tables)
    facts_target = _facts(writer, tables)
    for name, count in copied.items():
        if name != ROLLUPS and not facts_source["counts"][name] == facts_target["counts"][name] == count:
            raise StorageError(
                f"The copy of table {name} does not match its source ({facts_source['counts'][name]} rows there, "
                f"{facts_target['counts'][name]} here); nothing was written.",
            )
    if facts_source["usage"] != facts_target["usage"]:
        raise StorageError("The copied usage does not add up to the source's; nothing was written.")
    if facts_source["catalog"] != facts_target["catalog"]:
        raise StorageError("The copied catalog exports differently from the source's; nothing was written.")
    blobs_copied, blobs_missing = _copy_blobs(reader, source_db, target_db)
    keys_copied = _copy_signing_keys(reader, source_db, target_db)
    return CopyResult(
        source=source_db.display_location,
        target=target_db.display_location,
        tables=copied,
        catalog_sha256=facts_target["catalog"],
        usage_total_micros=facts_target["usage"],
        blobs_copied=blobs_copied,
        blobs_missing=blobs_missing,
        signing_keys_copied=keys_copied,
    )


def _prepare_target(writer: Connection, target_db: db.Database, tables: list[Table]) -> None:
    """Create the schema in a new target; accept an empty tollgate schema; refuse anything else."""
    if writer.dialect.name == "postgresql":
        writer.execute(select(func.pg_advisory_xact_lock(schema.SCHEMA_LOCK_KEY)))
    where = target_db.display_location
    version = schema.schema_version_in(writer)
    if version is None:
        if inspect(writer).get_table_names():
            raise StorageError(f"{where} already holds tables of another program.",
                               hint="Copy into a new file or an empty database.")
        schema.create_schema(writer)
        return
    if version != schema.SCHEMA_VERSION:
        raise StorageError(f"{where} holds a tollgate database of schema {version} (this tollgate: "
                           f"{schema.SCHEMA_VERSION}).", hint="Copy into a new file or an empty database.")
    filled = {
        table.name: n
        for table in tables
        if table.name != "meta" and (n := writer.execute(select(func.count()).select_from(table)).scalar_one())
    }
    if filled:
        listed = ", ".join(f"{name} {n:,}" for name, n in sorted(filled.items()))
        raise StorageError(f"{where} is not empty ({listed} rows); db copy only writes into a new or empty database.",
                           hint="Choose a new file, or an empty database (createdb).")


def _copy_table(reader: Connection, writer: Connection, table: Table, *, chunk_rows: int,
                progress: Progress | None) -> int:
    total = reader.execute(select(func.count()).select_from(table)).scalar_one()
    if progress is not None:
        progress(table.name, 0, total)
    if not total:
        return 0
    order = list(table.primary_key.columns)
    rows = reader.execution_options(yield_per=chunk_rows).execute(select(table).order_by(*order))
    done = 0
    insert = table.insert()
    for chunk in rows.partitions(chunk_rows):
        writer.execute(insert, [row._asdict() for row in chunk])
        done += len(chunk)
        if progress is not None:
            progress(table.name, done, total)
    return done


def _move_sequences_past_copied_ids(writer: Connection, tables: list[Table]) -> None:
    """PostgreSQL: rows were inserted with their ids, so each serial's sequence still starts at 1;
    set it so that the next id is one past the largest copied (or 1 for an empty table)."""
    for table in tables:
        column = table.autoincrement_column
        if column is None:
            continue
        sequence = func.pg_get_serial_sequence(table.name, column.name)
        next_id = select(func.coalesce(func.max(column), 0) + 1).select_from(table).scalar_subquery()
        writer.execute(select(func.setval(sequence, next_id, False)))


def _facts(conn: Connection, tables: list[Table]) -> dict[str, Any]:
    """What a copy must preserve: rows per table, the total of all usage, the catalog export's sha256."""
    from tollgate import catalog_toml

    counts = {table.name: conn.execute(select(func.count()).select_from(table)).scalar_one() for table in tables}
    days = models.UsageRollup.__table__
    usage = sum(total for (total,) in conn.execute(select(days.c.total_micros).where(days.c.level == 0)))
    with Session(bind=conn, autoflush=False) as session:
        text = catalog_toml.export_catalog(session)
    return {"counts": counts, "usage": int(usage), "catalog": hashlib.sha256(text.encode("utf-8")).hexdigest()}


def _copy_blobs(reader: Connection, source_db: db.Database, target_db: db.Database) -> tuple[int, list[str]]:
    """Copy the downloads' files into the target's data folder (when it is another folder)."""
    from tollgate import blobs

    source_dir = blobs.data_dir_for(source_db.location)
    target_dir = blobs.data_dir_for(target_db.location)
    downloads = models.PlanDownload.__table__
    wanted = sorted(set(reader.execute(select(downloads.c.sha256)).scalars()))
    if not wanted or source_dir.resolve() == target_dir.resolve():
        return 0, []
    for sha256 in wanted:  # a damaged checksum (StorageError) stops the copy before any file is copied
        blobs.blob_path(sha256, data_dir=source_dir)
    copied, missing = 0, []
    for sha256 in wanted:
        if blobs.has_blob(sha256, data_dir=target_dir):
            continue
        if not blobs.has_blob(sha256, data_dir=source_dir):
            missing.append(sha256)
            continue
        stored, _size = blobs.store_blob(blobs.blob_path(sha256, data_dir=source_dir), data_dir=target_dir)
        if stored != sha256:
            raise StorageError(f"The stored file {sha256} in {source_dir} is damaged (its content hashes to {stored}).")
        copied += 1
    return copied, missing


def _copy_signing_keys(reader: Connection, source_db: db.Database, target_db: db.Database) -> int:
    from tollgate import blobs, signing

    keys = models.SigningKey.__table__
    kids = list(reader.execute(select(keys.c.kid).where(keys.c.retired_at.is_(None))).scalars())
    return signing.copy_private_keys(kids, blobs.data_dir_for(source_db.location),
                                     blobs.data_dir_for(target_db.location))


def _decimal(micros: int):
    from tollgate.money import from_micros

    return from_micros(micros)
