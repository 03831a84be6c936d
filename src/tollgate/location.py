"""Where the database is, and what a location is: a SQLite file (a path, taken literally) or a
server URL; how a location is shown (a password masked); and the checks made on a file before SQLite
may open it. Standard library only (and platformdirs), no I/O at import."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from tollgate.errors import StorageError


def default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("tollgate", appauthor=False))


def resolve_location(db: str | os.PathLike | None = None) -> str:
    """The database to use: `db` (from --db) > $TOLLGATE_DB > the platform's user data directory."""
    if db:
        return str(db)
    from_env = os.environ.get("TOLLGATE_DB")
    if from_env:
        return from_env
    return str(default_data_dir() / "tollgate.db")


def is_url(location: str) -> bool:
    return "://" in location


def is_postgres_url(location: str) -> bool:
    return location.split("://", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def engine_url(location: str) -> str:
    """The SQLAlchemy URL of a server location: `postgresql://` (or `postgres://`) means psycopg 3
    (`postgresql+psycopg://`); an explicit `postgresql+driver://` is kept as given."""
    scheme, rest = location.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return location


_PASSWORD_PARAMETER = re.compile(r"(?i)([?&]password=)[^&#]*")


def display_location(location: str) -> str:
    """A location fit to show in any message or output: a SQLite file as its path; a URL as given,
    with its password (in the user part, or a `password=` parameter) masked as ***, whether or not
    the URL parses. Every message that names a location goes through here."""
    path = sqlite_path(location)
    if path is not None:
        return str(path)
    scheme, rest = location.split("://", 1)
    at = rest.rfind("@")  # a password may hold an unescaped @: the user part ends at the last one
    if at != -1:
        user, colon, _password = rest[:at].partition(":")
        if colon:
            rest = f"{user}:***{rest[at:]}"
    return f"{scheme}://" + _PASSWORD_PARAMETER.sub(lambda m: m.group(1) + "***", rest)


def sqlite_path(location: str) -> Path | None:
    """The file behind a location, or None for a server URL. A path is taken literally (`?`, `#`,
    `%41` are part of the name), and so is what follows `sqlite:///`."""
    if location.startswith("sqlite:///"):
        return Path(location.removeprefix("sqlite:///"))
    if is_url(location):
        return None
    return Path(location).expanduser()



def create_private_file(path: Path) -> None:
    """Create an empty database file readable by its owner only (0600), its folder 0700 if new."""
    if not path.parent.exists():
        from tollgate.outfiles import private_folder

        private_folder(path.parent)  # and its new parents: 0700 whatever the umask
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)



def readonly_uri(path: Path) -> str:
    """A read-only `file:` URI of exactly this file (percent-encoded, so `?`, `#` and `%` stay part
    of the name). Without a -wal file beside it, the file holds every committed change and is opened
    immutable: SQLite then creates no -wal, -shm or -journal file beside it."""
    mode = "mode=ro" if Path(f"{path}-wal").exists() else "mode=ro&immutable=1"
    return f"{Path(path).absolute().as_uri()}?{mode}"


_NOT_A_FILE = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
               (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"))


def existing_file(path: Path, shown: str) -> bool:
    """Whether a database file is at `path` (False: nothing yet). Anything there that is not a
    regular file (a folder, /dev/null, a FIFO, a link to nothing) is refused before SQLite opens it,
    so nothing is written beside it."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        if os.path.lexists(path):
            raise StorageError(f"{shown} is a symbolic link to nothing, not a database file.",
                               hint="Point --db (or TOLLGATE_DB) at a file; nothing was written.") from None
        return False
    except OSError as exc:
        raise StorageError(f"Cannot open the database at {shown}: {exc.strerror}.") from None
    if not stat.S_ISREG(mode):
        what = next((name for test, name in _NOT_A_FILE if test(mode)), "not a regular file")
        raise StorageError(f"{shown} is {what}, not a database file.",
                           hint="Point --db (or TOLLGATE_DB) at a file; nothing was written.")
    return True
