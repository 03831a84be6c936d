"""`catalog export FILE --with-files`: each download copied next to FILE as `assets/<plan>/<name>`.

Everything is decided before anything is written (`plan_assets`): every target's path (made of
identifiers and slugs only, see catalog_dump.asset_names), every stored content (its checksum
checked by blobs.blob_path and present in the store), every folder on the way (a file where one
must go is refused) and every existing file. A file already there with the same content is left as
it is; a different one, or a symlink, is replaced only with `overwrite` (else InvalidInput, exit 2,
naming it). Then `write_assets` writes each file by files.write_atomic (temp file, fsync, rename).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from tollgate import blobs
from tollgate.catalog import Catalog
from tollgate.catalog_dump import asset_names
from tollgate.errors import InvalidInput


@dataclass(frozen=True)
class AssetCopy:
    sha256: str
    target: Path


@dataclass
class AssetPlan:
    files: dict[tuple[str, str], str] = field(default_factory=dict)
    """(plan, download name) -> the `file` key written for it (relative to FILE's folder)."""
    copies: list[AssetCopy] = field(default_factory=list)
    """What to write (targets that hold the same content already are left out)."""


def plan_assets(cat: Catalog, *, catalog_file: Path, data_dir: Path, overwrite: bool = False) -> AssetPlan:
    """Decide every asset of an export to `catalog_file`; raises (having written nothing) if any is refused."""
    catalog_file = Path(catalog_file)
    folder = catalog_file.parent
    if not folder.is_dir():
        raise InvalidInput(f"The folder {folder} does not exist.")
    if catalog_file.is_dir():
        raise InvalidInput(f"{catalog_file} is a folder.")
    plan = AssetPlan(files=asset_names(cat))
    differing: list[Path] = []
    for (ident, name), relative in plan.files.items():
        download = next(d for d in cat.plans[ident].downloads if d.name == name)
        stored = blobs.blob_path(download.sha256, data_dir=data_dir)
        if not stored.is_file():
            raise InvalidInput(f"The content {download.sha256} of the download '{name}' of the plan '{ident}' is not "
                               f"in the store at {data_dir / 'blobs'}; nothing was written.")
        target = folder / relative
        _refuse_files_in_the_way(folder, target)
        state = _existing(target, download.sha256)
        if state == "same":
            continue
        if state == "different":
            differing.append(target)
        plan.copies.append(AssetCopy(download.sha256, target))
    if differing and not overwrite:
        more = f" (and {len(differing) - 1} more)" if len(differing) > 1 else ""
        raise InvalidInput(f"{differing[0]}{more} already exists with other content; nothing was written.",
                           hint="Pass --overwrite to replace the existing asset files.")
    return plan


def write_assets(plan: AssetPlan, *, data_dir: Path) -> None:
    for copy in plan.copies:
        blobs.copy_blob(copy.sha256, copy.target, data_dir=data_dir)


def _refuse_files_in_the_way(folder: Path, target: Path) -> None:
    step = folder
    for part in target.relative_to(folder).parts[:-1]:
        step = step / part
        if os.path.lexists(step) and not step.is_dir():
            raise InvalidInput(f"{step} is a file where the export puts a folder of assets; nothing was written.",
                               hint="Move it away, or export into another folder.")


def _existing(target: Path, sha256: str) -> str:
    """'absent', 'same' (a regular file with this content), 'different' (other content, or a symlink)."""
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        raise InvalidInput(f"{target} cannot be examined: {exc.strerror or exc}.") from None
    if stat.S_ISDIR(info.st_mode):
        raise InvalidInput(f"{target} is a folder where the export puts an asset file; nothing was written.",
                           hint="Move it away, or export into another folder.")
    if not stat.S_ISREG(info.st_mode):
        return "different"
    try:
        found, _ = blobs.hash_file(target)
    except InvalidInput:  # unreadable: it can't be compared, so it is not the same
        return "different"
    return "same" if found == sha256 else "different"
