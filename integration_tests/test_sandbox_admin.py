"""The demo's sandbox-admin client (codat/sandbox_admin.py) against the real sandbox on loopback:
it registers a webhook that is then delivered, reads the books exactly, and a refusal names the
call but never the key."""

from __future__ import annotations

import base64
import uuid
from decimal import Decimal

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from codat_sandbox.server import ServerThread, free_port
from destination_codat_expenses.codat.sandbox_admin import SandboxAdmin
from destination_codat_expenses.errors import FatalAPIError, RetriableAPIError
from integration_tests.conftest import API_KEY, XERO, expense, expenses_path, wait_for

SECRET = "whsec_" + base64.b64encode(b"a 24-byte signing secret").decode()


@pytest.fixture
def hook_url():
    """A loopback endpoint that takes any delivery; its bodies are kept on the app."""
    bodies: list[bytes] = []

    async def receive(request: Request) -> Response:
        bodies.append(await request.body())
        return Response(status_code=204)

    app = Starlette(routes=[Route("/hook", receive, methods=["POST"])])
    with ServerThread(app) as base_url:
        yield f"{base_url}/hook", bodies


def test_registered_webhook_is_delivered_and_the_books_are_exact(sandbox_url, api, hook_url):
    url, bodies = hook_url
    admin = SandboxAdmin(sandbox_url, API_KEY)
    assert admin.is_up()
    admin.register_webhook(url, SECRET)
    item = expense()
    pushed = api.post(f"{expenses_path(XERO)}/expense-transactions", json=[item])
    sync_id = pushed.json()["syncId"]

    delivered = wait_for(
        lambda: [d for d in admin.webhook_deliveries() if d["syncId"] == sync_id and d["delivered"]]
    )

    assert len(delivered) == 1 and len(bodies) == 1 and sync_id.encode() in bodies[0]
    books = {e["transaction_id"]: e for e in admin.ground_truth()[XERO]}
    assert books[item["id"]]["writes"] == 1
    assert Decimal(books[item["id"]]["total"]) == Decimal("12.00")


def test_a_refusal_names_the_call_and_never_the_key(sandbox_url):
    wrong = f"not-the-key-{uuid.uuid4().hex}"
    with pytest.raises(FatalAPIError) as refused:
        SandboxAdmin(sandbox_url, wrong).ground_truth()
    assert refused.value.status == 401
    assert str(refused.value) == "The sandbox answered 401 to GET /_sandbox/ground-truth."
    assert wrong not in repr(refused.value.__dict__)
    assert base64.b64encode(wrong.encode()).decode() not in repr(refused.value.__dict__)


def test_nothing_listening_is_not_up_and_a_call_says_unreachable():
    admin = SandboxAdmin(f"http://127.0.0.1:{free_port('127.0.0.1')}", API_KEY, timeout_s=2)
    assert not admin.is_up()
    with pytest.raises(RetriableAPIError, match="The sandbox could not be reached"):
        admin.webhook_deliveries()
