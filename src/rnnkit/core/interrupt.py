"""Ctrl-C and SIGTERM during training: finish the step, save a checkpoint, stop.

SIGTERM is what `kill`, `docker stop`, Slurm and systemd send (before a SIGKILL some
seconds later), so it gets the same clean stop as Ctrl-C; the exit code is 128 + the
signal's number (130, 143), as a shell reports a process the signal killed. A second
signal stops at once: checkpoint writes are atomic, so that leaves the last one whole.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopNow(KeyboardInterrupt):
    """A second stop signal arrived before the run could stop cleanly."""

    def __init__(self, signum: int):
        super().__init__(signal_name(signum))
        self.signum = signum


def signal_name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def exit_code(signum: int | None) -> int:
    return 128 + (signum or signal.SIGINT)


def main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def catch_stop_signals(handler: Callable[[int, object], None]) -> Callable[[], None]:
    """Route SIGINT and SIGTERM to handler(signum, frame); returns the call that puts the
    previous handlers back. Python lets only the main thread set handlers, so elsewhere
    (a thread running the API) nothing changes."""
    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS} if main_thread() else {}

    def restore() -> None:
        for s, old in previous.items():  # None: a handler set outside Python, which cannot be put back
            signal.signal(s, signal.SIG_DFL if old is None else old)

    return restore
