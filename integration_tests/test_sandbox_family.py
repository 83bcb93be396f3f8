"""The rest of the Sync for Expenses family in the sandbox, over loopback: expense updates,
transfers, reimbursable expenses and adjustments, per platform. The books (ground truth) are
read first: an update must change the one entry the books hold, never add a second one."""

from __future__ import annotations

import time
import uuid

import pytest
from conftest import (
    DYNAMICS,
    FREEAGENT,
    QBD,
    QBO,
    XERO,
    expense,
    expenses_path,
)

FINAL_WAIT_S = 10


def settled(api, company_id: str, sync_id: str) -> dict:
    deadline = time.monotonic() + FINAL_WAIT_S
    while True:
        status = api.get(f"{expenses_path(company_id)}/syncs/{sync_id}/status").json()
        if status["syncStatusCode"] not in (1000, 1010) or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def item_of(api, company_id: str, sync_id: str) -> dict:
    """The sync's one transaction result (every push here carries one item)."""
    page = api.get(f"{expenses_path(company_id)}/syncs/{sync_id}/transactions").json()
    (item,) = page["results"]
    return item


def sent(api, method: str, company_id: str, path: str, body, expected: int = 200) -> str:
    answer = api.request(method, f"{expenses_path(company_id)}/{path}", json=body)
    assert answer.status_code == expected, answer.text
    return answer.json()["syncId"]


def run(api, method: str, company_id: str, path: str, body, expected: int = 200):
    """Push, wait for the sync to settle: (sync status code, the item's status and message)."""
    sync_id = sent(api, method, company_id, path, body, expected)
    code = settled(api, company_id, sync_id)["syncStatusCode"]
    item = item_of(api, company_id, sync_id)
    return code, item["status"], item["message"]


def books(api, company_id: str) -> dict[str, dict]:
    return {e["transaction_id"]: e for e in api.get("/_sandbox/ground-truth").json()[company_id]}


def refused(api, method: str, company_id: str, path: str, body, status: int) -> str:
    answer = api.request(method, f"{expenses_path(company_id)}/{path}", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["statusCode"] == status
    return answer.json()["error"]


def update_of(item: dict, **changes) -> dict:
    body = {k: v for k, v in item.items() if k != "id"}
    body.update(changes)
    return body


def transfer(source="090", target="800", amount=100, **changes) -> dict:
    body = {
        "description": "Card top-up",
        "date": "2024-05-02",
        "from": {"accountRef": {"id": source}, "amount": amount},
        "to": {"accountRef": {"id": target}, "amount": amount},
    }
    body.update(changes)
    return body


def reimbursable(**changes) -> dict:
    body = {
        "id": str(uuid.uuid4()),
        "reference": "expenses w/c 01/07",
        "contactRef": {"id": "SUP-CARD"},
        "issueDate": "2024-05-04",
        "dueDate": "2024-05-30",
        "currency": "USD",
        "lines": [{"description": "Hotel", "netAmount": 30.00, "accountRef": {"id": "401"}}],
    }
    body.update(changes)
    return body


def adjustment(*amounts, **changes) -> dict:
    accounts = ["401", "800", "402"]
    body = {
        "id": str(uuid.uuid4()),
        "date": "2024-05-03",
        "currency": "USD",
        "lines": [
            {"amount": a, "accountRef": {"id": accounts[i]}}
            for i, a in enumerate(amounts or (50, -50))
        ],
    }
    body.update(changes)
    return body


# -- expense updates ------------------------------------------------------------------------------
def test_changed_expense_is_one_entry_with_two_versions_never_a_second_record(api):
    created = expense(lines=[{"netAmount": 10.00, "accountRef": {"id": "402"}}])
    assert run(api, "POST", XERO, "expense-transactions", [created])[:2] == (2000, "Completed")
    changed = update_of(created, lines=[{"netAmount": 12.50, "accountRef": {"id": "401"}}])

    code, status, message = run(
        api, "PUT", XERO, f"expense-transactions/{created['id']}", changed, expected=202
    )

    entry = books(api, XERO)[created["id"]]
    assert len(books(api, XERO)) == 1
    assert (entry["version"], entry["writes"], entry["total"], entry["kind"]) == (
        2,
        1,
        "12.5",
        "expense",
    )
    assert [v["total"] for v in entry["versions"]] == ["10.0", "12.5"]
    assert entry["versions"][1]["content"]["lines"][0]["accountRef"] == {"id": "401"}
    assert (code, status) == (2000, "Completed")
    assert message == f"Updated directCosts {entry['record_id']} in Xero (version 2)"


def test_repeated_update_writes_nothing_and_keeps_the_version(api):
    created = expense()
    run(api, "POST", XERO, "expense-transactions", [created])
    changed = update_of(created, notes="recategorised")
    path = f"expense-transactions/{created['id']}"
    run(api, "PUT", XERO, path, changed, expected=202)

    code, status, message = run(api, "PUT", XERO, path, changed, expected=202)

    assert (code, status) == (2040, "Completed")
    assert message.startswith("Nothing written:") and "(version 2)" in message
    assert books(api, XERO)[created["id"]]["version"] == 2


def test_update_queued_behind_its_create_finds_it_written(api):
    api.patch(f"/_sandbox/companies/{XERO}", json={"syncSeconds": 0.5})
    created = expense()
    sent(api, "POST", XERO, "expense-transactions", [created])
    changed = update_of(created, merchantName="Corrected name")

    code, status, _ = run(api, "PUT", XERO, f"expense-transactions/{created['id']}", changed, 202)

    assert (code, status) == (2000, "Completed")
    assert books(api, XERO)[created["id"]]["versions"][1]["content"]["merchantName"] == (
        "Corrected name"
    )


def test_update_refused_where_codat_refuses_it(api):
    created = expense()
    run(api, "POST", XERO, "expense-transactions", [created])
    path = f"expense-transactions/{created['id']}"
    body = update_of(created)
    assert "not supported for Dynamics 365 Business Central" in refused(
        api, "PUT", DYNAMICS, path, body, 422
    )
    assert "Payment only, not Refund" in refused(
        api, "PUT", XERO, path, update_of(created, type="Refund"), 422
    )
    unknown = str(uuid.uuid4())
    assert unknown in refused(api, "PUT", XERO, f"expense-transactions/{unknown}", body, 404)
    assert "not a UUID" in refused(api, "PUT", XERO, "expense-transactions/abc", body, 400)
    assert books(api, XERO)[created["id"]]["version"] == 1


def test_update_of_a_refund_in_the_books_is_a_validation_error(api):
    created = expense(type="Refund")
    run(api, "POST", XERO, "expense-transactions", [created])

    code, status, message = run(
        api,
        "PUT",
        XERO,
        f"expense-transactions/{created['id']}",
        update_of(created, type="Payment"),
        202,
    )

    assert (code, status) == (5120, "ValidationError")
    assert message == (
        "Only Payment transactions can be updated; the books hold a Refund and the update is a "
        "Payment."
    )
    assert books(api, XERO)[created["id"]]["version"] == 1


def test_freeagent_refuses_a_changed_bank_account(api):
    created = expense(lines=[{"netAmount": 10.00, "accountRef": {"id": "402"}}])
    run(api, "POST", FREEAGENT, "expense-transactions", [created])
    changed = update_of(created, bankAccountRef={"id": "091"})

    code, status, message = run(
        api, "PUT", FREEAGENT, f"expense-transactions/{created['id']}", changed, 202
    )

    assert (code, status, message) == (
        5120,
        "ValidationError",
        "FreeAgent does not allow changing an expense's bank account.",
    )


def test_update_of_an_expense_whose_create_failed_is_a_validation_error(api):
    created = expense(lines=[{"netAmount": 10.00, "accountRef": {"id": "999"}}])
    api.patch(f"/_sandbox/companies/{XERO}", json={"syncSeconds": 0.3})
    sent(api, "POST", XERO, "expense-transactions", [created])  # will fail: unknown account

    code, status, message = run(
        api, "PUT", XERO, f"expense-transactions/{created['id']}", update_of(created), 202
    )

    assert (code, status) == (5120, "ValidationError")
    assert message == f"The expense transaction {created['id']} is not in Xero's books to update."
    assert created["id"] not in books(api, XERO)


# -- transfers ------------------------------------------------------------------------------------
def test_transfer_is_created_then_updated_where_the_platform_updates(api):
    transfer_id = str(uuid.uuid4())
    path = f"transfer-transactions/{transfer_id}"
    assert run(api, "PUT", QBO, path, transfer())[:2] == (2000, "Completed")

    code, status, message = run(api, "PUT", QBO, path, transfer(amount=250.00))

    entry = books(api, QBO)[transfer_id]
    assert (code, status) == (2000, "Completed")
    assert (entry["kind"], entry["data_type"], entry["type"]) == (
        "transfer",
        "transfers",
        "Transfer",
    )
    assert (entry["version"], entry["total"], entry["currency"]) == (2, "250.0", "USD")
    assert message == f"Updated transfers {entry['record_id']} in QuickBooks Online (version 2)"


def test_create_only_platform_refuses_a_changed_transfer_but_not_a_repeat(api):
    transfer_id = str(uuid.uuid4())
    path = f"transfer-transactions/{transfer_id}"
    run(api, "PUT", XERO, path, transfer())

    assert run(api, "PUT", XERO, path, transfer())[:2] == (2040, "Completed")
    changed = run(api, "PUT", XERO, path, transfer(description="Changed"))

    assert changed == (5120, "ValidationError", "Xero does not support updating transfers.")
    assert books(api, XERO)[transfer_id]["version"] == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (transfer(target="090"), "A transfer needs two different accounts; both sides are '090'."),
        (transfer(source="401"), "from.accountRef: account '401 Travel' cannot take transfers."),
        (transfer(target="nope"), "to.accountRef: account 'nope' was not found."),
        (transfer(amount=0), "from.amount must be greater than zero, got 0."),
        (
            transfer(source="800", target="800"),
            "A transfer needs two different accounts; both sides are '800'.",
        ),
        (
            {**transfer(), "to": {"accountRef": {"id": "800"}, "amount": 99}},
            "Both accounts are in GBP, so from.amount 100 must equal to.amount 99.",
        ),
        (
            transfer(amount=1.234),
            "from.amount 1.234 has more decimal places than GBP (the account's currency) "
            "allows (2).",
        ),
        (transfer(date="yesterday"), "date 'yesterday' is not an ISO 8601 date."),
    ],
)
def test_transfer_checks_explain_themselves(api, body, message):
    code, status, got = run(api, "PUT", XERO, f"transfer-transactions/{uuid.uuid4()}", body)
    assert (code, status, got) == (5120, "ValidationError", message)


def test_transfer_between_currencies_and_closed_period(api):
    across = transfer(target="091")
    across["to"]["amount"] = 125.00
    assert run(api, "PUT", XERO, f"transfer-transactions/{uuid.uuid4()}", across)[:2] == (
        2000,
        "Completed",
    )
    code, status, message = run(
        api, "PUT", XERO, f"transfer-transactions/{uuid.uuid4()}", transfer(date="2023-12-31")
    )
    assert (code, status) == (5130, "PushError") and "closed period" in message


def test_transfers_refused_where_the_platform_has_none(api):
    error = refused(api, "PUT", DYNAMICS, f"transfer-transactions/{uuid.uuid4()}", transfer(), 400)
    assert error == "Dynamics 365 Business Central does not support transfers."


# -- reimbursable expenses ------------------------------------------------------------------------
def test_reimbursable_is_a_bill_created_then_updated(api):
    bill = reimbursable()
    assert run(api, "POST", QBO, "reimbursable-expense-transactions", [bill])[:2] == (
        2000,
        "Completed",
    )
    changed = update_of(
        bill, lines=[{"description": "Hotel", "netAmount": 35.00, "accountRef": {"id": "401"}}]
    )

    code, status, _ = run(
        api, "PUT", QBO, f"reimbursable-expense-transactions/{bill['id']}", changed
    )

    entry = books(api, QBO)[bill["id"]]
    assert (code, status) == (2000, "Completed")
    assert (entry["kind"], entry["data_type"], entry["type"]) == (
        "reimbursable",
        "bills",
        "Reimbursable",
    )
    assert (entry["version"], entry["total"], entry["writes"]) == (2, "35.0", 1)
    assert len([e for e in books(api, QBO).values() if e["kind"] == "reimbursable"]) == 1


def test_reimbursable_refusals(api):
    assert refused(
        api, "POST", XERO, "reimbursable-expense-transactions", [reimbursable()], 400
    ) == ("Xero does not support reimbursable expenses.")
    bill = reimbursable()
    run(api, "POST", QBD, "reimbursable-expense-transactions", [bill])
    error = refused(
        api, "PUT", QBD, f"reimbursable-expense-transactions/{bill['id']}", update_of(bill), 400
    )
    assert error == "QuickBooks Desktop does not support updates to reimbursable expenses."
    again = refused(api, "POST", QBD, "reimbursable-expense-transactions", [bill], 400)
    assert again == f"One or more transactions have previously been processed: {bill['id']}"


@pytest.mark.parametrize(
    ("company_id", "changes", "code", "message"),
    [
        (
            QBO,
            {"contactRef": {"id": "EMP-9"}},
            5120,
            "Employee 'EMP-9' was not found as a supplier.",
        ),
        (
            QBO,
            {"apAccountRef": {"id": "090"}},
            5120,
            "apAccountRef is only supported by QuickBooks Desktop, not QuickBooks Online.",
        ),
        (
            QBD,
            {"apAccountRef": {"id": "090"}},
            5120,
            "apAccountRef: '090' is not an accounts payable (liability) account.",
        ),
        (QBO, {"dueDate": "soon"}, 5120, "dueDate 'soon' is not an ISO 8601 date."),
        (
            QBO,
            {"lines": [{"netAmount": -5, "accountRef": {"id": "401"}}]},
            5130,
            "The bill's total is negative; an employee claim cannot be a credit.",
        ),
        (
            QBO,
            {"lines": [{"netAmount": 5, "accountRef": {"id": "260"}}]},
            5120,
            "Line 1: account '260 Card rewards and cashback' cannot be used for Payment "
            "transactions.",
        ),
    ],
)
def test_reimbursable_checks_explain_themselves(api, company_id, changes, code, message):
    result = run(
        api, "POST", company_id, "reimbursable-expense-transactions", [reimbursable(**changes)]
    )
    assert result == (code, "PushError" if code == 5130 else "ValidationError", message)


def test_receipt_attaches_to_a_reimbursable_on_qbo(api):
    bill = reimbursable()
    sync_id = sent(api, "POST", QBO, "reimbursable-expense-transactions", [bill])
    settled(api, QBO, sync_id)
    answer = api.post(
        f"{expenses_path(QBO)}/syncs/{sync_id}/transactions/{bill['id']}/attachments",
        files={"file": ("receipt.pdf", b"%PDF-1.4 receipt", "application/pdf")},
    )
    assert answer.status_code == 200, answer.text
    assert books(api, QBO)[bill["id"]]["attachments"][0]["fileName"] == "receipt.pdf"


# -- adjustments ----------------------------------------------------------------------------------
def test_adjustment_is_a_balanced_journal_on_qbd_only(api):
    journal = adjustment(50, -50)
    code, status, message = run(api, "POST", QBD, "adjustment-transactions", [journal])
    entry = books(api, QBD)[journal["id"]]
    assert (code, status) == (2000, "Completed")
    assert (entry["kind"], entry["data_type"], entry["type"], entry["total"]) == (
        "adjustment",
        "journalEntries",
        "Adjustment",
        "50",
    )
    assert message == f"Created journalEntries {entry['record_id']} in QuickBooks Desktop"
    assert refused(api, "POST", XERO, "adjustment-transactions", [adjustment()], 400) == (
        "Xero does not support adjustments."
    )
    again = refused(api, "POST", QBD, "adjustment-transactions", [journal], 400)
    assert journal["id"] in again


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            adjustment(50, -40),
            "The lines do not balance: debits minus credits is 10; the amounts of a journal's "
            "lines must sum to zero.",
        ),
        (
            adjustment(50, -50, currency="XXX"),
            "Currency 'XXX' is not a supported ISO 4217 currency code.",
        ),
        (
            adjustment(50, -50, currency="GBP"),
            "The transaction is in GBP but the company's base currency is USD; a currencyRate "
            "is required for foreign currency.",
        ),
        (
            {
                **adjustment(),
                "lines": [
                    {
                        "amount": 5,
                        "accountRef": {"id": "401"},
                        "trackingRefs": [{"id": "NOPE", "dataType": "suppliers"}],
                    },
                    {"amount": -5, "accountRef": {"id": "800"}},
                ],
            },
            "Line 1: supplier 'NOPE' in trackingRefs was not found.",
        ),
        (adjustment(0.001, -0.001), "Line 1: amount 0.001 has more decimal places than allowed."),
    ],
)
def test_adjustment_checks_explain_themselves(api, body, message):
    assert run(api, "POST", QBD, "adjustment-transactions", [body]) == (
        5120,
        "ValidationError",
        message,
    )


def test_schema_violations_are_400_naming_the_item(api):
    journal = adjustment()
    journal["lines"][0]["amount"] = "50"
    answer = api.post(f"{expenses_path(QBD)}/adjustment-transactions", json=[journal])
    assert answer.status_code == 400
    (error,) = answer.json()["validation"]["errors"]
    assert error["itemId"] == journal["id"] and error["message"].startswith("lines.0.amount:")
    missing = refused(
        api, "PUT", QBO, f"transfer-transactions/{uuid.uuid4()}", {"date": "2024-05-01"}, 400
    )
    assert missing == "Error processing request - not valid."


def test_mapping_options_say_what_each_account_is_valid_for(api):
    accounts = {
        a["id"]: a["validFor"]
        for a in api.get(f"{expenses_path(QBO)}/mappingOptions").json()["accounts"]
    }
    assert "transfer-transactions" in accounts["090"] and "transfer-transactions" in accounts["800"]
    assert "transfer-transactions" not in accounts["401"]
    assert "reimbursable-expense-transactions" in accounts["401"]
    assert "reimbursable-expense-transactions" not in accounts["090"]
    assert all("adjustment-transactions" in valid for valid in accounts.values())
