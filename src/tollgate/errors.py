"""Every error the library raises on purpose, each carrying the CLI exit code it maps to.

Exit codes (documented in the README):
  1  refused by a rule, or access denied
  2  bad usage or bad input (malformed file, unknown identifier, invalid value)
  3  the database or file system failed (locked, read-only, full, not a tollgate database)
"""

from __future__ import annotations


class TollgateError(Exception):
    """Base of every deliberate error. `str(error)` is one or two plain sentences for a person."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class InvalidInput(TollgateError):
    """A value, row or file is malformed. `path` names where (a TOML path, `line 12`, a field)."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message, hint=hint)
        self.path = path


class NotFound(TollgateError):
    """An identifier names nothing."""

    exit_code = 2


class Conflict(TollgateError):
    """The request clashes with what exists (a taken identifier, a duplicate key with another payload)."""

    exit_code = 1


class RuleViolation(TollgateError):
    """A business rule refuses the change (archiving a customer with a live subscription, ...)."""

    exit_code = 1


class Denied(TollgateError):
    """Access is denied (a hard limit reached, a feature not granted)."""

    exit_code = 1


class StorageError(TollgateError):
    """The database or the file system failed: locked, read-only, full, corrupt, or from a newer version."""

    exit_code = 3
