"""Metered usage: report events (one, or a file of them), correct them with voids, read them back.
Keyword-only functions over a Session (or a Core Connection for the reads); they raise
TollgateError subclasses and never print. One module per job:

- values: an event's values checked (key, quantity in millionths, time, derived key); pure
- lookups: the customer and the metered feature a call names
- limits: an event's usage period, the usage in a period, the thresholds and limits crossed
- events: one event reported (`usage report`)          - voids: an event reversed (`usage void`)
- file: a CSV / JSON lines file read row by row, and the reject file
- parsing: a file's rows checked and converted (no database), in-process or in a helper process
- ingest: a file's events recorded in one transaction (`usage report --file`)
- store: idempotent event inserts (one, or set-based)    - rollups: exact sums of any window
- report: the per-period read model (`usage show`)       - export: events read back (`usage export`)

Nothing is imported here: a read command loads only the modules it uses (tests/test_startup.py).
"""
