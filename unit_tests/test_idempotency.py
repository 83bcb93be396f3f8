"""IdempotencyCache semantics that need exact timing control: in-flight, expiry, 429."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.responses import JSONResponse

from codat_sandbox.idempotency import IdempotencyCache


class FakeClock:
    def __init__(self) -> None:
        self.moment = datetime(2024, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment


def test_second_claim_while_first_in_flight_is_409():
    cache = IdempotencyCache(FakeClock())
    assert cache.claim("k", "body-1") is None
    assert cache.claim("k", "body-1").status_code == 409


def test_settled_answer_is_replayed_with_marker():
    cache = IdempotencyCache(FakeClock())
    cache.claim("k", "body-1")
    cache.settle("k", JSONResponse({"syncId": "s1"}))
    replay = cache.claim("k", "body-1")
    assert replay.status_code == 200 and replay.body == b'{"syncId":"s1"}'
    assert replay.headers["Idempotent-Replayed"] == "true"


def test_other_body_with_same_key_is_422_even_in_flight():
    cache = IdempotencyCache(FakeClock())
    cache.claim("k", "body-1")
    assert cache.claim("k", "body-2").status_code == 422


def test_429_is_not_kept_so_key_is_free_again():
    cache = IdempotencyCache(FakeClock())
    cache.claim("k", "body-1")
    cache.settle("k", JSONResponse({}, status_code=429))
    assert cache.claim("k", "body-1") is None


def test_entry_expires_after_90_minutes():
    clock = FakeClock()
    cache = IdempotencyCache(clock)
    cache.claim("k", "body-1")
    cache.settle("k", JSONResponse({"syncId": "s1"}))
    clock.moment += timedelta(minutes=89)
    assert cache.claim("k", "body-2").status_code == 422
    clock.moment += timedelta(minutes=2)
    assert cache.claim("k", "body-2") is None
