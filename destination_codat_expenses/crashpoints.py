"""Named places where a crash test may kill the writer (SIGKILL, no cleanup), to prove that
nothing is lost or written twice whenever a process dies.

Off unless `CODAT_EXPENSES_CRASH_AT=<point>[:<nth hit>]` is set, e.g. `after_response:3`.
Points: before_push, after_send, after_response, after_commit (before the STATE is echoed).
"""

from __future__ import annotations

import os
import signal
import threading

POINTS = ("before_push", "after_send", "after_response", "after_commit")
ENV = "CODAT_EXPENSES_CRASH_AT"
_hits: dict[str, int] = {}
_lock = threading.Lock()


def crash_point(name: str) -> None:
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        due = _hits[name] == int(nth or 1)
    if due:
        os.kill(os.getpid(), signal.SIGKILL)
