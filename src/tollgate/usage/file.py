"""Usage events from a CSV or JSON lines file, read row by row (`usage report --file`), and the reject
file that `--skip-invalid` writes.

Columns (CSV header) or keys (JSON lines): `customer`, `feature`, `quantity`, and optionally
`timestamp` (RFC 3339 / ISO 8601; UTC when it has no offset; the time of the import when absent) and
`id` (the idempotency key). Any other column is refused: a misspelt `timestmap` would otherwise
silently record every event at the time of the import.

Why not rowfiles.read_csv/read_jsonl: those stop at the first malformed line, which is right for a
customer import; a usage file is read to its end so that every bad line can be listed, or skipped
and written to the reject file. Both share rowfiles.open_text (UTF-8, a BOM skipped, CRLF fine).

Each row comes out as an `Item`, a flat tuple `(line, customer, feature, quantity, timestamp, id,
error, raw)`: `error` is None, or says why the line is unreadable (the fields are then None); `raw`
is what the reject file writes back (the CSV cells, or the JSON line). The text fields are stripped
strings ("" when absent); `quantity` is a string, or an int / Decimal from JSON (JSON numbers are
read as exact decimals, never floats). Memory stays bounded whatever the file size.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from tollgate import outfiles
from tollgate.errors import InvalidInput
from tollgate.files import atomic_file
from tollgate.text import listing
from tollgate.rowfiles import MAX_FIELD, NOT_JSON, detect_format, json_values, open_text

FORMATS = ("csv", "jsonl")
COLUMNS = ("customer", "feature", "quantity", "timestamp", "id")
REQUIRED = ("customer", "feature", "quantity")
MAX_LINE_ERRORS = 3
"""A CSV line the csv module keeps failing on, this many times in a row, ends the read."""

Item = tuple[Any, ...]


def file_format(source: str, explicit: str | None) -> str:
    """csv or jsonl: from --format, else from the file's suffix (.csv, .jsonl, .ndjson, .json)."""
    return detect_format(source, explicit, allowed=FORMATS)


@contextmanager
def identified(source: str) -> Iterator[tuple[str, str]]:
    """(what to read, the file's identity): the BLAKE2b-128 of its bytes, which joins the derived key
    of each row that has neither an id nor a timestamp (usage.values.derived_key): the same file sent again
    is the same events; another file's identical line is another event. Standard input ('-') is
    first copied to a private temporary file (it can be read only once)."""
    import hashlib
    import sys
    import tempfile

    digest = hashlib.blake2b(digest_size=16)
    if source != "-":
        try:
            with open(source, "rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
        except OSError:
            pass  # read_items says what is wrong with it
        yield source, digest.hexdigest()
        return
    fd, spooled = tempfile.mkstemp(prefix="tollgate-usage-", suffix=".stdin")
    try:
        with os.fdopen(fd, "wb") as out:
            while block := sys.stdin.buffer.read(1 << 20):
                digest.update(block)
                out.write(block)
        yield spooled, digest.hexdigest()
    finally:
        Path(spooled).unlink(missing_ok=True)


def read_items(source: str | int, fmt: str, *, header: list[str] | None = None) -> Iterator[Item]:
    """Every row of `source` ('-' is stdin, an int a file descriptor, closed at the end) as an Item,
    streamed. A file that can't be read at all (missing, not UTF-8, a bad CSV header) raises
    InvalidInput; a bad row is an Item with an error.
    A CSV header is appended to `header` when given (the reject file repeats it)."""
    with open_text(source) as stream:
        yield from (read_csv_items(stream, header=header) if fmt == "csv" else read_jsonl_items(stream))


def _not_utf8(line: int) -> InvalidInput:
    return InvalidInput(f"the file is not UTF-8 text (near line {line}); nothing was recorded.")


def _header(names: list[str]) -> list[str]:
    columns = [name.strip().lower() for name in names]
    if "" in columns or len(set(columns)) != len(columns):
        raise InvalidInput("line 1: the header has an empty or repeated column name.")
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise InvalidInput(
            f"line 1: unknown column(s) {listing(unknown)}.",
            hint=f"The columns are {', '.join(COLUMNS)} (timestamp and id are optional).",
        )
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InvalidInput(
            f"line 1: the header lacks the column(s) {', '.join(missing)}.",
            hint=f"The columns are {', '.join(COLUMNS)} (timestamp and id are optional).",
        )
    return columns


def read_csv_items(stream: TextIO, *, header: list[str] | None = None) -> Iterator[Item]:
    """A CSV with a header row. Blank lines are skipped; quoted commas, quoted newlines and CRLF are
    fine; a row with the wrong number of values is a bad row, not the end of the file."""
    csv.field_size_limit(MAX_FIELD)
    reader = csv.reader(stream)
    try:
        names = next(reader, None)
    except csv.Error as exc:
        raise InvalidInput(f"line 1: malformed CSV header ({exc}).") from None
    except UnicodeDecodeError:
        raise _not_utf8(1) from None
    if names is None:
        return
    columns = _header(names)
    if header is not None:
        header.extend(names)
    width = len(columns)
    ci, fi, qi = (columns.index(name) for name in REQUIRED)
    ti = columns.index("timestamp") if "timestamp" in columns else -1
    ki = columns.index("id") if "id" in columns else -1
    failures = 0
    while True:
        line = reader.line_num + 1  # where this record starts
        try:
            record = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise _not_utf8(line) from None
        except csv.Error as exc:
            failures += 1
            if failures >= MAX_LINE_ERRORS:
                raise InvalidInput(f"line {line}: malformed CSV ({exc}); cannot read on.") from None
            yield line, None, None, None, None, None, f"malformed CSV ({exc}).", None
            continue
        failures = 0
        if len(record) != width:
            if not record or all(not cell.strip() for cell in record):
                continue
            yield line, None, None, None, None, None, f"{len(record)} values for {width} columns ({listing(columns)}).", record
            continue
        customer = record[ci].strip()
        feature = record[fi].strip()
        quantity = record[qi].strip()
        if not (customer or feature or quantity) and all(not cell.strip() for cell in record):
            continue
        yield (line, customer, feature, quantity, record[ti].strip() if ti >= 0 else "",
               record[ki].strip() if ki >= 0 else "", None, record)


_DECODER = json.JSONDecoder(parse_float=Decimal)


def read_jsonl_items(stream: TextIO) -> Iterator[Item]:
    """One JSON object per line, or a JSON array of them (`usage export`'s rows, any --json list);
    blank lines are skipped; a bad line is a bad row."""
    number = 0
    values = json_values(stream, _DECODER)
    while True:
        try:
            number, text, data = next(values)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise _not_utf8(number + 1) from None
        if data is NOT_JSON:
            yield number, None, None, None, None, None, "not valid JSON.", text
            continue
        if not isinstance(data, dict):
            yield (number, None, None, None, None, None,
                   'expected a JSON object like {"customer": ..., "feature": ..., "quantity": ...}.', text)
            continue
        try:
            fields = json_fields(data)
        except InvalidInput as exc:
            yield number, None, None, None, None, None, exc.message, text
            continue
        yield (number, *fields, None, text)


def json_fields(data: dict[str, Any]) -> tuple[Any, ...]:
    """(customer, feature, quantity, timestamp, id) of one JSON object, with the types checked."""
    unknown = [str(k) for k in data if k not in COLUMNS]
    if unknown:
        shown = ", ".join(repr(k[:40]) for k in sorted(unknown)[:5])
        raise InvalidInput(f"unknown key(s) {shown}; the keys are {', '.join(COLUMNS)}.")
    customer = _text(data.get("customer"), "customer")
    feature = _text(data.get("feature"), "feature")
    timestamp = _text(data.get("timestamp"), "timestamp")
    key = data.get("id")
    if isinstance(key, int) and not isinstance(key, bool):
        key = str(key)
    key = _text(key, "id")
    quantity = data.get("quantity")
    if quantity is None:
        quantity = ""
    elif isinstance(quantity, str):
        quantity = _text(quantity, "quantity")
    return customer, feature, quantity, timestamp, key


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        if not (value.isascii() or _encodable(value)):  # JSON can spell a lone surrogate ("\ud800")
            raise InvalidInput(f"'{name}' is not valid text (it holds a lone surrogate).")
        return value.strip()
    raise InvalidInput(f"'{name}' must be text, not {type(value).__name__}.")


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


# -- the reject file ------------------------------------------------------------------------------------


def default_rejects_path(source: str, fmt: str) -> Path:
    """`events.csv` -> `events.rejects.csv` beside it; stdin -> `usage-rejects.<fmt>` here."""
    if source == "-":
        return Path(f"usage-rejects.{fmt}")
    path = Path(source)
    return path.with_name(f"{path.stem}.rejects.{fmt}")


class RejectWriter:
    """Writes the rows `--skip-invalid` left out, with the line they came from and why, in the input's
    format (CSV: the original columns then `line` and `error`; JSON lines: the original line as
    `row`, plus `line` and `error`). The file is created with the first reject only."""

    def __init__(
        self, path: str | os.PathLike, fmt: str, *, source: str | None = None, header: list[str] | None = None,
        database: str | os.PathLike | None = None, overwrite: bool = False,
    ) -> None:
        self.fmt = fmt
        self.count = 0
        self._file: Any = None  # files.atomic_file, entered with the first reject
        self._stream: TextIO | None = None
        self._writer: Any = None
        self._header = header  # filled by read_items when the input's header has been read
        if source not in (None, "-") and Path(path).exists() and Path(path).resolve() == Path(source).resolve():
            raise InvalidInput(f"The reject file {path} is the input file.", hint="Choose another --rejects.")
        self.path = outfiles.check_target(path, database=database, what="The reject file", overwrite=overwrite)

    def write(self, line: int, error: str, raw: Any) -> None:
        stream = self._stream if self._stream is not None else self._open()
        self.count += 1
        if self.fmt == "csv":
            cells = list(raw) if isinstance(raw, list) else []
            width = len(self._header or ())
            cells = (cells + [""] * width)[:width] if width and len(cells) != width else cells
            self._writer.writerow([*cells, line, error])
        else:
            text = raw.rstrip("\r\n") if isinstance(raw, str) else ""
            try:
                row: Any = json.loads(text)
            except (ValueError, RecursionError):
                row = text
            entry = json.dumps({"line": line, "error": error, "row": row}, ensure_ascii=False, default=str)
            if not (entry.isascii() or _encodable(entry)):  # a lone surrogate: the line as it was read
                entry = json.dumps({"line": line, "error": error, "row": text}, ensure_ascii=False)
            stream.write(entry + "\n")

    def _open(self) -> TextIO:
        self._file = atomic_file(self.path)
        stream: TextIO = self._file.__enter__()
        self._stream = stream
        if self.fmt == "csv":
            self._writer = csv.writer(stream, lineterminator="\n")
            self._writer.writerow([*(self._header or COLUMNS), "line", "error"])
        return stream

    def close(self, *, keep: bool = True) -> None:
        """Put the reject file in place (`keep`), or drop what was written (the import failed)."""
        if self._file is not None:
            handle, self._file, self._stream = self._file, None, None
            if keep:
                handle.__exit__(None, None, None)
            else:
                handle.__exit__(InvalidInput, InvalidInput("discarded"), None)
