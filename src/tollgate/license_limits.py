"""Abuse limits of a plan's license policy (`[plans.X.license]`): `activations_per_day` and
`files_per_day`, per key, over a rolling 24 hours.

- An activation counts when it is made (by `license activate` or `license file --fingerprint`):
  re-activating a name that is still active is free, deactivating is never limited, so the limit
  bounds the activate/deactivate churn of a key (moving seats from machine to machine).
- A license file counts when it is issued.
- Past a limit the call is refused (licenses.LicenseRefused, exit 1) with the moment the next one
  is allowed: when the oldest counted event of the window is 24 hours old.
The caller holds the key's row lock (licenses.get_license(lock=True)), so concurrent calls on one
key are counted one after the other and never pass a limit together.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from tollgate import licenses
from tollgate.clock import rfc3339
from tollgate.models import License, LicenseActivation, LicenseFile, PlanLicensePolicy

WINDOW = timedelta(hours=24)


def _refuse_past(session: Session, license: License, *, limit: int | None, moment: Any, owner: Any,
                 now: datetime, what: str, reason: str) -> None:
    if limit is None:
        return
    times = session.exec(select(moment).where(owner == license.id, moment > now - WINDOW).order_by(moment)).all()
    if len(times) < limit:
        return
    resets = times[len(times) - limit] + WINDOW
    raise licenses.LicenseRefused(
        f"The key {license.key} reached its limit of {limit} {what} per day ({len(times)} in the last 24 hours); "
        f"the next is allowed at {rfc3339(resets)}.", reason=reason)


def _policy(session: Session, license: License, now: datetime) -> PlanLicensePolicy | None:
    return session.get(PlanLicensePolicy, licenses.license_version(session, license, now))


def check_activations(session: Session, license: License, now: datetime) -> None:
    """Refuse a new activation of the key past the policy's activations_per_day."""
    policy = _policy(session, license, now)
    _refuse_past(session, license, limit=policy and policy.activations_per_day, now=now,
                 moment=LicenseActivation.activated_at, owner=LicenseActivation.license_id,
                 what="activations", reason="activations_per_day")


def check_files(session: Session, license: License, now: datetime) -> None:
    """Refuse a new license file of the key past the policy's files_per_day."""
    policy = _policy(session, license, now)
    _refuse_past(session, license, limit=policy and policy.files_per_day, now=now,
                 moment=LicenseFile.issued_at, owner=LicenseFile.license_id,
                 what="license files", reason="files_per_day")
