"""An upstream that repeats the request's headers in its error bodies, the way some gateways and
debugging proxies do, set in front of the real sandbox on loopback.

A request that matches one of `rules` gets that rule's error status with every request header
echoed in the body (as sent, lower-cased and upper-cased, and the key decoded from the Basic
header): in `error`, `correlationId` and per-item `validation` messages. Every other request is
passed to the sandbox unchanged. The rules are a plain list, changed between steps of a test.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from codat_sandbox.server import ServerThread

HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}


@dataclass(frozen=True)
class Echo:
    method: str
    path: str  # regular expression, searched in the request's path
    status: int
    item_ids: frozenset[str] = field(default_factory=frozenset)  # refuse these pushed items

    def refused(self, request: Request, body: bytes) -> list[str] | None:
        """None when the rule does not apply; else the ids to name in `validation`."""
        if request.method != self.method or not re.search(self.path, request.url.path):
            return None
        if not self.item_ids:
            return []
        named = [i.get("id") for i in pushed_items(body) if i.get("id") in self.item_ids]
        return named or None


def pushed_items(body: bytes) -> list[dict]:
    try:
        items = json.loads(body) if body else []
    except ValueError:
        return []
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def echoed_headers(request: Request) -> str:
    lines = [f"{name}: {value}" for name, value in request.headers.items()]
    auth = request.headers.get("authorization", "")
    try:
        key = base64.b64decode(auth.split()[-1]).decode() if auth else ""
    except (binascii.Error, UnicodeDecodeError, IndexError):
        key = ""
    every = [*lines, *(line.lower() for line in lines), *(line.upper() for line in lines)]
    return " | ".join([*every, f"key={key}"])


def echo_answer(request: Request, status: int, refused: list[str]) -> JSONResponse:
    echo = echoed_headers(request)
    body: dict = {
        "statusCode": status,
        "service": "EchoingGateway",
        "error": f"Request refused. You sent: {echo}",
        "correlationId": request.headers.get("authorization", ""),
    }
    if refused:
        errors = [
            {"itemId": item_id, "message": f"Refused; headers were {echo}", "validatorName": echo}
            for item_id in refused
        ]
        body["validation"] = {"errors": errors, "warnings": []}
    return JSONResponse(body, status_code=status)


def create_echo_upstream(target: str, rules: list[Echo]) -> Starlette:
    async def handle(request: Request) -> Response:
        body = await request.body()
        for rule in list(rules):
            refused = rule.refused(request, body)
            if refused is not None:
                return echo_answer(request, rule.status, refused)
        return await forward(target, request, body)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", handle, methods=methods)])


async def forward(target: str, request: Request, body: bytes) -> Response:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
    async with httpx.AsyncClient(base_url=target, timeout=30) as client:
        answer = await client.request(
            request.method,
            request.url.path,
            params=request.query_params,
            content=body,
            headers=headers,
        )
    kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
    return Response(answer.content, status_code=answer.status_code, headers=kept)


@contextlib.contextmanager
def echo_upstream(target: str, rules: list[Echo]) -> Iterator[str]:
    """The echoing gateway on a free loopback port in front of `target`; yields its URL."""
    with ServerThread(create_echo_upstream(target, rules)) as base_url:
        yield base_url
