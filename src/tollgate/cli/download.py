"""`tollgate download ...`: add, list, get, disable, enable, remove."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from tollgate.cli import output
from tollgate.cli.complete import complete_customer, complete_download, complete_plan
from tollgate.cli.context import Csv, Json, Yes, confirm_or_refuse, tollgate
from tollgate.cli.grid import ID, KEY, QUANTITY, TEXT, Col
from tollgate.cli.help import Typer
from tollgate.texts import size_text

if TYPE_CHECKING:
    from tollgate.deliverable_views import DownloadView

app = Typer(help="Digital downloads: files a plan delivers, stored by checksum, fetched by entitled customers.\n\nExample: tollgate download add pro ./installer.dmg --name \"Installer (macOS)\"",
                  no_args_is_help=True)

COLUMNS = (Col("id", ID), Col("plan", ID, 2), Col("name"), Col("size", QUANTITY, 3), Col("sha256", KEY, 4),
           Col("enabled", TEXT, 1))

DownloadId = Annotated[str, typer.Argument(help="The download's id (dl_...).", autocompletion=complete_download, metavar="DOWNLOAD")]


def _row(dl: DownloadView) -> list:
    return [dl.id, dl.plan, dl.name, size_text(dl.size), dl.sha256[:12], "yes" if dl.enabled else "no (disabled)"]


def render_list(found: Sequence[DownloadView], *, as_json: bool = False, as_csv: bool = False,
                title: str | None = None) -> None:
    if as_json:
        output.emit_json([dl.to_dict() for dl in found])
    elif as_csv:
        output.emit_csv(["id", "plan", "name", "size", "sha256", "enabled"],
                        ([dl.id, dl.plan, dl.name, dl.size, dl.sha256, dl.enabled] for dl in found))
    else:
        output.table(COLUMNS, (_row(row) for row in found), title=title)


@app.command("add")
def add(
    plan: Annotated[str, typer.Argument(help="The plan that delivers the file.", autocompletion=complete_plan, metavar="PLAN")],
    file: Annotated[str, typer.Argument(help="The file to copy into the store.", metavar="FILE")],
    name: Annotated[Optional[str], typer.Option("--name", help="What customers see (default: the file's name).", metavar="NAME")] = None,
    as_json: Json = False,
) -> None:
    """Add a file to a plan's downloads: it is copied into the data folder, stored once per content (sha256).

    Example: tollgate download add markdown-studio-2 dist/markdown-studio-2.4.dmg --name "macOS installer"
    """
    added = tollgate().add_download(plan, file, name=name)
    output.result(
        added.to_dict(), as_json=as_json,
        message=f"Added download {added.id} ({added.name}, {size_text(added.size)}, "
                f"sha256 {added.sha256[:12]}...) to {added.plan}.",
    )


@app.command("list")
def list_(
    plan: Annotated[
        Optional[str], typer.Argument(help="The plan whose downloads to list.", autocompletion=complete_plan, metavar="PLAN")
    ] = None,
    customer: Annotated[
        Optional[str],
        typer.Option("--customer", "-c", help="Instead: what this customer is entitled to (a live subscription).",
                     autocompletion=complete_customer, metavar="CUSTOMER"),
    ] = None,
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """List a plan's downloads, or those a customer is entitled to.

    Example: tollgate download list --customer acme-inc
    """
    from tollgate.errors import InvalidInput

    if plan is None and customer is None:
        raise InvalidInput("Say whose downloads to list.", hint="Give a PLAN, or --customer CUSTOMER.")
    render_list(tollgate().downloads(plan, customer=customer), as_json=as_json, as_csv=as_csv)


@app.command("get")
def get(
    customer: Annotated[str, typer.Argument(help="The customer fetching the file.", autocompletion=complete_customer, metavar="CUSTOMER")],
    download_id: DownloadId,
    to: Annotated[str, typer.Option("--to", metavar="DIR", help="The folder to write the file into (created if needed).")],
    filename: Annotated[
        Optional[str], typer.Option("--as", metavar="NAME", help="The file name to write (default: the download's name).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a file of the same name in DIR.")] = False,
    as_json: Json = False,
) -> None:
    """Copy a download into DIR for a customer, after checking their entitlement and the file's checksum.

    Refused (exit 1) when the customer is not entitled, the download is disabled, or the stored
    file is missing or corrupted; nothing is written then.
    Example: tollgate download get acme-inc dl_4f9k2m0x7q1z8w --to ~/Downloads
    """
    done = tollgate().fetch_download(customer, download_id, to, filename=filename, overwrite=overwrite)
    output.result(done.to_dict(), as_json=as_json,
                  message=f"Wrote {done.path} ({size_text(done.download.size)}, sha256 verified).")


@app.command("disable")
def disable(download_id: DownloadId, as_json: Json = False) -> None:
    """Stop delivering a download (customers are refused until it is enabled again).

    Example: tollgate download disable dl_4f9k2m0x7q1z8w
    """
    _show_change(tollgate().disable_download(download_id), "Disabled", as_json)


@app.command("enable")
def enable(download_id: DownloadId, as_json: Json = False) -> None:
    """Deliver a disabled download again.

    Example: tollgate download enable dl_4f9k2m0x7q1z8w
    """
    _show_change(tollgate().enable_download(download_id), "Enabled", as_json)


@app.command("remove")
def remove(download_id: DownloadId, yes: Yes = False, as_json: Json = False) -> None:
    """Remove a download from its plan (the stored content stays in the store).

    Example: tollgate download remove dl_4f9k2m0x7q1z8w --yes
    """
    def question() -> str:
        found = tollgate().download(download_id)
        return f"Remove {found.id} ({found.name}) from the plan {found.plan}?"

    confirm_or_refuse(question, yes=yes, declined=f"Not removed: {download_id} is unchanged.")
    _show_change(tollgate().remove_download(download_id), "Removed", as_json)


def _show_change(dl: DownloadView, verb: str, as_json: bool) -> None:
    output.result(dl.to_dict(), as_json=as_json, message=f"{verb} download {dl.id} ({dl.name}) of {dl.plan}.")
