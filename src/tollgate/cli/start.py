"""The `tollgate` program's entry point: its first lines, before anything heavy is imported.

The SIGINT handler (tollgate.interrupts.on_sigint) is installed before Python imports Typer, rich
and the commands, so a Ctrl-C during start-up is one line on stderr and exit 130, not a traceback
(importing the program is most of a short command's run). Everything else is in cli/app.py.

Python's cyclic garbage collector is off during start-up (`started` turns it back on): importing
Typer, SQLAlchemy and the commands allocates hundreds of thousands of objects that live for the whole
run, and the collector would walk them again and again (about a tenth of `tollgate check`'s time).
"""

from __future__ import annotations

import gc
import sys

EXIT_INTERRUPTED = 130

_paused = False


def started() -> None:
    """Start-up is over (a command is about to open its database): the objects made so far are set
    aside for good (gc.freeze: they live as long as the process) and the collector runs again, for
    the command's own work only. Does nothing where main() did not pause it (the library, tests)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def main() -> None:
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True
    try:
        from tollgate import interrupts

        interrupts.install()
        from tollgate.cli.app import main as run

        run()
    except KeyboardInterrupt:  # before the command's error boundary, or after it
        loaded = sys.modules.get("tollgate.interrupts")
        if not hasattr(loaded, "message"):  # interrupted while importing it
            loaded = None
        if loaded is not None and loaded.state.commits:  # the work is kept; the command said so
            sys.exit(0)
        text = loaded.message() if loaded is not None else "Interrupted; nothing was written."
        sys.stderr.write(f"error: {text}\n")
        sys.exit(EXIT_INTERRUPTED)
    finally:  # what remains is Python shutting down, which restores the default handler: a Ctrl-C
        import signal  # then would end the process by SIGINT after the command told its result

        signal.signal(signal.SIGINT, signal.SIG_IGN)
