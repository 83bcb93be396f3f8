"""Polling with a deadline: every wait in the tests, benchmarks and scripts ends."""

from __future__ import annotations

import time


def wait_for(check, timeout: float = 10.0, interval: float = 0.05):
    """Poll `check()` until it returns something truthy, and return that; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"Gave up after {timeout} s waiting for {check}.")
        time.sleep(interval)
