"""The sandbox's own admin API under `/_sandbox/` (not part of Codat's surface).

Tests and demos use it to seed companies, change a company's state, set faults, move the clock,
register webhook endpoints, and read the ground truth: what each company's books hold.
"""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from codat_sandbox.engine import FORCEABLE_STATUSES
from codat_sandbox.errors import SandboxHTTPError, not_found
from codat_sandbox.faults import FaultPlan
from codat_sandbox.ledger import as_date, company_from_spec
from codat_sandbox.scenario import companies_from, load_scenario
from codat_sandbox.schemas import parse_json

COMPANY_KNOBS = {
    "connectionStatus": "connection_status",
    "billingExpired": "billing_expired",
    "deleted": "deleted",
    "forcedSyncStatus": "forced_sync_status",
    "syncSeconds": "sync_seconds",
    "config": "config",
    "closedUntil": "closed_until",
}


async def body_of(request: Request) -> dict:
    data = parse_json(await request.body()) if await request.body() else {}
    if not isinstance(data, dict):
        raise SandboxHTTPError(400, "The admin API takes a JSON object.", "Sandbox")
    return data


def sandbox(request: Request):
    return request.app.state


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def reset(request: Request) -> Response:
    request.app.state.reset()
    return JSONResponse({"reset": True})


async def load(request: Request) -> Response:
    data = await body_of(request)
    try:
        companies = (
            load_scenario(data["name"]) if "name" in data else companies_from(to_plain(data))
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise SandboxHTTPError(400, f"Scenario rejected: {exc}", "Sandbox") from None
    for company in companies:
        sandbox(request).sandbox.add_company(company)
    return JSONResponse({"companies": [c.id for c in companies]})


async def add_company(request: Request) -> Response:
    try:
        company = company_from_spec(to_plain(await body_of(request)))
    except (ValueError, KeyError, TypeError) as exc:
        raise SandboxHTTPError(400, f"Company rejected: {exc}", "Sandbox") from None
    sandbox(request).sandbox.add_company(company)
    return JSONResponse({"id": company.id})


async def patch_company(request: Request) -> Response:
    state = sandbox(request).sandbox
    company = state.companies.get(request.path_params["companyId"])
    if company is None:
        raise not_found("company", request.path_params["companyId"], "Sandbox")
    changes = to_plain(await body_of(request))
    unknown = set(changes) - set(COMPANY_KNOBS) - {"accounts", "suppliers"}
    if unknown:
        raise SandboxHTTPError(400, f"Unknown company knob(s) {sorted(unknown)}.", "Sandbox")
    with state.lock:
        apply_company_changes(company, changes)
    return JSONResponse({"id": company.id})


def apply_company_changes(company, changes: dict) -> None:
    for name, value in changes.items():
        if name == "accounts":
            extra = company_from_spec({"name": "x", "accounts": value}).accounts
            company.accounts.update({k: extra[k] for k in (a["id"] for a in value)})
        elif name == "suppliers":
            company.suppliers.update(value)
        elif name == "forcedSyncStatus" and value not in (None, *FORCEABLE_STATUSES):
            raise SandboxHTTPError(
                400,
                f"forcedSyncStatus must be one of {sorted(FORCEABLE_STATUSES)} or null.",
                "Sandbox",
            )
        elif name == "closedUntil":
            company.closed_until = as_date(value)
        else:
            setattr(company, COMPANY_KNOBS[name], value)


async def set_faults(request: Request) -> Response:
    try:
        plan = FaultPlan.from_json(to_plain(await body_of(request)))
    except (ValueError, TypeError) as exc:
        raise SandboxHTTPError(400, f"Faults rejected: {exc}", "Sandbox") from None
    sandbox(request).faults.set_plan(plan)
    return JSONResponse(plan.as_json())


async def get_faults(request: Request) -> Response:
    injector = sandbox(request).faults
    return JSONResponse({"plan": injector.plan.as_json(), "injected": injector.counts})


async def set_limits(request: Request) -> Response:
    data = to_plain(await body_of(request))
    for name in ("perMinute", "concurrency", "windowSeconds"):
        value = data.get(name)
        if value is not None and (type(value) is not int or value < 1):
            raise SandboxHTTPError(400, f"Limit {name} must be a positive integer.", "Sandbox")
    limiter = sandbox(request).limiter
    limiter.configure(data.get("perMinute"), data.get("concurrency"), data.get("windowSeconds"))
    return JSONResponse(limiter.as_json())


async def get_limits(request: Request) -> Response:
    return JSONResponse(sandbox(request).limiter.as_json())


async def advance_clock(request: Request) -> Response:
    seconds = to_plain(await body_of(request)).get("seconds", 0)
    state = sandbox(request).sandbox
    state.clock.advance(float(seconds))
    finished = state.advance()
    return JSONResponse({"now": state.clock.now().isoformat(), "settled": [s.id for s in finished]})


async def tick(request: Request) -> Response:
    """Settle due syncs and attempt due webhook deliveries now, without waiting for the ticker."""
    settled = sandbox(request).sandbox.advance()
    async with httpx.AsyncClient(timeout=5) as client:
        attempted = await sandbox(request).webhooks.deliver_due(client, time.monotonic())
    return JSONResponse({"settled": [s.id for s in settled], "deliveries": attempted})


async def ground_truth(request: Request) -> Response:
    state = sandbox(request).sandbox
    state.advance()
    with state.lock:
        return JSONResponse(state.ground_truth())


async def register_webhook(request: Request) -> Response:
    data = to_plain(await body_of(request))
    try:
        endpoint = sandbox(request).webhooks.register(
            data["url"],
            data["secret"],
            bool(data.get("legacy", False)),
            data.get("headerStyle", "webhook"),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise SandboxHTTPError(400, f"Webhook endpoint rejected: {exc!r}", "Sandbox") from None
    return JSONResponse({"id": endpoint.id, "url": endpoint.url})


async def list_deliveries(request: Request) -> Response:
    rows = [
        {
            "messageId": d.message_id,
            "endpointId": d.endpoint_id,
            "eventType": d.event_type,
            "syncId": d.sync_id,
            "delivered": d.delivered,
            "attempts": d.attempts,
        }
        for d in sandbox(request).webhooks.deliveries
    ]
    return JSONResponse(rows)


def to_plain(value):
    """Admin bodies are parsed with Decimal numbers; knobs want plain ints and floats."""
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


ROUTES = [
    Route("/_sandbox/healthz", healthz, methods=["GET"]),
    Route("/_sandbox/reset", reset, methods=["POST"]),
    Route("/_sandbox/scenario", load, methods=["POST"]),
    Route("/_sandbox/companies", add_company, methods=["POST"]),
    Route("/_sandbox/companies/{companyId}", patch_company, methods=["PATCH"]),
    Route("/_sandbox/faults", set_faults, methods=["PUT"]),
    Route("/_sandbox/faults", get_faults, methods=["GET"]),
    Route("/_sandbox/limits", set_limits, methods=["PUT"]),
    Route("/_sandbox/limits", get_limits, methods=["GET"]),
    Route("/_sandbox/clock/advance", advance_clock, methods=["POST"]),
    Route("/_sandbox/tick", tick, methods=["POST"]),
    Route("/_sandbox/ground-truth", ground_truth, methods=["GET"]),
    Route("/_sandbox/webhooks", register_webhook, methods=["POST"]),
    Route("/_sandbox/webhooks/deliveries", list_deliveries, methods=["GET"]),
]
