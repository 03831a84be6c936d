"""`tollgate customer ...`: add, edit, archive, list, show, import."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer

from tollgate.cli import output
from tollgate.cli.complete import complete_customer, complete_row_format
from tollgate.cli.context import Csv, Json, Yes, confirm_or_refuse, tollgate
from tollgate.cli.grid import DATE, ID, TEXT, Col, leaving_out
from tollgate.cli.help import Typer
from tollgate.cli.usage import HtmlFile, write_html

if TYPE_CHECKING:
    from tollgate.deliverable_views import Deliverables

T = TypeVar("T")

app = Typer(help="Customers: the people and companies you sell to.\n\nExample: tollgate customer add \"Acme, Inc.\" --email billing@acme.example", no_args_is_help=True)

COLUMNS = (Col("identifier", ID), Col("name"), Col("email", ID, 2), Col("status", TEXT, 1), Col("created", DATE, 3))


def _row(data: dict) -> list:
    return [data["identifier"], data["name"], data["email"], data["status"], (data["created_at"] or "")[:10]]


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Full name of the person or company.", metavar="NAME")],
    identifier: Annotated[
        Optional[str], typer.Option("--id", help="The identifier your systems use (default: made from the name).", metavar="ID")
    ] = None,
    email: Annotated[Optional[str], typer.Option("--email", help="Email address (optional).", metavar="EMAIL")] = None,
    as_json: Json = False,
) -> None:
    """Add a customer.

    Example: tollgate customer add "Acme, Inc." --email billing@acme.example   (identifier: acme-inc)
    """
    data = tollgate().add_customer(name, identifier=identifier, email=email).to_dict()
    output.result(
        data, as_json=as_json,
        message=f"Added customer {data['identifier']} ({data['name']}), billing id {data['billing_id']}.",
    )


@app.command("edit")
def edit(
    identifier: Annotated[str, typer.Argument(help="The customer's identifier.", autocompletion=complete_customer, metavar="CUSTOMER")],
    name: Annotated[Optional[str], typer.Option("--name", help="New name.", metavar="NAME")] = None,
    email: Annotated[Optional[str], typer.Option("--email", help='New email ("" removes it).', metavar="EMAIL")] = None,
    new_identifier: Annotated[
        Optional[str], typer.Option("--id", hidden=True, help="Refused: identifiers never change.", metavar="ID")
    ] = None,
    as_json: Json = False,
) -> None:
    """Change a customer's name or email. The identifier never changes.

    Example: tollgate customer edit acme-inc --email accounts@acme.example
    """
    from tollgate.errors import InvalidInput

    if new_identifier is not None:
        raise InvalidInput(
            "A customer's identifier can never change (other systems rely on it).",
            hint="Create a new customer if you need another identifier.",
        )
    if name is None and email is None:
        raise InvalidInput("Nothing to change.", hint="Pass --name and/or --email.")
    data = tollgate().edit_customer(identifier, name=name, email=email).to_dict()
    output.result(
        data, as_json=as_json,
        message=f"Updated customer {data['identifier']}: {data['name']} <{data['email'] or 'no email'}>.",
    )


@app.command("archive")
def archive(
    identifier: Annotated[str, typer.Argument(help="The customer's identifier.", autocompletion=complete_customer, metavar="CUSTOMER")],
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Archive a customer: no more access, subscriptions or usage; the history stays.

    Refused while the customer has a live subscription (cancel it first).
    Example: tollgate customer archive acme-inc --yes
    """
    def question() -> str:
        found = tollgate().customer(identifier)
        return f"Archive customer {found.identifier} ({found.name})? They lose all access."

    confirm_or_refuse(question, yes=yes, declined=f"Not archived: {identifier} is unchanged.")
    data = tollgate().archive_customer(identifier).to_dict()
    output.result(data, as_json=as_json, message=f"Archived customer {data['identifier']}.")


@app.command("unarchive")
def unarchive(
    identifier: Annotated[str, typer.Argument(metavar="CUSTOMER", help="The customer's identifier.",
                                              autocompletion=complete_customer)],
    as_json: Json = False,
) -> None:
    """Take an archive back: the customer is active again and may subscribe (ended subscriptions stay
    ended).

    Example: tollgate customer unarchive acme-inc
    """
    data = tollgate().unarchive_customer(identifier).to_dict()
    output.result(data, as_json=as_json, message=f"Unarchived customer {data['identifier']}: active again.")


@app.command("list")
def list_(
    search: Annotated[
        Optional[str], typer.Option("--search", "-s", help="Match identifier, name or email (any case, literally).", metavar="TEXT")
    ] = None,
    archived: Annotated[bool, typer.Option("--archived", help="Only archived customers.")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Every customer: archived ones too, and every row on a terminal.")] = False,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", min=1, help="At most N customers.", metavar="N")] = None,
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """List customers (active ones unless --archived or --all), oldest first. On a terminal, the
    first 50 (and how many there are); piped, --json and --csv give every one unless --limit.

    Example: tollgate customer list --search acme --limit 50
    """
    status = "all" if show_all else "archived" if archived else "active"
    table = not (as_json or as_csv)
    shown = output.list_limit(limit, show_all) if table else limit
    found = [c.to_dict() for c in tollgate().customers(search=search, status=status, limit=shown)]
    if as_json:
        output.emit_json(found)
    elif as_csv:
        keys = list(found[0]) if found else ["identifier", "billing_id", "name", "email", "status"]
        output.emit_csv(keys, ([row[k] for k in keys] for row in found))
    else:
        output.counted_table(COLUMNS, [_row(c) for c in found], cut=shown != limit,
                             total=lambda: tollgate().count_customers(search=search, status=status))


@app.command("show")
def show(
    identifier: Annotated[str, typer.Argument(help="The customer's identifier.", autocompletion=complete_customer, metavar="CUSTOMER")],
    html: HtmlFile = None,
    as_json: Json = False,
) -> None:
    """Show a customer's whole profile. --html FILE writes it as one self-contained page, with a
    usage chart per metered feature (the last 30 days).

    Example: tollgate customer show acme-inc
    """
    from tollgate.cli import access, sub

    read = tollgate().customer_page(identifier)  # one snapshot: the parts agree
    usage, goods = read.usage, read.deliverables
    whole = read.to_dict()
    subscriptions, entitlements = whole["subscriptions"], whole["entitlements"]
    if html is not None:
        from tollgate import report_html

        page = report_html.customer_page(whole, whole["usage"])
        write_html(html, page, as_json=as_json)
        return
    if as_json:
        output.emit_json(whole)
        return
    with output.paged():
        output.fields(
            [
                ("identifier", whole["identifier"]),
                ("billing id", whole["billing_id"]),
                ("name", whole["name"]),
                ("email", whole["email"] or "-"),
                ("status", whole["status"]),
                ("created", whole["created_at"]),
                ("updated", whole["updated_at"]),
                ("archived", whole["archived_at"] or "-"),
            ]
        )
        output.say("")
        if subscriptions:
            output.table(*leaving_out("customer", sub.COLUMNS, [sub._row(s) for s in subscriptions]),
                         title="Subscriptions")
        else:
            output.say("Subscriptions: none")
        output.say("")
        if entitlements:
            output.table(access.COLUMNS, access.entitlement_rows(entitlements), title="Entitlements")
        else:
            output.say("Entitlements: none")
        _show_usage(usage)
        _show_deliverables(goods)


def _show_usage(report_: Any) -> None:
    """The usage section of `customer show`: per metered feature, the last 30 days as a sparkline."""
    from tollgate.cli import usage

    output.say("")
    usage.render_summary(report_, title="Usage (last 30 days, UTC)")


def _show_deliverables(goods: Deliverables) -> None:
    """The license keys, downloads and links sections of `customer show`."""
    from tollgate.cli import download, license, link

    _section("License keys", goods.licenses, partial(license.render_list, leave_out="customer"))
    _section("Downloads", goods.downloads, download.render_list)
    _section("Links", goods.links, link.render_list)


def _section(title: str, rows: Sequence[T], render: Callable[..., None]) -> None:
    output.say("")
    if rows:
        render(rows, title=title)
    else:
        output.say(f"{title}: none")


@app.command("import")
def import_(
    file: Annotated[str, typer.Argument(help="A CSV, JSON (lines or an array: `customer list --json`) or TOML file; '-': stdin.", metavar="FILE")],
    fmt: Annotated[Optional[str], typer.Option("--format", help="csv, json (lines or an array) or toml (default: from the suffix; stdin: from its first character).",
                                                  autocompletion=complete_row_format, metavar="csv|json|toml")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and show what would happen; write nothing.")] = False,
    as_json: Json = False,
) -> None:
    """Create many customers at once: every row is checked first, then all are created, or none.

    Columns (CSV header / JSON keys / TOML [[customers]] keys): name, identifier (or id), email.
    Rows whose identifier already exists with the same name and email are left unchanged, so a
    file with identifiers can be re-run safely.
    Example: tollgate customer import customers.csv --dry-run
    """
    from tollgate.rowfiles import detect_format, read_rows

    source = detect_format(file, fmt)
    with output.progress(total=output.rows_in(file, source), label="Customers") as count:
        result = tollgate().import_customers(count(read_rows(file, source, toml_table="customers")), dry_run=dry_run)
    summary = result.to_dict()
    if as_json:
        output.emit_json(summary)
        return
    verb = "Would create" if dry_run else "Created"
    output.say(f"{verb} {summary['created']} customer(s); {summary['unchanged']} already present and unchanged.")
