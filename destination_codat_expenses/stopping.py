"""A stop request (SIGTERM, how a platform cancels a job; Ctrl-C) ends a run where that is safe.

Raising from the signal handler at once lands the exception wherever the main thread happens
to be: between a Condition's wait and its lock's release, inside a thread pool's bookkeeping,
and the run then ends on a RuntimeError instead of saying it was stopped. So the handler raises
only while the main thread sits in a wait marked `interruptible()` (a blocking read, a sleep:
C calls that give the exception back cleanly); anywhere else it records the request, and the
next `check()` (each message, each poll of a wait) raises it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

POLL_S = 0.25  # how long a wait on other threads goes before it looks for a stop request

_requested: str | None = None
_interruptible = 0  # depth of interruptible waits the main thread is in


class RunStopped(BaseException):
    """A stop was requested; a BaseException, so no `except Exception` on the way out swallows
    it and the run is closed as failed, saying it was stopped."""


def request_stop(signum: int, frame: object) -> None:
    """The signal handler (it always runs on the main thread)."""
    global _requested
    _requested = f"stopped by signal {signum}"
    if _interruptible:
        raise RunStopped(_requested)


def check() -> None:
    if _requested is not None:
        raise RunStopped(_requested)


def reset() -> None:
    """Forget a request (tests that run several writes in one process)."""
    global _requested
    _requested = None


@contextmanager
def interruptible() -> Iterator[None]:
    """Within this block a stop request raises at once (main thread only: the handler never
    runs on another)."""
    global _interruptible
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    check()
    _interruptible += 1
    try:
        yield
    finally:
        _interruptible -= 1


def pause(seconds: float) -> None:
    """time.sleep, cut short by a stop request."""
    with interruptible():
        time.sleep(seconds)
