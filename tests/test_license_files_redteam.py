"""Red-team regressions of license files (issue #19): hostile tokens (deep JSON, out-of-range or
wrongly typed claims, `crit` headers, non-canonical base64url) get an answer, never an exception or
exit 70; `--out` never overwrites a private signing key; a key id read from a database reaches the
file system only as a key id."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest
import sqlmodel
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from test_license_files import _shop

from tollgate import verify_license_file
from tollgate.errors import StorageError


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def issued(tg):
    key = _shop(tg)[0]
    token = tg.issue_license_file(key).token
    pem = tg.public_keys()[0].public_key
    kid = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==="))["kid"]
    private = load_pem_private_key((Path(tg.data_dir) / "signing-keys" / f"{kid}.pem").read_bytes(), None)
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))

    def sign(header: dict | None = None, payload: bytes | dict | None = None) -> str:
        head = _b64(json.dumps({"alg": "EdDSA", "kid": kid, "typ": "JWT", **(header or {})}).encode())
        body = payload if isinstance(payload, bytes) else json.dumps({**claims, **(payload or {})}).encode()
        signing_input = f"{head}.{_b64(body)}"
        return f"{signing_input}.{_b64(private.sign(signing_input.encode()))}"

    return {"key": key, "token": token, "pem": pem, "sign": sign, "claims": claims, "kid": kid}


def test_deeply_nested_json_is_malformed_not_a_crash(issued):
    header, payload, signature = issued["token"].split(".")
    deep = _b64(b"[" * 20000 + b"]" * 20000)
    for token in (f"{deep}.{payload}.{signature}", issued["sign"](payload=b"[" * 20000 + b"]" * 20000)):
        answer = verify_license_file(token, issued["pem"])  # unsigned junk: RecursionError before the fix
        assert not answer.valid and answer.code == "malformed", answer


@pytest.mark.parametrize("claim, value", [
    ("exp", 10 ** 30), ("iat", 10 ** 30), ("exp", -10 ** 30), ("license_expires", -10 ** 30),
    ("license_expires", "2020-01-01"), ("license_expires", 1.5), ("fingerprint", 5), ("plan", ["pro"]),
])
def test_claims_out_of_range_or_of_the_wrong_type_are_malformed(issued, claim, value):
    answer = verify_license_file(issued["sign"](payload={claim: value}), issued["pem"], plan="pro")
    assert not answer.valid and answer.code == "malformed", answer
    assert claim in answer.reason


def test_a_critical_header_extension_is_refused(issued):
    for header in ({"crit": ["exp2"], "exp2": 1}, {"b64": False, "crit": ["b64"]}, {"crit": "x"}):
        answer = verify_license_file(issued["sign"](header=header), issued["pem"])
        assert not answer.valid and answer.code == "unsupported_header", answer


def test_non_canonical_base64url_is_malformed(issued):
    header, payload, signature = issued["token"].split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = signature[:-1] + alphabet[alphabet.index(signature[-1]) ^ 1]  # same bytes, other unused bits
    for token in (f"{header}.{payload}.{twin}", f"{header}\n.{payload}.{signature}"):
        answer = verify_license_file(token, issued["pem"])
        assert not answer.valid and answer.code == "malformed", answer


def test_cli_answers_a_hostile_file_with_exit_2(cli, issued, tmp_path):
    pem = tmp_path / "keys.pem"
    pem.write_text(issued["pem"])
    for token in (issued["sign"](payload={"exp": 10 ** 30}), _b64(b"[" * 20000 + b"]" * 20000) + ".e30.e30"):
        (tmp_path / "app.lic").write_text(token)
        result = cli("license", "verify", tmp_path / "app.lic", "--public-key", pem)
        assert result.exit_code == 2 and result.stderr.startswith("error: ") and not result.stdout, result


def test_out_never_overwrites_a_signing_key(cli, issued, tg):
    key_file = Path(tg.data_dir) / "signing-keys" / f"{issued['kid']}.pem"
    before = key_file.read_bytes()
    for target in (key_file, key_file.parent / "new.pem"):
        result = cli("license", "file", issued["key"], "--out", target)
        assert result.exit_code == 2 and "signing key" in result.stderr, result
    assert key_file.read_bytes() == before and not (key_file.parent / "new.pem").exists()
    assert cli("license", "file", issued["key"]).exit_code == 0  # still signs


def test_no_file_tollgate_writes_lands_in_the_key_folder(cli, issued, tg, tmp_path):
    # one rule (outfiles.check_target) for every writer, not only `license file --out`
    folder = Path(tg.data_dir) / "signing-keys"
    before = sorted(p.name for p in folder.iterdir())
    bad = tmp_path / "bad.csv"
    bad.write_text("customer,feature,quantity\nnobody,x,1\n")
    writers = [["catalog", "export", folder / "catalog.toml"],
               ["usage", "report", "--file", bad, "--skip-invalid", "--rejects", folder / "r.csv"]]
    if tg.db.path is not None:  # SQLite (PostgreSQL is backed up with pg_dump)
        writers.append(["db", "backup", folder / "b.db"])
    for args in writers:
        result = cli(*args)
        assert result.exit_code == 2 and "signing key" in result.stderr, (args, result)
    assert sorted(p.name for p in folder.iterdir()) == before


def test_a_key_id_from_the_database_is_only_ever_a_key_id(tmp_path):
    from tollgate import signing

    for kid in ("../../x", "a/b", "", "x" * 43 + "/", "."):
        with pytest.raises(StorageError):
            signing.private_key_path(tmp_path, kid)
    outside = tmp_path / "outside.pem"
    outside.write_text("secret")
    assert signing.copy_private_keys(["../../outside"], tmp_path / "a" / "b", tmp_path / "c") == 0
    assert not (tmp_path / "c").exists()


def test_retire_never_deletes_outside_the_key_folder(cli, issued, tg):
    victim = Path(tg.data_dir).parent / "victim.pem"
    victim.write_text("not yours")
    forged = "../../" + victim.stem
    from tollgate.models import SigningKey

    with tg.db.write() as session:
        row = session.exec(sqlmodel.select(SigningKey)).first()
        session.add(SigningKey(kid=forged, public_key=row.public_key, host="elsewhere", created_at=row.created_at))
    result = cli("license", "signing-key", "retire", forged)
    assert result.exit_code == 3 and "not a key id" in result.stderr, result
    assert victim.exists()
    assert cli("license", "file", issued["key"]).exit_code == 0  # the forged row never stops signing


def test_a_hostile_public_key_file_is_refused_at_once():
    from tollgate.license_verify import MalformedInput, load_public_keys

    started = time.monotonic()
    with pytest.raises(MalformedInput):  # ~1 MB of openings without an end: minutes with a backtracking regex
        load_public_keys("-----BEGIN PUBLIC KEY-----\n" * 40000)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("in_the_way", ["dangling link", "file"])
def test_a_key_folder_that_is_not_a_folder_is_a_storage_error(cli, tg, in_the_way):
    key = _shop(tg)[0]
    folder = Path(tg.data_dir) / "signing-keys"
    folder.parent.mkdir(parents=True, exist_ok=True)  # on PostgreSQL the user data folder may not exist yet
    if in_the_way == "file":
        folder.write_text("")
    else:
        folder.symlink_to(folder.parent / "nowhere")
    result = cli("license", "file", key)
    assert result.exit_code == 3 and "signing-keys" in result.stderr and not result.stdout, result
    from tollgate.models import LicenseFile, SigningKey

    with tg.db.write() as session:  # nothing half-made
        assert session.exec(sqlmodel.select(SigningKey)).first() is None
        assert session.exec(sqlmodel.select(LicenseFile)).first() is None


def test_a_key_file_that_is_not_a_regular_file_is_a_storage_error(cli, issued, tg):
    key_file = Path(tg.data_dir) / "signing-keys" / f"{issued['kid']}.pem"
    key_file.unlink()
    os.mkfifo(key_file)  # read without care, this hangs; with open_regular it is refused at once
    result = cli("license", "file", issued["key"])
    assert result.exit_code == 3 and "FIFO" in result.stderr and not result.stdout, result


def test_a_key_id_never_reads_as_an_option(tg):
    # a key id is a base64url thumbprint, and one in 64 begins with "-": `signing-key retire -Xab...` would
    # then be taken for an option. Keys are random, so one whose id begins so is drawn again.
    kids = [tg.rotate_signing_key().kid for _ in range(300)]  # without the redraw: 99% sure to meet one
    assert len(set(kids)) == 300 and not [k for k in kids if k.startswith("-")]
