"""The sandbox's Codat surface over loopback: auth, companies, both push flows, every sync
status code trigger, every transaction failure kind, idempotency, paging and attachments."""

from __future__ import annotations

import base64
import time
import uuid
from decimal import Decimal

import pytest
from conftest import (
    DYNAMICS,
    FREEAGENT,
    INTACCT_NO_CONFIG,
    QBD,
    QBO,
    XERO,
    ZOHO_DEAUTHORIZED,
    expense,
    expenses_path,
)

FINAL_WAIT_S = 10


def push(api, company_id: str, items: list[dict], **headers):
    return api.post(
        f"{expenses_path(company_id)}/expense-transactions", json=items, headers=headers
    )


def settled(api, company_id: str, sync_id: str) -> dict:
    """Poll the sync until it leaves 1000/1010; bounded so a stuck sandbox fails the test."""
    deadline = time.monotonic() + FINAL_WAIT_S
    while True:
        status = api.get(f"{expenses_path(company_id)}/syncs/{sync_id}/status").json()
        if status["syncStatusCode"] not in (1000, 1010) or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def sync_items(api, company_id: str, items: list[dict]) -> tuple[dict, dict[str, dict]]:
    response = push(api, company_id, items)
    assert response.status_code == 200, response.text
    sync_id = response.json()["syncId"]
    status = settled(api, company_id, sync_id)
    page = api.get(
        f"{expenses_path(company_id)}/syncs/{sync_id}/transactions", params={"pageSize": 100}
    ).json()
    return status, {t["transactionId"]: t for t in page["results"]}


def patch_company(api, company_id: str, **changes) -> None:
    response = api.patch(f"/_sandbox/companies/{company_id}", json=changes)
    assert response.status_code == 200, response.text


def ground_truth(api, company_id: str) -> dict[str, dict]:
    return {e["transaction_id"]: e for e in api.get("/_sandbox/ground-truth").json()[company_id]}


# -- auth and companies -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header", [None, "Basic " + base64.b64encode(b"wrong").decode(), "Bearer sandbox-test-key"]
)
def test_missing_or_wrong_key_is_401_error_message(api, header):
    headers = {"Authorization": header} if header else {}
    api.headers.pop("Authorization")
    response = api.get("/companies", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["statusCode"] == 401 and body["error"] == "Unauthorized"
    assert {"service", "correlationId", "canBeRetried", "detailedErrorCode"} <= set(body)


def test_companies_list_and_connection_names_platform(api):
    companies = api.get("/companies").json()
    assert companies["totalResults"] == 8
    connections = api.get(f"/companies/{QBO}/connections").json()["results"]
    assert connections[0]["platformName"] == "QuickBooks Online"
    assert connections[0]["status"] == "Linked" and connections[0]["sourceType"] == "Accounting"


def test_unknown_company_is_404_naming_it(api):
    missing = str(uuid.uuid4())
    response = api.get(f"/companies/{missing}")
    assert response.status_code == 404 and missing in response.json()["error"]


def test_created_company_has_no_config_until_set(api):
    company = api.post("/companies", json={"name": "New Co"}).json()
    config_path = f"{expenses_path(company['id'])}/config"
    assert api.get(config_path).status_code == 404
    config = {
        "bankAccount": {"id": "090"},
        "supplier": {"id": "SUP-CARD"},
        "customer": {"id": "CUST-1"},
    }
    assert api.post(config_path, json=config).json() == config
    assert api.get(config_path).json() == config


def test_config_with_unknown_ids_is_400_per_field(api):
    bad = {"bankAccount": {"id": "401"}, "supplier": {"id": "nope"}, "customer": {"id": "CUST-1"}}
    response = api.post(f"{expenses_path(XERO)}/config", json=bad)
    assert response.status_code == 400
    items = {e["itemId"] for e in response.json()["validation"]["errors"]}
    assert items == {"bankAccount", "supplier"}


def test_mapping_options_and_partner_connection(api):
    options = api.get(f"{expenses_path(XERO)}/mappingOptions").json()
    assert {a["id"] for a in options["accounts"]} >= {"401", "402", "260", "090"}
    assert options["expenseProvider"] is None
    connection = api.post(f"{expenses_path(XERO)}/connections/partnerExpense").json()
    assert connection["sourceType"] == "Expense" and connection["status"] == "Linked"
    options = api.get(f"{expenses_path(XERO)}/mappingOptions").json()
    assert options["expenseProvider"] == "Partner Expense"


# -- schema validation ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], "body"),
        ([expense() for _ in range(51)], "body"),
        ([expense(type="Transfer")], "type"),
        ([expense(lines=[])], "lines"),
        ([expense(lines=[{"netAmount": 1}] * 101)], "lines"),
        ([expense(lines=[{"netAmount": "12.00"}])], "lines.0.netAmount"),
        ([expense(lines=[{"netAmount": 1, "trackingRefs": [{"id": "x"}] * 11}])], "trackingRefs"),
        (
            [expense(lines=[{"netAmount": 1, "trackingRefs": [{"id": "x", "dataType": "bad"}]}])],
            "dataType",
        ),
        ([{k: v for k, v in expense().items() if k != "currency"}], "currency"),
        ([expense(id="not-a-uuid")], "id"),
    ],
)
def test_schema_violations_are_400_naming_item_and_field(api, items, expected):
    response = push(api, XERO, items)
    assert response.status_code == 400
    errors = response.json()["validation"]["errors"]
    assert any(expected in e["message"] for e in errors), errors
    if items and expected != "body":
        assert errors[0]["itemId"] == items[0]["id"]


def test_same_id_twice_in_one_request_is_400(api):
    item = expense()
    response = push(api, XERO, [item, dict(item)])
    assert response.status_code == 400
    assert response.json()["validation"]["errors"][0]["itemId"] == item["id"]


def test_malformed_json_is_400_not_500(api):
    response = api.post(
        f"{expenses_path(XERO)}/expense-transactions",
        content=b"[{",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400


# -- successful syncs -----------------------------------------------------------------------------
def test_direct_push_completes_with_record_and_writes_books(api):
    payment, refund = expense(), expense(type="Refund")
    status, results = sync_items(api, XERO, [payment, refund])
    assert status["syncStatusCode"] == 2000 and status["dataPushed"] is True
    assert status["syncStatus"] == "Complete"
    assert results[payment["id"]]["message"].startswith("Created directCosts XERO-")
    assert results[refund["id"]]["message"].startswith("Created directIncomes XERO-")
    books = ground_truth(api, XERO)
    assert books[payment["id"]]["writes"] == 1
    assert Decimal(books[payment["id"]]["total"]) == Decimal("12.00")


def test_zero_total_sync_is_2040_nothing_written(api):
    zero = expense(lines=[{"netAmount": 0, "taxAmount": 0, "accountRef": {"id": "402"}}])
    status, results = sync_items(api, XERO, [zero])
    assert status["syncStatusCode"] == 2040 and status["dataPushed"] is False
    assert results[zero["id"]]["status"] == "Completed"
    assert zero["id"] not in ground_truth(api, XERO)


def test_datasets_flow_pushes_then_initiates_with_202(api):
    items = [expense(), expense()]
    dataset = api.post(
        f"{expenses_path(QBO)}/data/expense-transactions",
        json={"items": [expense(currency="USD", id=i["id"]) for i in items]},
    )
    assert dataset.status_code == 200
    started = api.post(
        f"{expenses_path(QBO)}/syncs", json={"datasetIds": [dataset.json()["datasetId"]]}
    )
    assert started.status_code == 202
    status = settled(api, QBO, started.json()["syncId"])
    assert status["syncStatusCode"] == 2000
    assert set(ground_truth(api, QBO)) >= {i["id"] for i in items}


def test_initiate_sync_with_unknown_dataset_is_404(api):
    response = api.post(f"{expenses_path(QBO)}/syncs", json={"datasetIds": [str(uuid.uuid4())]})
    assert response.status_code == 404


def test_latest_last_successful_and_list_statuses(api):
    assert api.get(f"{expenses_path(XERO)}/syncs/latest/status").status_code == 404
    good, _ = sync_items(api, XERO, [expense()])
    bad, _ = sync_items(api, XERO, [expense(issueDate="2023-06-01")])
    latest = api.get(f"{expenses_path(XERO)}/syncs/latest/status").json()
    last_good = api.get(f"{expenses_path(XERO)}/syncs/lastSuccessful/status").json()
    listed = api.get(f"{expenses_path(XERO)}/syncs/list/status").json()
    assert latest["syncId"] == bad["syncId"] and last_good["syncId"] == good["syncId"]
    assert [s["syncId"] for s in listed] == [bad["syncId"], good["syncId"]]


# -- every sync status code -------------------------------------------------------------------
def test_sync_is_1000_while_queued_and_running(api):
    patch_company(api, XERO, syncSeconds=60)
    sync_id = push(api, XERO, [expense()]).json()["syncId"]
    status = api.get(f"{expenses_path(XERO)}/syncs/{sync_id}/status").json()
    assert status["syncStatusCode"] == 1000 and status["dataPushed"] is False


def test_sync_is_1010_after_ten_minutes_then_finishes(api):
    patch_company(api, XERO, syncSeconds=900)
    sync_id = push(api, XERO, [expense()]).json()["syncId"]
    api.post("/_sandbox/clock/advance", json={"seconds": 601})
    assert api.get(f"{expenses_path(XERO)}/syncs/{sync_id}/status").json()["syncStatusCode"] == 1010
    api.post("/_sandbox/clock/advance", json={"seconds": 300})
    assert settled(api, XERO, sync_id)["syncStatusCode"] == 2000


@pytest.mark.parametrize(
    ("company_id", "changes", "code"),
    [
        (INTACCT_NO_CONFIG, {}, 4000),
        (ZOHO_DEAUTHORIZED, {}, 4040),
        (XERO, {"connectionStatus": "Unlinked"}, 4040),
        (XERO, {"config": None}, 4000),
        (XERO, {"billingExpired": True}, 4260),
        (XERO, {"forcedSyncStatus": 5000}, 5000),
    ],
)
def test_company_state_forces_sync_status(api, company_id, changes, code):
    if changes:
        patch_company(api, company_id, **changes)
    item = expense(currency="USD") if company_id != XERO else expense()
    status, results = sync_items(api, company_id, [item])
    assert status["syncStatusCode"] == code and status["dataPushed"] is False
    assert status["errorMessage"]
    assert results[item["id"]]["status"] == "PushError"
    assert item["id"] not in ground_truth(api, company_id)


def test_company_deleted_while_sync_queued_is_4220(api):
    patch_company(api, XERO, syncSeconds=60)
    item = expense()
    sync_id = push(api, XERO, [item]).json()["syncId"]
    patch_company(api, XERO, deleted=True)
    api.post("/_sandbox/clock/advance", json={"seconds": 61})
    assert settled(api, XERO, sync_id)["syncStatusCode"] == 4220
    assert api.get(f"/companies/{XERO}").status_code == 404
    assert push(api, XERO, [expense()]).status_code == 404


def test_completed_id_pushed_again_direct_is_400_previously_processed(api):
    item = expense()
    sync_items(api, XERO, [item])
    response = push(api, XERO, [expense(id=item["id"])])
    assert response.status_code == 400
    assert "previously been processed" in response.json()["error"]
    assert item["id"] in response.json()["error"]
    assert ground_truth(api, XERO)[item["id"]]["writes"] == 1


def test_completed_id_in_dataset_sync_is_5080_and_not_rewritten(api):
    item = expense()
    sync_items(api, XERO, [item])
    dataset = api.post(
        f"{expenses_path(XERO)}/data/expense-transactions", json={"items": [item, expense()]}
    ).json()["datasetId"]
    sync_id = api.post(f"{expenses_path(XERO)}/syncs", json={"datasetIds": [dataset]}).json()[
        "syncId"
    ]
    status = settled(api, XERO, sync_id)
    assert status["syncStatusCode"] == 5080 and item["id"] in status["errorMessage"]
    assert ground_truth(api, XERO)[item["id"]]["writes"] == 1


def test_dataset_synced_twice_is_5080(api):
    dataset = api.post(
        f"{expenses_path(XERO)}/data/expense-transactions", json={"items": [expense()]}
    ).json()["datasetId"]
    first = api.post(f"{expenses_path(XERO)}/syncs", json={"datasetIds": [dataset]}).json()
    second = api.post(f"{expenses_path(XERO)}/syncs", json={"datasetIds": [dataset]}).json()
    assert settled(api, XERO, first["syncId"])["syncStatusCode"] == 2000
    assert settled(api, XERO, second["syncId"])["syncStatusCode"] == 5080


def test_validation_failure_is_5120_and_push_failure_is_5130(api):
    good, invalid = expense(), expense(lines=[{"netAmount": 5, "accountRef": {"id": "999"}}])
    status, results = sync_items(api, XERO, [good, invalid])
    assert status["syncStatusCode"] == 5120 and status["dataPushed"] is True
    assert results[invalid["id"]]["status"] == "ValidationError"
    closed = expense(issueDate="2023-12-31")
    status, results = sync_items(api, XERO, [closed])
    assert status["syncStatusCode"] == 5130 and status["syncStatus"] == "PushError"
    assert "closed period" in results[closed["id"]]["message"]


def test_failed_id_retried_with_same_id_after_fix_is_written_once(api):
    item = expense(lines=[{"netAmount": 5, "accountRef": {"id": "405"}}])
    status, _ = sync_items(api, XERO, [item])
    assert status["syncStatusCode"] == 5120
    patch_company(api, XERO, accounts=[{"id": "405", "name": "Fuel"}])
    status, results = sync_items(api, XERO, [item])
    assert status["syncStatusCode"] == 2000 and results[item["id"]]["status"] == "Completed"
    assert ground_truth(api, XERO)[item["id"]]["writes"] == 1


# -- transaction failure kinds --------------------------------------------------------------------
FAILURES = [
    (
        XERO,
        {"lines": [{"netAmount": 5, "accountRef": {"id": "999"}}]},
        "ValidationError",
        "account '999' was not found",
    ),
    (XERO, {"type": "Reward"}, "ValidationError", "cannot be used for Reward"),
    (
        XERO,
        {"lines": [{"netAmount": 5, "accountRef": {"id": "402"}, "taxRateRef": {"id": "X"}}]},
        "ValidationError",
        "tax rate 'X' was not found",
    ),
    (XERO, {"currency": "USD"}, "ValidationError", "currencyRate is required"),
    (
        XERO,
        {"currency": "EUR", "currencyRate": 1.17, "bankAccountRef": {"id": "091"}},
        "ValidationError",
        "is in USD but the transaction is in EUR",
    ),
    (XERO, {"bankAccountRef": {"id": "401"}}, "ValidationError", "Bank account '401'"),
    (XERO, {"contactRef": {"id": "SUP-NONE"}}, "ValidationError", "Supplier 'SUP-NONE'"),
    (XERO, {"currency": "ABC"}, "ValidationError", "ISO 4217"),
    (XERO, {"issueDate": "yesterday"}, "ValidationError", "ISO 8601"),
    (
        XERO,
        {"lines": [{"netAmount": 1.005, "accountRef": {"id": "402"}}]},
        "ValidationError",
        "more decimal places",
    ),
    (XERO, {"lines": [{"netAmount": 5}]}, "ValidationError", "accountRef is required"),
    (
        XERO,
        {
            "lines": [
                {
                    "netAmount": 5,
                    "accountRef": {"id": "402"},
                    "trackingRefs": [{"id": "DEPARTMENTS"}],
                }
            ]
        },
        "ValidationError",
        "has sub-categories",
    ),
    (
        XERO,
        {
            "lines": [
                {"netAmount": 5, "accountRef": {"id": "402"}, "trackingRefs": [{"id": "NOPE"}]}
            ]
        },
        "ValidationError",
        "tracking category 'NOPE'",
    ),
    (XERO, {"postAsDraft": True}, "ValidationError", "postAsDraft"),
    (
        XERO,
        {
            "lines": [
                {
                    "netAmount": 5,
                    "accountRef": {"id": "402"},
                    "invoiceTo": {"id": "CUST-1", "type": "customer"},
                }
            ]
        },
        "ValidationError",
        "invoiceTo",
    ),
    (FREEAGENT, {}, "ValidationError", "does not accept taxRateRef"),
    (
        QBD,
        {
            "currency": "USD",
            "lines": [{"netAmount": 5, "itemRef": {"id": "I1"}, "accountRef": {"id": "402"}}],
        },
        "ValidationError",
        "not both",
    ),
    (XERO, {"issueDate": "2023-12-31"}, "PushError", "closed period"),
    (
        XERO,
        {"lines": [{"netAmount": -5, "accountRef": {"id": "402"}}]},
        "PushError",
        "payment total is negative",
    ),
]


@pytest.mark.parametrize(("company_id", "overrides", "kind", "message"), FAILURES)
def test_transaction_failure_kind_explains_itself(api, company_id, overrides, kind, message):
    item = expense(**overrides)
    _, results = sync_items(api, company_id, [item])
    assert results[item["id"]]["status"] == kind
    assert message.lower() in results[item["id"]]["message"].lower()
    assert item["id"] not in ground_truth(api, company_id)


def test_platform_specific_features_succeed_where_supported(api):
    draft = expense(currency="EUR", postAsDraft=True)
    status, _ = sync_items(api, DYNAMICS, [draft])
    assert status["syncStatusCode"] == 2000
    qbd_item = expense(currency="USD", lines=[{"netAmount": 5, "itemRef": {"id": "I1"}}])
    status, _ = sync_items(api, QBD, [qbd_item])
    assert status["syncStatusCode"] == 2000


# -- idempotency ---------------------------------------------------------------------------
def test_idempotency_key_replays_first_answer_without_second_sync(api):
    key, items = str(uuid.uuid4()), [expense()]
    first = push(api, XERO, items, **{"Idempotency-Key": key})
    again = push(api, XERO, items, **{"Idempotency-Key": key})
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(api.get(f"{expenses_path(XERO)}/syncs/list/status").json()) == 1


def test_idempotency_key_replays_errors_too(api):
    key = str(uuid.uuid4())
    first = push(api, XERO, [expense(id="bad")], **{"Idempotency-Key": key})
    again = push(api, XERO, [expense(id="bad")], **{"Idempotency-Key": key})
    assert first.status_code == again.status_code == 400
    assert first.json()["correlationId"] == again.json()["correlationId"]


def test_idempotency_key_with_other_body_is_422(api):
    key = str(uuid.uuid4())
    push(api, XERO, [expense()], **{"Idempotency-Key": key})
    assert push(api, XERO, [expense()], **{"Idempotency-Key": key}).status_code == 422


def test_idempotency_key_expires_after_90_minutes(api):
    key, item = str(uuid.uuid4()), expense()
    first = push(api, XERO, [item], **{"Idempotency-Key": key})
    settled(api, XERO, first.json()["syncId"])
    api.post("/_sandbox/clock/advance", json={"seconds": 91 * 60})
    late = push(api, XERO, [item], **{"Idempotency-Key": key})
    assert late.status_code == 400 and "previously been processed" in late.json()["error"]


def test_idempotency_key_not_kept_for_429(api):
    key, items = str(uuid.uuid4()), [expense()]
    api.put("/_sandbox/limits", json={"perMinute": 1})
    api.get("/companies")  # uses this minute's only request
    assert push(api, XERO, items, **{"Idempotency-Key": key}).status_code == 429
    api.put("/_sandbox/limits", json={"perMinute": 1000})
    assert push(api, XERO, items, **{"Idempotency-Key": key}).status_code == 200


# -- paging ---------------------------------------------------------------------------
def test_transactions_paging_links_walk_every_item(api):
    items = [expense() for _ in range(7)]
    sync_id = push(api, XERO, items).json()["syncId"]
    settled(api, XERO, sync_id)
    base = f"{expenses_path(XERO)}/syncs/{sync_id}/transactions"
    seen, url = [], f"{base}?page=1&pageSize=3"
    while url:
        page = api.get(url).json()
        assert page["totalResults"] == 7 and page["pageSize"] == 3
        assert page["_links"]["self"]["href"] == base
        seen += [t["transactionId"] for t in page["results"]]
        url = page["_links"].get("next", {}).get("href")
    assert seen == [i["id"] for i in items]
    last = api.get(f"{base}?page=3&pageSize=3").json()
    assert "next" not in last["_links"] and last["_links"]["previous"]["href"].endswith(
        "page=2&pageSize=3"
    )


@pytest.mark.parametrize(
    "query", ["pageSize=0", "pageSize=5001", "page=0", "page=x", "page=1&page=1", "page=x&page=2"]
)
def test_bad_paging_is_400(api, query):
    sync_id = push(api, XERO, [expense()]).json()["syncId"]
    response = api.get(f"{expenses_path(XERO)}/syncs/{sync_id}/transactions?{query}")
    assert response.status_code == 400


def test_single_transaction_is_an_array(api):
    item = expense()
    sync_id = push(api, XERO, [item]).json()["syncId"]
    settled(api, XERO, sync_id)
    body = api.get(f"{expenses_path(XERO)}/syncs/{sync_id}/transactions/{item['id']}").json()
    assert isinstance(body, list) and body[0]["transactionId"] == item["id"]


# -- attachments ---------------------------------------------------------------------------
def attach(
    api,
    company_id,
    sync_id,
    txn_id,
    name="receipt.pdf",
    data=b"%PDF-1.4 receipt",
    content_type="application/pdf",
):
    url = f"{expenses_path(company_id)}/syncs/{sync_id}/transactions/{txn_id}/attachments"
    return api.post(url, files={"file": (name, data, content_type)})


def test_attachment_on_completed_transaction_is_recorded(api):
    item = expense()
    status, _ = sync_items(api, XERO, [item])
    response = attach(api, XERO, status["syncId"], item["id"])
    assert response.status_code == 200
    assert response.json()["transactionId"] == item["id"]
    assert ground_truth(api, XERO)[item["id"]]["attachments"][0]["fileName"] == "receipt.pdf"


def test_attachment_on_failed_transaction_is_400(api):
    item = expense(issueDate="2023-01-01")
    status, _ = sync_items(api, XERO, [item])
    assert attach(api, XERO, status["syncId"], item["id"]).status_code == 400


@pytest.mark.parametrize(
    ("company_id", "overrides", "upload", "reason"),
    [
        (
            QBD,
            {"currency": "USD", "lines": [{"netAmount": 5, "itemRef": {"id": "I1"}}]},
            {},
            "does not accept attachments",
        ),
        (
            FREEAGENT,
            {"lines": [{"netAmount": 5, "accountRef": {"id": "402"}}]},
            {"data": b"x" * (5 * 1024 * 1024 + 1)},
            "up to 5 MB",
        ),
        (
            FREEAGENT,
            {"lines": [{"netAmount": 5, "accountRef": {"id": "402"}}]},
            {"name": "r.txt", "content_type": "text/plain"},
            "does not accept text/plain",
        ),
        (QBO, {"currency": "USD", "type": "Chargeback"}, {}, "Chargeback transactions"),
    ],
)
def test_attachment_outside_platform_limits_is_400(api, company_id, overrides, upload, reason):
    item = expense(**overrides)
    status, results = sync_items(api, company_id, [item])
    assert results[item["id"]]["status"] == "Completed", results
    response = attach(api, company_id, status["syncId"], item["id"], **upload)
    assert response.status_code == 400 and reason in response.json()["error"]
