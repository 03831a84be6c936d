"""The Ed25519 keys that sign license files.

Where they live: the private half of each key is a file `signing-keys/<kid>.pem` (PKCS #8, 0600, in
a 0700 folder) in the data folder of the machine that signs (the SQLite file's folder; for a
PostgreSQL URL the platform's user data folder), written atomically (files.atomic_file). The
database holds the public half, the key id, the machine's host name and the dates (`signing_key`),
so on a shared PostgreSQL database every machine's public keys are listed, while no private key
ever leaves the machine that made it.

Which key signs: the newest unretired key whose private file is in this data folder. On first use
(no such key) one is made, under the "signing-keys" advisory lock on PostgreSQL (two first uses at
once make one key). `rotate` makes a new one: files signed by the older keys keep verifying, as the
older keys stay in `public_keys(all_keys=True)`, until `retire` drops a key from that list for good
(and deletes its private file here: it never signs again).
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session, col, select

from tollgate import journal, locks
from tollgate.clock import rfc3339, utcnow
from tollgate.deliverable_views import SigningKeyView
from tollgate.errors import InvalidInput, NotFound, RuleViolation, StorageError
from tollgate.files import atomic_file, open_regular
from tollgate.license_verify import ALG, b64url, key_id
from tollgate.outfiles import KEY_FOLDER
from tollgate.models import SigningKey

_KID = re.compile(r"[A-Za-z0-9_-]{43}")  # a SHA-256 thumbprint in base64url (license_verify.key_id)


@dataclass(frozen=True)
class Signer:
    """The key this machine signs with: its row and its private half."""

    row: SigningKey
    private_key: Ed25519PrivateKey

    def sign(self, claims: dict[str, Any]) -> str:
        """A JWS compact serialization of `claims`: header {alg: EdDSA, kid, typ: JWT} (RFC 8037)."""
        header = b64url(_json({"alg": ALG, "kid": self.row.kid, "typ": "JWT"}))
        payload = b64url(_json(claims))
        signature = self.private_key.sign(f"{header}.{payload}".encode("ascii"))
        return f"{header}.{payload}.{b64url(signature)}"


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


def is_key_id(kid: object) -> bool:
    return isinstance(kid, str) and _KID.fullmatch(kid) is not None


def key_folder(data_dir: Path) -> Path:
    return Path(data_dir) / KEY_FOLDER


def _make_key_folder(folder: Path) -> None:
    """The key folder, 0700 when new; something else in its place is a StorageError, not a crash."""
    from tollgate.outfiles import private_folder

    try:
        private_folder(folder)
    except OSError as exc:
        raise StorageError(f"Cannot create the signing key folder {folder}: {exc.strerror} (a file or a broken "
                           "link may be in its place); no key file was written.") from None


def private_key_path(data_dir: Path, kid: str) -> Path:
    """Where this machine keeps the private half of `kid`; a key id read from the database that is
    not one (edited by hand, or a crafted file given to `db copy`) never reaches the file system."""
    if not is_key_id(kid):
        raise StorageError(f"A signing key's recorded id {str(kid)[:60]!r} is not a key id; the database is damaged "
                           "(or was edited by hand), and no key file was read or written for it.",
                           hint="Restore the database from a backup.")
    return key_folder(data_dir) / f"{kid}.pem"


def _read_private(data_dir: Path, row: SigningKey) -> Ed25519PrivateKey | None:
    if not is_key_id(row.kid):
        return None  # not a key this machine made (it writes only key ids)
    path = private_key_path(data_dir, row.kid)
    if not path.exists():
        return None
    try:
        with open_regular(path) as handle:
            data = handle.read()
    except InvalidInput as exc:  # a FIFO, a folder, unreadable: the data folder is damaged, not the input
        raise StorageError(exc.message, hint="Retire that key (tollgate license signing-key retire KID) and rotate.") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey) or key_id(key.public_key()) != row.kid:
        raise StorageError(f"The signing key file {path} is damaged (not the Ed25519 key {row.kid}).",
                           hint="Retire that key (tollgate license signing-key retire KID) and rotate.")
    return key


def _local_signer(session: Session, data_dir: Path) -> Signer | None:
    rows = session.exec(select(SigningKey).where(col(SigningKey.retired_at).is_(None))
                        .order_by(col(SigningKey.created_at).desc(), col(SigningKey.id).desc())).all()
    for row in rows:
        key = _read_private(data_dir, row)
        if key is not None:
            return Signer(row, key)
    return None


def _create(session: Session, data_dir: Path, now: datetime, *, action: str) -> Signer:
    key = Ed25519PrivateKey.generate()
    while key_id(key.public_key()).startswith("-"):  # a key id is typed as an argument: never an option's dash
        key = Ed25519PrivateKey.generate()
    kid = key_id(key.public_key())
    _make_key_folder(key_folder(data_dir))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    # written before the row: a rollback leaves an unused file, never a row without its private half
    with atomic_file(private_key_path(data_dir, kid), binary=True, mode=0o600) as handle:
        handle.write(pem)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    row = SigningKey(kid=kid, public_key=public, host=socket.gethostname()[:200] or "localhost", created_at=now)
    session.add(row)
    session.flush()
    journal.record(session, action=action, object_type="signing_key", object_id=kid,
                   details={"host": row.host}, at=now)
    return Signer(row, key)


def signer(session: Session, data_dir: Path, *, now: datetime | None = None) -> Signer:
    """The key this machine signs with, made on first use (in the caller's write transaction)."""
    found = _local_signer(session, data_dir)
    if found is not None:
        return found
    locks.namespace(session, "signing-keys")
    found = _local_signer(session, data_dir)  # another process may have made it while we waited
    return found or _create(session, data_dir, now or utcnow(), action="signing_key.create")


def rotate(session: Session, data_dir: Path, *, now: datetime | None = None) -> Signer:
    """A new signing key for this machine; the older keys keep verifying until retired."""
    locks.namespace(session, "signing-keys")
    return _create(session, data_dir, now or utcnow(), action="signing_key.rotate")


def retire(session: Session, data_dir: Path, kid: str, *, now: datetime | None = None) -> SigningKey:
    """Retire a key for good: it signs nothing more and leaves `public_keys(all_keys=True)`. The key
    this machine signs with is refused (rotate first). The caller deletes the private file after
    committing (`private_key_path`)."""
    now = now or utcnow()
    locks.namespace(session, "signing-keys")
    row = session.exec(select(SigningKey).where(SigningKey.kid == (kid or "").strip())).first()
    if row is None:
        raise NotFound(f"No signing key has the id '{kid}'.", hint="See `tollgate license public-key --all --json`.")
    private_key_path(data_dir, row.kid)  # a damaged id is refused before anything changes
    if row.retired_at is not None:
        raise RuleViolation(f"The signing key {row.kid} was already retired at {rfc3339(row.retired_at)}.")
    current = _local_signer(session, data_dir)
    if current is not None and current.row.id == row.id:
        raise RuleViolation(f"The signing key {row.kid} is the one this machine signs with; it can't be retired.",
                            hint="Start a new one first: tollgate license signing-key rotate.")
    row.retired_at = now
    session.add(row)
    session.flush()
    journal.record(session, action="signing_key.retire", object_type="signing_key", object_id=row.kid,
                   details={"host": row.host}, at=now)
    return row


def public_keys(session: Session, data_dir: Path, *, all_keys: bool = False) -> list[SigningKeyView]:
    """The public key this machine signs with (made on first use), or with `all_keys` every
    unretired key (the ones an application should accept), oldest first."""
    mine = signer(session, data_dir)
    if not all_keys:
        return [SigningKeyView.of(mine.row, current=True)]
    rows = session.exec(select(SigningKey).where(col(SigningKey.retired_at).is_(None))
                        .order_by(SigningKey.created_at, SigningKey.id)).all()
    return [SigningKeyView.of(row, current=row.id == mine.row.id) for row in rows]


def copy_private_keys(kids: list[str], source_dir: Path, target_dir: Path) -> int:
    """Copy the private files of these keys found in `source_dir` into `target_dir` (`db copy` to
    another data folder, so the target signs with the key applications already embed). Returns how
    many were copied; a key already there, or not kept at the source, is left alone."""
    if Path(source_dir).resolve() == Path(target_dir).resolve():
        return 0
    copied = 0
    for kid in filter(is_key_id, kids):
        source, target = private_key_path(source_dir, kid), private_key_path(target_dir, kid)
        if target.exists() or not source.exists():
            continue
        with open_regular(source) as handle:
            data = handle.read()
        _make_key_folder(target.parent)
        with atomic_file(target, binary=True, mode=0o600) as out:
            out.write(data)
        copied += 1
    return copied
