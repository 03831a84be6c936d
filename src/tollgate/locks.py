"""The locks of read-then-write paths: what makes "read a row, decide, write" safe on PostgreSQL.

SQLite needs none of this: a write transaction begins IMMEDIATE and holds the database's write lock
before its first read (engines.py), so writers run one at a time. PostgreSQL runs write transactions at
READ COMMITTED: two of them may read the same row, both decide, and both write (two live keys after
two concurrent `license regenerate`, a trial on a customer archived at the same moment). So every
path whose decision depends on what it reads first locks the row the decision is about, *before*
reading it, with `SELECT ... FOR UPDATE` (`locked`): a second writer waits there until the first
commits, then reads what the first wrote (the locked read returns the row's latest version, and
each later statement sees the first's commit). Where the decision is about rows that do not exist
yet (creating by identifier: imports, `customer add`, catalog changes) there is no row to lock, and
the path takes a transaction-scoped advisory lock on the namespace instead (`namespace`). Every lock
here is released at COMMIT or ROLLBACK, and every function is a no-op on SQLite.

What each path locks (the parent row of its decision):
- customer row: `customer archive` and `edit`, `sub add`, `override set` and `unset`;
- subscription row: `sub edit` and `sub cancel`, and every change of a key issued for it;
- license row: `license activate`, `deactivate`, `regenerate`, `revoke`, `edit`, `file` (so the
  activation limit and the per-day limits are decided one call at a time);
- catalog rows, shared (FOR SHARE): the plan of `sub add` and `sub edit --plan`, the feature of
  `override set`, so that archiving one waits for those and is then seen by them;
- namespaces: "customers" (`customer add`, `customer import`), "catalog" (`catalog import`, adding
  and archiving products, features and plans), "signing-keys" (making, rotating and retiring the
  keys that sign license files: `license file` takes it before the license row);
- customer + feature (advisory, `lock_customer_feature`): `consume`'s check-and-record, and a
  single usage report.

Order (deadlock freedom): a transaction takes its locks in this order and never one earlier in it
after a later one: namespace -> customer -> subscription -> license -> catalog rows (shared) ->
customer+feature. So `license regenerate` locks the key's subscription before the key (a concurrent
`sub cancel` holds the subscription and then revokes the subscription's keys); `sub edit` never
locks the customer (an archived customer has no live subscription left to edit). The schema lock
(schema.SCHEMA_LOCK_KEY) is taken alone, by schema creation and migrations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, select

from tollgate.engines import dialect_name

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlmodel import Session

Mode = Literal["update", "share"]

# pg_advisory_xact_lock(bigint) keys of the namespaces (next to schema.SCHEMA_LOCK_KEY, "tollgate"; the
# (int, int) keys of lock_customer_feature are a separate key space in PostgreSQL).
NAMESPACES = {"customers": 0x746F6C6C67617401, "catalog": 0x746F6C6C67617402, "usage-files": 0x746F6C6C67617403,
              "signing-keys": 0x746F6C6C67617404}


def _on_postgres(session: Session | Connection) -> bool:
    return dialect_name(session) == "postgresql"


def locked(session: Session, stmt: Any, mode: Mode | None = "update") -> Any:
    """`stmt` (a SELECT of the rows a decision is about) locking what it reads until the transaction
    ends: FOR UPDATE, or FOR SHARE with mode "share" (None: `stmt` as it is). The rows it returns
    are their latest committed version, also over objects the session loaded before. On SQLite,
    `stmt` as it is."""
    if mode is None or not _on_postgres(session):
        return stmt
    return stmt.with_for_update(read=mode == "share").execution_options(populate_existing=True)


def lock_ids(session: Session, model: Any, ids: Any) -> None:
    """Lock rows of `model` by id (FOR UPDATE, in id order), when the id is known before the row is
    read (e.g. a key's subscription)."""
    wanted = sorted({i for i in ids if i is not None})
    if wanted and _on_postgres(session):
        session.execute(locked(session, select(model.id).where(model.id.in_(wanted)).order_by(model.id)))


def namespace(session: Session, name: str) -> None:
    """Hold the advisory lock of a namespace ("customers", "catalog") until the transaction ends:
    writers creating rows in it by identifier run one at a time, each seeing the others' rows."""
    if _on_postgres(session):
        session.execute(select(func.pg_advisory_xact_lock(NAMESPACES[name])))


def lock_customer_feature(session: Session | Connection, customer_id: int, feature_id: int) -> None:
    """Hold, until the transaction ends, the lock that serializes check-and-record of one customer's
    usage of one feature (`consume`): a second caller waits here and then reads the usage the first
    one recorded, so together they can never pass a hard limit.

    SQLite: nothing to do, the write transaction began IMMEDIATE and holds the database's write lock.
    PostgreSQL: pg_advisory_xact_lock(customer_id, feature_id), released at COMMIT or ROLLBACK; call
    it before reading the usage (READ COMMITTED: the reads that follow see the other's commit)."""
    if _on_postgres(session):
        session.execute(select(func.pg_advisory_xact_lock(customer_id, feature_id)))
