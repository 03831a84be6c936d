"""The plan version a subscription is on at a moment, read lazily like `cancel_at`: a move scheduled
by `plan migrate --at period-end` (next_version_id / next_version_at / next_amount_minor) takes effect
for every read at or after `next_version_at`, with nothing to run at the boundary. Core only (the
hot path joins on `version_at`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, case

from tollgate import tables

S = tables.subscription


def _moved(at: Any) -> Any:
    return and_(S.c.next_version_at.is_not(None), S.c.next_version_at <= at)


def version_at(at: Any) -> Any:
    """SQL: the id of the plan version the subscription row is on at `at` (a value or bindparam)."""
    return case((_moved(at), S.c.next_version_id), else_=S.c.plan_version_id)


def amount_at(at: Any) -> Any:
    """SQL: the subscription's price (minor units) at `at`: the scheduled version's once it applies."""
    return case((_moved(at), S.c.next_amount_minor), else_=S.c.amount_minor)


def moved(sub: Any, at: datetime) -> bool:
    """Whether the subscription's scheduled move has taken effect at `at` (a row or model object)."""
    return sub.next_version_at is not None and sub.next_version_at <= at


def version_id_of(sub: Any, at: datetime) -> int:
    """The id of the plan version the subscription is on at `at`."""
    return sub.next_version_id if moved(sub, at) else sub.plan_version_id


def amount_of(sub: Any, at: datetime) -> int | None:
    """The subscription's price in minor units at `at`."""
    return sub.next_amount_minor if moved(sub, at) else sub.amount_minor


def settle(sub: Any, at: datetime) -> None:
    """On a model object about to be written: make a move that has taken effect at `at` the stored
    version and price (so a write that starts from the stored ones starts from the true ones)."""
    if moved(sub, at):
        sub.plan_version_id, sub.amount_minor = sub.next_version_id, sub.next_amount_minor
        sub.next_version_id = sub.next_version_at = sub.next_amount_minor = None
