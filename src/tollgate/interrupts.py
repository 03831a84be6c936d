"""Ctrl-C and commits: an interrupted command says truthfully whether its work was kept.

A write transaction's COMMIT is the moment its work becomes permanent. Before it, an interrupt
(SIGINT, KeyboardInterrupt) rolls the work back; once COMMIT has been sent, the work is kept
whatever happens next, so an interrupt then must not be reported as "nothing was written".

The database layer marks the two moments (`write_transaction` around a write session, `committing`
around its COMMIT) and counts the commits. `on_sigint` is the SIGINT handler the command line
installs: it raises KeyboardInterrupt (the transaction in progress rolls back) unless a commit is
running or has happened with no transaction open since; then the interrupt is held (`state.pending`)
and the command finishes and reports what it did. A held interrupt stops the next write transaction
before it begins. Without that handler (the library used from Python), `committing` alone holds an
interrupt during COMMIT, delivering it as KeyboardInterrupt once COMMIT returned.

Standard library only: the command line installs the handler before anything heavy is imported.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class State:
    """This process's commits and the interrupt held, if any."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.open = 0  # write transactions in progress
        self.committing = False
        self.commits = 0  # write transactions committed since reset()
        self.pending = False  # an interrupt arrived after a commit and was held
        self.rolls_back = False  # the interrupt raised came while a write transaction was open


state = State()


def reset() -> None:
    """Forget the commits and a held interrupt (a new command starts)."""
    state.reset()


def on_sigint(signum: int, frame: object) -> None:
    """SIGINT handler: interrupt the work unless what it did is committed (then hold the interrupt)."""
    if state.committing or (state.commits and not state.open):
        state.pending = True
        return
    if _swallowed_there(frame):  # re-delivered in a moment, once that callback has returned
        threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGINT)).start()
        return
    state.rolls_back = state.open > 0
    raise KeyboardInterrupt


def _swallowed_there(frame: Any) -> bool:
    """Whether the signal landed in importlib's weakref callback (a module lock let go while Python
    imports the program): an exception raised there is printed as "Exception ignored" and lost."""
    code = getattr(frame, "f_code", None)
    return code is not None and code.co_name == "cb" and "importlib._bootstrap" in code.co_filename


def install() -> None:
    """Make `on_sigint` the SIGINT handler (main thread only; elsewhere nothing happens)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_sigint)


def message() -> str:
    """What an interrupted command tells (it exits 130): what was rolled back, what is kept."""
    if state.rolls_back:
        kept = "; what it committed before is kept" if state.commits else "; nothing was written"
        return f"Interrupted; the changes in progress were rolled back{kept}."
    return "Interrupted; nothing more was written." if state.commits else "Interrupted; nothing was written."


def installed() -> bool:
    return signal.getsignal(signal.SIGINT) is on_sigint


@contextmanager
def write_transaction() -> Iterator[None]:
    """Around one write transaction (its work and its COMMIT). A held interrupt stops it first."""
    if state.pending:
        raise KeyboardInterrupt
    state.open += 1
    try:
        yield
    finally:
        state.open -= 1


@contextmanager
def committing() -> Iterator[None]:
    """Around a write transaction's COMMIT: counted when it returned. An interrupt that arrives
    meanwhile is held until COMMIT returned (by `on_sigint`, or here when Python's default handler
    is in place: then it is raised as KeyboardInterrupt once the commit is done)."""
    hold = (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum)) if hold else None
    state.committing = True
    try:
        yield
        state.commits += 1
    finally:
        state.committing = False
        if hold:
            signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt
