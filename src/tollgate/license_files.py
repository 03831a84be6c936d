"""License files: what an application verifies offline (license_verify.py), issued for an active key.

A file is a JWS compact serialization signed by this machine's signing key (signing.py). Claims:
`iss` ("tollgate"), `jti` (lf_..., the issue's record), `key`, `customer`, `plan`, `features` (the
boolean and config values the holder may unlock: the plan's features, with the customer's
adjustments and overrides applied), `activation_limit` (null: unlimited), `iat`, `exp` (now + the
TTL, capped by the key's expiry and by a scheduled revoke), `license_expires` (the key's expiry or
null; times are NumericDate seconds), and `fingerprint` when the file is bound to a machine.

Issuing with a fingerprint activates that machine on the key (the fingerprint is the activation's
instance name): it counts against the activation limit and activations_per_day, and the same
machine again uses no new seat. Revoked, expired and unknown keys get no file (LicenseRefused, exit 1).
One transaction: the signing key (made on first use), then the key's row lock, the limits, the
activation, the record (license_file) and the journal entry.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session

from tollgate import identifiers, journal, license_limits, licenses, plan_specs, signing
from tollgate.clock import rfc3339, utcnow
from tollgate.deliverable_views import ActivatedView
from tollgate.entitlements import effective_entitlements
from tollgate.errors import InvalidInput, NotFound
from tollgate.grants import grant_dict
from tollgate.models import Customer, LicenseFile, Plan

DEFAULT_TTL = "30d"
MAX_TTL = timedelta(days=3660)
_TTL = re.compile(r"^([1-9][0-9]{0,5})([hd])$")


@dataclass(frozen=True, slots=True)
class IssuedFile:
    token: str
    claims: dict[str, Any]  # the signed payload: a JSON object by nature (RFC 7519 claims)
    kid: str
    activation: ActivatedView | None  # the fingerprint's activation, if bound

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token, "kid": self.kid, "claims": self.claims,
                "activation": None if self.activation is None else self.activation.to_dict()}


def parse_ttl(text: Any) -> timedelta:
    """"12h" or "30d" (at most 10 years)."""
    match = _TTL.match(text.strip().lower()) if isinstance(text, str) else None
    ttl = None if match is None else timedelta(**{"hours" if match.group(2) == "h" else "days": int(match.group(1))})
    if ttl is None or ttl > MAX_TTL:
        raise InvalidInput(f"'{text}' is not a time to live: use hours or days, like 12h or 30d (at most 3660d).")
    return ttl


def seconds(moment: datetime | None) -> int | None:
    """A naive UTC datetime as a NumericDate (whole seconds since the epoch)."""
    return None if moment is None else calendar.timegm(moment.utctimetuple())


def _features(session: Session, customer: Customer, plan: Plan, version_id: int, at: datetime) -> dict[str, Any]:
    """The non-metered features of the key's plan version, as the customer has them."""
    granted = {g.feature: g for g in plan_specs.plan_grants(session, plan, version_id=version_id).values()
               if g.type != "metered"}
    effective = {e.feature: e for e in effective_entitlements(session, customer=customer.identifier, at=at,
                                                              with_usage=False)}
    values = {}
    for feature in sorted(granted):
        found = effective.get(feature)
        values[feature] = (found.to_dict()["value"] if found is not None
                           else grant_dict(granted[feature]).get("value"))
    return values


def issue(session: Session, *, key: str, data_dir: Path, fingerprint: str | None = None,
          ttl: str = DEFAULT_TTL, now: datetime | None = None) -> IssuedFile:
    """Issue a license file for an active key (see the module's docstring)."""
    now = (now or utcnow()).replace(microsecond=0)
    lifetime = parse_ttl(ttl)
    if fingerprint is not None:
        fingerprint = licenses.validate_instance_name(fingerprint)
    try:
        licenses.get_license(session, key)  # malformed: InvalidInput (exit 2)
    except NotFound:
        raise licenses.LicenseRefused(f"No license has the key '{licenses.parse_key(key)}'; no file was issued.",
                                      reason="unknown") from None
    signer = signing.signer(session, data_dir, now=now)  # (its lock comes before the license's: locks.py)
    license = licenses.get_license(session, key, lock=True)
    licenses.refuse_unless_active(license, now, "issuing a license file")
    license_limits.check_files(session, license, now)
    activation = None
    if fingerprint is not None:
        row, created = licenses.activate(session, key=license.key, name=fingerprint, now=now)
        activation = ActivatedView.of(row, key=license.key, created=created)
    ends = [m for m in (license.expires_at, license.revoked_at) if m is not None]
    expires = min([now + lifetime, *ends])
    customer = session.get_one(Customer, license.customer_id)
    plan = session.get_one(Plan, license.plan_id)
    record = LicenseFile(public_id=identifiers.public_id("lf"), license_id=license.id,
                         signing_key_id=signer.row.id, fingerprint=fingerprint, issued_at=now, expires_at=expires)
    session.add(record)
    session.flush()
    claims: dict[str, Any] = {
        "iss": "tollgate", "jti": record.public_id, "key": license.key, "customer": customer.identifier,
        "plan": plan.identifier, "features": _features(session, customer, plan, licenses.license_version(session, license, now), now),
        "activation_limit": license.activation_limit, "iat": seconds(now), "exp": seconds(expires),
        "license_expires": seconds(license.expires_at),
    }
    if fingerprint is not None:
        claims["fingerprint"] = fingerprint
    journal.record(session, action="license.file", object_type="license", object_id=license.key,
                   customer_id=license.customer_id,
                   details={"file": record.public_id, "kid": signer.row.kid, "fingerprint": fingerprint,
                            "expires_at": rfc3339(expires)}, at=now)
    return IssuedFile(signer.sign(claims), claims, signer.row.kid, activation)
