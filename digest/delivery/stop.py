"""How a send stops: never in the middle of a message, and every process of it together.

A stop is requested by SIGINT or SIGTERM to any process of the send, by a pause in any of
them, by the loss of the send lease, or by the death of a sending process's parent. The
engine then takes no new message; each connection finishes the one it is sending (bounded
by the SMTP timeout) and its outcome is recorded. Python's default SIGINT would instead
raise KeyboardInterrupt wherever the code happens to be — possibly between the server's
"250" and the ledger's record of it, which is how a Ctrl-C used to send a message twice.

Signals travel: the parent passes a signal on to its sending processes, a sending process
passes it to its parent, each only on its first signal (so they do not echo). A sending
process also asks the kernel for SIGTERM when its parent dies (Linux `PR_SET_PDEATHSIG`)
and watches its parent's pid, for the death that came before it asked.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PR_SET_PDEATHSIG = 1


class Stoppable(Protocol):
    def is_set(self) -> bool: ...


class Stop:
    """A stop request for the threads of one process: set once, with why."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self.reason: str | None = None
        self.signum: int | None = None

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self, reason: str, signum: int | None = None) -> bool:
        """Request the stop; True for the first request (later ones change nothing).

        Called from signal handlers, which run in the main thread between any two bytecodes,
        even inside this method. So it never waits for its lock: whoever holds it (another
        thread, or the handler this one interrupted) is already setting the stop, and this
        request is a later one. A blocking lock here hung a send for good when a second Ctrl-C
        landed inside the first one's handler."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._event.is_set():
                return False
            self.reason, self.signum = reason, signum
            self._event.set()
            return True
        finally:
            self._lock.release()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


class AnyOf:
    """Set when any of its parts is."""

    def __init__(self, *parts: Stoppable | None) -> None:
        self.parts = [p for p in parts if p is not None]

    def is_set(self) -> bool:
        return any(part.is_set() for part in self.parts)

    @property
    def reason(self) -> str | None:
        for part in self.parts:
            if part.is_set():
                return getattr(part, "reason", None) or "stopped on request"
        return None


class Orphaned:
    """Set once the process that started this one is gone."""

    reason = "the parent process is gone"

    def __init__(self, parent: int) -> None:
        self.parent = parent

    def is_set(self) -> bool:
        return os.getppid() != self.parent


def die_with_parent() -> None:
    """Ask Linux for SIGTERM when the parent dies (elsewhere the pid watch alone serves)."""
    name = ctypes.util.find_library("c")
    if not name or not hasattr(os, "getppid"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(name, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def describe(signum: int) -> str:
    return f"stopped on request ({signal.Signals(signum).name})"


def announce(text: str) -> None:
    """One line on stderr from a signal handler (os.write: no buffered stream re-entered)."""
    with contextlib.suppress(OSError):
        os.write(2, f"digest: {text}\n".encode())


@contextlib.contextmanager
def on_signals(
    stop: Stop,
    forward: Callable[[int], None] | None = None,
    tell: Callable[[str], None] | None = announce,
) -> Iterator[Stop]:
    """While the block runs, SIGINT and SIGTERM request `stop` (and are forwarded) instead of
    interrupting. Only the main thread can handle signals; elsewhere this does nothing and
    whoever owns the main thread (the scheduler) requests the stop."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: Any) -> None:
        first = stop.set(describe(signum), signum)
        if first and forward is not None:
            forward(signum)
        if tell is not None:
            if first:
                tell(f"{describe(signum)}: finishing the messages in flight, then stopping")
            else:
                tell("already stopping: waiting for the messages in flight")

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


# -- the sending processes of this process ------------------------------------------------------

_children: set[int] = set()
# re-entrant: a signal handler forwarding a stop may interrupt adopt() in the same thread
_children_lock = threading.RLock()


def adopt(pid: int) -> None:
    with _children_lock:
        _children.add(pid)


def disown(pid: int) -> None:
    with _children_lock:
        _children.discard(pid)


def forward_to_children(signum: int) -> None:
    """Pass a stop signal on to every sending process this process started."""
    with _children_lock:
        pids = list(_children)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while starting a process: it inherits the mask and unblocks
    once its handlers are in place, so no signal finds it half-started; ours arrive after."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def unblock_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
