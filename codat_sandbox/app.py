"""Build the sandbox ASGI app: `create_app(SandboxSettings(...))`.

In process, hand the app to `httpx.AsyncClient(transport=httpx.ASGITransport(app))` or to
`starlette.testclient.TestClient(app)`; over loopback, `codat-expenses sandbox` serves it with
uvicorn. A background ticker settles due syncs and sends due webhooks while the app is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Match

from codat_sandbox import admin, api
from codat_sandbox.errors import SandboxHTTPError, error_response
from codat_sandbox.faults import FaultInjector, FaultPlan
from codat_sandbox.gateway import Gateway
from codat_sandbox.idempotency import IdempotencyCache
from codat_sandbox.limits import RateLimiter
from codat_sandbox.scenario import load_scenario
from codat_sandbox.state import SandboxState
from codat_sandbox.webhooks import DEFAULT_RETRY_SCHEDULE, WebhookDispatcher

TICK_SECONDS = 0.05
logger = logging.getLogger(__name__)


@dataclass
class SandboxSettings:
    api_key: str
    scenario: str | None = "demo"
    faults: FaultPlan = field(default_factory=FaultPlan)
    per_minute: int = 60_000
    concurrency: int = 10
    webhook_retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE


class Sandbox:
    """The app's mutable parts, rebuilt together on reset."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.faults = FaultInjector(settings.faults)
        self.reset()

    def reset(self) -> None:
        self.sandbox = SandboxState(self.settings.api_key)
        now = self.sandbox.clock.now
        self.idempotency = IdempotencyCache(now)
        self.limiter = RateLimiter(now, self.settings.per_minute, self.settings.concurrency)
        self.webhooks = WebhookDispatcher(self.sandbox, self.settings.webhook_retry_schedule)
        self.faults.set_plan(self.settings.faults)
        for company in load_scenario(self.settings.scenario) if self.settings.scenario else []:
            self.sandbox.add_company(company)


async def sandbox_error(request: Request, exc: Exception):
    return error_response(exc)


async def http_error(request: Request, exc: Exception):
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = {"Allow": allowed_methods(request)} if status == 405 else {}
    return error_response(SandboxHTTPError(status, service="PublicApi", headers=headers))


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (RFC 9110 wants them all on a 405)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def create_app(settings: SandboxSettings) -> Gateway:
    parts = Sandbox(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        ticker = asyncio.create_task(run_ticker(app))
        try:
            yield
        finally:
            ticker.cancel()

    app = Starlette(
        routes=[*api.ROUTES, *admin.ROUTES],
        exception_handlers={SandboxHTTPError: sandbox_error, HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.parts = parts
    bind_state(app, parts)
    gateway = Gateway(app, settings.api_key, parts)
    gateway.state = app.state  # so tests can reach the sandbox through the wrapped app
    return gateway


def bind_state(app: Starlette, parts: Sandbox) -> None:
    """Expose the current parts on app.state; reset swaps them all at once."""

    def reset() -> None:
        parts.reset()
        refresh()

    def refresh() -> None:
        app.state.sandbox = parts.sandbox
        app.state.idempotency = parts.idempotency
        app.state.limiter = parts.limiter
        app.state.webhooks = parts.webhooks
        app.state.faults = parts.faults

    app.state.reset = reset
    refresh()


async def run_ticker(app: Starlette) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            try:
                app.state.sandbox.advance()
                await app.state.webhooks.deliver_due(client, time.monotonic())
            except Exception:  # the ticker must outlive one bad delivery
                logger.exception("sandbox ticker failed")
            await asyncio.sleep(TICK_SECONDS)
