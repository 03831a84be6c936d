"""The half of a file ingest that needs no database: each Item of usage.file.read_items checked and
turned into what is stored (the quantity in millionths, the UTC time's text, the key), in this
process, or for a big file in a helper process that streams the rows back while this one inserts.

Why a helper process: reading and checking a row costs about as much as inserting it (a million
rows: about 5 s each), and a thread would hold the interpreter's lock for it. The helper runs this
module (`python -P -c ...`, see helper_argv), in a session of its own (a Ctrl-C at the terminal
reaches only tollgate, which stops it), and writes marshalled frames to a pipe: the header, chunks of
rows, then the end, or the error that stopped the read. The ingest then looks up each row's customer
and feature and inserts, exactly as for rows read here.

A row is `(line, customer, feature, micros, stamp, timed, key, error, problem, raw)`:
- `error`: the line could not be read (usage.file's message); the other fields are then None;
- `problem`: a value of the line was refused (quantity, timestamp, id); told only after the
  customer and the feature, which the ingest looks up, so that a row's first fault is reported;
- `stamp`: the stored time text (UTC); `timed`: the same, or None for a row without a timestamp
  (recorded at the time of the import);
- `raw`: what the reject file writes back, kept only when there is one.
"""

from __future__ import annotations

import marshal
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from hashlib import blake2b
from pathlib import Path
from typing import Any, BinaryIO

from tollgate import errors
from tollgate.clock import parse_moment
from tollgate.errors import InvalidInput, StorageError, TollgateError
from tollgate.usage.values import MAX_FUTURE, MAX_MICROS, event_time, parse_key, plain_micros, quantity_micros, utc_stamp

HELPER_FROM_BYTES = 4 << 20
"""Files at least this big are parsed by the helper process (when the machine has a second core):
below it, starting one (about 0.1 s) costs more than it saves."""
FRAME_ROWS = 5_000
AHEAD_FRAMES = 10
"""Frames the helper may send ahead of the ingest (50,000 rows, about 5 MB): more than a chunk
(usage.ingest.CHUNK, inserted in one go), so that it has the next chunk ready when one is in."""


def converted(items: Iterable[Any], *, now: datetime, file_id: str, keep_raw: bool) -> Iterator[tuple]:
    """The rows of `items` (usage.file.Item), checked and converted (see the module docstring).

    This loop runs once per row (a million times for a big file), so the common cases are inlined,
    with locals for speed: plain decimal quantities, ISO timestamps, the derived key (see
    `values.derived_key`). Anything unusual goes through the functions a single report uses, which
    raise the messages."""
    fromiso, to_stamp, digest = datetime.fromisoformat, utc_stamp, blake2b
    now_stamp = now.isoformat(" ", "microseconds")
    latest_stamp = (now + MAX_FUTURE).isoformat(" ", "microseconds")
    max_micros, plain = MAX_MICROS, plain_micros
    for line, customer, feature, quantity, timestamp, key, error, raw in items:
        if not keep_raw:
            raw = None
        if error is not None:
            yield line, None, None, None, None, None, None, error, None, raw
            continue
        try:
            micros = plain(quantity) if type(quantity) is str else 0
            if not 0 < micros <= max_micros:
                micros = quantity_micros(quantity)
            if timestamp:
                try:
                    stamp = to_stamp(timestamp)
                except (ValueError, OverflowError):
                    stamp = parse_moment(timestamp, what="timestamp", relative=False).isoformat(" ", "microseconds")
                timed = when = stamp
                if stamp > latest_stamp:
                    event_time(fromiso(stamp), now=now)  # raises, with the message
            else:
                timed, stamp, when = None, now_stamp, f"file {file_id} line {line}"
            if key:
                key = parse_key(key)
            else:
                key = "row-" + digest(f"{customer}\x1f{feature}\x1f{micros}\x1f{when}".encode(),
                                      digest_size=16).hexdigest()
        except InvalidInput as exc:
            yield line, customer, feature, None, None, None, None, None, exc.message, raw
            continue
        yield line, customer, feature, micros, stamp, timed, key, None, None, raw


@contextmanager
def parsed_rows(source: str, fmt: str, *, header: list[str], now: datetime, file_id: str,
                keep_raw: bool) -> Iterator[Iterator[tuple]]:
    """The converted rows of the file `source` (a path: standard input was spooled to one by
    usage.file.identified), from the helper process when the file is big and a second core is free,
    else read here. The helper is stopped when the block ends, however it ends. `header` gets the
    CSV header (the reject file repeats it)."""
    from tollgate.usage.file import read_items

    helper = _helper(source, fmt, file_id, now, keep_raw) if _worth_a_helper(source) else None
    if helper is None:
        yield converted(read_items(source, fmt, header=header), now=now, file_id=file_id, keep_raw=keep_raw)
        return
    frames: queue.Queue[bytes] = queue.Queue(maxsize=AHEAD_FRAMES)
    stop = threading.Event()
    reader = None
    try:  # at once: a Ctrl-C from here on still stops the helper
        assert helper.stdout is not None
        reader = threading.Thread(target=_drain, args=(helper.stdout, frames, stop), daemon=True)
        reader.start()
        yield _received(frames, header)
    finally:
        stop.set()
        helper.kill()
        helper.wait()
        if reader is not None and reader.ident is not None:
            reader.join()
        if helper.stdout is not None:
            helper.stdout.close()


def _worth_a_helper(source: str) -> bool:
    try:
        return os.path.getsize(source) >= HELPER_FROM_BYTES and second_core()
    except OSError:
        return False  # read here: read_items says what is wrong with it


def second_core() -> bool:
    """Whether this process may run on more than one core."""
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return len(cores) > 1


_BOOT = ("import sys; root = sys.argv.pop(1)\n"
         "if root not in sys.path: sys.path.insert(0, root)\n"
         "from tollgate.usage.parsing import main; sys.exit(main(sys.argv[1:]))")
"""The helper's first lines: this tollgate importable (its folder on sys.path only when not already
there: a site-packages first would put what it holds before the standard library), then main()."""


def helper_argv(source: str, fmt: str, file_id: str, now: datetime, keep_raw: bool) -> list[str]:
    """The helper's command: this module, run by this interpreter, as isolated from the environment
    as this process is (-E, -s, -I: PYTHONPATH then names no code for it either; -P: nothing from the
    current folder)."""
    flags = [flag for flag, on in (("-I", sys.flags.isolated), ("-E", sys.flags.ignore_environment),
                                   ("-s", sys.flags.no_user_site)) if on]
    package_root = str(Path(__file__).resolve().parents[2])  # where this tollgate is, wherever installed
    return [sys.executable, *flags, "-P", "-c", _BOOT, package_root, source, fmt, file_id, now.isoformat(),
            "1" if keep_raw else "0"]


def _helper(source: str, fmt: str, file_id: str, now: datetime, keep_raw: bool) -> subprocess.Popen | None:
    """The helper process, started; None when it can't be (then the file is read here)."""
    if not sys.executable or getattr(sys, "frozen", False):  # frozen: sys.executable is not a Python
        return None
    try:
        # The helper reads the file opened here, by its descriptor: a path may not name the same file
        # in the helper (/dev/stdin, /dev/fd/N) or may have been replaced since.
        with open(source, "rb") as file:
            return subprocess.Popen(helper_argv(str(file.fileno()), fmt, file_id, now, keep_raw),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    start_new_session=True, pass_fds=(file.fileno(),))
    except OSError:
        return None


def _drain(stream: BinaryIO, frames: queue.Queue[bytes], stop: threading.Event) -> None:
    """Move the helper's frames from the pipe to `frames` as they come (a thread: it waits on the pipe
    without the interpreter's lock), so that the helper runs a chunk ahead while the ingest inserts
    one, which a pipe's buffer (64 KiB) would not let it. b"" ends the frames."""
    data = b""
    while not stop.is_set():
        try:
            head = stream.read(8)
            data = stream.read(int.from_bytes(head, "little")) if len(head) == 8 else b""
        except Exception:  # noqa: BLE001 (a length read from anything but a frame: MemoryError, OverflowError)
            data = b""  # whatever failed, b"" is put: the ingest must not wait for a thread that died
        while not stop.is_set():
            try:
                frames.put(data, timeout=0.1)
                break
            except queue.Full:
                continue
        if not data:
            return


def _received(frames: queue.Queue[bytes], header: list[str]) -> Iterator[tuple]:
    while True:
        try:
            kind, value = marshal.loads(frames.get())
        except (EOFError, ValueError, TypeError):
            raise StorageError("The helper process reading the file stopped before its end; nothing was "
                               "recorded.", hint="Run the import again.") from None
        if kind == "rows":
            yield from value
        elif kind == "header":
            header.extend(value)
        elif kind == "error":
            name, message, hint, exit_code = value
            cls = getattr(errors, name, None)
            if not (isinstance(cls, type) and issubclass(cls, TollgateError)):
                cls = TollgateError
            exc = cls(message, hint=hint)
            exc.exit_code = exit_code
            raise exc
        else:
            return


def _serve(source: str | int, fmt: str, file_id: str, now: datetime, keep_raw: bool, out: BinaryIO) -> None:
    """The helper's side: every row of the file (a path, or the descriptor tollgate passed), in
    frames, then ("end", None)."""
    from tollgate.usage.file import read_items

    header: list[str] = []
    frame: list[tuple] = []
    try:
        for row in converted(read_items(source, fmt, header=header), now=now, file_id=file_id, keep_raw=keep_raw):
            if header:
                _send(("header", header), out)
                header = []
            frame.append(row)
            if len(frame) >= FRAME_ROWS:
                _send(("rows", frame), out)
                frame = []
        if header:
            _send(("header", header), out)
        _send(("rows", frame), out)
    except TollgateError as exc:
        _send(("error", (type(exc).__name__, exc.message, exc.hint, exc.exit_code)), out)
        return
    _send(("end", None), out)


def _send(frame: tuple, out: BinaryIO) -> None:
    data = marshal.dumps(frame)
    out.write(len(data).to_bytes(8, "little"))
    out.write(data)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # tollgate stops it (it is in a session of its own)
    source, fmt, file_id, now, keep_raw = argv
    try:
        with os.fdopen(sys.stdout.fileno(), "wb", buffering=1 << 20, closefd=False) as out:
            _serve(int(source) if source.isdigit() else source, fmt, file_id, datetime.fromisoformat(now),
                   keep_raw == "1", out)
    except BrokenPipeError:  # tollgate stopped reading: it has stopped the import
        return 1
    return 0
