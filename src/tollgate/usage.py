"""Metered usage: report events (one, or a file of them), correct them with voids, and read them back
as series per period. Keyword-only functions over a Session; they raise TollgateError subclasses and
never print: notices (alert thresholds, limits) and warnings (past a hard limit) are returned.

Events (spec: usage event, Rules 4-6):
- A quantity is an exact decimal, stored as integer millionths; it is more than zero (a correction
  is a void, below). `--set` records the delta, positive or negative, that makes the period's
  total equal the given figure.
- The key is the event's identity (usage_store): the same key with the same event is "already
  recorded" (a retry, harmless), the same key for a different event is refused. An event reported
  without a time is compared without its time (a retry a second later is the same event). A `--set`
  event is compared by its target, not its delta (the delta of a retry would be 0).
- A time more than a day ahead is refused: usage is what happened, and a future time is nearly
  always a time-zone mistake.
- The period of an event is its entitlement's usage period at the event's time (the subscription's
  anniversary, see entitlements.py); with nothing granting the feature, the UTC calendar month.
  Usage is never refused for a limit (Rule 5): past a hard limit it is recorded and a warning is
  returned. Crossing an alert threshold or the allowance is journaled (`usage.alert`/`usage.limit`)
  and returned as a notice (Rule 6).
- A single report is journaled (`usage.report`); a file is journaled once (`usage.import`, with its
  counts): the events table is itself the ledger of every event.

Voids: `void_usage` records a reversing event (the negative quantity, at the original's time, so it
lands in the same period) under the key `void:<key>`, with `voids` = the key and the reason. The
original stays. A void can't be voided and an event can't be voided twice. Keys starting with
`void:` are reserved for this.

Files (`ingest`): one write transaction; rows are streamed and inserted in chunks (executemany), so
memory stays bounded whatever the size of the file; customer and feature identifiers resolve to ids
through dict caches; duplicates and conflicting keys are sorted out set-based, per chunk, only when
a chunk inserted fewer rows than it held. By default any invalid row means nothing is written (the
first 20 bad lines are listed, with the count); with `skip_invalid` the good rows are recorded and
the bad ones written to a reject file. Alert thresholds and limits crossed by a file are worked out
once at the end, for each customer's current period (the one access and alerts are about): before =
the period's total less what this file added to it.

A row without an id gets a key derived from its content: `row-` + a 128-bit BLAKE2b digest of
(customer, feature, quantity, timestamp), so re-sending the same file, or the same rows in any order
or split differently, records nothing twice. Two rows that are exactly alike (same customer,
feature, quantity and time) therefore count once; the second is reported as a duplicate ("repeated
in the file"), so give events ids when such twins are real. A row without a timestamp is recorded
at the time of the import; only its place tells it apart, so its line number and the identity of the
file (the BLAKE2b of its bytes, usage_file.identified) join the digest: re-sending the same file
unchanged records nothing again, and the same line in another file is another event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from hashlib import blake2b
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from tollgate import tables
from tollgate.clock import parse_moment, rfc3339, utcnow
from tollgate.errors import Conflict, InvalidInput, NotFound, RuleViolation
from tollgate.unknown import no_customer

if TYPE_CHECKING:  # the report also runs on a Core Connection (the read path loads no sqlmodel)
    from sqlmodel import Session

# Core over the light table clauses (no model classes to define at start-up): see tables.py.
C = tables.customer
F = tables.feature
E = tables.usage_event  # usage_store.EVENT; usage_store (it loads sqlmodel) is imported by the writes only
_SUBSCRIPTION = tables.subscription
_OVERRIDE = tables.override
ZERO = Decimal(0)

MAX_KEY = 200
VOID_PREFIX = "void:"
MAX_REASON = 500
MAX_FUTURE = timedelta(days=1)
"""Events may be stamped at most this far ahead of now (clock skew); later ones are refused."""
CHUNK = 40_000
"""Rows per executemany in a file ingest (about 20 MB of rows in flight; larger chunks in key order
make the unique index cheaper to update)."""
MAX_LISTED = 20
"""Bad lines listed in the error of a file with invalid rows (the count covers all of them)."""
PERIODS = ("day", "week", "month")
MAX_PERIODS = 1000
_MAX_UNITS = 10**12
_MICROS = 1_000_000
_MAX_MICROS = _MAX_UNITS * _MICROS
_BAD_CACHE = 10_000


# -- values ---------------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text if len(text) <= 40 else text[:40] + "…")


def parse_key(value: Any, *, path: str | None = None) -> str:
    """An idempotency key: 1 to 200 printable characters, not starting with `void:` (reserved)."""
    if not isinstance(value, str) or not value or len(value) > MAX_KEY or not value.isprintable() \
            or value != value.strip():
        raise InvalidInput(
            f"the id {_show(value)} is not a usable key: use 1 to {MAX_KEY} printable characters "
            "without leading or trailing spaces.",
            path=path,
        )
    if value.startswith(VOID_PREFIX):
        raise InvalidInput(f"ids starting with '{VOID_PREFIX}' are reserved for voids.", path=path)
    return value


def quantity_micros(value: Any, *, path: str | None = None) -> int:
    """A reported quantity (more than zero, at most 6 decimal places) as integer millionths."""
    if type(value) is str and value.isdigit() and value.isascii() and len(value) <= 13:
        units = int(value)
        if 0 < units <= _MAX_UNITS:
            return units * _MICROS
    return _micros(value, path=path, allow_zero=False)


def _plain_micros(text: str) -> int:
    """The millionths of `123` or `123.45` (ASCII digits, at most 6 decimals), else 0 (not plain: the
    full parser decides). Refuses nothing itself, so it can't disagree with `quantity_micros`."""
    whole, dot, fraction = text.partition(".")
    if not (whole.isdigit() and whole.isascii() and len(whole) <= 13):
        return 0
    if not dot:
        return int(whole) * _MICROS
    if fraction.isdigit() and fraction.isascii() and len(fraction) <= 6:
        return int(whole) * _MICROS + int(fraction.ljust(6, "0"))
    return 0


def _micros(value: Any, *, path: str | None, allow_zero: bool, what: str = "quantity") -> int:
    from tollgate.money import format_decimal, parse_decimal, to_micros

    if isinstance(value, str) and not value.strip():
        raise InvalidInput(f"the {what} is missing.", path=path)
    number = parse_decimal(value, path=path, what=what, allow_negative=True)
    if number < 0:
        raise InvalidInput(
            f"the {what} must not be negative (got {format_decimal(number)}); "
            "to correct recorded usage, void the event (tollgate usage void KEY --reason ...).",
            path=path,
        )
    if number == 0 and not allow_zero:
        raise InvalidInput(f"the {what} must be more than zero.", path=path)
    try:
        return to_micros(number)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, path=path) from None


def event_time(value: Any, *, now: datetime, path: str | None = None) -> datetime:
    """An event's time from RFC 3339 / ISO 8601 text (UTC without an offset), at most a day ahead."""
    if isinstance(value, datetime):
        from tollgate.clock import to_utc_naive

        moment = to_utc_naive(value)
    elif isinstance(value, str):
        moment = parse_moment(value, what="timestamp", path=path)
    else:
        raise InvalidInput(f"the timestamp {_show(value)} is not a time.", path=path)
    if moment > now + MAX_FUTURE:
        raise InvalidInput(
            f"the timestamp {rfc3339(moment)} is more than a day in the future; usage is what happened.",
            hint="Give times in UTC, or with their offset (2026-11-21T10:00:00+02:00).",
            path=path,
        )
    return moment


def _utc_stamp(text: str, fromiso=datetime.fromisoformat, combine=datetime.combine) -> str:
    """The stored text of an ISO 8601 time in UTC (no offset: UTC), `2026-11-21 10:00:00.000000`; what
    `parse_moment(text).isoformat(" ", "microseconds")` gives, faster. Raises ValueError or
    OverflowError where parse_moment would refuse (the caller then calls it for the message).

    A file's rows are mostly `...T10:00:00Z`, `.123Z` or `.123456Z`: once fromisoformat has accepted
    one of those (separators checked, so no week or ordinal date slips through), the text is cut and
    pasted instead of going through two datetime conversions (a microsecond a row)."""
    size = len(text)
    if size > 64:
        raise ValueError(text)
    moment = fromiso(text)
    if (size == 27 or size == 24 or size == 20) and text[-1] == "Z" and text[4] == "-" and text[7] == "-" \
            and text[10] == "T" and text[13] == ":" and text[16] == ":":
        if size == 27 and text[19] == ".":
            return text[:10] + " " + text[11:26]
        if size == 24 and text[19] == ".":
            return text[:10] + " " + text[11:23] + "000"
        if size == 20:
            return text[:10] + " " + text[11:19] + ".000000"
    if moment.tzinfo is not None:  # to naive UTC without astimezone (isoformat is slow on aware times)
        moment = combine(moment.date(), moment.time()) - moment.utcoffset()
    return moment.isoformat(" ", "microseconds")


def derived_key(customer: str, feature: str, micros: int, occurred: datetime | None, line: int,
                file_id: str = "") -> str:
    """The key of a file row without an id (see the module docstring): `row-` and the BLAKE2b-128 of
    customer, feature, quantity in millionths and the UTC time (`2026-11-21 10:00:00.000000`), or
    `file <file_id> line N` for a row without a time. (`ingest` computes the same inline.)"""
    when = occurred.isoformat(" ", "microseconds") if occurred is not None else f"file {file_id} line {line}"
    digest = blake2b(f"{customer}\x1f{feature}\x1f{micros}\x1f{when}".encode(), digest_size=16)
    return "row-" + digest.hexdigest()


def _dec(micros: int | None) -> str | None:
    from tollgate.money import format_decimal, from_micros

    return None if micros is None else format_decimal(from_micros(micros))


def _fmt(number: Decimal | None) -> str | None:
    from tollgate.money import format_decimal

    return None if number is None else format_decimal(number)


# -- lookups --------------------------------------------------------------------------------------------


def _customer(session: Session, identifier: str, *, doing: str | None = None) -> Any:
    row = session.execute(select(C.c.id, C.c.identifier, C.c.status).where(C.c.identifier == identifier)).first()
    if row is None:
        raise no_customer(session, identifier)
    if doing and row.status == "archived":
        raise RuleViolation(f"The customer '{identifier}' is archived and can't {doing}.")
    return row


def _metered_feature(session: Session, identifier: str) -> Any:
    from tollgate.entitlements import lookup_feature

    ref = lookup_feature(session, identifier)
    if ref.type != "metered":
        raise InvalidInput(
            f"'{identifier}' is a {ref.type} feature; only metered features have usage.",
            hint="See `tollgate feature list --type metered`.",
        )
    return ref


def _period(session: Session, *, customer: str, feature: Any, at: datetime) -> tuple[Any, Any]:
    """(effective entitlement or None, the usage period containing `at`)."""
    from tollgate.entitlements import effective_entitlement
    from tollgate.periods import Period, calendar_period

    entitlement = effective_entitlement(session, customer=customer, feature=feature, at=at, with_usage=False)
    if entitlement is None:
        return None, calendar_period("month", at)
    return entitlement, Period(entitlement.period_start, entitlement.reset_at)


def _total(session: Session, customer_id: int, feature_id: int, period: Any) -> int:
    from tollgate.usage_store import period_total

    return period_total(session, customer_id=customer_id, feature_id=feature_id, start=period.start, end=period.end)


def _limit_messages(
    session: Session, entitlement: Any, *, customer: str, customer_id: int, before: Decimal, after: Decimal,
    now: datetime,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(notices, warnings) for usage going from `before` to `after` in the entitlement's period: each
    alert threshold or limit crossed is journaled (Rule 6); past a hard limit, a warning (Rule 5)."""
    if entitlement is None or entitlement.limit is None:
        return (), ()
    from tollgate.entitlements import _record_crossings  # the one place crossings are journaled

    notices = _record_crossings(session, entitlement, customer=customer, customer_id=customer_id,
                                before=before, after=after, now=now)
    warnings: tuple[str, ...] = ()
    if entitlement.hard and after > entitlement.limit and after > before:
        warnings = (
            f"'{customer}' is past its hard limit for '{entitlement.feature}': {_fmt(after)} of "
            f"{_fmt(entitlement.limit)} used. The usage was recorded (usage report never drops what happened); "
            "gate access with `tollgate check --consume`.",
        )
    return notices, warnings


# -- one event ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportResult:
    """What `usage report` did. `recorded` False: the key was already recorded (nothing changed)."""

    key: str
    customer: str
    feature: str
    quantity: Decimal
    at: datetime
    recorded: bool
    generated_key: bool = False
    set_to: Decimal | None = None
    used: Decimal = ZERO
    limit: Decimal | None = None
    hard: bool = False
    period_start: datetime | None = None
    reset_at: datetime | None = None
    unit: str | None = None
    notices: tuple[str, ...] = field(default=(), compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def duplicate(self) -> bool:
        return not self.recorded

    def to_dict(self) -> dict[str, Any]:
        remaining = None if self.limit is None else max(self.limit - self.used, ZERO)
        return {
            "key": self.key,
            "customer": self.customer,
            "feature": self.feature,
            "quantity": _fmt(self.quantity),
            "at": rfc3339(self.at),
            "recorded": self.recorded,
            "duplicate": self.duplicate,
            "generated_key": self.generated_key,
            "set_to": _fmt(self.set_to),
            "used": _fmt(self.used),
            "limit": _fmt(self.limit),
            "remaining": _fmt(remaining),
            "hard": self.hard,
            "period_start": rfc3339(self.period_start),
            "reset_at": rfc3339(self.reset_at),
            "notices": list(self.notices),
            "warnings": list(self.warnings),
        }


def _set_marker(target_micros: int) -> str:
    return f"set total to {_dec(target_micros)}"


def report_usage(
    session: Session,
    *,
    customer: str,
    feature: str,
    quantity: Any,
    at: datetime | str | None = None,
    key: str | None = None,
    set_total: bool = False,
    now: datetime | None = None,
) -> ReportResult:
    """Record one usage event (or, with `set_total`, the delta that makes the period's total equal
    `quantity`). Returns the result with any notices and warnings to show; see the module docstring."""
    from tollgate import identifiers
    from tollgate.money import from_micros
    from tollgate.usage_store import insert_event, stored_event

    now = now or utcnow()
    if set_total:
        micros = _micros(quantity, path=None, allow_zero=True, what="total")
    else:
        micros = quantity_micros(quantity)
    occurred = event_time(at, now=now) if at is not None else now
    timed = at is not None
    generated = key is None
    key = identifiers.public_id("use", 20) if key is None else parse_key(key)
    row = _customer(session, customer, doing="report usage")
    ref = _metered_feature(session, feature)
    marker = _set_marker(micros) if set_total else None

    existing = None if generated else stored_event(session, key)
    if existing is not None:
        same = (existing.customer_id, existing.feature_id) == (row.id, ref.id) and (
            not timed or existing.occurred_at == occurred
        )
        if set_total:
            same = same and _stored_reason(session, key) == marker
        else:
            same = same and existing.quantity_micros == micros
        if not same:
            raise Conflict(
                f"The usage key '{key}' was already used for a different event.",
                hint="Each event needs its own key; re-send an event only with exactly the same values.",
            )
        entitlement, period = _period(session, customer=row.identifier, feature=ref, at=existing.occurred_at)
        return _result(key, row, ref, existing.quantity_micros, existing.occurred_at, False, entitlement, period,
                       used=_total(session, row.id, ref.id, period), set_to=micros if set_total else None)

    from tollgate.db import lock_customer_feature

    lock_customer_feature(session, row.id, ref.id)  # PostgreSQL: the total read below stays the total
    entitlement, period = _period(session, customer=row.identifier, feature=ref, at=occurred)
    before = _total(session, row.id, ref.id, period)
    delta = micros - before if set_total else micros
    if set_total and abs(delta) > _MAX_MICROS:
        raise InvalidInput(f"Setting the total to {_dec(micros)} would record a change of {_dec(delta)}, more than "
                           f"{_MAX_UNITS:,} units at once.", hint="Report the usage in smaller steps.")
    if not insert_event(session, key=key, customer_id=row.id, feature_id=ref.id, quantity_micros=delta,
                        occurred_at=occurred, recorded_at=now, reason=marker, compare_time=timed):
        # the same event, reported at the same moment by someone else, committed between the lookup
        # above and this insert (PostgreSQL's READ COMMITTED; on SQLite, BEGIN IMMEDIATE rules it out)
        existing = stored_event(session, key)
        entitlement, period = _period(session, customer=row.identifier, feature=ref, at=existing.occurred_at)
        return _result(key, row, ref, existing.quantity_micros, existing.occurred_at, False, entitlement, period,
                       used=_total(session, row.id, ref.id, period), set_to=micros if set_total else None)
    after = before + delta
    notices, warnings = _limit_messages(session, entitlement, customer=row.identifier, customer_id=row.id,
                                        before=from_micros(before), after=from_micros(after), now=now)
    details = {"key": key, "feature": ref.identifier, "quantity": _dec(delta), "at": rfc3339(occurred)}
    if set_total:
        details["set_to"] = _dec(micros)
    from tollgate import journal

    journal.record(session, action="usage.report", object_type="usage", object_id=key, customer_id=row.id,
                   details=details, at=now)
    return _result(key, row, ref, delta, occurred, True, entitlement, period, used=after,
                   set_to=micros if set_total else None, generated=generated, notices=notices, warnings=warnings)


def _stored_reason(session: Session, key: str) -> str | None:
    return session.execute(select(E.c.reason).where(E.c.key == key)).scalar()


def _result(key, row, ref, micros, occurred, recorded, entitlement, period, *, used, set_to=None,
            generated=False, notices=(), warnings=()) -> ReportResult:
    from tollgate.money import from_micros

    return ReportResult(
        key=key, customer=row.identifier, feature=ref.identifier, quantity=from_micros(micros), at=occurred,
        recorded=recorded, generated_key=generated, set_to=None if set_to is None else from_micros(set_to),
        used=from_micros(used), limit=entitlement.limit if entitlement else None,
        hard=bool(entitlement.hard) if entitlement else False, period_start=period.start, reset_at=period.end,
        unit=ref.unit, notices=tuple(notices), warnings=tuple(warnings),
    )


# -- voids ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoidResult:
    key: str  # the void's own key (void:<voided>)
    voids: str
    customer: str
    feature: str
    quantity: Decimal  # negative: the voided quantity reversed
    at: datetime  # the voided event's time (so the void lands in the same period)
    recorded_at: datetime
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "voids": self.voids,
            "customer": self.customer,
            "feature": self.feature,
            "quantity": _fmt(self.quantity),
            "at": rfc3339(self.at),
            "recorded_at": rfc3339(self.recorded_at),
            "reason": self.reason,
        }


def _reason(text: Any) -> str:
    value = text.strip() if isinstance(text, str) else ""
    if not value:
        raise InvalidInput("A void needs a reason (--reason TEXT): it is kept with the correction.")
    if len(value) > MAX_REASON or not value.isprintable():
        raise InvalidInput(f"The reason is at most {MAX_REASON} printable characters on one line.")
    return value


def void_usage(session: Session, *, key: str, reason: str, now: datetime | None = None) -> VoidResult:
    """Reverse one recorded event (see the module docstring). Unknown key: NotFound; a void, or an
    event already voided: RuleViolation. Allowed for archived customers (it corrects history)."""
    from tollgate.usage_store import insert_event

    from tollgate.locks import locked

    reason = _reason(reason)
    now = now or utcnow()
    session.execute(locked(session, select(E.c.id).where(E.c.key == key)))  # PostgreSQL: one void at a time
    original = session.execute(
        select(E.c.key, E.c.customer_id, E.c.feature_id, E.c.quantity_micros, E.c.occurred_at, E.c.voids,
               C.c.identifier.label("customer"), F.c.identifier.label("feature"))
        .join(C, C.c.id == E.c.customer_id).join(F, F.c.id == E.c.feature_id)
        .where(E.c.key == key)
    ).first()
    if original is None:
        raise NotFound(f"No usage event has the key '{key}'.", hint="See `tollgate usage show CUSTOMER --json`.")
    if original.voids is not None:
        raise RuleViolation(f"'{key}' is itself a void (of '{original.voids}'); a void can't be voided.",
                            hint="Report the usage again instead.")
    void_key = VOID_PREFIX + key
    earlier = session.execute(select(E.c.recorded_at, E.c.reason).where(E.c.key == void_key)).first()
    if earlier is not None:
        raise RuleViolation(f"The usage event '{key}' was already voided at {rfc3339(earlier.recorded_at)} "
                            f"({earlier.reason}).")
    insert_event(session, key=void_key, customer_id=original.customer_id, feature_id=original.feature_id,
                 quantity_micros=-original.quantity_micros, occurred_at=original.occurred_at, recorded_at=now,
                 voids=key, reason=reason)
    from tollgate import journal

    journal.record(session, action="usage.void", object_type="usage", object_id=key,
                   customer_id=original.customer_id,
                   details={"void_key": void_key, "feature": original.feature, "reason": reason,
                            "voided_quantity": _dec(original.quantity_micros),
                            "quantity": _dec(-original.quantity_micros), "at": rfc3339(original.occurred_at)},
                   at=now)
    from tollgate.money import from_micros

    return VoidResult(key=void_key, voids=key, customer=original.customer, feature=original.feature,
                      quantity=from_micros(-original.quantity_micros), at=original.occurred_at, recorded_at=now,
                      reason=reason)


# -- files ----------------------------------------------------------------------------------------------


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
    file_id: str = "",
    skip_invalid: bool = False,
    rejects: Any = None,
    dry_run: bool = False,
    now: datetime | None = None,
    chunk_size: int = CHUNK,
) -> IngestResult:
    """Record the events of a usage file, streamed (`items` from usage_file.read_items), in the
    caller's write transaction. `file_id` (usage_file.identified) names the file in the keys of rows
    with neither an id nor a timestamp. Invalid rows: UsageFileErrors (the caller rolls back), or with
    `skip_invalid`, each goes to `rejects` (a usage_file.RejectWriter) and the rest is recorded."""
    from tollgate.usage_store import bulk_cache, insert_event_rows, time_encoder

    from tollgate.locks import namespace

    namespace(session, "usage-files")  # PostgreSQL: files one at a time (their day buckets' row locks,
    # held to COMMIT and taken chunk by chunk, could otherwise deadlock); single reports still interleave
    now = now or utcnow()
    result = IngestResult(source=source, dry_run=dry_run)
    encode = time_encoder(session)
    recorded = encode(now)
    latest = now + MAX_FUTURE
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

    # The loop below runs once per row (a million times for a big file), so the common cases are
    # inlined, with locals for speed: cached ids, plain decimal quantities, ISO timestamps, the derived
    # key (see `derived_key`). Anything unusual goes through the functions a single report uses, which
    # raise the messages.
    customer_ids, feature_ids = customer_id.ids, feature_id.ids
    text_times = isinstance(recorded, str)  # SQLite: times are stored as text (usage_store.time_encoder)
    fromiso, utc_stamp, digest = datetime.fromisoformat, _utc_stamp, blake2b
    now_stamp = now.isoformat(" ", "microseconds")
    latest_stamp = latest.isoformat(" ", "microseconds")
    max_micros, plain, first = _MAX_MICROS, _plain_micros, itemgetter(0)
    keep_raw = skip_invalid and rejects is not None  # only a reject file needs the rows as read
    add, note = batch.append, meta.append
    rows = 0
    with bulk_cache(session), collector:
        for line, customer, feature, quantity, timestamp, key, error, raw in items:
            rows += 1
            if error is None:
                try:
                    cid = customer_ids.get(customer) or customer_id(customer)
                    fid = feature_ids.get(feature) or feature_id(feature)
                    micros = plain(quantity) if type(quantity) is str else 0
                    if not 0 < micros <= max_micros:
                        micros = quantity_micros(quantity)
                    if timestamp:
                        try:
                            stamp = utc_stamp(timestamp)
                        except (ValueError, OverflowError):
                            stamp = parse_moment(timestamp, what="timestamp", relative=False).isoformat(
                                " ", "microseconds")
                        timed = when = stamp
                        if stamp > latest_stamp:
                            event_time(fromiso(stamp), now=now)  # raises, with the message
                    else:
                        timed, stamp, when = None, now_stamp, f"file {file_id} line {line}"
                    if key:
                        key = parse_key(key)
                    else:
                        key = "row-" + digest(f"{customer}\x1f{feature}\x1f{micros}\x1f{when}".encode(),
                                              digest_size=16).hexdigest()
                except InvalidInput as exc:
                    error = exc.message
            if error is not None:
                bad(line, error, raw)
                continue
            add((key, cid, fid, micros, stamp if text_times else fromiso(stamp), recorded))
            note((key, line, timed, raw if keep_raw else None))
            if len(batch) >= chunk_size:
                flush()
        flush()
    result.rows = rows

    if error_count:
        raise UsageFileErrors(errors, error_count, conflicts_only=conflicts == error_count)
    if result.inserted:
        _crossings_after_ingest(session, touched, customer_id.ids, feature_id.ids, result, now)
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
        raise InvalidInput(f"no customer has the identifier {_show(identifier)}.")
    row = session.execute(select(C.c.id, C.c.status).where(C.c.identifier == identifier)).first()
    if row is None:
        raise InvalidInput(f"no customer has the identifier {_show(identifier)}.")
    if row.status == "archived":
        raise InvalidInput(f"the customer '{identifier}' is archived and can't get new usage.")
    return row.id


def _bulk_feature(session: Session, identifier: str) -> int:
    if not identifier:
        raise InvalidInput("the feature is missing.")
    if "\x00" in identifier:  # no identifier holds one, and PostgreSQL can't even look it up
        raise InvalidInput(f"no feature has the identifier {_show(identifier)}.")
    row = session.execute(select(F.c.id, F.c.type).where(F.c.identifier == identifier)).first()
    if row is None:
        raise InvalidInput(f"no feature has the identifier {_show(identifier)}.")
    if row.type != "metered":
        raise InvalidInput(f"'{identifier}' is a {row.type} feature; only metered features have usage.")
    return row.id


def _insert_chunk(
    session: Session, batch: list[tuple], meta: list[tuple], result: IngestResult, bad, insert, now: datetime
) -> None:
    """Insert one chunk (and count it in the rollups); when some rows were not inserted, tell
    duplicates from conflicts (set-based: one lookup of the chunk's keys; times compared in their
    stored form, see usage_store)."""
    from tollgate.usage_store import same_time, stored_rows

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


def _crossings_after_ingest(
    session: Session, touched: set[tuple[int, int]], customers: dict[str, int], features: dict[str, int],
    result: IngestResult, now: datetime,
) -> None:
    """Alert thresholds / limits crossed by this ingest in each touched customer's current period:
    before = the period's total less what this ingest recorded in it. Only customers with a
    subscription or an override can have an allowance; one entitlement lookup per such customer."""
    from tollgate.entitlements import effective_entitlements
    from tollgate.money import from_micros
    from tollgate.usage_rollups import window_total

    by_customer: dict[int, set[int]] = {}
    for cid, fid in touched:
        by_customer.setdefault(cid, set()).add(fid)
    with_terms = {cid for (cid,) in session.execute(
        select(_SUBSCRIPTION.c.customer_id).union(select(_OVERRIDE.c.customer_id)))}
    customer_names = {cid: ident for ident, cid in customers.items()}
    for cid in sorted(by_customer.keys() & with_terms):
        name = customer_names[cid]
        for entitlement in effective_entitlements(session, customer=name, at=now, with_usage=False):
            if entitlement.feature_id not in by_customer[cid] or entitlement.type != "metered" \
                    or entitlement.limit is None:
                continue
            start, end = entitlement.period_start, entitlement.reset_at
            added = _added_in(session, result, cid, entitlement.feature_id, start, end, now)
            if not added:
                continue
            after = window_total(session, customer_id=cid, feature_id=entitlement.feature_id, start=start, end=end)
            notices, warnings = _limit_messages(
                session, entitlement, customer=name, customer_id=cid,
                before=from_micros(after - added), after=from_micros(after), now=now,
            )
            result.notices.extend(notices)
            result.warnings.extend(warnings)


def _added_in(session: Session, result: IngestResult, customer_id: int, feature_id: int,
              start: datetime | None, end: datetime | None, now: datetime) -> int:
    """What this ingest added to [start, end): its sums per UTC day for the days inside, and for a
    day cut by an edge, its own events there (recorded_at = now: a bounded scan of one day)."""
    from tollgate.usage_rollups import OPEN_END, OPEN_START

    lo, hi = start or OPEN_START, end or OPEN_END
    total = 0
    for day, micros in result.added_by_day.get((customer_id, feature_id), {}).items():
        if day >= hi or day + timedelta(days=1) <= lo:
            continue
        if day >= lo and hi - day >= timedelta(days=1):
            total += micros
            continue
        part_lo, part_hi = max(lo, day), min(hi, day + timedelta(days=1))
        total += sum(q for (q,) in session.execute(
            select(E.c.quantity_micros).where(E.c.customer_id == customer_id, E.c.feature_id == feature_id,
                                              E.c.occurred_at >= part_lo, E.c.occurred_at < part_hi,
                                              E.c.recorded_at == now)))
    return total


# -- reading usage back ---------------------------------------------------------------------------------


def period_start(day: date, by: str) -> date:
    """The first day of the `by` period (UTC calendar: ISO weeks start on Monday) containing `day`."""
    if by == "day":
        return day
    if by == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period(start: date, by: str) -> date:
    if by == "day":
        return start + timedelta(days=1)
    if by == "week":
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def period_label(start: date, by: str) -> str:
    if by == "day":
        return start.isoformat()
    if by == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{start.year:04d}-{start.month:02d}"


DEFAULT_SPAN = {"day": 30, "week": 12, "month": 12}
"""How many periods `usage show` covers when --from is not given (ending with the current one)."""


def _as_date(value: date | datetime | str | None, what: str) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        from tollgate.clock import to_utc_naive

        return to_utc_naive(value).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return parse_moment(value, what=what).date()
    raise InvalidInput(f"{what} must be a date like 2026-11-21.")


def periods(by: str, start: date | datetime | str | None, end: date | datetime | str | None,
            *, today: date) -> list[date]:
    """The first day of each period shown: from the period containing `start` to the one containing
    `end` (both included; default: the last DEFAULT_SPAN[by] periods up to today)."""
    if by not in PERIODS:
        raise InvalidInput(f"--by must be one of {', '.join(PERIODS)}, not {by!r}.")
    last_day, first_day = _as_date(end, "--to") or today, _as_date(start, "--from")
    try:
        last = period_start(last_day, by)
        if first_day is None:
            first = last
            for _ in range(DEFAULT_SPAN[by] - 1):
                first = period_start(first - timedelta(days=1), by)
        else:
            first = period_start(first_day, by)
        if first > last:
            raise InvalidInput("--from is after --to.", hint="Give --from DATE earlier than --to DATE.")
        out = [first]
        while out[-1] < last:
            if len(out) >= MAX_PERIODS:
                raise InvalidInput(f"That is more than {MAX_PERIODS} periods.",
                                   hint="Narrow --from/--to, or count by week or month (--by).")
            out.append(next_period(out[-1], by))
        next_period(out[-1], by)  # the last period's end must be a date too
    except (OverflowError, ValueError):  # the edge of the calendar: datetime holds the years 1 to 9999
        raise InvalidInput("Those periods reach past the first or the last day of the calendar (years 1 to 9999).",
                           hint="Choose dates further from either end (without --from, the periods shown start "
                           "30 days, 12 weeks or 12 months before --to).") from None
    return out


def _metered_entitlements(session: Session, customer: Any, now: datetime) -> list[Any]:
    """The customer's metered effective entitlements. A customer with no subscription and no override
    at all (usage tracked without a plan) has none: two indexed lookups answer that without loading
    the entitlement machinery (a tenth of a second of start-up for `usage show`)."""
    if customer.status == "archived":
        return []
    if not any(
        session.execute(select(t.c.customer_id).where(t.c.customer_id == customer.id).limit(1)).first()
        for t in (_SUBSCRIPTION, _OVERRIDE)
    ):
        return []
    from tollgate.entitlements import effective_entitlements

    return [e for e in effective_entitlements(session, customer=customer.identifier, at=now) if e.type == "metered"]


@dataclass(frozen=True)
class FeatureUsage:
    """One metered feature's usage for one customer: the series over the periods shown, and the
    current usage period against the allowance (calendar month when nothing grants the feature)."""

    feature: str
    name: str
    unit: str | None
    series: tuple[Decimal, ...]
    total: Decimal
    corrections: Decimal
    used: Decimal
    limit: Decimal | None
    granted: bool
    hard: bool
    reset: str | None
    period_start: datetime | None
    reset_at: datetime | None
    source: str | None

    @property
    def percent_used(self) -> Decimal | None:
        if self.limit is None or self.limit == 0:
            return None
        return (self.used * 100 / self.limit).quantize(Decimal("0.1"))

    @property
    def remaining(self) -> Decimal | None:
        return None if self.limit is None else max(self.limit - self.used, ZERO)


@dataclass(frozen=True)
class Correction:
    key: str
    voids: str
    feature: str
    quantity: Decimal
    at: datetime
    recorded_at: datetime
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "voids": self.voids, "feature": self.feature, "quantity": _fmt(self.quantity),
                "at": rfc3339(self.at), "recorded_at": rfc3339(self.recorded_at), "reason": self.reason}


@dataclass(frozen=True)
class UsageReport:
    customer: str
    by: str
    starts: tuple[date, ...]
    features: tuple[FeatureUsage, ...]
    corrections: tuple[Correction, ...]
    at: datetime

    @property
    def start(self) -> datetime:
        return datetime.combine(self.starts[0], datetime.min.time())

    @property
    def end(self) -> datetime:
        return datetime.combine(next_period(self.starts[-1], self.by), datetime.min.time())

    def labels(self) -> list[str]:
        return [period_label(s, self.by) for s in self.starts]

    def to_dict(self) -> dict[str, Any]:
        """The `usage show --json` shape: series per feature (exact decimal strings), the current
        period against the allowance, and the corrections (voids) of events in the range."""
        labels = self.labels()
        starts = [rfc3339(datetime.combine(s, datetime.min.time())) for s in self.starts]
        return {
            "customer": self.customer,
            "by": self.by,
            "from": rfc3339(self.start),
            "to": rfc3339(self.end),
            "features": [
                {
                    "feature": f.feature,
                    "name": f.name,
                    "unit": f.unit,
                    "series": [{"period": label, "start": start, "quantity": _fmt(value)}
                               for label, start, value in zip(labels, starts, f.series)],
                    "total": _fmt(f.total),
                    "corrections": _fmt(f.corrections),
                    "used": _fmt(f.used),
                    "limit": _fmt(f.limit),
                    "unlimited": f.granted and f.limit is None,
                    "remaining": _fmt(f.remaining),
                    "percent_used": _fmt(f.percent_used),
                    "hard": f.hard,
                    "reset": f.reset,
                    "period_start": rfc3339(f.period_start),
                    "reset_at": rfc3339(f.reset_at),
                    "source": f.source,
                }
                for f in self.features
            ],
            "corrections": [c.to_dict() for c in self.corrections],
        }


def usage_report(
    session: Session,
    *,
    customer: str,
    feature: str | None = None,
    by: str = "day",
    start: date | datetime | str | None = None,
    end: date | datetime | str | None = None,
    now: datetime | None = None,
) -> UsageReport:
    """A customer's usage per period (`by` day, week or month, UTC calendar) for every metered feature
    they used in the range or are entitled to (or just `feature`), with the current period's usage
    against the allowance. Works for archived customers too (their history stays)."""
    from tollgate.money import from_micros
    from tollgate.periods import calendar_period

    now = now or utcnow()
    starts = periods(by, start, end, today=now.date())
    row = _customer(session, customer)
    only = _metered_feature(session, feature) if feature is not None else None
    begin = datetime.combine(starts[0], datetime.min.time())
    finish = datetime.combine(next_period(starts[-1], by), datetime.min.time())

    from tollgate.usage_rollups import day_totals

    sums: dict[int, dict[date, int]] = {}
    for fid, day, micros in day_totals(session, customer_id=row.id, start=begin, end=finish,
                                       feature_id=only.id if only is not None else None):
        bucket = period_start(day.date(), by)
        per_feature = sums.setdefault(fid, {})
        per_feature[bucket] = per_feature.get(bucket, 0) + micros
    where = [E.c.customer_id == row.id, E.c.occurred_at >= begin, E.c.occurred_at < finish]
    if only is not None:
        where.append(E.c.feature_id == only.id)

    corrections = [
        Correction(r.key, r.voids, r.feature, from_micros(r.quantity_micros), r.occurred_at, r.recorded_at, r.reason)
        for r in session.execute(
            select(E.c.key, E.c.voids, E.c.quantity_micros, E.c.occurred_at, E.c.recorded_at, E.c.reason,
                   F.c.identifier.label("feature"))
            .join(F, F.c.id == E.c.feature_id)
            .where(*where, E.c.voids.is_not(None))
            .order_by(E.c.occurred_at, E.c.id)
        )
    ]

    entitled = {
        e.feature_id: e
        for e in _metered_entitlements(session, row, now)
        if only is None or e.feature_id == only.id
    }
    wanted = set(sums) | set(entitled)
    if only is not None:
        wanted.add(only.id)
    info = {
        r.id: r
        for r in session.execute(select(F.c.id, F.c.identifier, F.c.name, F.c.unit).where(F.c.id.in_(wanted)))
    } if wanted else {}
    corrected: dict[str, Decimal] = {}
    for c in corrections:
        corrected[c.feature] = corrected.get(c.feature, ZERO) + c.quantity

    features = []
    for fid in sorted(wanted, key=lambda i: info[i].identifier):
        meta = info[fid]
        per = sums.get(fid, {})
        series = tuple(from_micros(per.get(s, 0)) for s in starts)
        e = entitled.get(fid)
        if e is not None:
            used, limit, hard, reset = e.used, e.limit, e.hard, e.reset
            p_start, p_end, source = e.period_start, e.reset_at, e.source
        else:
            period = calendar_period("month", now)
            used = from_micros(_total(session, row.id, fid, period))
            limit, hard, reset, p_start, p_end, source = None, False, "month", period.start, period.end, None
        features.append(FeatureUsage(
            feature=meta.identifier, name=meta.name, unit=meta.unit, series=series,
            total=from_micros(sum(per.values())), corrections=corrected.get(meta.identifier, ZERO), used=used,
            limit=limit, granted=e is not None, hard=hard, reset=reset, period_start=p_start, reset_at=p_end,
            source=source,
        ))
    return UsageReport(customer=row.identifier, by=by, starts=tuple(starts), features=tuple(features),
                       corrections=tuple(corrections), at=now)
