"""CodatClient against the real sandbox on loopback, including a lost response after commit."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from conftest import API_KEY, AUTH, XERO
from conftest import expense as float_expense

from destination_codat_expenses import jsonwire
from destination_codat_expenses.codat.client import AttemptPolicy, CodatClient
from destination_codat_expenses.errors import FatalAPIError


def expense(**overrides) -> dict:
    """The conftest expense with every amount as Decimal: the client refuses floats."""
    return jsonwire.loads(json.dumps(float_expense(**overrides), default=str))


@pytest.fixture
def client(sandbox_url):
    with httpx.Client(base_url=sandbox_url, timeout=10) as http:
        yield CodatClient(http, API_KEY, AttemptPolicy(backoff_base_s=0.01, backoff_max_s=0.05))


def final_status(client, sync_id):
    deadline = time.monotonic() + 10
    while True:
        status = client.get_sync_status(XERO, sync_id)
        if status["syncStatusCode"] >= 2000 or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def test_lost_response_is_retried_with_same_key_and_writes_once(client, sandbox_url):
    httpx.put(
        f"{sandbox_url}/_sandbox/faults",
        headers=AUTH,
        json={"rate_lost_response": 0.5, "seed": 3, "paths": "expense-transactions$"},
    )
    items = [expense(lines=[{"netAmount": 19.99, "accountRef": {"id": "402"}}]) for _ in range(6)]
    sync_ids = [
        client.create_expense_transactions(XERO, [item], key=f"key-{item['id']}") for item in items
    ]
    injected = httpx.get(f"{sandbox_url}/_sandbox/faults", headers=AUTH).json()["injected"]
    assert injected.get("rate_lost_response", 0) >= 1
    assert all(final_status(client, s)["syncStatusCode"] == 2000 for s in sync_ids)
    books = httpx.get(f"{sandbox_url}/_sandbox/ground-truth", headers=AUTH).json()[XERO]
    assert sorted(b["transaction_id"] for b in books) == sorted(i["id"] for i in items)
    assert all(b["writes"] == 1 and b["total"] == "19.99" for b in books)
    assert len(client.list_sync_statuses(XERO)) == 6


def test_previously_processed_is_a_fatal_400_naming_the_id(client):
    item = expense()
    final_status(client, client.create_expense_transactions(XERO, [item], key="a"))
    with pytest.raises(FatalAPIError) as raised:
        client.create_expense_transactions(XERO, [item], key="b")
    assert item["id"] in str(raised.value) and raised.value.status == 400


def test_datasets_flow_and_paged_transactions(client):
    items = [expense() for _ in range(5)]
    dataset = client.create_expense_dataset(XERO, items, key="d1")
    sync_id = client.initiate_sync(XERO, [dataset], key="s1")
    assert final_status(client, sync_id)["syncStatusCode"] == 2000
    seen = list(client.iter_sync_transactions(XERO, sync_id, page_size=2))
    assert [t["transactionId"] for t in seen] == [i["id"] for i in items]
    assert client.list_connections(XERO)[0]["platformName"] == "Xero"
