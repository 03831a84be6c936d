"""Overrides: an exception for one customer and one feature, without touching the plan.

An unexpired override replaces what the customer's subscriptions grant for the feature (spec Rule 3;
the details, including what a metered override keeps of the plans' grant, are in entitlements.py):
- boolean: `true` grants the feature even when no plan does; `false` takes it away.
- config: the value (`10`, `eu`).
- metered: the allowance per period (`50000` or `unlimited`); `hard` sets the limit kind (else the
  plans' kind; soft when no plan grants the feature).
It may carry an expiry (it stops applying at that moment) and a note. One override per customer and
feature: setting it again replaces it; `unset` removes it (the journal keeps the history).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session, select

from tollgate import journal
from tollgate import text as text_rule
from tollgate.clock import rfc3339, utcnow
from tollgate.errors import InvalidInput, NotFound, RuleViolation
from tollgate.grants import parse_grant, value_from_json, value_to_json
from tollgate.models import Customer, Feature, Override

MAX_NOTE = 500


@dataclass(frozen=True)
class OverrideView:
    customer: str
    feature: str
    type: str
    value: bool | int | Decimal | str | None  # boolean/config
    limit: Decimal | None  # metered (None with unlimited)
    unlimited: bool
    hard: bool | None
    expires_at: datetime | None
    note: str | None
    created_at: datetime
    updated_at: datetime
    expired: bool = False

    def describe(self) -> str:
        from tollgate.money import format_decimal
        from tollgate.texts import number_text

        if self.type == "boolean":
            return "on" if self.value else "off"
        if self.type == "config":
            return format_decimal(self.value) if isinstance(self.value, Decimal) else str(self.value)
        amount = "unlimited" if self.unlimited or self.limit is None else number_text(format_decimal(self.limit))
        kind = "" if self.hard is None or self.unlimited else (" (hard)" if self.hard else " (soft)")
        return amount + kind

    def to_dict(self) -> dict[str, Any]:
        from tollgate.money import format_decimal

        value = self.value
        return {
            "customer": self.customer,
            "feature": self.feature,
            "type": self.type,
            "value": format_decimal(value) if isinstance(value, Decimal) else value,
            "limit": None if self.limit is None else format_decimal(self.limit),
            "unlimited": self.unlimited if self.type == "metered" else None,
            "hard": self.hard,
            "expires_at": rfc3339(self.expires_at),
            "expired": self.expired,
            "note": self.note,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


def _view(row: Override, customer: str, feature: Feature, at: datetime) -> OverrideView:
    from tollgate.money import from_micros

    return OverrideView(
        customer=customer,
        feature=feature.identifier,
        type=feature.type,
        value=value_from_json(row.value),
        limit=None if row.limit_micros is None else from_micros(row.limit_micros),
        unlimited=bool(row.unlimited),
        hard=row.hard,
        expires_at=row.expires_at,
        note=row.note,
        created_at=row.created_at,
        updated_at=row.updated_at,
        expired=row.expires_at is not None and row.expires_at <= at,
    )


def _note(note: str | None) -> str | None:
    if note is None or not note.strip():
        return None
    text = note.strip()
    if len(text) > MAX_NOTE:
        raise InvalidInput(f"The note is longer than {MAX_NOTE} characters.")
    text_rule.check(text, what="the note")
    return text


def set_override(
    session: Session,
    *,
    customer: str,
    feature: str,
    value: str,
    hard: bool | None = None,
    expires: datetime | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> OverrideView:
    """Give `customer` its own value for `feature` (replacing an existing override).

    `value` is command-line text: true/false, a number or text, a number or "unlimited" by type.
    Refused for archived customers and archived features, and for an expiry that has passed."""
    from tollgate.catalog import get_feature
    from tollgate.customers import get_customer, require_active
    from tollgate.money import to_micros

    now = now or utcnow()
    owner = get_customer(session, customer, lock="update")  # one change of its overrides at a time
    require_active(owner, doing="get overrides")
    row_feature = get_feature(session, feature, lock="share")
    if row_feature.status == "archived":
        raise RuleViolation(f"The feature '{feature}' is archived; it can't be given to customers any more.")
    grant = parse_grant(row_feature.identifier, row_feature.type, value, path="VALUE")
    if hard is not None and row_feature.type != "metered":
        raise InvalidInput(f"'{feature}' is a {row_feature.type} feature: --hard/--soft are for metered ones.")
    if hard and grant.type == "metered" and grant.limit is None:
        raise InvalidInput("A hard limit needs an allowance; this one is unlimited.")
    if expires is not None and expires <= now:
        raise InvalidInput(f"The expiry {rfc3339(expires)} has already passed.", hint="Give a later --expires.")
    columns = {
        "value": None if grant.type == "metered" else value_to_json(grant.value),
        "limit_micros": None if grant.type != "metered" or grant.limit is None else to_micros(grant.limit),
        "unlimited": grant.type == "metered" and grant.limit is None,
        "hard": hard,
        "expires_at": expires,
        "note": _note(note),
    }
    row = session.exec(
        select(Override).where(Override.customer_id == owner.id, Override.feature_id == row_feature.id)
    ).first()
    action = "override.update" if row is not None else "override.set"
    if row is None:
        row = Override(customer_id=owner.id, feature_id=row_feature.id, created_at=now, updated_at=now, **columns)
    else:
        for name, column_value in columns.items():
            setattr(row, name, column_value)
        row.updated_at = now
    session.add(row)
    session.flush()
    result = _view(row, owner.identifier, row_feature, now)
    journal.record(session, action=action, object_type="override", object_id=f"{owner.identifier}/{feature}",
                   customer_id=owner.id,
                   details={"feature": feature, "value": value, "hard": hard, "expires_at": rfc3339(expires),
                            "note": columns["note"]},
                   at=now)
    return result


def unset_override(session: Session, *, customer: str, feature: str, now: datetime | None = None) -> OverrideView:
    """Remove the customer's override of `feature` (back to what the plans grant). Returns what it was."""
    from tollgate.catalog import get_feature
    from tollgate.customers import get_customer

    now = now or utcnow()
    owner = get_customer(session, customer, lock="update")
    row_feature = get_feature(session, feature)
    row = session.exec(
        select(Override).where(Override.customer_id == owner.id, Override.feature_id == row_feature.id)
    ).first()
    if row is None:
        raise NotFound(f"The customer '{customer}' has no override for '{feature}'.",
                       hint=f"See `tollgate override list {customer}`.")
    before = _view(row, owner.identifier, row_feature, now)
    session.delete(row)
    session.flush()
    journal.record(session, action="override.unset", object_type="override", object_id=f"{owner.identifier}/{feature}",
                   customer_id=owner.id, details=before.to_dict(), at=now)
    return before


def list_overrides(session: Session, *, customer: str | None = None, at: datetime | None = None) -> list[OverrideView]:
    """Overrides (expired ones too, marked), of one customer or all, by customer then feature."""
    from tollgate.customers import get_customer

    at = at or utcnow()
    stmt = select(Override, Customer.identifier, Feature).join(Customer, Customer.id == Override.customer_id).join(
        Feature, Feature.id == Override.feature_id
    )
    if customer is not None:
        stmt = stmt.where(Override.customer_id == get_customer(session, customer).id)
    rows = session.exec(stmt.order_by(Customer.identifier, Feature.identifier)).all()
    return [_view(row, ident, feature, at) for row, ident, feature in rows]
