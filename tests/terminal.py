"""Run the real `tollgate` program in a pseudo-terminal of a given size, as a person's shell does.

`in_terminal(args, columns=80)` starts the installed entry point with stdin, stdout and stderr on
the terminal (or stdout piped, `stdout_piped=True`) and returns everything it printed, with the
terminal's \\r\\n turned back into \\n. COLUMNS and LINES are removed from its environment so the
size comes from the terminal itself (TIOCSWINSZ), as it does for a person.
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path

TOLLGATE = str(Path(sys.executable).with_name("tollgate"))  # this interpreter's entry point


@dataclass
class Run:
    code: int
    terminal: str  # what appeared on the terminal (stdout and stderr, or stderr alone when stdout is piped)
    stdout: str  # stdout when piped, else the same as terminal


def in_terminal(args: list[str], *, columns: int = 80, lines: int = 40, env: dict[str, str] | None = None,
                stdout_piped: bool = False, stderr_piped: bool = False, timeout: float = 60) -> Run:
    main, side = os.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "PAGER",
                                                                     "TOLLGATE_PAGER")}
    environment.update({"TERM": "xterm-256color", "PAGER": ""})
    environment.update(env or {})
    child = subprocess.Popen(
        [TOLLGATE, *args], stdin=side, stdout=subprocess.PIPE if stdout_piped else side,
        stderr=subprocess.PIPE if stderr_piped else side, env=environment, close_fds=True,
    )
    os.close(side)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: every writer of the terminal is gone
            break
        if not data:
            break
        chunks.append(data)
        if time.monotonic() > deadline:
            child.kill()
            raise AssertionError(f"tollgate {' '.join(args)} did not finish in {timeout} s")
    os.close(main)
    piped_out = child.stdout.read() if stdout_piped else b""
    if stderr_piped:
        child.stderr.read()
    code = child.wait(timeout=timeout)
    shown = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    return Run(code, shown, piped_out.decode() if stdout_piped else shown)


def piped(args: list[str], *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The same program with stdout and stderr piped (what a script gets)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    environment.update(env or {})
    return subprocess.run([TOLLGATE, *args], capture_output=True, text=True, env=environment, check=False)
