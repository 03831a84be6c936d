"""How the database is opened (its location: tollgate.location; its engine: tollgate.engines; its
schema: tollgate.schema), and how every change is made: one transaction each (`Database.write`,
`Database.read`, `Database.connect`), plus what `db info` and `db backup` show and write.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tollgate import interrupts, models, schema
from tollgate.engines import begin, postgres_engine, postgres_url, sqlite_engine, transaction, transaction_engine
from tollgate.errors import StorageError
from tollgate.location import (
    create_private_file,
    display_location,
    existing_file,
    is_postgres_url,
    readonly_uri,
    resolve_location,
    sqlite_path,
)
from tollgate.storage_errors import storage_error

if TYPE_CHECKING:  # sqlmodel (pydantic, the ORM) loads only where a session or the whole schema is needed
    from sqlmodel import Session

    from tollgate.db_views import DatabaseInfo


class Database:
    """One tollgate database: opened (created or migrated) on first use, then one session per command."""

    def __init__(self, location: str | os.PathLike | None = None, *, create: bool = True) -> None:
        """`create=False`: opening a location without a tollgate database raises StorageError
        instead of creating one (for a source that must exist, e.g. of `db copy`)."""
        self.location = resolve_location(location)
        self.path = sqlite_path(self.location)
        self.create = create
        self.create_on_read = True
        """False (every CLI run): only a write that keeps its work may create a SQLite file that does
        not exist; anything else on it (`read`, `connect()`, a dry run, `info`, `backup`, db check,
        `write(creating=False)`) is refused (NotFound) and creates nothing, not even its folder."""
        if self.is_postgres:
            postgres_url(self.location)  # a URL that does not parse is refused before anything uses it
        self._engine: Engine | None = None
        self._begun: dict[bool, Engine] = {}  # transaction_engine's, for reads and for writes
        self._file_version: int | None = None  # a SQLite file's version, as read (read-only) before opening it

    @property
    def is_sqlite(self) -> bool:
        return self.path is not None

    @property
    def is_postgres(self) -> bool:
        return self.path is None and is_postgres_url(self.location)

    @property
    def display_location(self) -> str:
        return display_location(self.location)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._open()
        return self._engine

    def _open(self) -> Engine:
        try:
            if self.path is not None and self.create and not existing_file(self.path, self.display_location):
                try:
                    schema.create_sqlite_database(self.path)
                except OSError as exc:
                    raise StorageError(f"Cannot create the database at {self.display_location}: "
                                       f"{exc.strerror}.") from None
            engine = self.bare_engine()
            try:
                schema.prepare(engine, location=self.location, path=self.path, create=self.create,
                               found=self._file_version)
            except BaseException:
                engine.dispose()
                raise
            return engine
        except schema.ForeignDatabase:
            raise schema.foreign(self.location) from None
        except DBAPIError as exc:
            raise storage_error(exc, self.location) from None

    def bare_engine(self) -> Engine:
        """An engine on the location with nothing created in it yet (a new SQLite file is created
        empty, 0600). For `db copy`, which creates the target's schema in its own transaction;
        everything else uses `engine` (created, checked, migrated). An existing SQLite file is
        checked first without writing a byte: anything but a tollgate database of this version or
        older is refused untouched."""
        if self.path is not None:
            if existing_file(self.path, self.display_location):
                self._file_version = schema.file_schema_version(self.path, self.location)
                schema.refuse_newer(self._file_version, self.location)
            elif not self.create:
                raise StorageError(f"There is no tollgate database at {self.display_location}.", hint="Check the path.")
            else:
                try:
                    create_private_file(self.path)
                except OSError as exc:
                    raise StorageError(f"Cannot create the database at {self.display_location}: "
                                       f"{exc.strerror}.") from None
            return sqlite_engine(self.path)
        if self.is_postgres:
            return postgres_engine(self.location)
        raise StorageError(
            f"{self.display_location} is neither a SQLite file nor a PostgreSQL URL.",
            hint="Use a file path, sqlite:///PATH or postgresql://USER@HOST/DATABASE.",
        )

    def _begun_engine(self, *, write: bool) -> Engine:
        """engines.transaction_engine of this database's engine for a read or a write, made once."""
        begun = self._begun.get(write)
        if begun is None:
            begun = self._begun[write] = transaction_engine(self.engine, write=write)
        return begun

    @contextmanager
    def _session(self, *, commit: bool, snapshot: bool = False) -> Iterator[Session]:
        from sqlmodel import Session

        engine = self._begun_engine(write=not snapshot)
        writing = commit and not snapshot  # a write session that keeps its work (not a read, not a dry run)
        try:
            with Session(bind=engine, expire_on_commit=False, autoflush=False) as session, \
                    (interrupts.write_transaction() if writing else nullcontext()):
                session.begin()
                begin(session.connection(), write=not snapshot)
                try:
                    yield session
                except BaseException:
                    session.rollback()
                    raise
                if not commit:
                    session.rollback()
                else:
                    with interrupts.committing() if writing else nullcontext():
                        session.commit()
        except (DBAPIError, PoolTimeout) as exc:
            raise storage_error(exc, self.location) from None

    @contextmanager
    def connect(self, *, write: bool = False) -> Iterator[Connection]:
        """A Core connection from the engine's pool in one transaction (see `transaction`): the access
        path (`check`), which runs Core statements only and costs no ORM session."""
        self._refuse_missing(creates=write)
        try:
            with transaction(self._begun_engine(write=write), write=write) as conn:
                yield conn
        except (DBAPIError, PoolTimeout) as exc:
            raise storage_error(exc, self.location) from None

    def write(self, *, dry_run: bool = False, creating: bool = True) -> Any:
        """A session in one write transaction (BEGIN IMMEDIATE): committed at the end, rolled back on
        error, and always rolled back with `dry_run` (the same code runs; nothing is kept).
        `creating=False`: a write that only makes sense on a database that exists (the public key,
        made on first use) is refused like a read when there is none (see `create_on_read`)."""
        if dry_run and creating and self._refused_if_missing():
            self._scratch_for_dry_run()
        self._refuse_missing(creates=creating and not dry_run)
        return self._session(commit=not dry_run)

    def _scratch_for_dry_run(self) -> None:
        """A dry run (catalog import, customer import, usage report --file) on a SQLite file that does
        not exist runs on a new, empty database in a private temporary folder, removed at exit: it
        answers what the real run would do, and nothing is created at the location."""
        import atexit
        import shutil
        import tempfile

        folder = tempfile.mkdtemp(prefix="tollgate-dry-run-")
        atexit.register(shutil.rmtree, folder, True)
        self.location = str(Path(folder) / "tollgate.db")
        self.path = sqlite_path(self.location)
        self.create_on_read = True  # the scratch database is made on first use, as the library's are

    def read(self) -> Any:
        """A session in one read transaction: a consistent snapshot, never blocking writers (WAL;
        PostgreSQL: REPEATABLE READ). It ends with COMMIT (nothing to write) so the objects read
        stay loaded."""
        self._refuse_missing(creates=False)
        return self._session(commit=True, snapshot=True)

    def _refused_if_missing(self) -> bool:
        """Whether an access that creates nothing finds no SQLite file (with `create_on_read` off)."""
        return not (self.create_on_read or self._engine is not None or self.path is None) \
            and not existing_file(self.path, self.display_location)

    def _refuse_missing(self, *, creates: bool) -> None:
        """The one rule of what may create a SQLite file, asked before every access (`creates`: one
        that keeps a write): with `create_on_read` False, any other access is refused (NotFound) when
        the file does not exist, before anything is made."""
        if not creates and self._refused_if_missing():
            from tollgate.errors import NotFound

            raise NotFound(f"There is no database at {self.display_location}; nothing was created.",
                           hint="Check --db or TOLLGATE_DB, or create it with a command that writes (such as "
                                "`tollgate catalog import FILE`).")

    def info(self) -> DatabaseInfo:
        """Location, engine and its version, schema version, size and row counts per table."""
        from sqlmodel import SQLModel

        from tollgate.db_views import DatabaseInfo, TableRows

        self._refuse_missing(creates=False)
        engine = self.engine
        models.load_all()
        counts = []
        size = None
        with self.connect() as conn:  # one snapshot of every count
            for table in SQLModel.metadata.sorted_tables:
                counts.append(TableRows(table.name, conn.execute(select(func.count()).select_from(table)).scalar_one()))
            version = schema.schema_version_in(conn)
            if self.is_sqlite:
                journal_mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                server_version = conn.exec_driver_sql("SELECT sqlite_version()").scalar_one()
            else:
                journal_mode = None
                server_version = conn.exec_driver_sql("SHOW server_version").scalar_one()
                if engine.dialect.name == "postgresql":
                    size = conn.execute(select(func.pg_database_size(func.current_database()))).scalar()
        if self.path is not None:
            size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return DatabaseInfo(location=self.display_location, engine=engine.dialect.name,
                            server_version=server_version, schema_version=version, size_bytes=size,
                            journal_mode=journal_mode, tables=tuple(counts))

    def backup(self, target: Path) -> Path:
        """A consistent copy of the whole database (VACUUM INTO), written to a temp file then renamed."""
        if self.path is None:
            raise StorageError(
                "db backup copies SQLite files; back a PostgreSQL database up with pg_dump.",
                hint="For example: pg_dump --format=custom --file=tollgate.dump 'postgresql://USER@HOST/DATABASE'"
                " (or `tollgate db copy URL FILE` for a SQLite copy).",
            )
        target = Path(target).expanduser()
        from tollgate.outfiles import check_target

        check_target(target, database=self.path, what="The backup file")
        if target.exists():
            raise StorageError(f"{target} already exists.", hint="Choose a new file name; nothing was overwritten.")
        partial = target.with_name(f".{target.name}.partial")
        self._refuse_missing(creates=False)
        engine = self.engine
        try:
            partial.unlink(missing_ok=True)  # left by a backup that was killed
        except OSError:
            pass  # vacuum_into says what is wrong with the folder
        schema.vacuum_into(engine, partial, shown=target)  # removes what it wrote when it fails
        try:
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise StorageError(f"Cannot write {target}: {exc.strerror or exc}.", hint="Nothing was written.") from None
        return target

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._begun.clear()


def integrity_check(path: Path) -> str:
    """PRAGMA integrity_check through the standard library (used by tests and `db info`)."""
    conn = sqlite3.connect(readonly_uri(path), uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
