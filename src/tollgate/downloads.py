"""Digital downloads (spec Rule 9): files a plan delivers, stored by content (sha256) in the data
directory (blobs.py), listed and fetched, checksum-verified, by customers entitled to them.

Decisions (also in the README):
- Entitled = the customer is active and has a subscription on the plan that is live now (started,
  not ended: trialing, active or past_due; a cancel at period end keeps it until then): the same
  rule as entitlements (`entitlements.live_condition`).
- `download get` checks, in order: the customer and download exist (else exit 2), the customer is
  entitled (exit 1, not_entitled), the download is enabled (exit 1, disabled), the stored file is
  there (exit 1, missing) and has the recorded size and sha256 (exit 1, corrupted). The file is
  hashed while it is copied into a temp file in the target folder, and renamed into place only when
  the checksum matches: a corrupted copy never appears under its name.
- The name written into the target folder is the download's name made safe: path separators,
  control and reserved characters become `_`, leading dots and spaces go, so no name (not even
  `../../etc/passwd`) can leave the folder or hide a file; an empty result falls back to the id. An
  existing file is not overwritten unless asked.
- Removing a download deletes its row; the stored content stays in the store (other downloads, or a
  catalog file that names only its sha256, may still use it; storing it again costs nothing).
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from tollgate import identifiers, journal, locks, outfiles, tables
from tollgate import text as text_rule
from tollgate.clock import utcnow
from tollgate.errors import Conflict, Denied, InvalidInput, NotFound, RuleViolation
from tollgate.models import Customer, Plan, PlanDownload
from tollgate.deliverable_views import DownloadView
from tollgate.profile import download_views, entitled_plan_ids, entitled_rows

MAX_NAME = 200
MAX_FILENAME_BYTES = 200
BUFFER = 1 << 20
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f/\\:*?\"<>|]")
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)


class DownloadRefused(Denied):
    """A download that can't be delivered (`reason`: not_entitled, disabled, missing, corrupted). Exit 1."""

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


# -- values -----------------------------------------------------------------------------------------


def validate_name(name: Any) -> str:
    text = name.strip() if isinstance(name, str) else ""
    if not text:
        raise InvalidInput("A download needs a name.")
    if len(text) > MAX_NAME:
        raise InvalidInput(f"The download name is longer than {MAX_NAME} characters.")
    text_rule.check(text, what="the download name")
    return text


def safe_filename(name: str, *, fallback: str) -> str:
    """A file name that stays inside the folder it is written to: no separators, no control or
    reserved characters, no leading dots, not empty, at most 200 bytes."""
    text = unicodedata.normalize("NFC", name or "")
    text = "".join("_" if text_rule.refused_character(ch) else ch for ch in text)  # e.g. U+202E, shown reversed
    text = _UNSAFE.sub("_", text).strip().lstrip(". ").rstrip(". ")
    if _WINDOWS_RESERVED.match(text):
        text = f"_{text}"
    encoded = text.encode("utf-8")
    if len(encoded) > MAX_FILENAME_BYTES:
        text = encoded[:MAX_FILENAME_BYTES].decode("utf-8", "ignore").rstrip(". ")
    return text or fallback


def check_sha256(value: str) -> str:
    """A stored checksum: refused (corrupted) unless it is a sha256 (blobs.blob_path checks it again)."""
    from tollgate.blobs import is_sha256

    if not is_sha256(value):
        raise DownloadRefused(f"The recorded checksum {str(value)[:80]!r} is not a sha256; the record is damaged.",
                              reason="corrupted")
    return value


# -- lookups ----------------------------------------------------------------------------------------


def get_download(session: Session, download_id: str) -> PlanDownload:
    row = session.exec(select(PlanDownload).where(PlanDownload.public_id == (download_id or "").strip())).first()
    if row is None:
        raise NotFound(f"No download has the id '{download_id}'.", hint="See `tollgate download list PLAN`.")
    return row


def list_downloads(
    session: Session, *, plan: Plan | None = None, customer: Customer | None = None, at: datetime | None = None
) -> list[Any]:
    """A plan's downloads, or those a customer is entitled to (rows of tables.plan_download)."""
    return entitled_rows(session, tables.plan_download, plan=plan, customer=customer, at=at)


def download_view(session: Session, row: PlanDownload) -> DownloadView:
    return download_views(session, [row])[0]


# -- changes ----------------------------------------------------------------------------------------


def add_download(
    session: Session, *, plan: str, name: str, sha256: str, size: int, now: datetime | None = None
) -> PlanDownload:
    """Record a stored file (see blobs.store_blob) as a download of a plan, after its others."""
    from tollgate.catalog import get_plan

    now = now or utcnow()
    name = validate_name(name)
    check_sha256(sha256)
    locks.namespace(session, "catalog")  # catalog changes: one at a time
    row_plan = get_plan(session, plan)
    taken = session.exec(
        select(PlanDownload.public_id).where(PlanDownload.plan_id == row_plan.id, PlanDownload.name == name)
    ).first()
    if taken is not None:
        raise Conflict(f"The plan '{plan}' already has a download named '{name}' ({taken}).",
                       hint="Choose another name with --name, or remove the old one first.")
    last = session.exec(select(func.max(PlanDownload.position)).where(PlanDownload.plan_id == row_plan.id)).one()
    row = PlanDownload(public_id=identifiers.public_id("dl"), plan_id=row_plan.id, name=name, sha256=sha256,
                       size=size, enabled=True, position=0 if last is None else last + 1, created_at=now)
    session.add(row)
    row_plan.updated_at = now
    session.add(row_plan)
    session.flush()
    journal.record(session, action="download.add", object_type="download", object_id=row.public_id,
                   details={"plan": plan, "name": name, "sha256": sha256, "size": size}, at=now)
    return row


def set_enabled(session: Session, *, download_id: str, enabled: bool, now: datetime | None = None) -> PlanDownload:
    now = now or utcnow()
    locks.namespace(session, "catalog")  # catalog changes: one at a time
    row = get_download(session, download_id)
    if row.enabled == enabled:
        raise RuleViolation(f"The download {row.public_id} is already {'enabled' if enabled else 'disabled'}.")
    row.enabled = enabled
    session.add(row)
    session.flush()
    journal.record(session, action="download.enable" if enabled else "download.disable", object_type="download",
                   object_id=row.public_id, details={"name": row.name}, at=now)
    return row


def remove_download(session: Session, *, download_id: str, now: datetime | None = None) -> DownloadView:
    """Delete a download's record (its stored content stays); returns what it was."""
    now = now or utcnow()
    locks.namespace(session, "catalog")  # catalog changes: one at a time
    row = get_download(session, download_id)
    removed = download_view(session, row)
    session.delete(row)
    session.flush()
    journal.record(session, action="download.remove", object_type="download", object_id=row.public_id,
                   details={"plan": removed.plan, "name": row.name, "sha256": row.sha256}, at=now)
    return removed


# -- delivery -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """A download a customer may fetch: what to copy and what it must hash to."""

    download_id: str
    plan: str
    name: str
    sha256: str
    size: int
    customer: str
    customer_id: int


def authorize(session: Session, *, customer: str, download_id: str, at: datetime | None = None) -> Delivery:
    """Check that the customer may fetch the download now (entitled, enabled); raises otherwise."""
    from tollgate.customers import get_customer

    at = at or utcnow()
    who = get_customer(session, customer)
    row = get_download(session, download_id)
    plan = session.get_one(Plan, row.plan_id)
    if customer_is_archived(who):
        raise DownloadRefused(f"The customer '{who.identifier}' is archived and has no access.", reason="not_entitled")
    if row.plan_id not in entitled_plan_ids(session, customer=who, at=at):
        raise DownloadRefused(
            f"'{who.identifier}' is not entitled to {row.public_id} ({row.name}): "
            f"they have no live subscription to the plan '{plan.identifier}'.",
            reason="not_entitled",
        )
    if not row.enabled:
        raise DownloadRefused(f"The download {row.public_id} ({row.name}) of the plan '{plan.identifier}' is disabled.",
                              reason="disabled", hint=f"Enable it with `tollgate download enable {row.public_id}`.")
    return Delivery(row.public_id, plan.identifier, row.name, check_sha256(row.sha256), row.size, who.identifier, who.id)


def customer_is_archived(customer: Customer) -> bool:
    return customer.status != "active"


def deliver(grant: Delivery, *, data_dir: Path, to_dir: str | os.PathLike, filename: str | None = None,
            overwrite: bool = False, database: Path | None = None) -> Path:
    """Copy the stored file into `to_dir` (created if needed) under a safe name, streaming and hashing
    as it goes (bounded memory), by files.write_atomic: it is renamed into place only when size and
    sha256 match."""
    from tollgate.blobs import open_blob
    from tollgate.files import write_atomic

    folder = Path(to_dir).expanduser()
    name = safe_filename(filename if filename is not None else grant.name, fallback=grant.download_id)
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"'{folder}' is a file, not a folder.", hint="Give --to a folder.")
    try:
        handle = open_blob(grant.sha256, data_dir=data_dir)
    except FileNotFoundError:
        raise DownloadRefused(
            f"The stored file of {grant.download_id} ({grant.name}) is missing from {data_dir / 'blobs'}.",
            reason="missing", hint="Add the file again: tollgate download add PLAN FILE (or re-import the catalog).",
        ) from None
    except InvalidInput as exc:  # unreadable, or no longer a regular file
        raise DownloadRefused(f"The stored file of {grant.download_id} can't be read: {exc.message}",
                              reason="missing") from None
    with handle:
        try:
            outfiles.private_folder(folder)
        except OSError as exc:
            raise InvalidInput(f"Cannot create the folder '{folder}': {exc.strerror}.") from None
        target = folder / name
        if Path(os.path.abspath(target)).parent != Path(os.path.abspath(folder)):  # belt and braces
            raise InvalidInput(f"The name '{name}' would leave the folder '{folder}'.")
        outfiles.check_target(target, database=database, what="The file")  # never the database, even --overwrite
        if (target.exists() or target.is_symlink()) and not overwrite:
            raise Conflict(f"'{target}' already exists; nothing was written.", hint="Pass --overwrite to replace it.")
        if target.is_dir():
            raise Conflict(f"'{target}' is a folder; nothing was written.", hint="Choose another name with --as.")

        def copy_verified(out) -> None:
            digest = hashlib.sha256()
            size = 0
            while chunk := handle.read(BUFFER):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            if size != grant.size or digest.hexdigest() != grant.sha256:
                raise DownloadRefused(
                    f"The stored file of {grant.download_id} ({grant.name}) is corrupted: it is {size:,} bytes with "
                    f"sha256 {digest.hexdigest()[:12]}..., not {grant.size:,} bytes with {grant.sha256[:12]}...; "
                    "nothing was written.",
                    reason="corrupted",
                    hint="Add the original file again: tollgate download add PLAN FILE (or re-import the catalog).",
                )

        return write_atomic(target, copy_verified)


def record_delivery(session: Session, *, grant: Delivery, target: Path, now: datetime | None = None) -> None:
    journal.record(session, action="download.deliver", object_type="download", object_id=grant.download_id,
                   customer_id=grant.customer_id,
                   details={"name": grant.name, "sha256": grant.sha256, "to": str(target)}, at=now or utcnow())
