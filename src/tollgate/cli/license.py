"""`tollgate license ...`: list, show, validate, activate, deactivate, regenerate, revoke, edit; and
license files: file, verify, public-key, signing-key rotate|retire."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from tollgate.cli import output
from tollgate.cli.complete import complete_customer, complete_license
from tollgate.cli.context import UNTIL, WHEN, Csv, EveryRow, Json, Limit, Yes, confirm_or_refuse, tollgate
from tollgate.cli.grid import DATE, ID, KEY, QUANTITY, TEXT, Col, leaving_out
from tollgate.cli.help import Typer
from tollgate.clock import rfc3339
from tollgate.texts import activations_text, expires_text, license_status_text

if TYPE_CHECKING:
    from tollgate.deliverable_views import LicenseView

app = Typer(help="License keys: issued by plans with a license policy; validated and activated by apps.\n\nExample: tollgate license validate 7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E",
                  no_args_is_help=True)

COLUMNS = (Col("key", KEY), Col("customer", ID), Col("plan", ID, 2), Col("status", TEXT, 3), Col("activations", QUANTITY, 4),
           Col("expires", DATE, 1))

Key = Annotated[str, typer.Argument(help="The license key (any case; dashes optional).", autocompletion=complete_license, metavar="KEY")]


def _status(lic: LicenseView) -> str:
    return license_status_text(lic.status, rfc3339(lic.revoked_at), lic.replaced_by)


def _seats(lic: LicenseView) -> str:
    return activations_text(len(lic.activations), lic.activation_limit)


def _row(lic: LicenseView) -> list:
    return [lic.key, lic.customer, lic.plan, _status(lic), _seats(lic),
            lic.expires_at.date().isoformat() if lic.expires_at else "never"]


def render(lic: LicenseView) -> None:
    """One license as a block of fields, then its activations."""
    output.fields(
        [
            ("key", lic.key),
            ("customer", lic.customer),
            ("plan", lic.plan),
            ("subscription", lic.subscription or "-"),
            ("status", _status(lic)),
            ("activations", _seats(lic)),
            ("expires", expires_text(rfc3339(lic.expires_at))),
            ("issued", rfc3339(lic.created_at)),
            ("revoked", rfc3339(lic.revoked_at) or "-"),
            ("replaced by", lic.replaced_by or "-"),
        ]
    )
    if lic.activations:
        output.say("")
        output.table((Col("instance id", KEY), Col("name"), Col("activated", DATE, 1)),
                     ([a.instance_id, a.name, rfc3339(a.activated_at)] for a in lic.activations),
                     title="Activations")


@app.command("list")
def list_(
    customer: Annotated[
        Optional[str], typer.Option("--customer", "-c", help="Only this customer's keys.", autocompletion=complete_customer, metavar="CUSTOMER")
    ] = None,
    limit: Limit = None,
    show_all: EveryRow = False,
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """List license keys (every status), oldest first. On a terminal, the first 50 (and how many
    there are); piped, --json and --csv give every one unless --limit.

    Example: tollgate license list --customer acme-inc
    """
    render_list(tollgate().licenses(customer=customer), as_json=as_json, as_csv=as_csv, limit=limit, every=show_all)


def render_list(found: Sequence[LicenseView], *, as_json: bool = False, as_csv: bool = False, title: str | None = None,
                limit: int | None = None, every: bool = False, leave_out: str | None = None) -> None:
    """The license keys as JSON, CSV or a table (`leave_out`: a column the table needs not show)."""
    if as_json or as_csv:
        found = found[:limit]
    if as_json:
        output.emit_json([lic.to_dict() for lic in found])
    elif as_csv:
        keys = ["key", "customer", "plan", "subscription", "status", "activation_limit", "activations", "expires_at"]
        rows = (lic.to_dict() for lic in found)  # the JSON shape's values ("unlimited", RFC 3339)
        output.emit_csv(keys, ([*(row[k] for k in keys[:6]), len(row["activations"]), row["expires_at"]] for row in rows))
    else:
        cols, cells = leaving_out(leave_out, COLUMNS, [_row(row) for row in found])
        output.list_table(cols, cells, title=title, limit=limit, every=every)


@app.command("show")
def show(key: Key, as_json: Json = False) -> None:
    """Show a license key: its customer, plan, status, limit, expiry and activations.

    Example: tollgate license show 7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E
    """
    found = tollgate().license(key)
    if as_json:
        output.emit_json(found.to_dict())
    else:
        render(found)


@app.command("validate")
def validate(
    key: Annotated[str, typer.Argument(help="The license key to check.", autocompletion=complete_license, metavar="KEY")],
    instance: Annotated[
        Optional[str], typer.Option("--instance", help="Also require the key to be activated on this instance id.", metavar="INSTANCE")
    ] = None,
    as_json: Json = False,
) -> None:
    """Check a key: exit 0 when valid, 1 when not, with the reason (unknown, malformed, revoked,
    expired, instance_not_activated). An unknown or malformed key is an answer, not an error.

    Example: tollgate license validate 7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E --instance inst_4f9k2m0x7q1z8w
    """
    result = tollgate().validate_license(key, instance=instance)
    _answer(result.to_dict(), result.valid, as_json=as_json,
            valid=f"valid: {result.key} ({result.customer}, {result.plan}). {result.message}",
            invalid=f"invalid ({result.reason}): {result.message}")


def _answer(data: dict, is_valid: bool, *, as_json: bool, valid: str, invalid: str) -> None:
    """A yes/no answer (validate, verify): JSON or one line on stdout; exit 1 when not valid."""
    if as_json:
        output.emit_json(data)
    else:
        output.say(valid if is_valid else invalid)
    if not is_valid:
        raise typer.Exit(1)


@app.command("activate")
def activate(
    key: Key,
    name: Annotated[str, typer.Option("--name", help="The instance's name (e.g. the machine's host name).", metavar="NAME")],
    as_json: Json = False,
) -> None:
    """Activate a key on an instance; prints the instance id. Refused past the activation limit.

    Activating a name that is already active on the key returns its existing instance id.
    Example: tollgate license activate 7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E --name build-server-1
    """
    done = tollgate().activate_license(key, name)
    if as_json:
        output.emit_json(done.to_dict())
    elif done.created:
        output.say(f"Activated {done.key} on {done.name}: instance id {done.instance_id}.")
    else:
        output.say(f"{done.name} was already activated on {done.key}: instance id {done.instance_id}.")


@app.command("deactivate")
def deactivate(
    key: Key,
    instance: Annotated[str, typer.Option("--instance", help="The instance id (inst_...) to deactivate.", metavar="INSTANCE")],
    as_json: Json = False,
) -> None:
    """Deactivate an instance of a key, freeing its seat.

    Example: tollgate license deactivate 7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E --instance inst_4f9k2m0x7q1z8w
    """
    done = tollgate().deactivate_license(key, instance)
    output.result(done.to_dict(), as_json=as_json, message=f"Deactivated {done.instance_id} ({done.name}) on {done.key}.")


@app.command("regenerate")
def regenerate(key: Key, yes: Yes = False, as_json: Json = False) -> None:
    """Replace a key by a new one: the old key and its activations stop working at once.

    Example: tollgate license regenerate 7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E --yes
    """
    _confirm(key, yes, "Replace {key} ({customer}, {plan}) by a new key? The old key and its "
                       "{activations} activation(s) stop working at once.", "Not regenerated")
    new = tollgate().regenerate_license(key)
    output.result(
        new.to_dict(), as_json=as_json,
        message=f"New key {new.key} for {new.customer} ({new.plan}); the old key no longer works.",
    )


@app.command("revoke")
def revoke(key: Key, yes: Yes = False, as_json: Json = False) -> None:
    """Revoke a key now: it and its activations stop working.

    Example: tollgate license revoke 7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E --yes
    """
    _confirm(key, yes, "Revoke {key} ({customer}, {plan})? It and its {activations} activation(s) "
                       "stop working at once.", "Not revoked")
    revoked = tollgate().revoke_license(key)
    output.result(revoked.to_dict(), as_json=as_json, message=f"Revoked {revoked.key} ({revoked.customer}, {revoked.plan}).")


def _confirm(key: str, yes: bool, question: str, declined: str) -> None:
    def ask() -> str:
        found = tollgate().license(key)
        return question.format(key=found.key, customer=found.customer, plan=found.plan,
                               activations=len(found.activations))

    confirm_or_refuse(ask, yes=yes, declined=f"{declined}: the key {key} is unchanged.")


@app.command("edit")
def edit(
    key: Key,
    activation_limit: Annotated[
        Optional[str], typer.Option("--activation-limit", metavar="N|unlimited", help="A new activation limit.")
    ] = None,
    expires: Annotated[
        Optional[str], typer.Option("--expires", metavar=f"{UNTIL}|never", help="A new expiry (7d = 7 days from now), or never.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Change one customer's key after purchase: its activation limit or its expiry.

    Example: tollgate license edit 7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E --activation-limit 5 --expires never
    """
    from tollgate.errors import InvalidInput

    if activation_limit is None and expires is None:
        raise InvalidInput("Nothing to change.", hint="Pass --activation-limit and/or --expires.")
    edited = tollgate().edit_license(key, activation_limit=activation_limit, expires=expires)
    if as_json:
        output.emit_json(edited.to_dict())
        return
    limit = edited.activation_limit
    output.say(f"Updated {edited.key}: activation limit {'unlimited' if limit is None else limit}, "
               f"expires {expires_text(rfc3339(edited.expires_at))}.")
    if limit is not None and len(edited.activations) > limit:
        output.warn(f"{len(edited.activations)} instances are activated, more than the new limit of {limit}; "
                    "they stay activated, and new activations are refused until some are deactivated.")


# -- license files: signed, offline-verifiable (license_files.py, license_verify.py, signing.py) -----------

signing_app = Typer(help="The Ed25519 keys that sign license files: rotate, retire.\n\n"
                         "Example: tollgate license signing-key rotate", no_args_is_help=True)
app.add_typer(signing_app, name="signing-key")


@app.command("file")
def file_(
    key: Key,
    fingerprint: Annotated[
        Optional[str], typer.Option("--fingerprint", help="Bind the file to this machine (activates it on the key).")
    ] = None,
    ttl: Annotated[str, typer.Option("--ttl", help="How long the file is valid: hours or days (12h, 30d).")] = "30d",
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the file here (atomically) instead of stdout.")] = None,
    as_json: Json = False,
) -> None:
    """Issue a signed license file (JWS, EdDSA) that an application verifies offline.

    Refused (exit 1) for revoked, expired or unknown keys, past the activation limit, or past the
    plan's activations_per_day / files_per_day (saying when the next is allowed).
    Example: tollgate license file 7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E --fingerprint "$(cat /etc/machine-id)" --out app.lic
    """
    issued = tollgate().issue_license_file(key, fingerprint=fingerprint, ttl=ttl, out=out)
    claims = issued.claims
    if as_json:
        output.emit_json(issued.to_dict())
    elif out is None:
        output.say(issued.token)
    else:
        from tollgate.license_verify import utc_text

        output.say(f"Wrote {out}: a license file for {claims['key']} ({claims['customer']}, {claims['plan']}), "
                   f"valid until {utc_text(claims['exp'])}, signed by {issued.kid}.")
    activation = issued.activation
    if activation is not None and activation.created and not as_json:
        output.notice(f"Activated {activation.name} on {activation.key}: instance id {activation.instance_id}.")


@app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="The license file.")],
    public_key: Annotated[Path, typer.Option("--public-key", help="A PEM file of the public key(s) to accept.")],
    fingerprint: Annotated[Optional[str], typer.Option("--fingerprint", help="Require the file to be bound to this machine.")] = None,
    plan: Annotated[Optional[str], typer.Option("--plan", help="Require the file to be for this plan.")] = None,
    at: Annotated[Optional[str], typer.Option("--at", metavar=WHEN, help="Judge it at this time (default now).")] = None,
    as_json: Json = False,
) -> None:
    """Verify a license file offline, with no database: exit 0 valid, 1 invalid (with the reason), 2
    malformed input.

    Example: tollgate license verify app.lic --public-key tollgate-keys.pem --fingerprint "$(cat /etc/machine-id)"
    """
    from tollgate.clock import parse_moment
    from tollgate.errors import InvalidInput
    from tollgate.files import open_regular
    from tollgate.license_verify import MalformedInput, utc_text, verify_license_file

    moment = parse_moment(at, what="--at time") if at is not None else None
    texts = []
    for path in (file, public_key):
        with open_regular(path) as handle:
            texts.append(handle.read(1024 * 1024).decode("utf-8", "replace"))
    try:
        result = verify_license_file(texts[0], texts[1], fingerprint, moment, plan=plan)
    except MalformedInput as exc:
        raise InvalidInput(f"{public_key}: {exc}") from None
    if result.code == "malformed":
        raise InvalidInput(f"{file}: {result.reason}")
    claims = result.claims
    _answer(result.to_dict(), result.valid, as_json=as_json,
            valid=f"valid: {claims.get('key')} ({claims.get('customer')}, {claims.get('plan')}) until "
                  f"{utc_text(claims['exp']) if result.valid else ''}.",
            invalid=f"invalid ({result.code}): {result.reason}")


@app.command("public-key")
def public_key(
    all_keys: Annotated[bool, typer.Option("--all", help="Every key still accepted (after a rotation), not only the current one.")] = False,
    as_json: Json = False,
) -> None:
    """Print the PEM public key(s) to embed in your application (made on first use).

    Example: tollgate license public-key --all > tollgate-keys.pem
    """
    keys = tollgate().public_keys(all_keys=all_keys)
    if as_json:
        output.emit_json([k.to_dict() for k in keys])
    else:
        output.say("".join(k.public_key for k in keys).rstrip("\n"))


@signing_app.command("rotate")
def rotate(as_json: Json = False) -> None:
    """Start signing with a new key; files signed by the old ones keep verifying until retired.

    Example: tollgate license signing-key rotate && tollgate license public-key --all > tollgate-keys.pem
    """
    new = tollgate().rotate_signing_key()
    output.result(new.to_dict(), as_json=as_json, message=f"New signing key {new.kid}; the older keys verify until retired. "
                                                  "Ship the new `license public-key --all` with your application.")


@signing_app.command("retire")
def retire(
    kid: Annotated[str, typer.Argument(help="The key id (see `tollgate license public-key --all --json`).")],
    as_json: Json = False,
) -> None:
    """Retire a signing key for good: it signs nothing more and leaves `public-key --all`.

    Example: tollgate license signing-key retire 8mYx3...Q
    """
    retired = tollgate().retire_signing_key(kid)
    output.result(retired.to_dict(), as_json=as_json, message=f"Retired the signing key {retired.kid}; files it signed stop "
                                                  "verifying once applications embed the new `public-key --all`.")
