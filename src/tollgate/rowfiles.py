"""Reading rows from CSV, JSON lines and TOML files, streamed, each row tagged with where it came from.

Shared by every batch input (customer import, usage report --file). Rows are yielded one at a time so
memory stays bounded however large the file; every malformed thing becomes an InvalidInput naming the
line (never a traceback).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from tollgate.errors import InvalidInput
from tollgate.text import listing

FORMATS = ("csv", "jsonl", "toml")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".toml": "toml"}
MAX_FIELD = 1 << 20


@dataclass(frozen=True)
class Row:
    """One input row: `where` is `line 12` (or `customers[3]` in TOML), `data` maps column -> value."""

    where: str
    data: dict[str, Any]


def detect_format(source: str, explicit: str | None, *, allowed: tuple[str, ...] = FORMATS) -> str:
    """The format named with --format, else the file's suffix, else (stdin, '-') its first character.
    `json` names the JSON reader too: it takes an array (tollgate's own --json) or JSON lines."""
    fmt = explicit or _SUFFIXES.get(Path(source).suffix.lower()) or (_sniffed_stdin() if source == "-" else None)
    if fmt == "json":
        fmt = "jsonl"
    if fmt is None:
        raise InvalidInput(
            f"Cannot tell the format of '{source}' from its name.",
            hint=f"Pass --format ({'|'.join(allowed)}).",
        )
    if fmt not in allowed:
        raise InvalidInput(f"Unknown format '{fmt}': use {', '.join(allowed)}.")
    return fmt


def _sniffed_stdin() -> str | None:
    """What standard input holds, told from its first characters without consuming them: `{` or
    `[` then `{`/`]`: JSON (lines or an array); `[[` or `[name]`: TOML; other text: CSV; nothing
    readable yet (or a stream that can't be peeked at): None."""
    peek = getattr(sys.stdin.buffer, "peek", None)
    head = peek(1 << 12)[: 1 << 12].lstrip(b"\xef\xbb\xbf \t\r\n") if peek is not None else b""
    if head.startswith(b"{"):
        return "jsonl"
    if head.startswith(b"["):
        after = head[1:].lstrip(b" \t\r\n")[:1]
        return "jsonl" if after in (b"{", b"]") else "toml"
    return "csv" if head else None


def open_text(source: str | int) -> TextIO:
    """Open a file (or '-' for stdin, or a file descriptor) as UTF-8 text, a BOM skipped, newlines
    left to the csv module."""
    if source == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
    from tollgate.files import cannot_read

    try:
        return open(source, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise cannot_read(exc, str(source)) from None


def read_rows(source: str, fmt: str, *, toml_table: str | None = None) -> Iterator[Row]:
    if fmt == "toml":
        yield from read_toml(source, toml_table or "rows")
        return
    with open_text(source) as stream:
        yield from (read_csv(stream, source=source) if fmt == "csv" else read_jsonl(stream, source=source))


def undecodable_at(source: str | None) -> tuple[int, int] | None:
    """(line, byte offset) of the first byte of the file `source` that is not UTF-8, or None (stdin,
    unreadable). The text reader decodes ahead in blocks, so its line count can't say where."""
    import codecs

    if source in (None, "-"):
        return None
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = 0, 1
    try:
        with open(source, "rb") as handle:
            while block := handle.read(1 << 16):
                pending = decoder.getstate()[0]  # the start of a character split by the last block
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as exc:  # exc.start counts from the pending bytes
                    before = (pending + block)[: exc.start]
                    return line + before.count(b"\n"), offset - len(pending) + exc.start
                line += block.count(b"\n")
                offset += len(block)
    except OSError:
        return None
    return None


def _decoding_guard(rows: Iterator[Row], last_where, source: str | None = None) -> Iterator[Row]:
    try:
        yield from rows
    except UnicodeDecodeError:
        found = undecodable_at(source)
        if found is not None:
            raise InvalidInput(f"line {found[0]} (byte {found[1]}): the file is not UTF-8 text.") from None
        raise InvalidInput(f"after {last_where()}: the file is not UTF-8 text.") from None


def read_csv(stream: TextIO, *, source: str | None = None) -> Iterator[Row]:
    """A CSV with a header row; blank lines are skipped; quoted commas and CRLF are fine."""
    csv.field_size_limit(MAX_FIELD)
    reader = csv.reader(stream)
    state = {"line": 0}

    def rows() -> Iterator[Row]:
        try:
            header = next(reader, None)
            if header is None:
                return
            columns = [name.strip().lower() for name in header]
            if len(set(columns)) != len(columns) or "" in columns:
                raise InvalidInput("line 1: the header has an empty or repeated column name.")
            for record in reader:
                state["line"] = reader.line_num
                if not record or all(not cell.strip() for cell in record):
                    continue
                if len(record) != len(columns):
                    raise InvalidInput(
                        f"line {reader.line_num}: {len(record)} values for {len(columns)} columns "
                        f"({listing(columns)})."
                    )
                yield Row(f"line {reader.line_num}", {c: v.strip() for c, v in zip(columns, record) if v.strip()})
        except csv.Error as exc:
            raise InvalidInput(f"line {reader.line_num}: malformed CSV ({exc}).") from None

    yield from _decoding_guard(rows(), lambda: f"line {state['line']}", source)


def read_jsonl(stream: TextIO, *, source: str | None = None) -> Iterator[Row]:
    """One JSON object per line, or a JSON array of objects (tollgate's own --json); blank lines are
    skipped."""
    state = {"line": 0}

    def rows() -> Iterator[Row]:
        for number, _text, data in json_values(stream):
            state["line"] = number
            if data is NOT_JSON:
                raise InvalidInput(f"line {number}: not valid JSON.")
            if not isinstance(data, dict):
                raise InvalidInput(f"line {number}: expected a JSON object like {{\"name\": ...}}.")
            yield Row(f"line {number}", data)

    yield from _decoding_guard(rows(), lambda: f"line {state['line']}", source)


NOT_JSON = object()
"""What json_values yields for a line of JSON lines that does not parse (the reader goes on)."""
_CHUNK = 1 << 16


def json_values(stream: TextIO, decoder: json.JSONDecoder | None = None) -> Iterator[tuple[int, str, Any]]:
    """(line, text, value) of every JSON value of a JSON lines stream, or of every element of a JSON
    array when the first thing in it is `[` (so tollgate's own `--json` output reads back), streamed in
    bounded memory. In JSON lines a line that does not parse is NOT_JSON; in an array, where nothing
    after a broken element can be found, it is an InvalidInput naming the line."""
    decoder = decoder or json.JSONDecoder()
    number = 0
    for text in stream:
        number += 1
        if text.strip():
            break
    else:
        return
    if not text.lstrip().startswith("["):
        for number, text in enumerate(itertools.chain([text], stream), start=number):
            if text.strip():
                yield number, text, _parse_line(decoder, text)
        return
    yield from _array_elements(stream, decoder, text.lstrip()[1:], number)


def _parse_line(decoder: json.JSONDecoder, text: str) -> Any:
    try:
        return decoder.decode(text)
    except (ValueError, RecursionError):
        return NOT_JSON


_CANNOT_READ_ON = "cannot read on (a broken JSON array has no next row to go on from)."
"""The end of a JSON array's errors: unlike a bad JSON line, they stop the whole file (--skip-invalid too)."""


def _array_elements(stream: TextIO, decoder: json.JSONDecoder, buffer: str, line: int) -> Iterator[tuple[int, str, Any]]:
    pos, eof, expect_value = 0, False, True
    while True:
        while pos < len(buffer) and buffer[pos] in " \t\r\n":
            line += buffer[pos] == "\n"
            pos += 1
        if pos == len(buffer):
            if eof:
                raise InvalidInput(f"line {line}: the JSON array is not closed (a ']' is missing); {_CANNOT_READ_ON}")
            buffer, pos = stream.read(_CHUNK), 0
            eof = not buffer
            continue
        char = buffer[pos]
        if char == "]":
            if buffer[pos + 1:].strip() or stream.read(_CHUNK).strip():
                raise InvalidInput(f"line {line}: text after the end of the JSON array; {_CANNOT_READ_ON}")
            return
        if not expect_value:
            if char != ",":
                raise InvalidInput(f"line {line}: expected ',' or ']' between the array's elements; {_CANNOT_READ_ON}")
            pos, expect_value = pos + 1, True
            continue
        try:
            value, end = decoder.raw_decode(buffer, pos)
            complete = end < len(buffer) or eof
        except (ValueError, RecursionError):
            value, complete = NOT_JSON, eof
        if not complete:  # the element may go on in the next chunk
            more = stream.read(_CHUNK)
            eof = not more
            buffer, pos = buffer[pos:] + more, 0
            continue
        if value is NOT_JSON:
            raise InvalidInput(f"line {line}: not valid JSON inside the array; {_CANNOT_READ_ON}")
        text = buffer[pos:end]
        yield line, text, value
        line += text.count("\n")
        pos, expect_value = end, False
        if pos > _CHUNK:
            buffer, pos = buffer[pos:], 0


def read_bytes(path: str) -> bytes:
    """A whole input file's bytes ('-': standard input); a missing, unreadable or folder path is one
    InvalidInput."""
    if path == "-":
        return sys.stdin.buffer.read()
    from tollgate.files import cannot_read

    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise cannot_read(exc, path) from None
    with handle:
        return handle.read()


def load_toml(path: str) -> dict[str, Any]:
    """Parse a TOML file, turning every way it can be broken into one InvalidInput."""
    raw = read_bytes(path)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: the file is not UTF-8 text.") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path}: malformed TOML ({exc}).") from None
    except RecursionError:
        raise InvalidInput(f"{path}: the TOML is nested too deeply.") from None


def read_toml(path: str, table: str) -> Iterator[Row]:
    """Rows from an array of tables: `[[customers]]` entries become rows `customers[0]`, ..."""
    document = load_toml(path)
    entries = document.get(table, [])
    if not isinstance(entries, list):
        raise InvalidInput(f"'{table}' must be an array of tables ([[{table}]]).", path=table)
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidInput("expected a table.", path=f"{table}[{index}]")
        yield Row(f"{table}[{index}]", entry)
