"""`tollgate license ...`: list, show, validate, activate, deactivate, regenerate, revoke, edit."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from tollgate.cli import output
from tollgate.cli.complete import complete_customer, complete_license
from tollgate.cli.context import Csv, Json, Yes, confirm_or_refuse, tollgate
from tollgate.texts import activations_text as limit_text
from tollgate.texts import expires_text
from tollgate.texts import license_status_text as status_text

app = typer.Typer(help="License keys: issued by plans with a license policy; validated and activated by apps.\n\nExample: tollgate license validate 7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E",
                  no_args_is_help=True)

COLUMNS = ("key", "customer", "plan", "status", "activations", "expires")

Key = Annotated[str, typer.Argument(help="The license key (any case; dashes optional).", autocompletion=complete_license, metavar="KEY")]


def _row(data: dict) -> list:
    return [data["key"], data["customer"], data["plan"], status_text(data), limit_text(data),
            expires_text(data)[:10] if data["expires_at"] else "never"]


def render(data: dict) -> None:
    """One license as a block of fields, then its activations."""
    output.fields(
        [
            ("key", data["key"]),
            ("customer", data["customer"]),
            ("plan", data["plan"]),
            ("subscription", data["subscription"] or "-"),
            ("status", status_text(data)),
            ("activations", limit_text(data)),
            ("expires", expires_text(data)),
            ("issued", data["created_at"]),
            ("revoked", data["revoked_at"] or "-"),
            ("replaced by", data["replaced_by"] or "-"),
        ]
    )
    if data["activations"]:
        output.say("")
        output.table(("instance id", "name", "activated"),
                     ([a["instance_id"], a["name"], a["activated_at"]] for a in data["activations"]),
                     title="Activations")


@app.command("list")
def list_(
    customer: Annotated[
        Optional[str], typer.Option("--customer", "-c", help="Only this customer's keys.", autocompletion=complete_customer, metavar="CUSTOMER")
    ] = None,
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """List license keys (every status), oldest first.

    Example: tollgate license list --customer acme-inc
    """
    render_list(tollgate().licenses(customer=customer), as_json=as_json, as_csv=as_csv)


def render_list(found: list[dict], *, as_json: bool = False, as_csv: bool = False, title: str | None = None) -> None:
    if as_json:
        output.emit_json(found)
    elif as_csv:
        keys = ["key", "customer", "plan", "subscription", "status", "activation_limit", "activations", "expires_at"]
        output.emit_csv(keys, ([*(row[k] for k in keys[:6]), len(row["activations"]), row["expires_at"]] for row in found))
    else:
        output.table(COLUMNS, (_row(row) for row in found), title=title)


@app.command("show")
def show(key: Key, as_json: Json = False) -> None:
    """Show a license key: its customer, plan, status, limit, expiry and activations.

    Example: tollgate license show 7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E
    """
    data = tollgate().license(key)
    if as_json:
        output.emit_json(data)
    else:
        render(data)


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
    if as_json:
        output.emit_json(result.as_dict())
    elif result.valid:
        output.say(f"valid: {result.key} ({result.customer}, {result.plan}). {result.message}")
    else:
        output.say(f"invalid ({result.reason}): {result.message}")
    if not result.valid:
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
    data = tollgate().activate_license(key, name)
    if as_json:
        output.emit_json(data)
    elif data["created"]:
        output.say(f"Activated {data['key']} on {data['name']}: instance id {data['instance_id']}.")
    else:
        output.say(f"{data['name']} was already activated on {data['key']}: instance id {data['instance_id']}.")


@app.command("deactivate")
def deactivate(
    key: Key,
    instance: Annotated[str, typer.Option("--instance", help="The instance id (inst_...) to deactivate.", metavar="INSTANCE")],
    as_json: Json = False,
) -> None:
    """Deactivate an instance of a key, freeing its seat.

    Example: tollgate license deactivate 7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E --instance inst_4f9k2m0x7q1z8w
    """
    data = tollgate().deactivate_license(key, instance)
    output.result(
        data, as_json=as_json,
        message=f"Deactivated {data['instance_id']} ({data['name']}) on {data['key']}.",
    )


@app.command("regenerate")
def regenerate(key: Key, yes: Yes = False, as_json: Json = False) -> None:
    """Replace a key by a new one: the old key and its activations stop working at once.

    Example: tollgate license regenerate 7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E --yes
    """
    _confirm(key, yes, "Replace {key} ({customer}, {plan}) by a new key? The old key and its "
                       "{activations} activation(s) stop working at once.", "Not regenerated")
    data = tollgate().regenerate_license(key)
    output.result(
        data, as_json=as_json,
        message=f"New key {data['key']} for {data['customer']} ({data['plan']}); the old key no longer works.",
    )


@app.command("revoke")
def revoke(key: Key, yes: Yes = False, as_json: Json = False) -> None:
    """Revoke a key now: it and its activations stop working.

    Example: tollgate license revoke 7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E --yes
    """
    _confirm(key, yes, "Revoke {key} ({customer}, {plan})? It and its {activations} activation(s) "
                       "stop working at once.", "Not revoked")
    data = tollgate().revoke_license(key)
    output.result(data, as_json=as_json, message=f"Revoked {data['key']} ({data['customer']}, {data['plan']}).")


def _confirm(key: str, yes: bool, question: str, declined: str) -> None:
    def ask() -> str:
        found = tollgate().license(key)
        return question.format(key=found["key"], customer=found["customer"], plan=found["plan"],
                               activations=len(found["activations"]))

    confirm_or_refuse(ask, yes=yes, declined=f"{declined}: the key {key} is unchanged.")


@app.command("edit")
def edit(
    key: Key,
    activation_limit: Annotated[
        Optional[str], typer.Option("--activation-limit", metavar="N|unlimited", help="A new activation limit.")
    ] = None,
    expires: Annotated[
        Optional[str], typer.Option("--expires", metavar="DATE|never", help="A new expiry (RFC 3339 or a date), or never.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Change one customer's key after purchase: its activation limit or its expiry.

    Example: tollgate license edit 7KQ2M-XJ4TD-0C9VR-PN3HW-A8F6E --activation-limit 5 --expires never
    """
    from tollgate.errors import InvalidInput

    if activation_limit is None and expires is None:
        raise InvalidInput("Nothing to change.", hint="Pass --activation-limit and/or --expires.")
    data = tollgate().edit_license(key, activation_limit=activation_limit, expires=expires)
    if as_json:
        output.emit_json(data)
        return
    output.say(f"Updated {data['key']}: activation limit {data['activation_limit']}, expires {expires_text(data)}.")
    limit = data["activation_limit"]
    if limit != "unlimited" and len(data["activations"]) > limit:
        output.warn(f"{len(data['activations'])} instances are activated, more than the new limit of {limit}; "
                    "they stay activated, and new activations are refused until some are deactivated.")
