"""CodatClient's family methods through the one request path: paths, bodies, attempts and
scrubbing, with exact answers from a MockTransport."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import httpx
import pytest

from destination_codat_expenses.codat.client import AttemptPolicy, CodatClient
from destination_codat_expenses.errors import FatalAPIError, RetriableAPIError

COMPANY = "11111111-1111-4111-8111-111111111111"
TXN = "0b7e5f4e-5a0c-4c47-9d43-3c1f0f2b8a11"
SECRET = "canary-key-7f3a"
BODY = {"date": "2024-05-02", "amount": Decimal("10.50")}
EXPENSES = f"/companies/{COMPANY}/sync/expenses"


def scripted(*answers):
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, body = queue.pop(0)
        if isinstance(status, Exception):
            raise status
        return httpx.Response(status, json=body)

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="https://codat.test")
    policy = AttemptPolicy(attempts=4, budget=10)
    return CodatClient(http, SECRET, policy, sleep=lambda s: None), seen


PUTS = [
    ("update_expense_transaction", f"{EXPENSES}/expense-transactions/{TXN}"),
    ("put_transfer_transaction", f"{EXPENSES}/transfer-transactions/{TXN}"),
    (
        "update_reimbursable_expense_transaction",
        f"{EXPENSES}/reimbursable-expense-transactions/{TXN}",
    ),
]
POSTS = [
    ("create_reimbursable_expense_transactions", f"{EXPENSES}/reimbursable-expense-transactions"),
    ("create_adjustment_transactions", f"{EXPENSES}/adjustment-transactions"),
]


@pytest.mark.parametrize(("method", "path"), PUTS)
def test_a_put_is_attempted_again_after_a_lost_or_failed_answer(method, path):
    client, seen = scripted((httpx.ReadTimeout("lost"), None), (503, {}), (202, {"syncId": "s1"}))
    assert getattr(client, method)(COMPANY, TXN, BODY) == "s1"
    assert [(r.method, r.url.path) for r in seen] == [("PUT", path)] * 3
    assert {r.content for r in seen} == {b'{"date":"2024-05-02","amount":10.50}'}
    assert all("Idempotency-Key" not in r.headers for r in seen)  # Codat allows none on PUT


@pytest.mark.parametrize(("method", "path"), POSTS)
def test_a_family_create_carries_its_key_on_every_attempt(method, path):
    client, seen = scripted((500, {}), (200, {"syncId": "s2"}))
    assert getattr(client, method)(COMPANY, [{"id": TXN, **BODY}], key="k-9") == "s2"
    assert [(r.method, r.url.path, r.headers["Idempotency-Key"]) for r in seen] == [
        ("POST", path, "k-9")
    ] * 2
    assert json.loads(seen[0].content) == [{"id": TXN, "date": "2024-05-02", "amount": 10.5}]


@pytest.mark.parametrize("bad", ["../../_sandbox/reset", TXN.upper(), "x", "", f"{TXN}/x"])
@pytest.mark.parametrize(("method", "path"), PUTS)
def test_a_path_id_that_is_not_a_canonical_uuid_is_never_sent(method, path, bad):
    client, seen = scripted()
    with pytest.raises(ValueError):
        getattr(client, method)(COMPANY, bad, BODY)
    assert seen == []


@pytest.mark.parametrize("status", [400, 422, 503])
@pytest.mark.parametrize(("method", "path"), PUTS + POSTS)
def test_an_error_echoing_the_key_is_scrubbed(method, path, status):
    b64 = base64.b64encode(SECRET.encode()).decode()
    echo = {"error": f"you sent Basic {b64} and {SECRET}", "correlationId": SECRET}
    client, _ = scripted(*[(status, echo)] * 4)
    args = (COMPANY, TXN, BODY) if "/{" in path or path.endswith(TXN) else (COMPANY, [BODY])
    kwargs = {} if len(args) == 3 else {"key": "k"}
    with pytest.raises((FatalAPIError, RetriableAPIError)) as raised:
        getattr(client, method)(*args, **kwargs)
    text = str(raised.value) + repr(raised.value.__dict__)
    assert SECRET not in text and b64 not in text
    assert raised.value.status == status
