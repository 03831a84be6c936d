"""tollgate: the commercial side of a software product, from a shell or from Python.

    from tollgate import Tollgate
    tg = Tollgate()                      # or Tollgate("path/to/tollgate.db") / a postgresql:// URL
    if tg.check("acme-inc", "api-calls").allowed: ...

    from tollgate import verify_license_file   # offline license files: loads no database layer

Importing this package is cheap: the database layer loads on first use of `Tollgate`.
"""

__version__ = "0.1.0"

__all__ = [
    "Tollgate",
    "TollgateError",
    "InvalidInput",
    "NotFound",
    "Conflict",
    "RuleViolation",
    "Denied",
    "StorageError",
    "verify_license_file",
    "__version__",
]


_ERRORS = ("TollgateError", "InvalidInput", "NotFound", "Conflict", "RuleViolation", "Denied", "StorageError")


def __getattr__(name: str):
    if name == "Tollgate":
        from tollgate.api import Tollgate

        return Tollgate
    if name == "verify_license_file":  # the offline verifier: cryptography only, no database layer
        from tollgate.license_verify import verify_license_file

        return verify_license_file
    if name in _ERRORS:  # loaded on first use too: the `tollgate` program's first lines import this package
        from tollgate import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'tollgate' has no attribute {name!r}")
