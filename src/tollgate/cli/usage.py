"""`tollgate usage ...`: report usage (one event or a file), show it as charts, void an event."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from tollgate.cli import output
from tollgate.cli.complete import (
    complete_active_customer,
    complete_customer,
    complete_metered_feature,
    complete_row_format,
    complete_usage_period,
)
from tollgate.cli.context import WHEN, Json, Yes, confirm_or_refuse, tollgate
from tollgate.cli.grid import DATE, ID, KEY, QUANTITY, Col, cell, grouped
from tollgate.cli.help import Typer

if TYPE_CHECKING:
    from tollgate.usage.report import FeatureUsage, UsageReport

app = Typer(help="Metered usage: report it, chart it, correct it.\n\nExample: tollgate usage report acme-inc api-calls 250 --id req-7f3a", no_args_is_help=True)

MAX_MESSAGES = 20
"""At most this many notices / warnings of a file import are printed (all are in the journal)."""


def _file_formats(ctx, args, incomplete):
    return [(value, text) for value, text in complete_row_format(ctx, args, incomplete) if value != "toml"]


@app.command("report")
def report(
    customer: Annotated[
        Optional[str],
        typer.Argument(help="The customer's identifier.", autocompletion=complete_active_customer, show_default=False, metavar="CUSTOMER"),
    ] = None,
    feature: Annotated[
        Optional[str],
        typer.Argument(help="A metered feature's identifier.", autocompletion=complete_metered_feature,
                       show_default=False, metavar="FEATURE"),
    ] = None,
    quantity: Annotated[
        Optional[str], typer.Argument(help="How much: an exact decimal such as 15 or 2.5.", show_default=False, metavar="QUANTITY")
    ] = None,
    at: Annotated[
        Optional[str],
        typer.Option("--at", metavar=WHEN, help="When it happened (UTC without an offset; default now)."),
    ] = None,
    key: Annotated[
        Optional[str],
        typer.Option("--id", metavar="KEY", help="Idempotency key: the same key is never counted twice (default: generated)."),
    ] = None,
    set_total: Annotated[
        bool, typer.Option("--set", help="QUANTITY is the period's total: record the difference.")
    ] = False,
    file: Annotated[
        Optional[str],
        typer.Option("--file", metavar="FILE|-", help="Report every row of a CSV or JSON lines file ('-': stdin)."),
    ] = None,
    fmt: Annotated[
        Optional[str],
        typer.Option("--format", help="csv or json (lines or an array; default: from the file's suffix, stdin: from its first character).", autocompletion=_file_formats, metavar="csv|json"),
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Record the good rows; write the bad ones to the reject file.")
    ] = False,
    rejects: Annotated[
        Optional[str],
        typer.Option("--rejects", metavar="FILE", help="Where --skip-invalid writes bad rows (default: FILE.rejects.csv beside the input)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing reject file (never the database).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --file: check every row and count; record nothing.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Record metered usage: one event, or a file of them (--file). It is never refused for a limit;
    past a hard limit it is recorded and a warning printed. Crossing an alert threshold or the
    allowance prints a notice and is kept in the journal.

    Single event: the same --id again records nothing and says "already recorded"; the same --id
    for a different event is refused (exit 1).

    File: columns (CSV header / JSON keys) customer, feature, quantity, and optionally timestamp and
    id. Every row is checked; by default one bad row means nothing is recorded (exit 2, the bad lines
    listed). All rows are recorded in one transaction. A row without an id gets a key derived from
    its customer, feature, quantity and timestamp, so re-sending the same file (or the same timed rows
    in another file) records nothing twice; a row with neither id nor timestamp is keyed by its line
    and the file's bytes: re-sending that file is a duplicate, the same line in another file is a new
    event.

    Example: tollgate usage report acme-inc api-calls 250 --id req-7f3a --at 2026-11-21T10:00:00Z
    """
    from tollgate.errors import InvalidInput

    if file is not None:
        extra = [name for name, value in (("CUSTOMER", customer), ("FEATURE", feature), ("QUANTITY", quantity),
                                          ("--at", at), ("--id", key)) if value is not None]
        if set_total:
            extra.append("--set")
        if extra:
            raise InvalidInput(f"--file takes its events from the file; drop {', '.join(extra)}.",
                               hint="Timestamps and ids go in the file's timestamp and id columns.")
        _report_file(file, fmt=fmt, skip_invalid=skip_invalid, rejects=rejects, dry_run=dry_run, as_json=as_json,
                     overwrite=overwrite)
        return
    if fmt is not None or skip_invalid or rejects is not None or dry_run or overwrite:
        raise InvalidInput("--format, --skip-invalid, --rejects, --overwrite and --dry-run go with --file.")
    if customer is None or feature is None or quantity is None:
        raise InvalidInput("Give CUSTOMER FEATURE QUANTITY, or --file FILE.",
                           hint="For example: tollgate usage report acme-inc api-calls 250")
    result = tollgate().report_usage(customer, feature, quantity, at=at, key=key, set_total=set_total)
    for text in result.notices:
        output.notice(text)
    for text in result.warnings:
        output.warn(text)
    if as_json:
        output.emit_json(result.to_dict())
        return
    data = result.to_dict()
    what = f"{data['quantity']} {data['feature']} for {data['customer']} at {data['at']}"
    if not result.recorded:
        output.say(f"Already recorded: key {data['key']} ({what}); nothing changed.")
        return
    if result.set_to is not None:
        sign = "+" if not data["quantity"].startswith("-") else ""
        output.say(f"Set the period total of {data['feature']} for {data['customer']} to {data['set_to']}: "
                   f"recorded {sign}{data['quantity']} at {data['at']} (key {data['key']}).")
    else:
        output.say(f"Recorded {what} (key {data['key']}).")
    if result.generated_key:
        output.notice(f"the key {data['key']} was generated; pass --id KEY to make a retry safe.")
    limit = f" of {data['limit']}" if data["limit"] is not None else ""
    output.say(f"Period total: {data['used']}{limit} (since {_when(result.period_start)}, resets "
               f"{_when(result.reset_at)}).")


def _report_file(file: str, *, fmt: str | None, skip_invalid: bool, rejects: str | None, dry_run: bool,
                 as_json: bool, overwrite: bool) -> None:
    from tollgate.usage.file import file_format

    with output.progress(total=output.rows_in(file, file_format(file, fmt)), label="Usage events",
                         then="Committing") as count:
        result = tollgate().report_usage_file(file, format=fmt, skip_invalid=skip_invalid, rejects=rejects,
                                              dry_run=dry_run, progress=count, overwrite=overwrite)
    _messages(result.notices, output.notice)
    _messages(result.warnings, output.warn)
    if as_json:
        output.emit_json(result.to_dict())
        return
    verb = "Would insert" if dry_run else "Inserted"
    output.say(f"{verb} {result.inserted} event(s); {result.duplicates} duplicate(s) skipped; "
               f"{result.rejected} row(s) rejected.")
    if result.rejects_path:
        output.say(f"Rejected rows (with their line and error): {result.rejects_path}")


def _messages(texts: list[str], emit) -> None:
    for text in texts[:MAX_MESSAGES]:
        emit(text)
    if len(texts) > MAX_MESSAGES:
        emit(f"... and {len(texts) - MAX_MESSAGES} more (see `tollgate log`).")


@app.command("void")
def void(
    key: Annotated[str, typer.Argument(help="The key of the event to reverse.", metavar="KEY")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the correction).", metavar="REASON")],
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Correct usage without losing history: record a reversing event (the negative quantity, at the
    original's time) under the key void:KEY. The original stays; both are in the journal. An event
    can be voided once; a void can't be voided.

    Example: tollgate usage void req-7f3a --reason "double-counted by the retry bug" --yes
    """
    def question() -> str:
        found = tollgate().usage_event(key).to_dict()  # the figures as the export writes them
        return (f"Void {found['id']} ({found['quantity']} {found['feature']} for {found['customer']} "
                f"at {found['timestamp']})? A reversing event is recorded.")

    confirm_or_refuse(question, yes=yes, declined=f"Not voided: {key} is unchanged.")
    result = tollgate().void_usage(key, reason=reason)
    if as_json:
        output.emit_json(result.to_dict())
        return
    data = result.to_dict()
    output.say(f"Voided {data['voids']}: recorded {data['quantity']} {data['feature']} for {data['customer']} "
               f"at {data['at']} (key {data['key']}).")


@app.command("export")
def export(
    customer: Annotated[Optional[str], typer.Option("--customer", "-c", metavar="CUSTOMER", help="Only this customer's events.",
                                                    autocompletion=complete_customer)] = None,
    feature: Annotated[Optional[str], typer.Option("--feature", "-f", metavar="FEATURE", help="Only this metered feature's events.",
                                                   autocompletion=complete_metered_feature)] = None,
    start: Annotated[Optional[str], typer.Option("--from", metavar=WHEN, help="Events at or after this time (UTC).")] = None,
    end: Annotated[Optional[str], typer.Option("--to", metavar=WHEN, help="Events before this time (UTC).")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", metavar="csv|jsonl",
                                               help="Default: from --out's suffix, else csv.", autocompletion=_file_formats)] = None,
    out: Annotated[Optional[str], typer.Option("--out", "-o", metavar="FILE",
                                               help="Write to FILE (atomically; replaced if it exists), not stdout.")] = None,
) -> None:
    """Write recorded events with their keys and exact times and quantities (voids left out),
    oldest recorded first, streamed: `usage report --file` reads the output back and records
    nothing (every row is a duplicate).

    Example: tollgate usage export --customer acme-inc --from 30d --out acme-usage.csv
    """
    import sys

    from tollgate.usage import export as usage_events
    from tollgate.usage.file import file_format

    fmt = file_format(out, fmt) if out and not fmt else file_format("-", fmt or "csv")
    tg = tollgate()
    with tg.usage_export(customer=customer, feature=feature, start=start, end=end) as rows:
        if out is None:
            usage_events.write(rows, sys.stdout, fmt)
            return
        from tollgate.files import atomic_file
        from tollgate.outfiles import check_target

        check_target(out, database=tg.db.path, what="The file")
        with atomic_file(out) as handle:
            count = usage_events.write(rows, handle, fmt)
    output.say(f"Wrote {count} event(s) to {out}.")


@app.command("show")
def show(
    customer: Annotated[
        str, typer.Argument(help="The customer's identifier.", autocompletion=complete_customer, metavar="CUSTOMER")
    ],
    feature: Annotated[
        Optional[str],
        typer.Option("--feature", "-f", help="One feature: a row per period with the exact figure.",
                     autocompletion=complete_metered_feature, metavar="FEATURE"),
    ] = None,
    by: Annotated[
        str, typer.Option("--by", help="day, week (ISO, from Monday) or month; UTC.", autocompletion=complete_usage_period, metavar="day|week|month")
    ] = "day",
    start: Annotated[
        Optional[str], typer.Option("--from", metavar=WHEN, help="First day shown (default: 30 days, 12 weeks or 12 months back).")
    ] = None,
    end: Annotated[Optional[str], typer.Option("--to", metavar=WHEN, help="Last day shown (default: today).")] = None,
    html: HtmlFile = None,
    as_json: Json = False,
) -> None:
    """Show a customer's usage: per metered feature, a sparkline over the periods, the total, the
    allowance, % used and the reset date. With --feature, one row per period with the exact figure
    and a bar, then the allowance. --json gives the series and the corrections (voids).
    --html FILE writes the same data as one self-contained page: a bar chart per feature (hover or
    focus a bar for its exact figure), the allowance line, reset dates, and the table of figures.

    Example: tollgate usage show acme-inc --feature api-calls --by week --from 2026-09-01
    """
    report_ = tollgate().usage(customer, feature=feature, by=by, start=start, end=end)
    if html is not None:
        from tollgate import report_html

        write_html(html, report_html.usage_page(report_.to_dict()), as_json=as_json)
        return
    if as_json:
        output.emit_json(report_.to_dict())
        return
    with output.paged():
        if feature is not None:
            render_feature(report_)
        else:
            render_summary(report_)


# -- rendering (also used by `customer show`) --------------------------------------------------------------


HtmlFile = Annotated[
    Optional[str],
    typer.Option("--html", metavar="FILE", help="Write one self-contained HTML page there instead (replaced atomically, as catalog export does)."),
]


def write_html(path: str, page: str, *, as_json: bool) -> None:
    """Write an HTML report (atomically) and say so: with --json, {"html": FILE, "bytes": N}."""
    from tollgate import report_html

    report_html.write(path, page)
    size = len(page.encode())
    output.result({"html": path, "bytes": size}, as_json=as_json, message=f"Wrote {path} ({size:,} bytes).")


def _when(moment) -> str:
    """A period boundary for people: the date, with the time when it is not midnight; 'never'."""
    if moment is None:
        return "never"
    return moment.strftime("%Y-%m-%d") if moment.time() == moment.min.time() else moment.strftime("%Y-%m-%d %H:%M")


def _num(value) -> str:
    from tollgate.money import format_decimal

    return grouped(format_decimal(value))  # for tables and sentences only: --json has the figure


def _allowance(f: FeatureUsage) -> str:
    if not f.granted:
        return "-"
    if f.limit is None:
        return "unlimited"
    per = "" if f.reset in (None, "never") else f" / {f.reset}"
    return f"{_num(f.limit)}{per} ({'hard' if f.hard else 'soft'})"


def _percent(f: FeatureUsage) -> str:
    pct = f.percent_used
    return "-" if pct is None else f"{pct}%"


def _span(report_: UsageReport) -> str:
    from datetime import timedelta

    last = report_.end - timedelta(days=1)
    return f"{report_.start:%Y-%m-%d} to {last:%Y-%m-%d} (UTC)"


def summary_rows(report_: UsageReport) -> list[list[Any]]:
    return [
        [f.feature, output.sparkline(f.series), _num(f.total), _num(f.used), _allowance(f), _percent(f),
         _when(f.reset_at)]
        for f in report_.features
    ]


SUMMARY_TABLE = (Col("feature", ID), Col("trend", KEY), Col("total", QUANTITY), Col("this period", QUANTITY),
                 Col("allowance", QUANTITY), Col("used", QUANTITY), Col("resets", DATE))


def render_summary(report_: UsageReport, *, title: str | None = None) -> None:
    """One row per metered feature: sparkline, total over the range, the current period's usage
    against the allowance, and when it resets."""
    title = title or f"Usage of {report_.customer} by {report_.by}, {_span(report_)}"
    if not report_.features:
        output.say(f"{title}: no metered usage or allowance.")
        return
    rows = summary_rows(report_)
    shown = [[cell(value, c.kind, str) for c, value in zip(SUMMARY_TABLE, row)] for row in rows]  # as the table shows them
    if _too_wide(shown):
        _summary_blocks(shown, title)
    else:
        output.table(SUMMARY_TABLE, rows, title=title)
    corrected = [f for f in report_.features if f.corrections]
    for f in corrected:
        output.say(f"{f.feature}: corrections (voids) in this range: {_num(f.corrections)}, included in the total.")


def _too_wide(rows: list[list[str]]) -> bool:
    """Whether the summary table would not fit the terminal on one line per feature (a folded
    sparkline reads as nonsense). Piped output is never folded, so it always gets the table."""
    if not output.styled():
        return False
    widths = [max(len(row[i]) for row in [[c.name for c in SUMMARY_TABLE], *rows]) for i in range(len(SUMMARY_TABLE))]
    return sum(widths) + 3 * len(widths) > output.console().width


def _summary_blocks(rows: list[list[str]], title: str) -> None:
    """The summary for a narrow terminal: per feature, its sparkline on one line, the figures below."""
    output.heading(title)
    for feature, trend, total, used, allowance, percent, resets in rows:
        output.say(f"{feature}  {trend}")
        share = f", {percent}" if percent != "-" else ""
        of = f" of {allowance}" if allowance != "-" else ""
        output.say(f"  total {total} · this period {used}{of}{share} · resets {resets}")


def render_feature(report_: UsageReport) -> None:
    """One row per period with the exact figure and a bar (scaled to the largest period), then the
    allowance line."""
    f = report_.features[0]
    top = max((v for v in f.series if v > 0), default=0)
    rows = [
        [label, _num(value), output.bar(float(value / top) if top else 0.0)]
        for label, value in zip(report_.labels(), f.series)
    ]
    unit = f" ({f.unit})" if f.unit else ""
    output.table((Col(report_.by, DATE), Col("quantity", QUANTITY), Col("", KEY)), rows, title=f"{f.feature}{unit} for {report_.customer} by "
                 f"{report_.by}, {_span(report_)}")
    output.say(f"total: {_num(f.total)}" + (f" (corrections: {_num(f.corrections)})" if f.corrections else ""))
    if not f.granted:
        allowance = "allowance: none (no subscription grants it)"
    elif f.limit is None:
        allowance = "allowance: unlimited"
    else:
        allowance = f"allowance: {_allowance(f)}"
    used = f"; used {_num(f.used)}" + (f" ({_percent(f)})" if f.percent_used is not None else "")
    output.say(f"{allowance}{used} since {_when(f.period_start)}; resets {_when(f.reset_at)}.")
