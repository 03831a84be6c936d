"""Catalog as code, applying: what an import does to each object (compare) and its set-based writes
(apply), in the caller's transaction. Reading and validating the file is catalog_toml.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from tollgate import blobs, catalog, plan_specs
from tollgate.catalog import KINDS, Catalog
from tollgate.errors import InvalidInput
from tollgate.models import Feature, Journal, Plan, Product
from tollgate.plan_versions import write_versions


@dataclass(frozen=True)
class Change:
    """What the import does (or would do) to one object."""

    kind: str  # product | feature | plan
    identifier: str
    action: str  # create | update | unchanged | archive
    fields: tuple[str, ...] = ()  # for an update: what changes

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "identifier": self.identifier, "action": self.action, "fields": list(self.fields)}


@dataclass
class ImportResult:
    file: str
    changes: list[Change] = field(default_factory=list)
    not_in_file: list[str] = field(default_factory=list)  # "plan:old" left alone (no --prune)
    dry_run: bool = False
    prune: bool = False
    new_versions: list[dict[str, Any]] = field(default_factory=list)  # apply's: plans that get a new version

    @property
    def changed(self) -> bool:
        return any(change.action != "unchanged" for change in self.changes)

    def counts(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "unchanged": 0, "archive": 0}
        for change in self.changes:
            counts[change.action] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "dry_run": self.dry_run,
            "prune": self.prune,
            "changed": self.changed,
            "summary": self.counts(),
            "changes": [change.to_dict() for change in self.changes],
            "not_in_file": list(self.not_in_file),
            "new_versions": list(self.new_versions),
        }


# -- comparing ---------------------------------------------------------------------------------------

_FIELD_NAMES = {"grants": "entitlements", "charges": "usage_charges"}


def _changed_fields(old: Any, new: Any) -> tuple[str, ...]:
    return tuple(
        _FIELD_NAMES.get(f.name, f.name)
        for f in fields(new)
        if f.compare and getattr(old, f.name) != getattr(new, f.name)
    )


def compare(existing: Catalog, desired: Catalog, *, prune: bool) -> tuple[list[Change], list[str]]:
    """The change per object (products, then features, then plans; by identifier), and what the file
    leaves out without --prune ("plan:old-plan")."""
    changes: list[Change] = []
    left_alone: list[str] = []
    archived_products: set[str] = set()
    for kind in KINDS:
        before, after = existing.objects(kind), desired.objects(kind)
        for ident in sorted(set(before) | set(after)):
            old, new = before.get(ident), after.get(ident)
            if new is None:
                assert old is not None  # the identifier is in `before` or in `after`
                if old.archived:
                    continue
                if prune or (kind == "plan" and old.product in archived_products):
                    changes.append(Change(kind, ident, "archive"))
                else:
                    left_alone.append(f"{kind}:{ident}")
                continue
            if kind == "product" and new.archived:
                archived_products.add(ident)
            if old is None:
                changes.append(Change(kind, ident, "create"))
            elif old == new:
                changes.append(Change(kind, ident, "unchanged"))
            else:
                changes.append(Change(kind, ident, "update", _changed_fields(old, new)))
        if kind == "product" and prune:
            archived_products |= {ident for ident in before if ident not in after}
    return changes, left_alone


# -- applying --------------------------------------------------------------------------------------------


def apply(
    session: Session, existing: Catalog, desired: Catalog, changes: list[Change], *, now: datetime,
    data_dir: Path | None, source: str, base_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Write the changes, set-based, in the session's transaction. `data_dir` None: store no blobs (dry run);
    `base_dir`: the catalog's folder, which downloads' files must be in. Returns the plans that got a
    new version (plan_versions.py): plan, version, subscribers_staying (on the one before)."""
    conn = session.connection()
    by: dict[tuple[str, str], list[str]] = {(c.kind, c.action): [] for c in changes}
    for change in changes:
        by[(change.kind, change.action)].append(change.identifier)

    def idents(kind: str, action: str) -> list[str]:
        return by.get((kind, action), [])

    def status_values(old_archived: bool | None, new_archived: bool) -> dict[str, Any]:
        if old_archived == new_archived:
            return {}
        return {"status": "archived" if new_archived else "active", "archived_at": now if new_archived else None}

    # products and features
    for kind, model in (("product", Product), ("feature", Feature)):
        specs = desired.objects(kind)
        rows = []
        for ident in idents(kind, "create"):
            spec = specs[ident]
            row = {"identifier": ident, "name": spec.name, "description": spec.description,
                   "status": "archived" if spec.archived else "active", "created_at": now, "updated_at": now,
                   "archived_at": now if spec.archived else None}
            if kind == "feature":
                row.update(type=spec.type, unit=spec.unit)
            rows.append(row)
        if rows:
            catalog.insert_many(session, model, rows)
        for ident in idents(kind, "update"):
            spec, old = specs[ident], existing.objects(kind)[ident]
            values = {"name": spec.name, "description": spec.description, "updated_at": now,
                      **status_values(old.archived, spec.archived)}
            if kind == "feature":
                values["unit"] = spec.unit
            conn.execute(update(model).where(model.identifier == ident).values(**values))

    # plans
    product_ids = dict(session.exec(select(Product.identifier, Product.id)).all())
    feature_ids = {ident: fid for ident, (fid, _, _) in catalog.feature_table(session).items()}
    created = [desired.plans[ident] for ident in idents("plan", "create")]
    plan_specs.insert_plans(session, created, now=now, product_ids=product_ids, feature_ids=feature_ids,
                         journal_entries=False)
    updated = idents("plan", "update")
    new_versions: list[dict[str, Any]] = []
    if updated:
        plan_ids = {ident: pid for ident, pid in session.exec(select(Plan.identifier, Plan.id)).all()
                    if ident in set(updated)}
        for ident in updated:
            spec, old = desired.plans[ident], existing.plans[ident]
            conn.execute(
                update(Plan).where(Plan.id == plan_ids[ident]).values(
                    product_id=product_ids[spec.product], name=spec.name, description=spec.description,
                    updated_at=now, **status_values(old.archived, spec.archived),
                )
            )
            plan_specs.sync_downloads_and_links(session, plan_ids[ident], spec, old, now)
        versioned = write_versions(session, [(plan_ids[ident], ident, existing.plans[ident], desired.plans[ident])
                                             for ident in updated], feature_ids=feature_ids, now=now)
        names = {pid: ident for ident, pid in plan_ids.items()}
        new_versions = [{"plan": names[pid], "version": number, "subscribers_staying": count}
                        for pid, (number, count) in sorted(versioned.items(), key=lambda item: names[item[0]])]

    # archives (by --prune, or plans of an archived product)
    for kind, model in (("product", Product), ("feature", Feature), ("plan", Plan)):
        gone = idents(kind, "archive")
        for chunk in catalog.chunked(gone, 500):
            conn.execute(
                update(model).where(col(model.identifier).in_(list(chunk))).values(
                    status="archived", archived_at=now, updated_at=now)
            )

    journal: list[tuple[str, str, str, dict[str, Any]]] = [
        (f"{c.kind}.{c.action}", c.kind, c.identifier, {"import": source, **({"fields": list(c.fields)} if c.fields else {})})
        for c in changes if c.action != "unchanged"
    ]
    if journal:
        counts: dict[str, int] = {}
        for c in changes:
            counts[c.action] = counts.get(c.action, 0) + 1
        journal.append(("catalog.import", "catalog", source, counts))
        catalog.insert_many(session, Journal, catalog.journal_rows(journal, now))

    if data_dir is not None:
        _store_downloads(desired, changes, data_dir, base_dir)
    return new_versions


def _store_downloads(desired: Catalog, changes: list[Change], data_dir: Path, base_dir: Path | None) -> None:
    """Copy each new download's file into the content store (once per content), opened by the same
    rule as when it was hashed (a regular file inside the catalog's folder)."""
    for change in changes:
        if change.kind != "plan" or change.action not in ("create", "update"):
            continue
        for download in desired.plans[change.identifier].downloads:
            if download.source is None or blobs.has_blob(download.sha256, data_dir=data_dir):
                continue
            sha256, _ = blobs.store_blob(download.source, data_dir=data_dir, inside=base_dir)
            if sha256 != download.sha256:
                raise InvalidInput(f"{download.source} changed while it was being imported; run the import again.")
