"""License files (issue #19): signed by this machine's Ed25519 key, verified offline.

Issued files are verified independently with `cryptography` (split the JWS, base64url-decode,
verify the signature over header.payload); `license verify` refuses a changed claim, another
machine, a file past `exp`, a retired key and a revoked license; it runs with no database at all
and creates none; the library verifier loads no database layer; the per-day limits say when they
reset; the policy round-trips through the catalog file."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key
from sqlmodel import select

from tollgate.catalog import LicensePolicy
from tollgate.clock import rfc3339

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 2, 9, 0, 0)


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _shop(tg, *, limit: int | None = 3, expires: str = "never", activations_per_day=None, files_per_day=None,
          customers: int = 1) -> list[str]:
    tg.create_product("App", identifier="app")
    tg.create_feature("SSO", type="boolean", identifier="sso")
    tg.create_feature("Seats", type="config", identifier="seats")
    tg.create_feature("API calls", type="metered", identifier="api-calls")
    tg.create_plan("pro", product="app", feature_values=["sso=true", "seats=25", "api-calls=1000"],
                   prices=[("once", "USD", "99.00")],
                   license=LicensePolicy(limit, expires, activations_per_day, files_per_day))
    keys = []
    for n in range(customers):
        tg.add_customer(f"Customer {n}", identifier=f"c{n}")
        tg.add_subscription(f"c{n}", "pro")
        keys.append(tg.licenses(customer=f"c{n}")[0].key)
    return keys


@pytest.fixture
def key(tg) -> str:
    return _shop(tg)[0]


@pytest.fixture
def pem(cli, empty_db, tmp_path) -> Path:
    result = cli("license", "public-key")
    assert result.exit_code == 0, result
    path = tmp_path / "keys.pem"
    path.write_text(result.stdout)
    return path


def _issue(cli, key, *args) -> str:
    result = cli("license", "file", key, *args)
    assert result.exit_code == 0, result
    return result.stdout.strip()


def _verify(cli, tmp_path, token: str, pem: Path, *args):
    path = tmp_path / "app.lic"
    path.write_text(token)
    return cli("license", "verify", path, "--public-key", pem, *args)


def test_an_issued_file_verifies_with_cryptography_alone(cli, key, pem):
    token = _issue(cli, key, "--fingerprint", "machine-1", "--ttl", "7d")
    header_b64, payload_b64, signature_b64 = token.split(".")
    public = load_pem_public_key(pem.read_bytes())
    public.verify(_unb64(signature_b64), f"{header_b64}.{payload_b64}".encode())  # raises if not valid
    header, claims = json.loads(_unb64(header_b64)), json.loads(_unb64(payload_b64))
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    thumbprint = _b64(hashlib.sha256(json.dumps({"crv": "Ed25519", "kty": "OKP", "x": _b64(raw)},
                                                separators=(",", ":")).encode()).digest())
    assert header == {"alg": "EdDSA", "kid": thumbprint, "typ": "JWT"}  # RFC 8037, RFC 7638 key id
    assert claims["key"] == key and claims["customer"] == "c0" and claims["plan"] == "pro"
    assert claims["features"] == {"seats": 25, "sso": True}  # boolean and config; metered is not offline
    assert claims["activation_limit"] == 3 and claims["license_expires"] is None
    assert claims["fingerprint"] == "machine-1"
    assert claims["exp"] - claims["iat"] == 7 * 86400
    assert abs(claims["iat"] - datetime.now().timestamp()) < 60
    shown = cli("license", "show", key, "--json").json()
    assert [a["name"] for a in shown["activations"]] == ["machine-1"]  # the fingerprint took a seat


def test_verify_accepts_a_good_file_and_refuses_each_kind_of_bad_one(cli, key, pem, tmp_path):
    token = _issue(cli, key, "--fingerprint", "machine-1")
    ok = _verify(cli, tmp_path, token, pem, "--fingerprint", "machine-1", "--plan", "pro")
    assert ok.exit_code == 0 and ok.stdout.startswith(f"valid: {key} (c0, pro) until "), ok
    header, payload, signature = token.split(".")
    claims = json.loads(_unb64(payload))
    tampered = f"{header}.{_b64(json.dumps({**claims, 'activation_limit': 1000}).encode())}.{signature}"
    cases = {
        "bad_signature": (tampered, []),
        "fingerprint_mismatch": (token, ["--fingerprint", "machine-2"]),
        "plan_mismatch": (token, ["--plan", "enterprise"]),
        "expired": (token, ["--at", rfc3339(datetime.utcfromtimestamp(claims["exp"]))]),
        "not_yet_valid": (token, ["--at", "2020-01-01"]),
    }
    for code, (text, args) in cases.items():
        result = _verify(cli, tmp_path, text, pem, *args)
        assert result.exit_code == 1, (code, result)
        assert result.stdout.startswith(f"invalid ({code}): ") and result.stdout.count(".") >= 1, result
        assert "\n" not in result.stdout.strip()  # one sentence
    just_before = rfc3339(datetime.utcfromtimestamp(claims["exp"] - 1))
    assert _verify(cli, tmp_path, token, pem, "--at", just_before).exit_code == 0
    as_json = _verify(cli, tmp_path, token, pem, "--fingerprint", "machine-2", "--json")
    assert as_json.exit_code == 1 and as_json.json()["code"] == "fingerprint_mismatch"
    unbound = _issue(cli, key)
    assert _verify(cli, tmp_path, unbound, pem).exit_code == 0
    assert _verify(cli, tmp_path, unbound, pem, "--fingerprint", "machine-1").exit_code == 1


def test_malformed_input_is_exit_2(cli, key, pem, tmp_path):
    token = _issue(cli, key)
    for text in ("not a token", "a.b.c", "e30.e30"):
        result = _verify(cli, tmp_path, text, pem)
        assert result.exit_code == 2 and result.stderr.startswith("error: ") and not result.stdout, result
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    assert _verify(cli, tmp_path, token, not_pem).exit_code == 2
    assert _verify(cli, tmp_path, token, tmp_path / "missing.pem").exit_code == 2
    assert _verify(cli, tmp_path, token, pem, "--at", "yesterday-ish").exit_code == 2
    assert cli("license", "verify", tmp_path / "missing.lic", "--public-key", pem).exit_code == 2


def test_rotation_keeps_old_files_valid_until_the_key_is_retired(cli, key, pem, tmp_path, tg):
    old_token = _issue(cli, key)
    old_kid = json.loads(_unb64(old_token.split(".")[0]))["kid"]
    rotated = cli("license", "signing-key", "rotate", "--json")
    assert rotated.exit_code == 0 and rotated.json()["kid"] != old_kid
    new_token = _issue(cli, key)
    assert json.loads(_unb64(new_token.split(".")[0]))["kid"] == rotated.json()["kid"]
    bundle = tmp_path / "all.pem"
    keys = cli("license", "public-key", "--all", "--json").json()
    assert [k["kid"] for k in keys] == [old_kid, rotated.json()["kid"]] and [k["current"] for k in keys] == [False, True]
    bundle.write_text(cli("license", "public-key", "--all").stdout)
    assert _verify(cli, tmp_path, old_token, bundle).exit_code == 0
    assert _verify(cli, tmp_path, new_token, bundle).exit_code == 0

    refused = cli("license", "signing-key", "retire", rotated.json()["kid"])
    assert refused.exit_code == 1 and "rotate" in refused.stderr, refused  # the key this machine signs with
    assert cli("license", "signing-key", "retire", "no-such-kid").exit_code == 2
    private = tg.data_dir / "signing-keys" / f"{old_kid}.pem"
    assert private.exists()
    assert cli("license", "signing-key", "retire", old_kid).exit_code == 0
    assert not private.exists()  # it never signs again
    assert cli("license", "signing-key", "retire", old_kid).exit_code == 1
    bundle.write_text(cli("license", "public-key", "--all").stdout)
    retired = _verify(cli, tmp_path, old_token, bundle)
    assert retired.exit_code == 1 and retired.stdout.startswith("invalid (unknown_key): "), retired
    assert _verify(cli, tmp_path, new_token, bundle).exit_code == 0


def test_the_signing_key_is_private_and_made_once(cli, key, tg):
    _issue(cli, key)
    _issue(cli, key)
    folder = tg.data_dir / "signing-keys"
    files = list(folder.iterdir())
    assert len(files) == 1 and oct(files[0].stat().st_mode & 0o777) == "0o600"
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert len(cli("license", "public-key", "--all", "--json").json()) == 1
    with tg.db.read() as session:
        from tollgate.models import SigningKey

        row = session.exec(select(SigningKey)).one()
    assert "PRIVATE" not in row.public_key  # the database holds only the public half


def test_revoked_expired_and_unknown_keys_get_no_file(cli, tg, tmp_path):
    keys = _shop(tg, customers=3)
    assert cli("license", "revoke", keys[0], "--yes").exit_code == 0
    assert cli("license", "edit", keys[1], "--expires", "2020-01-01").exit_code == 0
    out = tmp_path / "x.lic"
    for k in keys[:2]:
        result = cli("license", "file", k, "--out", out)
        assert result.exit_code == 1 and not result.stdout and not out.exists(), result
    unknown = cli("license", "file", "7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E")
    assert unknown.exit_code == 1 and "No license has the key" in unknown.stderr
    assert cli("license", "file", "not-a-key").exit_code == 2
    assert cli("license", "file", keys[2], "--ttl", "forever").exit_code == 2
    assert cli("license", "file", keys[2], "--ttl", "0d").exit_code == 2


def test_a_revoked_license_fails_verify_once_its_revoke_takes_effect(cli, tg, pem, tmp_path):
    """A file is capped by the key's scheduled revoke (a cancel at period end) and by its expiry."""
    keys = _shop(tg, customers=2)
    sub = tg.licenses(customer="c0")[0].subscription
    tg.edit_license(keys[1], expires="2027-03-01T00:00:00Z")
    capped = json.loads(_unb64(_issue(cli, keys[1], "--ttl", "3660d").split(".")[1]))
    assert capped["exp"] == capped["license_expires"] == int(datetime(2027, 3, 1).timestamp()
                                                             - datetime(1970, 1, 1).timestamp())
    with tg.db.write() as session:  # a cancel at period end, stored as the key's revoke time
        from tollgate.licenses import get_license

        get_license(session, keys[0]).revoked_at = datetime.utcnow() + timedelta(days=2)
    token = _issue(cli, keys[0])
    claims = json.loads(_unb64(token.split(".")[1]))
    assert claims["exp"] - claims["iat"] < 2 * 86400 + 5
    assert _verify(cli, tmp_path, token, pem).exit_code == 0
    after = rfc3339(datetime.utcnow() + timedelta(days=3))
    assert _verify(cli, tmp_path, token, pem, "--at", after).exit_code == 1
    assert tg.cancel_subscription(sub) and cli("license", "file", keys[0]).exit_code == 1


def test_out_writes_the_file_atomically_and_never_over_the_database(cli, key, pem, tmp_path, isolated_db):
    out = tmp_path / "app.lic"
    result = cli("license", "file", key, "--out", out)
    assert result.exit_code == 0 and result.stdout.startswith(f"Wrote {out}: a license file for {key}"), result
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert cli("license", "verify", out, "--public-key", pem).exit_code == 0
    assert cli("license", "file", key, "--out", tmp_path / "no-such-folder" / "x.lic").exit_code == 2
    if isinstance(isolated_db, Path):
        assert cli("license", "file", key, "--out", isolated_db).exit_code == 2
    issued = [e for e in cli("log", "--json").json() if e["action"] == "license.file"]
    assert len(issued) == 1  # the refused ones recorded nothing


# -- no database -----------------------------------------------------------------------------------------


def _empty_home(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOLLGATE_", "XDG_"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"),
               XDG_CACHE_HOME=str(home / "cache"), XDG_STATE_HOME=str(home / "state"))
    return env


def test_verify_needs_no_database_and_creates_none(cli, key, tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    (files / "app.lic").write_text(_issue(cli, key, "--fingerprint", "m1"))
    (files / "keys.pem").write_text(cli("license", "public-key", "--all").stdout)
    env = _empty_home(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*") if "home" in p.parts or p.parent == files)
    for args, code in (([], 0), (["--fingerprint", "m2"], 1), (["--at", "2099-01-01"], 1)):
        run = subprocess.run([sys.executable, "-m", "tollgate", "license", "verify", "app.lic",
                              "--public-key", "keys.pem", *args], cwd=files, env=env, capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == code, run
    after = sorted(p for p in tmp_path.rglob("*") if "home" in p.parts or p.parent == files)
    assert after == before  # no database, no data folder, nothing beside the files


def test_the_library_verifier_loads_no_database_layer_nor_the_cli(cli, key, tmp_path):
    token = _issue(cli, key, "--fingerprint", "m1")
    pem = cli("license", "public-key").stdout
    script = (
        "import sys, json\n"
        "from tollgate import verify_license_file\n"
        "token, pem = json.loads(sys.stdin.read())\n"
        "ok = verify_license_file(token, pem, fingerprint='m1')\n"
        "bad = verify_license_file(token, pem, fingerprint='m2')\n"
        "heavy = sorted(m for m in ('sqlmodel', 'sqlalchemy', 'typer', 'rich', 'pydantic') if m in sys.modules)\n"
        "print(json.dumps([ok.valid, ok.reason, ok.claims['key'], bad.valid, bad.reason, heavy]))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], input=json.dumps([token, pem]), env=_empty_home(tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    valid, reason, claimed, bad_valid, bad_reason, heavy = json.loads(run.stdout)
    assert (valid, reason, claimed) == (True, None, key)
    assert bad_valid is False and bad_reason.endswith(".")
    assert heavy == []


def test_the_readme_verifier_uses_only_cryptography(cli, key, tmp_path):
    text = (REPO / "README.md").read_text()
    code = re.search(r"<!-- verifier -->\n```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 15
    assert set(re.findall(r"^(?:from|import) (\w+)", code, re.M)) <= {"base64", "json", "time", "cryptography"}
    (tmp_path / "app.lic").write_text(_issue(cli, key, "--fingerprint", "m1"))
    (tmp_path / "keys.pem").write_text(cli("license", "public-key").stdout)
    script = code + "\nprint(json.dumps(verify(open('app.lic').read(), open('keys.pem', 'rb').read(), 'm1')))\n"
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["key"] == key
    tampered = code + "\nverify(open('app.lic').read(), open('keys.pem', 'rb').read(), 'm2')\n"
    assert subprocess.run([sys.executable, "-c", tampered], cwd=tmp_path, capture_output=True,
                          timeout=60).returncode != 0


# -- per-day limits ------------------------------------------------------------------------------------------


def _issue_at(tg, key, moment, fingerprint=None):
    from tollgate import license_files

    with tg.db.write() as session:
        return license_files.issue(session, key=key, data_dir=tg.data_dir, fingerprint=fingerprint, now=moment)


def test_files_per_day_refuses_and_says_when_it_resets(tg, cli):
    from tollgate.licenses import LicenseRefused

    key = _shop(tg, files_per_day=2)[0]
    _issue_at(tg, key, T0)
    _issue_at(tg, key, T0 + timedelta(hours=5))
    with pytest.raises(LicenseRefused) as refused:
        _issue_at(tg, key, T0 + timedelta(hours=23))
    assert refused.value.reason == "files_per_day" and refused.value.exit_code == 1
    assert str(refused.value) == (f"The key {key} reached its limit of 2 license files per day (2 in the last 24 "
                                  f"hours); the next is allowed at {rfc3339(T0 + timedelta(hours=24))}.")
    _issue_at(tg, key, T0 + timedelta(hours=24, seconds=1))  # the first one left the window
    with pytest.raises(LicenseRefused, match=re.escape(rfc3339(T0 + timedelta(hours=29)))):
        _issue_at(tg, key, T0 + timedelta(hours=25))
    # the CLI, at the real time: its own count, the same sentence, exit 1
    now_key = _shop_more(tg)
    assert cli("license", "file", now_key).exit_code == 0
    assert cli("license", "file", now_key).exit_code == 0
    result = cli("license", "file", now_key)
    assert result.exit_code == 1 and "per day" in result.stderr and "the next is allowed at 20" in result.stderr


def _shop_more(tg) -> str:
    tg.add_customer("Later", identifier="later")
    tg.add_subscription("later", "pro")
    return tg.licenses(customer="later")[0].key


def test_activations_per_day_limits_churn_not_reactivation(tg, cli):
    from tollgate.licenses import LicenseRefused, activate, deactivate

    key = _shop(tg, limit=1, activations_per_day=2)[0]
    first = _issue_at(tg, key, T0, fingerprint="m1").activation
    assert first.created
    assert not _issue_at(tg, key, T0 + timedelta(hours=1), fingerprint="m1").activation.created  # free
    with tg.db.write() as session:
        deactivate(session, key=key, instance=first.instance_id, now=T0 + timedelta(hours=2))
    _issue_at(tg, key, T0 + timedelta(hours=3), fingerprint="m2")  # the second activation of the day
    with tg.db.write() as session:
        seat = activate(session, key=key, name="m2", now=T0 + timedelta(hours=4))[0]
        deactivate(session, key=key, instance=seat.instance_id, now=T0 + timedelta(hours=4))  # never limited
    with pytest.raises(LicenseRefused) as refused:
        with tg.db.write() as session:
            activate(session, key=key, name="m3", now=T0 + timedelta(hours=5))
    assert refused.value.reason == "activations_per_day"
    assert f"the next is allowed at {rfc3339(T0 + timedelta(hours=24))}" in str(refused.value)
    with pytest.raises(LicenseRefused, match="activations per day"):
        _issue_at(tg, key, T0 + timedelta(hours=6), fingerprint="m3")
    _issue_at(tg, key, T0 + timedelta(hours=24, seconds=1), fingerprint="m3")


def test_the_activation_limit_counts_fingerprints(cli, key):
    for n in range(3):
        _issue(cli, key, "--fingerprint", f"m{n}")
    _issue(cli, key, "--fingerprint", "m0")  # the same machine again: no new seat
    refused = cli("license", "file", key, "--fingerprint", "m3")
    assert refused.exit_code == 1 and "activation limit is reached" in refused.stderr, refused


# -- the policy in the catalog ------------------------------------------------------------------------------


POLICY = """\
version = 1

[products.app]
name = "App"

[plans.pro]
product = "app"
name = "Pro"

[plans.pro.license]
activation_limit = 2
expires_after = "1y"
activations_per_day = 4
files_per_day = 12
"""


def test_the_limits_round_trip_through_the_catalog_file(cli, tmp_path):
    source = tmp_path / "catalog.toml"
    source.write_text(POLICY)
    assert cli("catalog", "import", source).exit_code == 0
    first, second = tmp_path / "one.toml", tmp_path / "two.toml"
    assert cli("catalog", "export", first).exit_code == 0
    assert "activations_per_day = 4\nfiles_per_day = 12\n" in first.read_text()
    assert cli("catalog", "import", first).exit_code == 0
    assert cli("catalog", "export", second).exit_code == 0
    assert first.read_bytes() == second.read_bytes()
    shown = cli("plan", "show", "pro", "--json").json()["license"]
    assert (shown["activations_per_day"], shown["files_per_day"]) == (4, 12)
    assert "4 activations per key per day, 12 license files per key per day" in cli("plan", "show", "pro").stdout


@pytest.mark.parametrize("value", ["0", '"5"', "true", "2000000"])
def test_a_bad_limit_is_refused_with_its_path(cli, tmp_path, value):
    source = tmp_path / "catalog.toml"
    source.write_text(POLICY.replace("files_per_day = 12", f"files_per_day = {value}"))
    result = cli("catalog", "import", source)
    assert result.exit_code == 2 and "plans.pro.license.files_per_day" in result.stderr, result


def test_db_copy_carries_signing_keys_and_license_files(cli, key, tmp_path, tg):
    """The rows, and the private key files into the target's data folder: the copy signs with the key
    applications already embed."""
    token = _issue(cli, key, "--fingerprint", "m1")
    target = tmp_path / "elsewhere" / "copy.db"
    target.parent.mkdir()
    result = cli("db", "copy", os.environ["TOLLGATE_DB"], target, "--json")
    assert result.exit_code == 0, result
    assert result.json()["tables"]["signing_key"] == 1 and result.json()["tables"]["license_file"] == 1
    assert result.json()["signing_keys_copied"] == 1
    kid = json.loads(_unb64(token.split(".")[0]))["kid"]
    copied = target.parent / "signing-keys" / f"{kid}.pem"
    assert copied.read_bytes() == (tg.data_dir / "signing-keys" / f"{kid}.pem").read_bytes()
    assert oct(copied.stat().st_mode & 0o777) == "0o600"
    again = cli("--db", target, "license", "file", key)
    assert again.exit_code == 0 and json.loads(_unb64(again.stdout.split(".")[0]))["kid"] == kid
