"""CodatClient's family methods (expense updates, transfers, reimbursable expenses, adjustments)
against the real sandbox on loopback: the books first, then what the client said."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal

import httpx
import pytest
from conftest import API_KEY, AUTH, DYNAMICS, QBD, QBO, XERO
from conftest import expense as float_expense

from destination_codat_expenses import jsonwire
from destination_codat_expenses.codat.client import AttemptPolicy, CodatClient
from destination_codat_expenses.errors import AlreadyProcessed, FatalAPIError


def decimals(body) -> dict | list:
    """Every amount as Decimal: the client refuses floats."""
    return jsonwire.loads(json.dumps(body, default=str))


def expense(**overrides) -> dict:
    return decimals(float_expense(**overrides))


def transfer(amount: str = "100.00", description: str = "Card top-up") -> dict:
    return {
        "description": description,
        "date": "2024-05-02",
        "from": {"accountRef": {"id": "090"}, "amount": Decimal(amount)},
        "to": {"accountRef": {"id": "800"}, "amount": Decimal(amount)},
    }


def reimbursable(net: str = "30.00") -> dict:
    return {
        "id": str(uuid.uuid4()),
        "contactRef": {"id": "SUP-CARD"},
        "issueDate": "2024-05-04",
        "dueDate": "2024-05-30",
        "currency": "USD",
        "lines": [{"netAmount": Decimal(net), "accountRef": {"id": "401"}}],
    }


@pytest.fixture
def client(sandbox_url):
    with httpx.Client(base_url=sandbox_url, timeout=10) as http:
        yield CodatClient(http, API_KEY, AttemptPolicy(backoff_base_s=0.01, backoff_max_s=0.05))


def final_status(client, company_id, sync_id):
    deadline = time.monotonic() + 10
    while True:
        status = client.get_sync_status(company_id, sync_id)
        if status["syncStatusCode"] >= 2000 or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def books(sandbox_url, company_id) -> dict[str, dict]:
    entries = httpx.get(f"{sandbox_url}/_sandbox/ground-truth", headers=AUTH).json()[company_id]
    return {e["transaction_id"]: e for e in entries}


def lose_responses(sandbox_url, paths: str) -> None:
    plan = {"rate_lost_response": 0.5, "seed": 3, "paths": paths}
    httpx.put(f"{sandbox_url}/_sandbox/faults", headers=AUTH, json=plan).raise_for_status()


def injected(sandbox_url) -> int:
    faults = httpx.get(f"{sandbox_url}/_sandbox/faults", headers=AUTH).json()
    return faults["injected"].get("rate_lost_response", 0)


def test_an_update_changes_the_one_record_in_the_books(client, sandbox_url):
    item = expense()
    final_status(client, XERO, client.create_expense_transactions(XERO, [item], key="c1"))
    update = {k: v for k, v in item.items() if k != "id"}
    update["lines"] = [{"netAmount": Decimal("12.34"), "accountRef": {"id": "401"}}]

    sync_id = client.update_expense_transaction(XERO, item["id"], update)

    assert final_status(client, XERO, sync_id)["syncStatusCode"] == 2000
    entry = books(sandbox_url, XERO)[item["id"]]
    assert (entry["version"], entry["writes"], entry["total"]) == (2, 1, "12.34")
    assert len(books(sandbox_url, XERO)) == 1


def test_an_update_codat_refuses_is_fatal_with_codats_reason(client):
    item = expense()
    final_status(client, XERO, client.create_expense_transactions(XERO, [item], key="c2"))
    update = {k: v for k, v in item.items() if k != "id"}
    with pytest.raises(FatalAPIError) as raised:
        client.update_expense_transaction(DYNAMICS, item["id"], update)
    assert raised.value.status == 422
    assert raised.value.detail == (
        "Expense transaction updates are not supported for Dynamics 365 Business Central."
    )
    with pytest.raises(FatalAPIError) as unknown:
        client.update_expense_transaction(XERO, str(uuid.uuid4()), update)
    assert unknown.value.status == 404


def test_a_path_id_that_is_not_a_canonical_uuid_is_never_sent(client, sandbox_url):
    for bad in ("../../_sandbox/reset", "ABCDEF00-0000-4000-8000-000000000000", "x"):
        with pytest.raises(ValueError):
            client.put_transfer_transaction(XERO, bad, transfer())
    assert client.list_sync_statuses(XERO) == []


def test_transfer_puts_retried_after_lost_answers_write_each_transfer_once(client, sandbox_url):
    lose_responses(sandbox_url, "transfer-transactions/")
    ids = [str(uuid.uuid4()) for _ in range(6)]
    sync_ids = [client.put_transfer_transaction(QBO, i, transfer()) for i in ids]

    assert injected(sandbox_url) >= 1
    assert all(final_status(client, QBO, s)["syncStatusCode"] in (2000, 2040) for s in sync_ids)
    written = books(sandbox_url, QBO)
    assert sorted(written) == sorted(ids)
    assert all(
        (e["version"], e["writes"], e["total"]) == (1, 1, "100.00") for e in written.values()
    )


def test_transfer_update_then_reimbursable_create_and_update(client, sandbox_url):
    transfer_id = str(uuid.uuid4())
    final_status(client, QBO, client.put_transfer_transaction(QBO, transfer_id, transfer()))
    changed = client.put_transfer_transaction(QBO, transfer_id, transfer("250.00"))
    assert final_status(client, QBO, changed)["syncStatusCode"] == 2000

    bill = reimbursable()
    created = client.create_reimbursable_expense_transactions(QBO, [bill], key="r1")
    assert final_status(client, QBO, created)["syncStatusCode"] == 2000
    update = {k: v for k, v in reimbursable("35.00").items() if k != "id"}
    updated = client.update_reimbursable_expense_transaction(QBO, bill["id"], update)
    assert final_status(client, QBO, updated)["syncStatusCode"] == 2000

    written = books(sandbox_url, QBO)
    assert (written[transfer_id]["version"], written[transfer_id]["total"]) == (2, "250.00")
    assert (written[bill["id"]]["version"], written[bill["id"]]["total"]) == (2, "35.00")
    assert {e["kind"] for e in written.values()} == {"transfer", "reimbursable"}


def test_reimbursable_creates_retried_with_their_key_write_once(client, sandbox_url):
    lose_responses(sandbox_url, "reimbursable-expense-transactions$")
    bills = [reimbursable() for _ in range(6)]
    sync_ids = [
        client.create_reimbursable_expense_transactions(QBO, [b], key=f"key-{b['id']}")
        for b in bills
    ]
    assert injected(sandbox_url) >= 1
    assert all(final_status(client, QBO, s)["syncStatusCode"] == 2000 for s in sync_ids)
    written = books(sandbox_url, QBO)
    assert sorted(written) == sorted(b["id"] for b in bills)
    assert all(e["writes"] == 1 for e in written.values())
    assert len(client.list_sync_statuses(QBO)) == 6


def test_adjustments_and_their_previously_processed_ids(client, sandbox_url):
    journal = {
        "id": str(uuid.uuid4()),
        "date": "2024-05-03",
        "currency": "USD",
        "lines": [
            {"amount": Decimal("50.00"), "accountRef": {"id": "401"}},
            {"amount": Decimal("-50.00"), "accountRef": {"id": "800"}},
        ],
    }
    sync_id = client.create_adjustment_transactions(QBD, [journal], key="a1")
    assert final_status(client, QBD, sync_id)["syncStatusCode"] == 2000
    assert books(sandbox_url, QBD)[journal["id"]]["data_type"] == "journalEntries"
    with pytest.raises(AlreadyProcessed) as again:
        client.create_adjustment_transactions(QBD, [journal], key="a2")
    assert again.value.ids == {journal["id"]}
    with pytest.raises(FatalAPIError) as elsewhere:
        client.create_adjustment_transactions(XERO, [journal], key="a3")
    assert elsewhere.value.detail == "Xero does not support adjustments."
