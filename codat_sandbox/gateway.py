"""The ASGI layer in front of every route: auth, rate limits, faults, rate-limit headers.

It works on raw ASGI messages because two faults cannot be expressed as a response: a dropped
connection (before the work, or after it committed) and an answer that trickles out slowly.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import re

from codat_sandbox.errors import SandboxHTTPError, error_response
from codat_sandbox.faults import FaultDraw, FaultInjector
from codat_sandbox.limits import LimitVerdict, RateLimiter

COMPANY_IN_PATH = re.compile(r"^/companies/([^/]+)")
# a path segment after one of these names is an id (unless it names a route): masked, so
# requests count by route
ID_AFTER = re.compile(r"/(companies|syncs|transactions|attachments|datasets)/([^/]+)")
NAMED = {"list", "latest", "lastSuccessful"}
OPEN_PATHS = ("/_sandbox/healthz", "/openapi.json")


def route_of(method: str, path: str) -> str:
    """`GET /companies/{id}/sync/expenses/syncs/{id}/status`: what a request is, not whose."""

    def masked(match: re.Match) -> str:
        name, segment = match.groups()
        return f"/{name}/{segment if segment in NAMED else '{id}'}"

    return f"{method} {ID_AFTER.sub(masked, path)}"


class ConnectionDropped(Exception):
    """Raised mid-response on purpose: the server closes the socket without a full answer."""


class Gateway:
    def __init__(self, app, api_key: str, parts) -> None:
        self.app = app
        self.expected = "Basic " + base64.b64encode(api_key.encode()).decode()
        self.parts = parts  # holds .limiter and .faults; reset replaces them

    @property
    def limiter(self) -> RateLimiter:
        return self.parts.limiter

    @property
    def faults(self) -> FaultInjector:
        return self.parts.faults

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path not in OPEN_PATHS and not self.authorized(scope):
            await self.reply(scope, receive, send, SandboxHTTPError(401, service="PublicApi"))
            return
        if path.startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        match = COMPANY_IN_PATH.match(path)
        company_id = match.group(1) if match else None
        limiter = self.limiter  # release into the limiter that admitted, even across a reset
        verdict = limiter.admit(company_id, route_of(scope["method"], path))
        release = once(lambda: limiter.release(company_id) if verdict.allowed else None)
        try:
            await self.serve_limited(scope, receive, released_when_answered(send, release), verdict)
        finally:
            release()

    async def serve_limited(self, scope, receive, send, verdict: LimitVerdict) -> None:
        send = with_rate_headers(send, verdict)
        if not verdict.allowed:
            error = SandboxHTTPError(429, headers={"Retry-After": str(verdict.retry_after_s)})
            await self.reply(scope, receive, send, error)
            return
        draw = self.faults.draw(scope["path"])
        if draw.delay_s:
            await asyncio.sleep(draw.delay_s)
        if draw.before:
            await self.fail_before(scope, receive, send, draw.before)
            return
        await self.app(scope, receive, shaped(send, draw))

    async def fail_before(self, scope, receive, send, fault: str) -> None:
        if fault == "rate_reset":
            await drop(send)
        retry = {"Retry-After": str(self.faults.plan.retry_after_s)}
        status = {"rate_429": 429, "rate_500": 500, "rate_503": 503}[fault]
        error = SandboxHTTPError(
            status, service="PublicApi", headers=retry if status in (429, 503) else {}
        )
        await self.reply(scope, receive, send, error)

    def authorized(self, scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hmac.compare_digest(value, self.expected.encode())
        return False

    @staticmethod
    async def reply(scope, receive, send, error: SandboxHTTPError) -> None:
        await error_response(error)(scope, receive, send)


def once(action):
    done = False

    def run() -> None:
        nonlocal done
        if not done:
            done = True
            action()

    return run


def released_when_answered(send, release):
    """Free the concurrency slot as the last byte goes out, not when the app task unwinds:
    a client that already has its answer may send its next request at once."""

    async def sender(message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            release()
        await send(message)

    return sender


def with_rate_headers(send, verdict: LimitVerdict):
    extra = [
        (b"x-rate-limit-limit", str(verdict.limit).encode()),
        (b"x-rate-limit-remaining", str(verdict.remaining).encode()),
        (b"x-rate-limit-reset", verdict.reset.strftime("%Y-%m-%dT%H:%M:%SZ").encode()),
    ]

    async def sender(message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sender


def shaped(send, draw: FaultDraw):
    """Apply the after-the-work faults: lose the answer, or drip it out."""
    if not draw.lose_response and not draw.drip:
        return send

    async def sender(message) -> None:
        if message["type"] == "http.response.start":
            if draw.lose_response:
                await drop(send)
            await send(message)
            return
        if message["type"] == "http.response.body" and draw.drip:
            await drip(send, message, draw.drip_delay_s)
            return
        await send(message)

    return sender


async def drip(send, message, delay_s: float) -> None:
    body = message.get("body", b"")
    more = message.get("more_body", False)
    step = max(1, len(body) // 8)
    for start in range(0, len(body), step):
        chunk = body[start : start + step]
        last = start + step >= len(body)
        await send({"type": "http.response.body", "body": chunk, "more_body": more or not last})
        if not last:
            await asyncio.sleep(delay_s)
    if not body:
        await send(message)


async def drop(send) -> None:
    """Start an answer that promises a body, then abort: the client sees a broken connection."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"1000"), (b"content-type", b"application/json")],
        }
    )
    raise ConnectionDropped("sandbox fault: connection dropped")
