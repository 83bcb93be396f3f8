"""Codat's `Idempotency-Key` contract for POSTs.

The first answer for a key is kept for 90 minutes and replayed (errors included); the same key
with a different body gets 422; a key whose first request is still running gets 409; a 429 is
never kept, so the caller may retry with the same key.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from codat_sandbox.errors import SandboxHTTPError, error_response

KEEP_FOR = timedelta(minutes=90)


@dataclass
class Remembered:
    digest: str
    expires: datetime
    status: int | None = None  # None while the first request is in flight
    body: bytes = b""
    media_type: str = "application/json"


class IdempotencyCache:
    def __init__(self, now) -> None:
        self.now = now
        self.entries: dict[str, Remembered] = {}
        self.lock = threading.Lock()

    def claim(self, key: str, digest: str) -> Response | None:
        """None: the caller owns the key now. Otherwise the answer to give instead."""
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None and entry.expires <= self.now():
                entry = None
            if entry is None:
                self.entries[key] = Remembered(digest, self.now() + KEEP_FOR)
                return None
        if entry.digest != digest:
            return error_response(SandboxHTTPError(422))
        if entry.status is None:
            return error_response(SandboxHTTPError(409))
        return Response(
            entry.body,
            entry.status,
            media_type=entry.media_type,
            headers={"Idempotent-Replayed": "true"},
        )

    def settle(self, key: str, response: Response) -> None:
        with self.lock:
            if response.status_code == 429:
                self.entries.pop(key, None)
                return
            entry = self.entries[key]
            entry.status, entry.body = response.status_code, bytes(response.body)
            entry.media_type = response.media_type or "application/json"

    def forget(self, key: str) -> None:
        with self.lock:
            self.entries.pop(key, None)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


async def answer(handler, request: Request) -> Response:
    try:
        return await handler(request)
    except SandboxHTTPError as exc:
        return error_response(exc)


def idempotent(handler):
    """Wrap a POST handler so that repeats carrying the same Idempotency-Key are safe."""

    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        key = request.headers.get("idempotency-key")
        if not key:
            return await answer(handler, request)
        cache: IdempotencyCache = request.app.state.idempotency
        body = await request.body()
        digest = hashlib.sha256(request.url.path.encode() + b"\n" + body).hexdigest()
        scoped_key = f"{request.headers.get('authorization', '')}|{key}"
        earlier = cache.claim(scoped_key, digest)
        if earlier is not None:
            return earlier
        try:
            response = await answer(handler, request)
        except BaseException:
            cache.forget(scoped_key)  # nothing was answered, so nothing may be replayed
            raise
        cache.settle(scoped_key, response)
        return response

    return wrapper
