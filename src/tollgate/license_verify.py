"""Verifying a license file offline: the piece an application embeds.

A license file is a JWS compact serialization (RFC 7515) signed with Ed25519, `alg` "EdDSA" (RFC
8037), the signing key's id in the header's `kid`: the RFC 7638 thumbprint of its public key, so a
verifier can tell which of several embedded public keys to use without any other metadata.

This module needs only the standard library and `cryptography`: `from tollgate import
verify_license_file` loads neither the database layer nor the CLI (tests/test_license_files.py
checks `sys.modules`). It never opens a database or a file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ALG = "EdDSA"
MAX_TOKEN_CHARS = 64 * 1024
ISSUED_LEEWAY_S = 300  # a file issued this much "after" the verifier's clock still counts (clock skew)
MAX_MOMENT = 253402300799  # 9999-12-31T23:59:59Z: the last NumericDate a datetime (and time_t) can show
_PEM_BEGIN, _PEM_END = "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----"
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class MalformedInput(ValueError):
    """A public key that is not an Ed25519 PEM public key (a mistake in the caller, not an answer)."""


@dataclass(frozen=True)
class LicenseFileCheck:
    """The answer to "does this file license this machine?". `reason` is one sentence (None when
    valid); `code` names it for programs: malformed, unknown_key, unsupported_alg, bad_signature,
    not_yet_valid, expired, license_expired, fingerprint_mismatch, not_bound, plan_mismatch.
    unsupported_header (a `crit` extension). `claims` are the file's claims once its signature is
    verified (else empty)."""

    valid: bool
    reason: str | None
    code: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.valid

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "code": self.code, "reason": self.reason, "claims": self.claims}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    """Strict base64url without padding: only the canonical spelling of the bytes (unused trailing
    bits zero), so one file has one token."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url(data) != text:
        raise ValueError("not canonical base64url")
    return data


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url) of an Ed25519 public key."""
    jwk = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": b64url(raw_public_key(key))},
                     separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(jwk.encode("ascii")).digest())


def _pem_blocks(text: str) -> list[str]:
    """Each BEGIN ... END PUBLIC KEY block, found in one pass (a lazy regex rescans the rest of the
    text from every BEGIN that has no END: minutes for a hostile megabyte)."""
    blocks, start = [], text.find(_PEM_BEGIN)
    while start != -1:
        end = text.find(_PEM_END, start)
        if end == -1:
            break
        blocks.append(text[start:end + len(_PEM_END)])
        start = text.find(_PEM_BEGIN, end)
    return blocks


def load_public_keys(pem: str | bytes) -> dict[str, Ed25519PublicKey]:
    """kid -> key of every Ed25519 public key in a PEM text (one key, or the several that `license
    public-key --all` prints). MalformedInput when there is none or one is not Ed25519."""
    text = pem.decode("utf-8", "replace") if isinstance(pem, bytes) else str(pem)
    blocks = _pem_blocks(text)
    if not blocks:
        raise MalformedInput("The public key is not a PEM public key (-----BEGIN PUBLIC KEY-----).")
    keys: dict[str, Ed25519PublicKey] = {}
    for block in blocks:
        try:
            key = serialization.load_pem_public_key(block.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise MalformedInput("The public key's PEM block cannot be read.") from None
        if not isinstance(key, Ed25519PublicKey):
            raise MalformedInput("The public key is not an Ed25519 key.")
        keys[key_id(key)] = key
    return keys


def _json_part(text: str) -> dict[str, Any]:
    try:
        value = json.loads(_unb64url(text).decode("utf-8"))
    except RecursionError:  # deeply nested arrays: junk, read before any signature is checked
        raise ValueError("nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


_CLAIM_TYPES: dict[str, tuple[str, bool]] = {  # claim: (kind, required); absent or null is allowed when not required
    "iat": ("moment", True), "exp": ("moment", True), "license_expires": ("moment", False),
    "key": ("text", False), "customer": ("text", False), "plan": ("text", False), "fingerprint": ("text", False),
}


def _claim_problem(claims: dict[str, Any]) -> str | None:
    """Why the claims this verifier reads are not of their types (None when they are): moments are
    whole seconds from 1970 to 9999, the others strings."""
    for name, (kind, required) in _CLAIM_TYPES.items():
        value = claims.get(name)
        if value is None:
            if required:
                return f"The file's claims lack {name}."
        elif kind == "text" and not isinstance(value, str):
            return f"The file's claim {name} is not a string."
        elif kind == "moment" and (not isinstance(value, int) or isinstance(value, bool)
                                   or not 0 <= value <= MAX_MOMENT):
            return f"The file's claim {name} is not whole seconds between 1970 and 9999."
    return None


def utc_text(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timestamp(at: datetime | None) -> int:
    moment = at or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # naive: UTC, as everywhere in tollgate
    return int(moment.timestamp())


def _invalid(code: str, reason: str, claims: dict[str, Any] | None = None) -> LicenseFileCheck:
    return LicenseFileCheck(False, reason, code, claims or {})


def verify_license_file(
    token: str | bytes, public_key: str | bytes, fingerprint: str | None = None, at: datetime | None = None,
    *, plan: str | None = None,
) -> LicenseFileCheck:
    """Verify a license file against the public key(s) in `public_key` (PEM) at `at` (default now;
    a naive datetime is UTC): its signature, its time window (`iat`, `exp`, `license_expires`), and,
    when given, that it is bound to `fingerprint` and is for `plan`. Never raises for a bad file (the
    answer says why); a public key that is not Ed25519 PEM raises MalformedInput (a ValueError)."""
    keys = load_public_keys(public_key)
    text = token.decode("utf-8", "replace") if isinstance(token, bytes) else str(token)
    text = text.strip()
    parts = text.split(".")
    if len(text) > MAX_TOKEN_CHARS or len(parts) != 3:
        return _invalid("malformed", "This is not a license file (a JWS compact serialization: three "
                                     "base64url parts separated by dots).")
    try:
        header, claims, signature = _json_part(parts[0]), _json_part(parts[1]), _unb64url(parts[2])
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return _invalid("malformed", "This is not a license file: a part is not base64url-encoded JSON.")
    if "crit" in header:  # RFC 7515 4.1.11: extensions this verifier does not implement
        return _invalid("unsupported_header", "The file's header requires extensions (crit) this verifier does not "
                                              "implement.")
    if header.get("alg") != ALG:
        return _invalid("unsupported_alg", f"The file is signed with alg {str(header.get('alg'))[:40]!r}; "
                                           "only EdDSA (Ed25519) files are accepted.")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        return _invalid("unknown_key", f"The file is signed by the key {str(kid)[:60]!r}, which is not among "
                                       "the public keys given (retired, or another vendor's).")
    try:
        key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
    except InvalidSignature:
        return _invalid("bad_signature", "The signature does not match: the file was changed or forged.")
    return _check_claims(claims, _timestamp(at), fingerprint, plan)


def _check_claims(claims: dict[str, Any], now: int, fingerprint: str | None, plan: str | None) -> LicenseFileCheck:
    problem = _claim_problem(claims)
    if problem is not None:
        return _invalid("malformed", problem, claims)
    iat, exp = claims["iat"], claims["exp"]
    if now + ISSUED_LEEWAY_S < iat:
        return _invalid("not_yet_valid", f"The file was issued at {utc_text(iat)}, after the time checked.", claims)
    if now >= exp:
        return _invalid("expired", f"The file expired at {utc_text(exp)}; ask for a new one.", claims)
    ends = claims.get("license_expires")
    if ends is not None and now >= ends:
        return _invalid("license_expired", f"The license expired at {utc_text(ends)}.", claims)
    bound = claims.get("fingerprint")
    if fingerprint is not None and bound is None:
        return _invalid("not_bound", "The file is not bound to a machine, and a fingerprint was required.", claims)
    if fingerprint is not None and bound != fingerprint:
        return _invalid("fingerprint_mismatch", "The file is bound to another machine (its fingerprint differs).",
                        claims)
    if plan is not None and claims.get("plan") != plan:
        return _invalid("plan_mismatch", f"The file is for the plan {str(claims.get('plan'))[:60]!r}, not {plan!r}.",
                        claims)
    return LicenseFileCheck(True, None, None, claims)
