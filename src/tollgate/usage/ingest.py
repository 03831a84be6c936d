"""Usage files (`usage report --file`, `Tollgate.report_usage_file`): the events of a CSV or JSON lines
file (read by usage.file) recorded in the caller's one write transaction.

Rows are streamed and inserted in chunks (executemany), so memory stays bounded whatever the size of
the file; customer and feature identifiers resolve to ids through dict caches; duplicates and
conflicting keys are sorted out set-based, per chunk, only when a chunk inserted fewer rows than it
held. By default any invalid row means nothing is written (the first 20 bad lines are listed, with
the count); with `skip_invalid` the good rows are recorded and the bad ones written to a reject file.
Alert thresholds and limits crossed by a file are worked out once at the end, for each customer's
current period (the one access and alerts are about): before = the period's total less what this
file added to it (usage.limits). A file is journaled once (`usage.import`, with its counts).

A row without an id gets a key derived from its content (usage.values.derived_key): `row-` + a
128-bit BLAKE2b digest of (customer, feature, quantity, timestamp), so re-sending the same file, or
the same rows in any order or split differently, records nothing twice. Two rows that are exactly
alike (same customer, feature, quantity and time) therefore count once; the second is reported as a
duplicate ("repeated in the file"), so give events ids when such twins are real. A row without a
timestamp is recorded at the time of the import; only its place tells it apart, so its line number
and the identity of the file (the BLAKE2b of its bytes, usage.file.identified) join the digest:
re-sending the same file unchanged records nothing again, and the same line in another file is
another event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from tollgate import tables
from tollgate.errors import Conflict, InvalidInput
from tollgate.usage.limits import crossings_after_ingest
from tollgate.usage.values import shown

if TYPE_CHECKING:
    from sqlmodel import Session

C = tables.customer
F = tables.feature
CHUNK = 40_000
"""Rows per executemany in a file ingest (about 20 MB of rows in flight; larger chunks in key order
make the unique index cheaper to update)."""
MAX_LISTED = 20
"""Bad lines listed in the error of a file with invalid rows (the count covers all of them)."""
_BAD_CACHE = 10_000


@dataclass
class IngestResult:
    """What a file ingest did (on a dry run: would do)."""

    source: str
    rows: int = 0
    inserted: int = 0
    duplicates: int = 0
    repeated_in_file: int = 0
    rejected: int = 0
    rejects_path: str | None = None
    dry_run: bool = False
    notices: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    added_by_day: dict[tuple[int, int], dict[datetime, int]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "repeated_in_file": self.repeated_in_file,
            "rejected": self.rejected,
            "rejects": self.rejects_path,
            "notices": self.notices,
            "warnings": self.warnings,
        }


class UsageFileErrors(InvalidInput):
    """The bad rows of a file (the first 20 listed, all counted); nothing was recorded. Exit 2, or 1
    when every problem is an id already used for a different event (a Conflict, as for one event)."""

    def __init__(self, errors: list[str], count: int, *, conflicts_only: bool) -> None:
        more = f" (the first {len(errors)} listed)" if count > len(errors) else ""
        super().__init__(
            f"{count} bad row(s){more}; nothing was recorded:\n  " + "\n  ".join(errors) + "\n"
            "Fix them and run again, or pass --skip-invalid to record the good rows and set the bad ones aside."
        )
        self.errors = errors
        self.count = count
        if conflicts_only:
            self.exit_code = Conflict.exit_code


class _Identifiers:
    """identifier -> id, cached; failures cached too (bounded) so a bad identifier costs one query."""

    def __init__(self, resolve: Callable[[str], int]) -> None:
        self.ids: dict[str, int] = {}
        self.bad: dict[str, str] = {}
        self._resolve = resolve

    def __call__(self, identifier: str) -> int:
        known = self.ids.get(identifier)
        if known is not None:
            return known
        message = self.bad.get(identifier)
        if message is None:
            try:
                known = self._resolve(identifier)
            except InvalidInput as exc:
                message = exc.message
            else:
                self.ids[identifier] = known
                return known
            if len(self.bad) >= _BAD_CACHE:
                self.bad.clear()
            self.bad[identifier] = message
        raise InvalidInput(message)


def ingest(
    session: Session,
    items: Iterable[Any],
    *,
    source: str,
    now: datetime,
    skip_invalid: bool = False,
    rejects: Any = None,
    dry_run: bool = False,
    chunk_size: int = CHUNK,
) -> IngestResult:
    """Record the events of a usage file, streamed (`items`: its rows from usage.parsing.parsed_rows,
    converted at `now`, the time of the import), in the caller's write transaction. Invalid rows:
    UsageFileErrors (the caller rolls back), or with `skip_invalid`, each goes to `rejects` (a
    usage.file.RejectWriter) and the rest is recorded."""
    from tollgate.locks import namespace
    from tollgate.usage.store import bulk_cache, insert_event_rows, time_encoder

    namespace(session, "usage-files")  # PostgreSQL: files one at a time (their day buckets' row locks,
    # held to COMMIT and taken chunk by chunk, could otherwise deadlock); single reports still interleave
    result = IngestResult(source=source, dry_run=dry_run)
    encode = time_encoder(session)
    recorded = encode(now)
    errors: list[str] = []
    error_count = 0
    conflicts = 0

    def bad(line: int, message: str, raw: Any, *, conflict: bool = False) -> None:
        nonlocal error_count, conflicts
        if skip_invalid:
            result.rejected += 1
            if rejects is not None:
                rejects.write(line, message, raw)
            return
        error_count += 1
        conflicts += conflict
        if len(errors) < MAX_LISTED:
            errors.append(f"line {line}: {message}")

    customer_id = _Identifiers(lambda ident: _bulk_customer(session, ident))
    feature_id = _Identifiers(lambda ident: _bulk_feature(session, ident))
    touched: set[tuple[int, int]] = set()
    batch: list[tuple] = []
    meta: list[tuple] = []

    collector = _CollectorPause()

    def flush() -> None:
        if batch:
            touched.update({(row[1], row[2]) for row in batch})
            # In key order, the unique index is updated leaf after leaf instead of at random (a fifth
            # less work at a million rows). `meta` is sorted the same way (stably, by the key: the two
            # stay aligned, and rows with the same key keep their order in the file) only by
            # _insert_chunk, when some rows were not inserted: the common case needs no second sort.
            batch.sort(key=first)
            with collector.resumed():
                _insert_chunk(session, batch, meta, result, bad, insert_event_rows, now)
                batch.clear()
                meta.clear()

    # The loop below runs once per row (a million times for a big file): cached ids, with locals for
    # speed; the values were checked and converted by usage.parsing.converted.
    customer_ids, feature_ids = customer_id.ids, feature_id.ids
    text_times = isinstance(recorded, str)  # SQLite: times are stored as text (usage.store.time_encoder)
    fromiso, first = datetime.fromisoformat, itemgetter(0)
    add, note = batch.append, meta.append
    rows = 0
    with bulk_cache(session), collector:
        for line, customer, feature, micros, stamp, timed, key, error, problem, raw in items:
            rows += 1
            if error is None:
                try:
                    cid = customer_ids.get(customer) or customer_id(customer)
                    fid = feature_ids.get(feature) or feature_id(feature)
                except InvalidInput as exc:
                    error = exc.message
                else:
                    error = problem
            if error is not None:
                bad(line, error, raw)
                continue
            add((key, cid, fid, micros, stamp if text_times else fromiso(stamp), recorded))
            note((key, line, timed, raw))
            if len(batch) >= chunk_size:
                flush()
        flush()
    result.rows = rows

    if error_count:
        raise UsageFileErrors(errors, error_count, conflicts_only=conflicts == error_count)
    if result.inserted:
        notices, warnings = crossings_after_ingest(session, touched, customer_id.ids, result.added_by_day, now)
        result.notices.extend(notices)
        result.warnings.extend(warnings)
    if result.repeated_in_file:
        result.warnings.append(
            f"{result.repeated_in_file} row(s) repeated an earlier row of the file exactly (same key, or the same "
            "customer, feature, quantity and time without an id) and were counted once. Give each event an id "
            "if they were distinct events."
        )
    if rejects is not None and result.rejected:
        result.rejects_path = str(rejects.path)
    from tollgate import journal

    journal.record(session, action="usage.import", object_type="usage", object_id=source,
                   details={"rows": result.rows, "inserted": result.inserted, "duplicates": result.duplicates,
                            "rejected": result.rejected, "rejects": result.rejects_path},
                   at=now)
    return result


class _CollectorPause:
    """The cyclic garbage collector off while the row loop runs (it makes millions of small tuples and
    no reference cycles; the collector's passes over them cost a tenth of the time), and on again
    while a chunk goes to the database (SQLAlchemy's result objects do make cycles)."""

    def __enter__(self) -> _CollectorPause:
        import gc

        self._gc = gc
        self.was_enabled = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.was_enabled:
            self._gc.enable()

    @contextmanager
    def resumed(self) -> Iterator[None]:
        if self.was_enabled:
            self._gc.enable()
        try:
            yield
        finally:
            self._gc.disable()


def _bulk_customer(session: Session, identifier: str) -> int:
    if not identifier:
        raise InvalidInput("the customer is missing.")
    if "\x00" in identifier:  # no identifier holds one, and PostgreSQL can't even look it up
        raise InvalidInput(f"no customer has the identifier {shown(identifier)}.")
    row = session.execute(select(C.c.id, C.c.status).where(C.c.identifier == identifier)).first()
    if row is None:
        raise InvalidInput(f"no customer has the identifier {shown(identifier)}.")
    if row.status == "archived":
        raise InvalidInput(f"the customer '{identifier}' is archived and can't get new usage.")
    return row.id


def _bulk_feature(session: Session, identifier: str) -> int:
    if not identifier:
        raise InvalidInput("the feature is missing.")
    if "\x00" in identifier:  # no identifier holds one, and PostgreSQL can't even look it up
        raise InvalidInput(f"no feature has the identifier {shown(identifier)}.")
    row = session.execute(select(F.c.id, F.c.type).where(F.c.identifier == identifier)).first()
    if row is None:
        raise InvalidInput(f"no feature has the identifier {shown(identifier)}.")
    if row.type != "metered":
        raise InvalidInput(f"'{identifier}' is a {row.type} feature; only metered features have usage.")
    return row.id


def _insert_chunk(
    session: Session, batch: list[tuple], meta: list[tuple], result: IngestResult, bad, insert, now: datetime
) -> None:
    """Insert one chunk (and count it in the rollups); when some rows were not inserted, tell
    duplicates from conflicts (set-based: one lookup of the chunk's keys; times compared in their
    stored form, see usage.store)."""
    from tollgate.usage.store import same_time, stored_rows

    inserted, by_day = insert(session, batch)
    result.inserted += len(inserted)
    _count_added(result, by_day)
    if len(inserted) == len(batch):
        return
    meta.sort(key=itemgetter(0))  # aligned with the batch, sorted by key (see ingest's flush)
    inserted_keys = {row[0] for row in inserted}
    ours = set(inserted_keys)
    stored = stored_rows(session, (row[0] for row in batch))
    recorded = batch[0][5]
    for (key, cid, fid, micros, occurred, _), (_, line, timed, raw) in zip(batch, meta):
        found = stored[key]
        if (found.customer_id, found.feature_id, found.quantity_micros) != (cid, fid, micros) or (
            timed is not None and not same_time(found.occurred_at, occurred)
        ):
            bad(line, f"the id '{key}' was already used for a different event.", raw, conflict=True)
            continue
        if key in ours:
            ours.discard(key)  # the row this chunk inserted
            continue
        result.duplicates += 1
        if key in inserted_keys or same_time(found.recorded_at, recorded):
            result.repeated_in_file += 1  # recorded by this ingest: a twin


def _count_added(result: IngestResult, by_day: dict[tuple[int, int, datetime], int]) -> None:
    """Keep what this ingest added per customer, feature and UTC day (for the alerts worked out at the end)."""
    for (cid, fid, day), micros in by_day.items():
        days = result.added_by_day.setdefault((cid, fid), {})
        days[day] = days.get(day, 0) + micros
