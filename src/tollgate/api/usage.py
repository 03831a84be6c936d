"""The `Tollgate` methods of usage and of what it costs: recording events (one, or a file of them),
voids, the events export, the usage report, and invoice previews (mixed into api.Tollgate)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Any

from tollgate.api.access import Quantity
from tollgate.api.base import Base, Moment, moment

if TYPE_CHECKING:
    from tollgate.invoice_lines import InvoicePreview
    from tollgate.usage.events import ReportResult
    from tollgate.usage.export import ExportedEvent
    from tollgate.usage.ingest import IngestResult
    from tollgate.usage.report import UsageReport
    from tollgate.usage.voids import VoidResult


class UsageMethods(Base):
    # -- invoices ------------------------------------------------------------------------------
    # Previews only: nothing is issued or stored. `period` is "YYYY-MM" (the billing periods starting in
    # that month); `at` a datetime or RFC 3339 text (the periods containing it); neither: now.

    def invoice_preview(self, customer: str, *, period: str | None = None,
                        at: Moment | None = None) -> InvoicePreview:
        """What the customer owes for the selected periods: an invoice_lines.InvoicePreview (`.lines`,
        `.totals` per currency as Decimals, `.to_dict()` for the JSON shape, `.csv_rows()`)."""
        from tollgate import invoices

        with self.db.read() as session:
            return invoices.preview(session, customer=customer, period=period, at=at)

    def invoice_previews(self, *, period: str | None = None, at: Moment | None = None,
                         batch_size: int | None = None) -> Iterator[InvoicePreview]:
        """Every customer's preview (a bill run that issues nothing), yielded customer by customer from
        one read transaction (a consistent snapshot); batches keep memory bounded. Customers with nothing
        to bill are left out. Close the iterator (or exhaust it) to end the transaction."""
        from tollgate import invoices

        reading = self.db.read()  # now, not at the first row: a missing database is refused before any output

        def previews() -> Iterator[InvoicePreview]:
            with reading as session:
                yield from invoices.previews(session, period=period, at=at, batch_size=batch_size or invoices.BATCH)

        return previews()

    # -- usage -----------------------------------------------------------------------------------

    def report_usage(self, customer: str, feature: str, quantity: Quantity, *, at: Moment | None = None,
                     key: str | None = None, set_total: bool = False) -> ReportResult:
        """Record one usage event (never refused for a limit: Rule 5); returns a usage.events.ReportResult.

        `quantity` is exact (int, decimal string or Decimal; never a float). `key` is the idempotency
        key (generated when None): the same key again records nothing (`result.recorded` False); the
        same key for a different event raises Conflict. `set_total`: record the delta that makes the
        period's total equal `quantity`. `result.notices`/`result.warnings` are for the person."""
        from tollgate.usage import events as usage

        def attempt() -> ReportResult:
            with self.db.write() as session:
                return usage.report_usage(session, customer=customer, feature=feature, quantity=quantity,
                                          at=at, key=key, set_total=set_total)

        return self._retrying_lock(attempt)

    def report_usage_file(
        self,
        source: str | os.PathLike[str],
        *,
        format: str | None = None,
        skip_invalid: bool = False,
        rejects: str | os.PathLike[str] | None = None,
        dry_run: bool = False,
        progress: Callable[[Iterator[Any]], Iterable[Any]] | None = None,
        overwrite: bool = False,
    ) -> IngestResult:
        """Record the events of a CSV / JSON lines file ('-': stdin) in ONE transaction, streamed.

        Any invalid row: usage.ingest.UsageFileErrors and nothing is recorded; with `skip_invalid`, the good
        rows are recorded and the bad ones written to `rejects` (default: beside the input; an existing
        file only with `overwrite`, never the database; written whole or not at all). `progress`,
        if given, wraps the stream of rows (a progress bar). Returns a usage.ingest.IngestResult (inserted /
        duplicates / rejected)."""
        from tollgate.clock import utcnow
        from tollgate.usage import file as usage_file, ingest as usage
        from tollgate.usage.parsing import parsed_rows

        source = str(source)
        fmt = usage_file.file_format(source, format)
        header: list[str] = []
        writer = None
        if skip_invalid and not dry_run:  # a dry run writes nothing, not even the reject file
            target = rejects if rejects is not None else usage_file.default_rejects_path(source, fmt)
            writer = usage_file.RejectWriter(target, fmt, source=source, header=header, database=self.db.path,
                                             overwrite=overwrite)
        kept = False
        try:
            now = utcnow()
            with usage_file.identified(source) as (readable, file_id), \
                    parsed_rows(readable, fmt, header=header, now=now, file_id=file_id,
                                keep_raw=writer is not None) as items:
                rows = items if progress is None else progress(items)
                with self.db.write(dry_run=dry_run) as session:
                    result = usage.ingest(session, rows, source=source, now=now, skip_invalid=skip_invalid,
                                          rejects=writer, dry_run=dry_run)
            kept = True
            return result
        finally:
            if writer is not None:
                writer.close(keep=kept)

    def void_usage(self, key: str, *, reason: str) -> VoidResult:
        """Reverse a recorded event (a negative event, `voids` = key; the original stays). Returns a
        usage.voids.VoidResult. Unknown key: NotFound; a void, or an event voided already: RuleViolation."""
        from tollgate.usage import voids as usage

        def attempt() -> VoidResult:
            with self.db.write() as session:
                return usage.void_usage(session, key=key, reason=reason)

        return self._retrying_lock(attempt)

    def usage_event(self, key: str) -> ExportedEvent:
        """One recorded event by key: customer, feature, quantity, timestamp, id (`.to_dict()`: its
        export row)."""
        from tollgate.usage import export as usage_events

        with self.db.connect() as conn:
            return usage_events.event(conn, key)

    @contextmanager
    def usage_export(self, *, customer: str | None = None, feature: str | None = None,
                     start: Moment | None = None, end: Moment | None = None,
                     ) -> Iterator[Iterator[ExportedEvent]]:
        """The recorded events, streamed from one snapshot (see usage.export.export) while the block
        runs; rows `report_usage_file` re-imports as duplicates. `end` is exclusive."""
        from tollgate.usage import export as usage_events

        since, until = moment(start, "--from time"), moment(end, "--to time")
        with self.db.connect() as conn:
            yield usage_events.export(conn, customer=customer, feature=feature, start=since, end=until)

    def usage(self, customer: str, *, feature: str | None = None, by: str = "day",
              start: date | Moment | None = None, end: date | Moment | None = None) -> UsageReport:
        """A customer's usage per day / week / month (UTC) for each metered feature, with the current
        period against the allowance and the corrections: a usage.report.UsageReport (`.to_dict()`)."""
        from tollgate.usage import report as usage

        with self.db.connect() as conn:
            return usage.usage_report(conn, customer=customer, feature=feature, by=by, start=start, end=end)
