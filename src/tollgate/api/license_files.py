"""The `Tollgate` methods of license files and their signing keys (mixed into api.Tollgate).

The private signing keys live in this machine's data folder (`Tollgate.data_dir`, see signing.py);
verifying a file needs none of this: `tollgate.verify_license_file` (license_verify.py)."""

from __future__ import annotations

import os
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from tollgate.api.base import Base
from tollgate.lazy import lazy_module

if TYPE_CHECKING:
    from tollgate import deliverable_views, license_files, signing
    from tollgate.deliverable_views import SigningKeyView
    from tollgate.license_files import IssuedFile
else:
    deliverable_views = lazy_module("tollgate.deliverable_views")
    license_files = lazy_module("tollgate.license_files")
    signing = lazy_module("tollgate.signing")


class LicenseFileMethods(Base):
    def issue_license_file(self, key: str, *, fingerprint: str | None = None, ttl: str = "30d",
                           out: str | os.PathLike | None = None) -> IssuedFile:
        """A signed license file for an active key: license_files.IssuedFile (`token`, `kid`, the signed
        `claims`, `activation`; `.to_dict()` is `license file --json`); with
        `out`, also written there atomically, and only if the issue commits. With `fingerprint`, that
        machine is activated on the key. Refused (licenses.LicenseRefused, exit 1, `.reason`):
        unknown, revoked, expired, limit_reached, activations_per_day, files_per_day."""
        from tollgate import files, outfiles

        if out is not None:
            outfiles.check_target(out, database=self.db.path, what="The license file",
                                  keys=signing.key_folder(self.data_dir))
        with files.atomic_file(out, mode=0o600) if out is not None else nullcontext() as handle:
            with self.db.write() as session:
                issued = license_files.issue(session, key=key, data_dir=self.data_dir, fingerprint=fingerprint, ttl=ttl)
                if handle is not None:
                    handle.write(issued.token + "\n")
        return issued

    def public_keys(self, *, all_keys: bool = False) -> list[SigningKeyView]:
        """The public key this machine signs license files with (made on first use), or with
        `all_keys` every unretired one, oldest first: `kid`, `host`, `created_at`, `retired_at`,
        `current`, `public_key` (PEM)."""
        with self.db.write(creating=False) as session:  # no key is made for a database that does not exist
            return signing.public_keys(session, self.data_dir, all_keys=all_keys)

    def rotate_signing_key(self) -> SigningKeyView:
        """A new signing key for this machine (returned); files signed by older keys verify until
        those are retired."""
        with self.db.write() as session:
            return deliverable_views.SigningKeyView.of(signing.rotate(session, self.data_dir).row, current=True)

    def retire_signing_key(self, kid: str) -> SigningKeyView:
        """Retire a signing key for good (not the one this machine signs with; returned); its private
        file here is deleted once that is committed."""
        with self.db.write() as session:
            row = signing.retire(session, self.data_dir, kid)
            retired = deliverable_views.SigningKeyView.of(row, current=False)
        signing.private_key_path(self.data_dir, row.kid).unlink(missing_ok=True)
        return retired
