"""Database failures as one plain sentence: a driver's error (SQLite's, psycopg's, the pool's
timeout) becomes a StorageError naming the database and what went wrong (InvalidInput for text
PostgreSQL cannot hold), never a traceback. The one translator of driver errors."""

from __future__ import annotations

import re

from sqlalchemy.exc import TimeoutError as PoolTimeout

from tollgate.errors import InvalidInput, StorageError, TollgateError
from tollgate.location import display_location


def storage_error(exc: BaseException, location: str) -> TollgateError:
    """Turn a driver error into one plain sentence about what went wrong with the database (a
    StorageError; InvalidInput for text PostgreSQL cannot hold)."""
    if isinstance(exc, PoolTimeout):
        return StorageError(f"Every connection to {display_location(location)} stayed busy too long (the pool of "
                            "this process is exhausted).", hint="Use fewer threads at once, or try again.")
    orig = getattr(exc, "orig", exc)
    if type(orig).__module__.startswith("psycopg"):
        return _postgres_error(orig, location)
    message = str(orig).lower()
    where = f"the database at {display_location(location)}"
    if "locked" in message or "busy" in message:
        return StorageError(f"{where} is locked by another process.", hint="Try again in a moment.")
    if "readonly" in message or "read-only" in message:
        return StorageError(f"{where} is read-only.", hint="Check the permissions of the file and its folder.")
    if "full" in message:
        return StorageError(f"The disk holding {where} is full.", hint="Free some space and try again.")
    if "not a database" in message or "malformed" in message or "encrypted" in message:
        return StorageError(f"{where} is not a valid SQLite database.", hint="Point --db at a tollgate database.")
    if "unable to open" in message:
        return StorageError(f"{where} cannot be opened.", hint="Check that its folder exists and is writable.")
    return StorageError(f"{where} failed: {orig}.")


# SQLSTATE classes and codes of PostgreSQL errors that have a plain sentence of their own
_PG_RETRY = {"40001", "40P01"}  # serialization failure, deadlock detected
_PG_LOCKED = {"55P03", "57014"}  # lock not available, statement canceled (lock/statement timeout)


def _postgres_error(orig: BaseException, location: str) -> TollgateError:
    """psycopg's errors as one sentence. Connection failures carry no SQLSTATE: they are told apart
    by libpq's message ("Connection refused", "password authentication failed", ...)."""
    where = f"the database at {display_location(location)}"
    state = getattr(orig, "sqlstate", None) or ""
    text = str(orig).strip()
    message = text.lower()
    first_line = text.splitlines()[0].strip().rstrip(".") if text else type(orig).__name__
    if "nul (0x00)" in message:  # psycopg refuses to send such text: it can be neither stored nor found
        return InvalidInput("The text given contains a NUL character (\\x00), which PostgreSQL can neither store "
                            "nor look up.", hint="Remove it and try again; nothing was written.")
    if state in _PG_RETRY:
        return StorageError(f"{where} refused a change that clashed with another one made at the same time.",
                            hint="Try again; nothing was written.")
    if state in _PG_LOCKED:
        return StorageError(f"{where} is locked by another transaction.", hint="Try again in a moment.")
    if state == "53100" or "no space left" in message:
        return StorageError(f"The disk of the server holding {where} is full.", hint="Free some space and try again.")
    if state == "25006" or "read-only transaction" in message:
        return StorageError(f"{where} is read-only (a standby server?).", hint="Point --db at the primary server.")
    if state == "3D000" or re.search(r'database "[^"]*" does not exist', message):
        return StorageError(f"{where} does not exist on the server.",
                            hint="Create it first (createdb, or CREATE DATABASE), then run tollgate again.")
    if (state.startswith("28") or "password authentication failed" in message
            or re.search(r'role "[^"]*" does not exist', message) or "no password supplied" in message
            or "no pg_hba.conf entry" in message):
        return StorageError(f"Authentication to {where} failed.",
                            hint="Check the user name and password in the URL (or ~/.pgpass, $PGPASSWORD).")
    if "connection refused" in message:
        return StorageError(f"The server of {where} refused the connection.",
                            hint="Check that PostgreSQL is running and listening on that host and port.")
    if "failed to resolve host" in message or "could not translate host name" in message:
        return StorageError(f"The server of {where} cannot be found.", hint="Check the host name in the URL.")
    if "timeout expired" in message or "timed out" in message:
        return StorageError(f"The server of {where} did not answer in time.",
                            hint="Check the host, port and network, then try again.")
    if "server closed the connection" in message or "terminating connection" in message or "consuming input failed" in message:
        return StorageError(f"The connection to {where} was lost.", hint="Try again; check the server's log if it recurs.")
    return StorageError(f"{where} failed: {first_line}.")
