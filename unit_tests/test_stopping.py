"""A stop request raises only where the main thread can take it cleanly."""

import os
import signal
import threading

import pytest

from destination_codat_expenses import stopping


@pytest.fixture(autouse=True)
def handler():
    previous = signal.signal(signal.SIGTERM, stopping.request_stop)
    stopping.reset()
    yield
    signal.signal(signal.SIGTERM, previous)
    stopping.reset()


def test_a_signal_outside_a_wait_is_held_until_the_next_check():
    lock = threading.Condition()
    with lock:  # a signal here must not tear the lock's bookkeeping
        os.kill(os.getpid(), signal.SIGTERM)
        held = True
    assert held
    with pytest.raises(stopping.RunStopped, match="signal 15"):
        stopping.check()


def test_a_signal_during_an_interruptible_sleep_ends_it_at_once():
    timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    with pytest.raises(stopping.RunStopped):
        stopping.pause(30)
    timer.join()


def test_an_interruptible_wait_entered_after_a_request_raises_before_waiting():
    os.kill(os.getpid(), signal.SIGTERM)
    with pytest.raises(stopping.RunStopped), stopping.interruptible():
        pytest.fail("the wait began although a stop was requested")


def test_without_a_request_nothing_is_raised():
    stopping.check()
    stopping.pause(0)
