"""Catalog as code: the catalog file (TOML, version 1) <-> the catalog in the database.

`import_catalog` reads the whole file, validates every object (errors name the TOML path, e.g.
`plans.pro.entitlements.api-calls.limit`, and all of them are reported at once), compares it with
the database object by object (create / update / unchanged / archive), then applies the changes with
set-based writes inside the caller's single transaction (both in catalog_apply.py). `export_catalog`
writes the database back as canonical TOML (catalog_dump.py).

Rules (also in docs/catalog.md):
- An object in the file is active unless it says `archived = true`; importing a file that lists an
  archived object restores it. Objects missing from the file are left alone, or archived with --prune.
- A feature's type never changes. Identifiers never change: a new object identical to one that
  disappeared from the file (same content, another key) is refused as a rename.
- Archiving a product (in the file or by --prune) archives its plans; an active plan of an archived
  product is refused.
- Downloads: `file` (relative to the catalog file) must be a regular file inside the catalog's folder
  once symlinks are resolved (files.open_regular: never an absolute path elsewhere, `../`, a symlink
  out, a FIFO or a device); it is hashed, checked against `sha256` when both are given, and copied
  into the content store on import; a download with only `sha256` (+ `size`) must already be in the
  store. Export writes name, sha256 and size; with `with_files` it also copies each download next to
  the exported file as `assets/<plan>/<name>` (catalog_assets.py) and writes `file`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from tollgate import blobs, catalog, identifiers, locks, plan_specs
from tollgate.catalog import (
    KINDS,
    Catalog,
    Download,
    FeatureSpec,
    LicensePolicy,
    Link,
    PlanSpec,
    ProductSpec,
    validate_description,
    validate_name,
)
from tollgate.clock import utcnow
from tollgate.catalog_apply import ImportResult, apply, compare
from tollgate.errors import InvalidInput
from tollgate.grants import Grant, grant_from_value, parse_feature_type
from tollgate.models import Feature, Product

VERSION = 1
TOP_KEYS = ("version", "products", "features", "plans")
PRODUCT_KEYS = ("name", "description", "archived")
FEATURE_KEYS = ("name", "type", "unit", "description", "archived")
PLAN_KEYS = ("product", "name", "description", "trial_days", "archived", "prices", "entitlements",
             "usage_charges", "license", "downloads", "links")
PRICE_KEYS = ("interval", "currency", "amount")
LICENSE_KEYS = ("activation_limit", "expires_after", "activations_per_day", "files_per_day")
DOWNLOAD_KEYS = ("name", "file", "sha256", "size", "enabled")
LINK_KEYS = ("name", "url")
MAX_PROBLEMS = 50
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")






class CatalogErrors(InvalidInput):
    """Every problem found in a catalog file, so it can be fixed in one go."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.errors = problems
        shown = problems[:MAX_PROBLEMS]
        if len(problems) == 1:
            super().__init__(f"{source}: {problems[0]}", hint="Nothing was imported.")
        else:
            more = f" (the first {MAX_PROBLEMS} shown)" if len(problems) > MAX_PROBLEMS else ""
            super().__init__(
                f"{source} has {len(problems)} problems{more}; nothing was imported:\n  " + "\n  ".join(shown)
            )


def key_path(parent: str, key: Any) -> str:
    """A TOML path: `plans.pro`; keys that are not bare are quoted: `plans."Pro Plan"`."""
    text = str(key)
    shown = text if _BARE_KEY.match(text) else json.dumps(text, ensure_ascii=False)
    return f"{parent}.{shown}" if parent else shown


# -- reading the database ------------------------------------------------------------------------


def load_catalog(session: Session) -> Catalog:
    """The whole catalog in the database (archived objects included)."""
    result = Catalog()
    for row in session.exec(select(Product)).all():
        result.products[row.identifier] = ProductSpec(row.identifier, row.name, row.description,
                                                      row.status == "archived")
    for row in session.exec(select(Feature)).all():
        result.features[row.identifier] = FeatureSpec(row.identifier, row.name, row.type, row.unit, row.description,
                                                      row.status == "archived")
    for spec in plan_specs.plan_specs(session).values():
        result.plans[spec.identifier] = spec
    return result


# -- reading and validating a file -----------------------------------------------------------------


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, exc: InvalidInput) -> None:
        if not isinstance(exc, _AlreadyReported):
            self.items.append(str(exc))


def _table(value: Any, *, path: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a table, not a {_type_name(value)}.", path=path)
    return value


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "list", dict: "table"}.get(
        type(value), type(value).__name__)


def _known_keys(table: dict[str, Any], known: tuple[str, ...], *, path: str, what: str) -> None:
    for key in table:
        if key not in known:
            raise InvalidInput(f"unknown key in {what}; the keys are {', '.join(known)}.", path=key_path(path, key))


def _bool(table: dict[str, Any], key: str, default: bool, *, path: str) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise InvalidInput(f"{key} is true or false.", path=f"{path}.{key}")
    return value


def _list(table: dict[str, Any], key: str, *, path: str) -> list[Any]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise InvalidInput(f"{key} must be a list (an array), not a {_type_name(value)}.", path=f"{path}.{key}")
    return value


def parse_catalog(
    document: dict[str, Any], *, source: str, base_dir: Path, existing: Catalog, prune: bool, data_dir: Path
) -> Catalog:
    """Validate a whole catalog document against itself and the database; raise CatalogErrors listing
    every problem, or return the catalog it describes."""
    problems = _Problems()
    desired = Catalog()
    for key in document:
        if key not in TOP_KEYS:
            problems.add(InvalidInput(f"unknown top-level key; the keys are {', '.join(TOP_KEYS)}.",
                                      path=key_path("", key)))
    version = document.get("version")
    if version is None:
        problems.add(InvalidInput(f"missing: add `version = {VERSION}` at the top of the file.", path="version"))
    elif isinstance(version, bool) or version != VERSION:
        problems.add(InvalidInput(f"this tollgate reads catalog files of version {VERSION}, not {version!r}.",
                                  path="version"))
    sections = {}
    for name in ("products", "features", "plans"):
        try:
            sections[name] = _table(document.get(name, {}), path=name, what=name)
        except InvalidInput as exc:
            problems.add(exc)
            sections[name] = {}

    for ident, value in sections["products"].items():
        path = key_path("products", ident)
        try:
            desired.products[ident] = _product(ident, value, path=path)
        except InvalidInput as exc:
            problems.add(exc)

    declared_types: dict[str, str] = {ident: spec.type for ident, spec in existing.features.items()}
    for ident, value in sections["features"].items():
        path = key_path("features", ident)
        try:
            spec = _feature(ident, value, path=path)
            before = existing.features.get(ident)
            if before is not None and before.type != spec.type:
                raise InvalidInput(
                    f"a feature's type never changes: '{ident}' is {before.type}, not {spec.type}.",
                    path=f"{path}.type",
                    hint="Create a new feature with another identifier for the new type.",
                )
            declared_types[ident] = spec.type
            desired.features[ident] = spec
        except InvalidInput as exc:
            if isinstance(value, dict) and isinstance(value.get("type"), str):
                declared_types.setdefault(ident, value["type"])  # spares plans a second, misleading error
            problems.add(exc)

    product_archived = {ident: spec.archived for ident, spec in existing.products.items()}
    if prune:
        product_archived = {ident: True for ident in product_archived}
    product_archived.update({ident: spec.archived for ident, spec in desired.products.items()})
    broken_products = {ident for ident in sections["products"] if ident not in desired.products}

    for ident, value in sections["plans"].items():
        path = key_path("plans", ident)
        try:
            desired.plans[ident] = _plan(
                ident, value, path=path, feature_types=declared_types, product_archived=product_archived,
                broken_products=broken_products, prune=prune, desired=desired, base_dir=base_dir,
                data_dir=data_dir, problems=problems,
            )
        except InvalidInput as exc:
            problems.add(exc)

    if not problems.items:
        _refuse_renames(existing, desired, problems)
    if problems.items:
        raise CatalogErrors(source, problems.items)
    return desired


def _product(ident: str, value: Any, *, path: str) -> ProductSpec:
    identifiers.validate(ident, kind="product identifier", path=path)
    table = _table(value, path=path, what="a product")
    _known_keys(table, PRODUCT_KEYS, path=path, what="a product")
    return ProductSpec(
        identifier=ident,
        name=validate_name(table.get("name"), what="product name", path=f"{path}.name"),
        description=validate_description(table.get("description"), path=f"{path}.description"),
        archived=_bool(table, "archived", False, path=path),
    )


def _feature(ident: str, value: Any, *, path: str) -> FeatureSpec:
    identifiers.validate(ident, kind="feature identifier", path=path)
    table = _table(value, path=path, what="a feature")
    _known_keys(table, FEATURE_KEYS, path=path, what="a feature")
    if "type" not in table:
        raise InvalidInput("type is missing: boolean, metered or config.", path=f"{path}.type")
    feature_type = parse_feature_type(table["type"], path=f"{path}.type")
    return FeatureSpec(
        identifier=ident,
        name=validate_name(table.get("name"), what="feature name", path=f"{path}.name"),
        type=feature_type,
        unit=catalog.validate_unit(table.get("unit"), feature_type=feature_type, path=f"{path}.unit"),
        description=validate_description(table.get("description"), path=f"{path}.description"),
        archived=_bool(table, "archived", False, path=path),
    )


def _plan(
    ident: str, value: Any, *, path: str, feature_types: dict[str, str], product_archived: dict[str, bool],
    broken_products: set[str], prune: bool, desired: Catalog, base_dir: Path, data_dir: Path,
    problems: _Problems,
) -> PlanSpec:
    identifiers.validate(ident, kind="plan identifier", path=path)
    table = _table(value, path=path, what="a plan")
    _known_keys(table, PLAN_KEYS, path=path, what="a plan")
    archived = _bool(table, "archived", False, path=path)

    product = table.get("product")
    if not isinstance(product, str):
        raise InvalidInput("product is missing: the identifier of the product this plan sells.",
                           path=f"{path}.product")
    if product not in product_archived and product not in broken_products:
        where = "in this file" if prune else "in this file or in the database"
        raise InvalidInput(f"there is no product '{product}' {where}.", path=f"{path}.product",
                           hint=f"Add a [products.{product}] table." if _BARE_KEY.match(product) else None)
    if product_archived.get(product) and not archived:
        raise InvalidInput(
            f"the product '{product}' is archived{' by --prune' if prune and product not in desired.products else ''}, "
            "so its plans must be archived too (archived = true).",
            path=f"{path}.product",
        )

    errors_before = len(problems.items)

    def attempt(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InvalidInput as exc:
            problems.add(exc)
            return None

    name = attempt(validate_name, table["name"], what="plan name", path=f"{path}.name") if "name" in table \
        else catalog.default_plan_name(ident)
    description = attempt(validate_description, table.get("description"), path=f"{path}.description")
    trial_days = attempt(catalog.validate_trial_days, table.get("trial_days"), path=f"{path}.trial_days")
    prices = attempt(_prices, table, path=path) or ()
    grants = attempt(_grants, table, path=path, feature_types=feature_types, problems=problems) or ()
    charges = attempt(_charges, table, path=path, grants=grants, feature_types=feature_types) or ()
    license = attempt(_license, table, path=path)
    downloads = attempt(_downloads, table, path=path, base_dir=base_dir, data_dir=data_dir) or ()
    links = attempt(_links, table, path=path) or ()
    if len(problems.items) > errors_before:
        raise _AlreadyReported()
    return PlanSpec(
        identifier=ident, product=product, name=name, description=description, trial_days=trial_days,
        prices=prices, grants=grants, charges=charges, license=license, downloads=downloads, links=links,
        archived=archived,
    ).normalized()


class _AlreadyReported(InvalidInput):
    """Raised after a plan's problems were added one by one: the plan is left out, nothing more is said."""

    def __init__(self) -> None:
        super().__init__("")


def _prices(table: dict[str, Any], *, path: str) -> tuple[catalog.Price, ...]:
    result = []
    for index, item in enumerate(_list(table, "prices", path=path)):
        item_path = f"{path}.prices[{index}]"
        entry = _table(item, path=item_path, what="a price")
        _known_keys(entry, PRICE_KEYS, path=item_path, what="a price")
        for key in PRICE_KEYS:
            if key not in entry:
                raise InvalidInput(f"{key} is missing; a price has interval, currency and amount.",
                                   path=f"{item_path}.{key}")
        result.append(catalog.make_price(entry["interval"], entry["currency"], entry["amount"], path=item_path))
    return catalog.check_prices(result, path=f"{path}.prices")


def _grants(table: dict[str, Any], *, path: str, feature_types: dict[str, str], problems: _Problems
            ) -> tuple[Grant, ...]:
    section = f"{path}.entitlements"
    entries = _table(table.get("entitlements", {}), path=section, what="entitlements")
    result = []
    failed = False
    for feature, value in entries.items():
        entry_path = key_path(section, feature)
        try:
            identifiers.validate(feature, kind="feature identifier", path=entry_path)
            feature_type = feature_types.get(feature)
            if feature_type is None:
                raise InvalidInput(f"there is no feature '{feature}' in this file or in the database.",
                                   path=entry_path, hint=f"Add a [features.{feature}] table.")
            result.append(grant_from_value(feature, feature_type, value, path=entry_path))
        except InvalidInput as exc:
            problems.add(exc)
            failed = True
    if failed:
        raise _AlreadyReported()
    return tuple(result)


def _charges(table: dict[str, Any], *, path: str, grants: tuple[Grant, ...], feature_types: dict[str, str]
             ) -> tuple[Any, ...]:
    from tollgate.rating import charge_from_dict

    granted = {grant.feature for grant in grants}
    seen: set[tuple[str, str]] = set()
    result = []
    for index, item in enumerate(_list(table, "usage_charges", path=path)):
        item_path = f"{path}.usage_charges[{index}]"
        charge = charge_from_dict(item, path=item_path)
        feature_type = feature_types.get(charge.feature)
        if feature_type is None:
            raise InvalidInput(f"there is no feature '{charge.feature}'.", path=f"{item_path}.feature")
        if feature_type != "metered":
            raise InvalidInput(f"'{charge.feature}' is a {feature_type} feature; usage charges price metered ones.",
                               path=f"{item_path}.feature")
        if charge.feature not in granted:
            raise InvalidInput(
                f"the plan does not grant '{charge.feature}', so its usage can't be charged; "
                f"add it under [{path}.entitlements].",
                path=f"{item_path}.feature",
            )
        key = (charge.feature, charge.currency)
        if key in seen:
            raise InvalidInput(f"there are two usage charges for '{charge.feature}' in {charge.currency}; keep one.",
                               path=item_path)
        seen.add(key)
        result.append(charge)
    return tuple(result)


def _license(table: dict[str, Any], *, path: str) -> LicensePolicy | None:
    if "license" not in table:
        return None
    section = f"{path}.license"
    entry = _table(table["license"], path=section, what="license")
    _known_keys(entry, LICENSE_KEYS, path=section, what="license")
    return catalog.make_license(entry.get("activation_limit", "unlimited"), entry.get("expires_after", "never"),
                                activations_per_day=entry.get("activations_per_day"),
                                files_per_day=entry.get("files_per_day"), path=section)


def _named_entries(table: dict[str, Any], key: str, allowed: Any, *, path: str, what: str):
    """Each table of the array `key` (downloads, links): (its TOML path, the table, its name), names
    checked to be unique within the plan."""
    names: set[str] = set()
    for index, item in enumerate(_list(table, key, path=path)):
        item_path = f"{path}.{key}[{index}]"
        entry = _table(item, path=item_path, what=f"a {what}")
        _known_keys(entry, allowed, path=item_path, what=f"a {what}")
        name = validate_name(entry.get("name"), what=f"{what} name", path=f"{item_path}.name")
        if name in names:
            raise InvalidInput(f"two {key} are named '{name}'; names are unique within a plan.",
                               path=f"{item_path}.name")
        names.add(name)
        yield item_path, entry, name


def _downloads(table: dict[str, Any], *, path: str, base_dir: Path, data_dir: Path) -> tuple[Download, ...]:
    result = []
    for item_path, entry, name in _named_entries(table, "downloads", DOWNLOAD_KEYS, path=path, what="download"):
        enabled = _bool(entry, "enabled", True, path=item_path)
        sha256 = None
        if "sha256" in entry:
            sha256 = catalog.validate_sha256(entry["sha256"], path=f"{item_path}.sha256")
        size = entry.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise InvalidInput("size is a number of bytes.", path=f"{item_path}.size")
        source = None
        if "file" in entry:
            file_value = entry["file"]
            if not isinstance(file_value, str) or not file_value.strip() or "\x00" in file_value:
                raise InvalidInput("file is a path relative to the catalog file.", path=f"{item_path}.file")
            source = base_dir / file_value
            try:
                found_sha, found_size = blobs.hash_file(source, inside=base_dir)
            except InvalidInput as exc:
                raise InvalidInput(f"{exc.message[:1].lower()}{exc.message[1:]}", path=f"{item_path}.file") from None
            if sha256 is not None and sha256 != found_sha:
                raise InvalidInput(
                    f"the file {file_value} has sha256 {found_sha}, not the one written here; "
                    "fix the file or the checksum.",
                    path=f"{item_path}.sha256",
                )
            if size is not None and size != found_size:
                raise InvalidInput(f"the file {file_value} is {found_size} bytes, not {size}.",
                                   path=f"{item_path}.size")
            sha256, size = found_sha, found_size
        elif sha256 is None:
            raise InvalidInput("a download needs file (a path relative to this file) or the sha256 of content "
                               "already in the store.", path=f"{item_path}.file")
        else:
            stored = blobs.blob_path(sha256, data_dir=data_dir)
            if not stored.is_file():
                raise InvalidInput(
                    f"no file is given and the content {sha256[:12]}... is not in the store of this database.",
                    path=f"{item_path}.file",
                    hint="Add file = \"path/to/the/file\" (relative to the catalog file).",
                )
            stored_size = stored.stat().st_size
            if size is not None and size != stored_size:
                raise InvalidInput(f"the stored content is {stored_size} bytes, not {size}.", path=f"{item_path}.size")
            size = stored_size
        result.append(Download(name=name, sha256=sha256, size=size, enabled=enabled, source=source))
    return tuple(result)


def _links(table: dict[str, Any], *, path: str) -> tuple[Link, ...]:
    result = []
    for item_path, entry, name in _named_entries(table, "links", LINK_KEYS, path=path, what="link"):
        result.append(Link(name=name, url=catalog.validate_url(entry.get("url"), path=f"{item_path}.url")))
    return tuple(result)


def _refuse_renames(existing: Catalog, desired: Catalog, problems: _Problems) -> None:
    """A new object identical to one that left the file is a renamed identifier: refused."""
    for kind in KINDS:
        before, after = existing.objects(kind), desired.objects(kind)
        gone = {replace(spec, identifier=""): ident for ident, spec in before.items()
                if ident not in after and not spec.archived}
        for ident, spec in after.items():
            if ident in before:
                continue
            old = gone.get(replace(spec, identifier=""))
            if old is not None:
                problems.add(InvalidInput(
                    f"this looks like the {kind} '{old}' with its identifier changed to '{ident}'; "
                    "identifiers never change (other systems rely on them). Keep the key "
                    f"'{old}' and change the name instead.",
                    path=key_path(f"{kind}s", ident),
                ))


# -- the operations ------------------------------------------------------------------------------------


def display_name(path: str | os.PathLike) -> str:
    """How messages name a catalog file: its path, or `standard input` for '-'."""
    return "standard input" if str(path) == "-" else str(path)


def read_document(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a catalog file (malformed TOML, invalid UTF-8, deep nesting: one InvalidInput each).

    A table declared twice (`[plans.pro]` two times) is reported by its TOML path."""
    import tomllib

    from tollgate.rowfiles import read_bytes

    raw = read_bytes(str(path))
    source = display_name(path)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InvalidInput(f"{source}: the file is not UTF-8 text (line {line}).", hint="Save it as UTF-8.") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{source}: {_toml_error(str(exc))}", hint="Nothing was imported.") from None
    except RecursionError:
        raise InvalidInput(f"{source}: the TOML is nested too deeply.", hint="Nothing was imported.") from None


_DECLARED_TWICE = re.compile(r"^Cannot declare \((.*)\) twice(.*)$")


def _toml_error(message: str) -> str:
    """tomllib's message, with a doubly declared table named by its TOML path."""
    import ast

    match = _DECLARED_TWICE.match(message)
    if match:
        try:
            parts = ast.literal_eval(f"({match.group(1)},)")
            dotted = ".".join(key_path("", str(p)) for p in parts)
            return f"{dotted} is declared twice{match.group(2)}; identifiers are unique, keep one."
        except (ValueError, SyntaxError):
            pass
    return f"malformed TOML ({message})."


def import_catalog(
    session: Session, document: dict[str, Any], *, source: str, base_dir: Path, data_dir: Path,
    dry_run: bool = False, prune: bool = False, now: datetime | None = None,
) -> ImportResult:
    """Validate a whole catalog document, then apply it in the caller's transaction.

    `source` names the file in messages and the journal; `base_dir` is where `file` paths start;
    on a dry run the same writes run (the caller rolls them back) and no file is stored."""
    locks.namespace(session, "catalog")  # concurrent imports: one at a time, each reads what the last wrote
    existing = load_catalog(session)
    desired = parse_catalog(document, source=source, base_dir=base_dir, existing=existing, prune=prune,
                            data_dir=data_dir)
    changes, left_alone = compare(existing, desired, prune=prune)
    result = ImportResult(file=source, changes=changes, not_in_file=left_alone, dry_run=dry_run, prune=prune)
    if result.changed:
        result.new_versions = apply(session, existing, desired, changes, now=now or utcnow(),
                                    data_dir=None if dry_run else data_dir, source=Path(source).name,
                                    base_dir=base_dir)
    return result


def export_catalog(session: Session, *, assets: dict[tuple[str, str], str] | None = None) -> str:
    """The catalog as canonical TOML text. `assets`: (plan, download name) -> the `file` to write."""
    from tollgate.catalog_dump import dump

    return dump(load_catalog(session), assets=assets)
