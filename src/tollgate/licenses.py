"""License keys (spec Rule 8): issued per subscription or one-time purchase of a plan with a license
policy, then validated, activated, deactivated, regenerated, revoked and edited.

Decisions (also in the README):
- A key is 25 characters of Crockford base32 from `secrets` (125 bits), shown in five groups:
  `7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E`. Input is forgiving: case, spaces and dashes don't matter and the
  look-alikes O/I/L read as 0/1/1. A string that cannot be a key at all is *malformed*.
- The expiry is a duration from the purchase (the subscription's start): "30d", "6m", "1y" (months
  and years are calendar months, the day clamped to the month's end, like billing periods) or never.
- Status is computed at a moment, never stale: `revoked` when revoked at or before it, else `expired`
  when `expires_at` is at or before it, else `active`.
- Canceling a subscription revokes its keys when its access ends, as a *stored revoke time*: an
  immediate cancel revokes them now; a cancel at period end writes the period end into `revoked_at`
  (the key keeps working until then, and `license show` says when it stops). The `status` column
  says `revoked` only once a revoke is in effect at the time it was written; readers always use
  `status_at`. Ending a subscription by status (`sub edit --status canceled|expired`) revokes too.
- A plan change (`sub edit --plan`) to a plan with a license policy issues a key when the
  subscription has none; a key already issued stays as it is (its plan is the one it was bought on).
- Activations: an instance name -> a random instance id (`inst_...`). Activating a name that is
  already active on the key returns that activation (an application re-activating the same machine
  does not use another seat). Past the activation limit, activation is refused. Deactivation keeps
  the row (history) and frees the seat. Lowering the limit below the seats in use is allowed: those
  instances stay activated, new ones are refused until enough are deactivated.
- Regenerating issues a new key with the same customer, plan, subscription, limit and expiry and no
  activations; the old key is revoked at once (its activations stop working with it) and remembers
  its replacement (shown by `license show`, never by `validate`).
- `validate` is an answer, never an error: unknown and malformed keys are invalid with that reason.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from tollgate import identifiers, journal, license_limits, locks
from tollgate import text as text_rule
from tollgate.clock import rfc3339, utcnow
from tollgate.errors import Denied, InvalidInput, NotFound, RuleViolation
from tollgate.models import (
    Customer,
    License,
    LicenseActivation,
    Plan,
    PlanLicensePolicy,
    Subscription,
)
from tollgate.deliverable_views import LicenseView
from tollgate.profile import active_activations, license_views, status_at

KEY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
KEY_CHARS = 25  # 125 bits
KEY_GROUP = 5
KEY_BITS = KEY_CHARS * 5
MAX_INSTANCE_NAME = 200
MAX_ACTIVATION_LIMIT = 1_000_000
STATUSES = ("active", "revoked", "expired")
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
_IGNORED = re.compile(r"[\s\-]+")
_DURATION = re.compile(r"^([1-9][0-9]{0,3})([dmy])$")
UNCHANGED: Any = object()


class LicenseRefused(Denied):
    """An activation refused by the key's state (`reason`: revoked, expired, limit_reached). Exit 1."""

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


# -- keys ------------------------------------------------------------------------------------------


def generate_key() -> str:
    """A new key: 125 random bits from the OS's secure source, as five groups of Crockford base32."""
    number = secrets.randbits(KEY_BITS)
    chars = []
    for _ in range(KEY_CHARS):
        chars.append(KEY_ALPHABET[number & 31])
        number >>= 5
    return _grouped("".join(chars))


def _grouped(chars: str) -> str:
    return "-".join(chars[i : i + KEY_GROUP] for i in range(0, KEY_CHARS, KEY_GROUP))


def normalize_key(text: Any) -> str | None:
    """The canonical spelling of a key as typed (any case, spaces/dashes anywhere, O/I/L for 0/1/1),
    or None when the text cannot be a key (malformed)."""
    if not isinstance(text, str) or len(text) > 4 * KEY_CHARS:
        return None
    chars = _IGNORED.sub("", text).upper().translate(_READ_AS)
    if len(chars) != KEY_CHARS or any(ch not in KEY_ALPHABET for ch in chars):
        return None
    return _grouped(chars)


def parse_key(text: Any) -> str:
    """A key given to a command: its canonical spelling, or InvalidInput (exit 2) when malformed."""
    key = normalize_key(text)
    if key is None:
        raise InvalidInput(
            f"'{text}' is not a license key (25 letters and digits in five groups, like 7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E)."
        )
    return key


# -- policies, durations, limits ------------------------------------------------------------------------


def add_duration(start: datetime, duration: str) -> datetime | None:
    """`start` + "30d" / "6m" / "1y" (calendar months, day clamped); "never" -> None, and so is a
    duration that reaches past the last date there is (the year 9999): it never expires."""
    from tollgate.periods import shift_months

    if duration == "never":
        return None
    match = _DURATION.match(duration or "")
    if match is None:
        raise InvalidInput(f"'{duration}' is not a duration: use e.g. 30d, 6m, 1y or never.")
    amount, unit = int(match.group(1)), match.group(2)
    try:
        if unit == "d":
            return start + timedelta(days=amount)
        return shift_months(start, amount * (12 if unit == "y" else 1))
    except (OverflowError, ValueError):  # past the year 9999
        return None


def parse_activation_limit(value: Any) -> int | None:
    """A whole number of at least 1, or "unlimited" (-> None)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "unlimited":
            return None
        value = int(text) if text.isdigit() and len(text) <= 7 else None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ACTIVATION_LIMIT:
        raise InvalidInput(
            f"The activation limit is a whole number from 1 to {MAX_ACTIVATION_LIMIT:,}, or unlimited."
        )
    return value


def parse_expiry(value: Any) -> datetime | None:
    """A date or time (RFC 3339, UTC; `7d` is 7 days from now) or "never" (-> None)."""
    from tollgate.clock import parse_moment

    if isinstance(value, datetime):
        from tollgate.clock import to_utc_naive

        return to_utc_naive(value)
    if isinstance(value, str) and value.strip().lower() == "never":
        return None
    return parse_moment(value, what="expiry date", future=True)


def validate_instance_name(name: Any) -> str:
    text = name.strip() if isinstance(name, str) else ""
    if not text:
        raise InvalidInput("An activation needs an instance name (e.g. the machine's host name).")
    if len(text) > MAX_INSTANCE_NAME:
        raise InvalidInput(f"The instance name is longer than {MAX_INSTANCE_NAME} characters.")
    text_rule.check(text, what="the instance name")
    return text


# -- lookups ----------------------------------------------------------------------------------------


def get_license(session: Session, key: str, *, lock: bool = False) -> License:
    """The license with this key; InvalidInput when malformed, NotFound when unknown (both exit 2).

    `lock`: for a change of the key, lock its subscription and then the key itself (locks.py: the
    subscription comes first, as `sub cancel` holds it while it revokes the subscription's keys), so
    changes of one key run one at a time and each sees what the one before did."""
    canonical = parse_key(key)
    stmt = select(License).where(License.key == canonical)
    if lock:
        owner = session.exec(select(License.subscription_id).where(License.key == canonical)).first()
        locks.lock_ids(session, Subscription, [owner])  # (a key's subscription never changes)
        stmt = locks.locked(session, stmt)
    found = session.exec(stmt).first()
    if found is None:
        raise NotFound(f"No license has the key '{canonical}'.", hint="See `tollgate license list`.")
    return found


def list_licenses(
    session: Session, *, customer_id: int | None = None, plan_id: int | None = None,
    subscription_id: int | None = None,
) -> list[License]:
    """Licenses (every status), oldest first."""
    stmt = select(License)
    if customer_id is not None:
        stmt = stmt.where(License.customer_id == customer_id)
    if plan_id is not None:
        stmt = stmt.where(License.plan_id == plan_id)
    if subscription_id is not None:
        stmt = stmt.where(License.subscription_id == subscription_id)
    return list(session.exec(stmt.order_by(License.created_at, License.id)).all())


# -- views (profile.py) -------------------------------------------------------------------------------


def license_view(session: Session, license: License, *, at: datetime | None = None) -> LicenseView:
    return license_views(session, [license], at=at)[0]


# -- issuing ----------------------------------------------------------------------------------------


def _new_license(session: Session, *, template: dict[str, Any], now: datetime) -> License:
    while True:
        key = generate_key()
        if session.exec(select(License.id).where(License.key == key)).first() is None:
            break  # (a collision among 2**125 keys is not expected; checking costs one indexed read)
    license = License(key=key, created_at=now, **template)
    session.add(license)
    session.flush()
    return license


def version_for(session: Session, *, plan_id: int, subscription: Subscription | None, at: datetime) -> int:
    """The id of the plan version that governs a key (its policy, its license files' features): the one
    its subscription is on at `at`; a key without a subscription: its plan's current version."""
    from tollgate.plan_versions import current_versions
    from tollgate.sub_versions import version_id_of

    if subscription is not None:
        return version_id_of(subscription, at)
    return current_versions(session, [plan_id])[plan_id][0]


def license_version(session: Session, license: License, at: datetime) -> int:
    """version_for of an issued key."""
    subscription = session.get(Subscription, license.subscription_id) if license.subscription_id else None
    return version_for(session, plan_id=license.plan_id, subscription=subscription, at=at)


def issue_for_subscription(session: Session, *, subscription: Subscription, now: datetime | None = None) -> License | None:
    """Issue the key of a new subscription (or one-time purchase) when its plan has a license policy.

    Returns the license, or None when the plan issues no keys. Idempotent: a subscription that already
    has a key is returned as is. The expiry counts from the purchase (the subscription's start)."""
    now = now or utcnow()
    policy = session.get(PlanLicensePolicy, version_for(session, plan_id=subscription.plan_id,
                                                        subscription=subscription, at=now))
    if policy is None:
        return None
    existing = session.exec(
        select(License).where(License.subscription_id == subscription.id, col(License.replaced_by).is_(None))
    ).first()
    if existing is not None:
        return existing
    license = _new_license(
        session,
        template={
            "customer_id": subscription.customer_id,
            "plan_id": subscription.plan_id,
            "subscription_id": subscription.id,
            "activation_limit": policy.activation_limit,
            "expires_at": add_duration(subscription.start_at, policy.expires_after),
            "revoked_at": subscription.cancel_at,  # a subscription already set to end: its key ends with it
        },
        now=now,
    )
    journal.record(
        session, action="license.issue", object_type="license", object_id=license.key,
        customer_id=license.customer_id,
        details={"subscription": subscription.public_id, "activation_limit": license.activation_limit,
                 "expires_at": rfc3339(license.expires_at)},
        at=now,
    )
    return license


def revoke_for_subscription(
    session: Session, *, subscription: Subscription, at: datetime | None = None, now: datetime | None = None
) -> list[License]:
    """Revoke a subscription's keys when its access ends: at `at` (default: its `cancel_at` when that
    is later than now, else now). A moment in the future is stored as a scheduled revoke."""
    now = now or utcnow()
    if at is None:
        at = subscription.cancel_at if subscription.cancel_at is not None and subscription.cancel_at > now else now
    changed = []
    for license in list_licenses(session, subscription_id=subscription.id):
        if status_at(license, now) == "revoked" or (license.revoked_at is not None and license.revoked_at <= at):
            continue  # already revoked, or revoked sooner
        license.revoked_at = at
        if at <= now:
            license.status = "revoked"
        session.add(license)
        changed.append(license)
        journal.record(
            session, action="license.revoke" if at <= now else "license.revoke_scheduled",
            object_type="license", object_id=license.key, customer_id=license.customer_id,
            details={"subscription": subscription.public_id, "revoked_at": rfc3339(at), "reason": "subscription canceled"},
            at=now,
        )
    session.flush()
    return changed


# -- validation (for applications) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Validation:
    """The answer to "is this key good (on this instance)?". `reason` is None when valid, else one of
    unknown, malformed, revoked, expired, instance_not_activated; `message` says it for a person."""

    key: str
    valid: bool
    reason: str | None
    message: str
    status: str | None = None
    customer: str | None = None
    plan: str | None = None
    expires_at: datetime | None = None
    activation_limit: int | None = None
    activations: int = 0
    instance_id: str | None = None

    def __bool__(self) -> bool:
        return self.valid

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "valid": self.valid,
            "reason": self.reason,
            "message": self.message,
            "status": self.status,
            "customer": self.customer,
            "plan": self.plan,
            "expires_at": rfc3339(self.expires_at),
            "activation_limit": "unlimited" if self.activation_limit is None else self.activation_limit,
            "activations": self.activations,
            "instance_id": self.instance_id,
        }


def validate_license(session: Session, *, key: str, instance: str | None = None, at: datetime | None = None) -> Validation:
    """Whether a key is valid at `at` (default now), and, with `instance`, activated on that instance."""
    at = at or utcnow()
    canonical = normalize_key(key)
    shown = canonical or (key if isinstance(key, str) else repr(key))
    if canonical is None:
        return Validation(shown, False, "malformed", "This is not a license key (25 letters and digits in five groups).")
    license = session.exec(select(License).where(License.key == canonical)).first()
    if license is None:
        return Validation(canonical, False, "unknown", "No license has this key.")
    status = status_at(license, at)
    current = active_activations(session, [license.id]).get(license.id, [])
    customer = session.get(Customer, license.customer_id)
    plan = session.get(Plan, license.plan_id)
    facts = {
        "status": status, "customer": customer.identifier if customer else None,
        "plan": plan.identifier if plan else None, "expires_at": license.expires_at,
        "activation_limit": license.activation_limit, "activations": len(current), "instance_id": instance,
    }
    if status == "revoked":
        when = rfc3339(license.revoked_at) if license.revoked_at else "earlier"
        return Validation(canonical, False, "revoked", f"This key was revoked ({when}).", **facts)
    if status == "expired":
        return Validation(canonical, False, "expired", f"This key expired at {rfc3339(license.expires_at)}.", **facts)
    if instance is not None and not any(a.instance_id == instance for a in current):
        return Validation(canonical, False, "instance_not_activated",
                          f"The key is valid, but the instance '{instance}' is not activated on it.", **facts)
    return Validation(canonical, True, None, "The key is valid." if instance is None
                      else "The key is valid and activated on this instance.", **facts)


# -- changes ------------------------------------------------------------------------------------------


def refuse_unless_active(license: License, now: datetime, doing: str) -> None:
    status = status_at(license, now)
    if status == "revoked":
        raise LicenseRefused(f"The key {license.key} is revoked; {doing} is refused.", reason="revoked")
    if status == "expired":
        raise LicenseRefused(
            f"The key {license.key} expired at {rfc3339(license.expires_at)}; {doing} is refused.",
            reason="expired", hint="Extend it with `tollgate license edit KEY --expires DATE|never`.",
        )


def activate(session: Session, *, key: str, name: str, now: datetime | None = None) -> tuple[LicenseActivation, bool]:
    """Activate the key on an instance; returns (the activation, created). A name already active on
    the key returns its activation (created False). Refused when the key is revoked or expired, or
    the activation limit is reached."""
    now = now or utcnow()
    name = validate_instance_name(name)
    license = get_license(session, key, lock=True)
    refuse_unless_active(license, now, "activation")
    current = active_activations(session, [license.id]).get(license.id, [])
    for activation in current:
        if activation.name == name:
            return activation, False
    license_limits.check_activations(session, license, now)
    if license.activation_limit is not None and len(current) >= license.activation_limit:
        raise LicenseRefused(
            f"The key {license.key} is activated on {len(current)} of {license.activation_limit} instances; "
            "the activation limit is reached.",
            reason="limit_reached",
            hint="Deactivate an instance first (tollgate license deactivate KEY --instance ID), "
                 "or raise the limit (tollgate license edit KEY --activation-limit N).",
        )
    activation = LicenseActivation(license_id=license.id, instance_id=identifiers.public_id("inst"), name=name,
                                   activated_at=now)
    session.add(activation)
    session.flush()
    journal.record(session, action="license.activate", object_type="license", object_id=license.key,
                   customer_id=license.customer_id,
                   details={"instance_id": activation.instance_id, "name": name}, at=now)
    return activation, True


def deactivate(session: Session, *, key: str, instance: str, now: datetime | None = None) -> LicenseActivation:
    """Deactivate an instance of the key (the seat is freed; the history stays)."""
    now = now or utcnow()
    license = get_license(session, key, lock=True)
    activation = session.exec(
        select(LicenseActivation).where(LicenseActivation.license_id == license.id,
                                        LicenseActivation.instance_id == (instance or "").strip())
    ).first()
    if activation is None:
        raise NotFound(f"The key {license.key} has no instance '{instance}'.",
                       hint=f"See `tollgate license show {license.key}`.")
    if activation.deactivated_at is not None:
        raise RuleViolation(
            f"The instance {activation.instance_id} ({activation.name}) was already deactivated at "
            f"{rfc3339(activation.deactivated_at)}."
        )
    activation.deactivated_at = now
    session.add(activation)
    session.flush()
    journal.record(session, action="license.deactivate", object_type="license", object_id=license.key,
                   customer_id=license.customer_id,
                   details={"instance_id": activation.instance_id, "name": activation.name}, at=now)
    return activation


def revoke(session: Session, *, key: str, now: datetime | None = None) -> License:
    """Revoke a key now: it and its activations stop working."""
    now = now or utcnow()
    license = get_license(session, key, lock=True)
    if status_at(license, now) == "revoked":
        raise RuleViolation(f"The key {license.key} is already revoked (at {rfc3339(license.revoked_at)}).")
    license.status = "revoked"
    license.revoked_at = now
    session.add(license)
    session.flush()
    journal.record(session, action="license.revoke", object_type="license", object_id=license.key,
                   customer_id=license.customer_id, details={"reason": "revoked by an operator"}, at=now)
    return license


def regenerate(session: Session, *, key: str, now: datetime | None = None) -> License:
    """Replace a key by a new one (same customer, plan, subscription, limit and expiry; no activations).
    The old key is revoked at once and points at its replacement."""
    now = now or utcnow()
    old = get_license(session, key, lock=True)
    if status_at(old, now) == "revoked":
        raise RuleViolation(f"The key {old.key} is revoked; a revoked key can't be regenerated.")
    new = _new_license(
        session,
        template={
            "customer_id": old.customer_id, "plan_id": old.plan_id, "subscription_id": old.subscription_id,
            "activation_limit": old.activation_limit, "expires_at": old.expires_at,
            "revoked_at": old.revoked_at,  # a scheduled revoke (cancel at period end) carries over
        },
        now=now,
    )
    old.status = "revoked"
    old.revoked_at = now
    old.replaced_by = new.key
    session.add(old)
    session.flush()
    journal.record(session, action="license.regenerate", object_type="license", object_id=old.key,
                   customer_id=old.customer_id, details={"replaced_by": new.key}, at=now)
    return new


def edit(
    session: Session, *, key: str, activation_limit: Any = UNCHANGED, expires_at: Any = UNCHANGED,
    now: datetime | None = None,
) -> License:
    """Change one customer's key after purchase: the activation limit (a number, or None/"unlimited")
    and/or the expiry (a datetime or date text, or None/"never"). A revoked key can't be edited."""
    now = now or utcnow()
    license = get_license(session, key, lock=True)
    if status_at(license, now) == "revoked":
        raise RuleViolation(f"The key {license.key} is revoked; it can't be edited.")
    if activation_limit is UNCHANGED and expires_at is UNCHANGED:
        raise InvalidInput("Nothing to change.", hint="Pass --activation-limit and/or --expires.")
    changes: dict[str, Any] = {}
    if activation_limit is not UNCHANGED:
        limit = None if activation_limit is None else parse_activation_limit(activation_limit)
        if limit != license.activation_limit:
            changes["activation_limit"] = [license.activation_limit, limit]
            license.activation_limit = limit
    if expires_at is not UNCHANGED:
        expiry = None if expires_at is None else parse_expiry(expires_at)
        if expiry != license.expires_at:
            changes["expires_at"] = [rfc3339(license.expires_at), rfc3339(expiry)]
            license.expires_at = expiry
    if changes:
        session.add(license)
        session.flush()
        journal.record(session, action="license.edit", object_type="license", object_id=license.key,
                       customer_id=license.customer_id, details=changes, at=now)
    return license
