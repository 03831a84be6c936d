"""`tollgate invoice preview`: what a customer owes for a period (or every customer: a bill run)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Annotated, Any, Optional

import typer

from tollgate.cli import output
from tollgate.cli.complete import complete_customer
from tollgate.cli.context import WHEN, Csv, Json, tollgate
from tollgate.cli.grid import AMOUNT, DATE, ID, QUANTITY, Col, cell
from tollgate.cli.help import Typer
from tollgate.texts import number_text

app = Typer(help="Invoices: what customers owe, previewed exactly (nothing is issued).\n\nExample: tollgate invoice preview acme-inc --period 2026-11", no_args_is_help=True)

COLUMNS = (Col("line"), Col("subscription", ID, 3), Col("period", DATE, 4), Col("quantity", QUANTITY, 2),
           Col("included", QUANTITY, 5), Col("billable", QUANTITY, 1), Col("amount", AMOUNT), Col("currency", ID))


@app.command("preview")
def preview(
    customer: Annotated[
        Optional[str], typer.Argument(help="The customer's identifier (or --all).", autocompletion=complete_customer, metavar="CUSTOMER")
    ] = None,
    period: Annotated[
        Optional[str],
        typer.Option("--period", metavar="YYYY-MM", help="Bill each subscription's billing period that starts in this month."),
    ] = None,
    at: Annotated[
        Optional[str],
        typer.Option("--at", metavar=WHEN, help="Bill each subscription's billing period containing this moment (default now)."),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every customer (a bill run that issues nothing), streamed.")
    ] = False,
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """Preview an invoice: base fees, each usage charge with quantity, allowance and tiers, and totals per currency.

    Periods follow each subscription's anniversary: --period 2026-03 bills the periods that start in
    March (a subscription started on the 15th: Mar 15 to Apr 15); --at bills the ones containing the
    date. Trials are not charged; a period only partly chargeable (trial end, cancellation) pays its
    share of the fee. With --all, customers stream one by one (JSON: an array; CSV: one row per line).
    Example: tollgate invoice preview acme-inc --period 2026-03 --json
    """
    from tollgate.errors import InvalidInput

    if as_json and as_csv:
        raise InvalidInput("Give --json or --csv, not both.")
    if every == (customer is not None):
        raise InvalidInput("Name one customer, or pass --all for every customer.",
                           hint="Example: tollgate invoice preview acme-inc --period 2026-03")
    if every:
        _bill_run(tollgate().invoice_previews(period=period, at=at), as_json=as_json, as_csv=as_csv)
        return
    assert customer is not None  # refused above without --all
    found = tollgate().invoice_preview(customer, period=period, at=at)
    if as_json:
        output.emit_json(found.to_dict())
    elif as_csv:
        from tollgate.invoice_lines import CSV_COLUMNS

        output.emit_csv(CSV_COLUMNS, found.csv_rows())
    else:
        with output.paged():
            _show(found.to_dict())


def _bill_run(previews: Iterable[Any], *, as_json: bool, as_csv: bool) -> None:
    import gc

    from tollgate.invoice_lines import CSV_COLUMNS

    # A bill run allocates millions of short-lived objects; the collector's full passes would also
    # walk everything the imports created (SQLAlchemy, Typer) each time. Freeze those: ~5% of the run.
    gc.freeze()

    if as_csv:
        output.emit_csv(CSV_COLUMNS, (row for found in previews for row in found.csv_rows()))
    elif as_json:
        _stream_json_array(found.to_json() for found in previews)
    else:
        _summary(previews)


def _stream_json_array(items: Iterable[str]) -> None:
    """A JSON array written as it is produced (memory stays bounded): one preview per line, each the
    compact form of `invoice preview CUSTOMER --json` (InvoicePreview.to_json)."""
    out = sys.stdout
    first = True
    for item in items:
        out.write(("[\n" if first else ",\n") + item)
        first = False
    out.write("[]\n" if first else "\n]\n")


def _summary(previews: Iterable[Any]) -> None:
    """One line per customer (streamed), then the totals of the run per currency."""
    from tollgate.texts import money_text

    grand: dict[str, Any] = {}
    customers = 0
    output.say(f"{'customer':<32}  {'lines':>5}  totals")
    for found in previews:
        customers += 1
        for currency, amount in found.totals.items():
            grand[currency] = grand.get(currency, 0) + amount
        totals = ", ".join(f"{money_text(amount, currency)} {currency}" for currency, amount in found.totals.items())
        output.say(f"{found.customer:<32}  {len(found.lines):>5}  {totals}")
        for note in found.notes:  # as `invoice preview CUSTOMER` says them (usage no charge bills)
            output.notice(f"{found.customer}: {note}")
    all_totals = ", ".join(f"{money_text(amount, currency)} {currency}" for currency, amount in sorted(grand.items()))
    output.say(f"{customers} customer(s) to bill; total {all_totals or 'nothing'}.")


def _period_text(line: dict) -> str:
    start, end = (line["period_start"] or "")[:10], (line["period_end"] or "")[:10]
    return f"{start} → {end or 'open'}"


def _line_label(line: dict) -> str:
    if line["kind"] == "base":
        label = f"{line['plan']}: {'one-time price' if line['interval'] == 'once' else 'base fee'}"
        if line["proration"]:
            label += f" ({number_text(line['price'])} × {line['proration']})"
        return label
    return f"{line['plan']}: {line['feature']}" + (f" ({line['unit']})" if line["unit"] else "")


def _tier_label(tier: dict) -> str:
    start = number_text(tier["from"])
    bound = f"{start} – {number_text(tier['up_to'])}" if tier["up_to"] is not None else f"above {start}"
    prices = []
    if tier["unit_price"] is not None:
        prices.append(f"{number_text(tier['quantity'])} × {number_text(tier['unit_price'])}")
    if tier["flat_price"] is not None:
        prices.append(f"{number_text(tier['flat_price'])} flat")
    return f"    tier {bound}: {' + '.join(prices)}"


def _show(data: dict) -> None:
    if data["period"]:
        selected = f"billing periods starting in {data['period']}"
    else:
        selected = f"billing periods containing {cell(data['at'], DATE, str)}"  # to the second, as tables
    output.heading(f"Invoice preview for {data['customer']} ({data['name']}): {selected}")
    rows = []
    for line in data["lines"]:
        rows.append([_line_label(line), line["subscription"], _period_text(line), line["quantity"], line["included"],
                     line["billable"], line["amount"], line["currency"]])
        if line["model"] == "package" and line["packages"]:
            rows.append([f"    {number_text(line['packages'])} package(s) of {number_text(line['package_size'])} × "
                         f"{number_text(line['package_price'])}",
                         "", "", "", "", "", "", ""])
        for tier in line["tiers"]:
            rows.append([_tier_label(tier), "", "", tier["quantity"], "", "", tier["amount"], line["currency"]])
        if line["note"]:
            rows.append([f"    {line['note']}", "", "", "", "", "", "", ""])
    for currency, amount in data["totals"].items():
        rows.append(["total", "", "", "", "", "", amount, currency])
    if not data["lines"]:
        output.say("Nothing to bill: no subscription of this customer has a billing period here.")
    else:
        output.table(COLUMNS, rows)
    for note in data["notes"]:
        output.notice(note)
