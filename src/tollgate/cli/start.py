"""The `tollgate` program's entry point: its first lines, before anything heavy is imported.

The SIGINT handler (tollgate.interrupts.on_sigint) is installed before Python imports Typer, rich
and the commands, so a Ctrl-C during start-up is one line on stderr and exit 130, not a traceback
(importing the program is most of a short command's run). Everything else is in cli/app.py.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130


def main() -> None:
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
