"""Shared by the webhook receiver tests: signing (plain hmac, independent of the code under
test), event bodies in Codat's shapes, a receiver on a loopback port, and raw-socket requests
for what an HTTP client will not send (a false Content-Length, an endless chunked body)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import socket
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import httpx

from codat_sandbox.server import ServerThread
from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.codat.http import http_client
from destination_codat_expenses.store.db import reading
from destination_codat_expenses.webhooks.receiver import WEBHOOK_PATH, create_receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_" + base64.b64encode(b"a different 24-byte key!").decode()
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
COMPANY = "11111111-1111-4111-8111-111111111111"


def signature(body: bytes, webhook_id: str, timestamp: int, secret: str = SECRET) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(digest.digest()).decode()


def signed(
    body: bytes,
    webhook_id: str | None = None,
    timestamp: int | None = None,
    secret: str = SECRET,
    prefix: str = "webhook",
) -> dict[str, str]:
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        f"{prefix}-id": webhook_id,
        f"{prefix}-timestamp": str(timestamp),
        f"{prefix}-signature": signature(body, webhook_id, timestamp, secret),
        "content-type": "application/json",
    }


def sync_event(
    successful: bool,
    sync_id: str,
    items: list[tuple[str, str, str | None]] | None = None,
    company_id: str | None = COMPANY,
) -> bytes:
    """An `expenses.sync.(un)successful` body; items are (transaction id, status, message)."""
    payload: dict = {"syncId": sync_id}
    if company_id:
        payload["referenceCompany"] = {"id": company_id, "name": "Toft stores", "tags": {}}
    if items is not None:
        payload["transactions"] = [
            {"id": tid, "status": status, "errorMessage": message} for tid, status, message in items
        ]
    event_type = "expenses.sync.successful" if successful else "expenses.sync.unsuccessful"
    body = {
        "id": str(uuid.uuid4()),
        "eventType": event_type,
        "generatedDate": "2024-09-01T00:00:00Z",
        "payload": payload,
    }
    return json.dumps(body).encode()


def legacy_event(rule: str, sync_id: str, company_id: str = COMPANY) -> bytes:
    data = {"syncId": sync_id, "syncType": "Expense"}
    verb = "completed"
    if rule == "Sync Failed":
        data["FailureStage"] = "Pushing"
        verb = "has failed at step Pushing"
    body = {
        "AlertId": str(uuid.uuid4()),
        "RuleType": rule,
        "ClientId": str(uuid.uuid4()),
        "ClientName": "Test client",
        "CompanyId": company_id,
        "Message": f"Sync {sync_id} for company {company_id} of type Expense {verb}.",
        "Data": data,
    }
    return json.dumps(body).encode()


class Clock:
    """A settable Unix-seconds clock for the receiver."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextlib.contextmanager
def running_receiver(
    store_path: str,
    secret: str = SECRET,
    clock=time.time,
    spool_dir: str | None = None,
    codat_url: str | None = None,
    api_key: str = "sandbox-test-key",
    **options,
) -> Iterator[str]:
    """The receiver on a free loopback port; yields the URL to register with Codat. With
    `codat_url` it confirms the syncs its webhooks mark from that Codat (the sandbox); `options`
    go to create_receiver (limits=...)."""
    with contextlib.ExitStack() as stack:
        codat = None
        if codat_url is not None:
            codat = CodatClient(stack.enter_context(http_client(codat_url)), api_key)
        app = create_receiver(
            store_path, secret, clock=clock, spool_dir=spool_dir, codat=codat, **options
        )
        with ServerThread(app) as base_url:
            yield base_url + WEBHOOK_PATH


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 10) -> httpx.Response:
    response = httpx.post(url, content=body, headers=headers, timeout=timeout)
    assert response.status_code < 500 or response.status_code == 503, response.text
    return response


def raw_exchange(url: str, head: str, parts: list[bytes], timeout: float = 5) -> int:
    """Send a request head and some body bytes, then read the status line; the connection
    stays open, so a server that waited for the whole body would time out here."""
    address = urlparse(url)
    with socket.create_connection((address.hostname, address.port), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        for part in parts:
            sock.sendall(part)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def query(path: str, sql: str, params: list | None = None) -> list[tuple]:
    """A short look at the store. Read-write, like every reader in a process that also writes
    the file (DuckDB refuses two configurations of one file in one process)."""
    with reading(path) as db:
        return db.execute(sql, params or []).fetchall()
