"""Receipts are durable work (uploads.py) against a scripted Codat (httpx.MockTransport) and a
real DuckDB file: what Codat cannot take now stays pending in the ledger and is tried again,
what it refuses is recorded with its reason, and the store counts each per sync."""

from __future__ import annotations

import base64

import httpx
import pytest
from fake_codat import COMPANY, KEY, STREAM, flat, settings

from destination_codat_expenses.codat.client import AttemptPolicy, CodatClient
from destination_codat_expenses.mapping import map_record
from destination_codat_expenses.store.db import reading, release, transaction
from destination_codat_expenses.store.queries import receipt_counts, sync_receipts
from destination_codat_expenses.store.status_store import StatusStore
from destination_codat_expenses.uploads import ReceiptUploader

PDF = b"%PDF-1.4 a receipt"
SYNC = "5ca1ab1e-0000-4000-8000-000000000001"
OTHER_SYNC = "5ca1ab1e-0000-4000-8000-000000000002"
UPLOADED = {"companyId": COMPANY, "id": "attachment-1"}


class Attachments:
    """Codat's attachment endpoint, answering each upload with the next scripted answer
    (a status and body, or an exception to raise), then 200."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/attachments"), request.url.path
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else (200, UPLOADED)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return httpx.Response(status, json=body)

    def client(self) -> CodatClient:
        http = httpx.Client(transport=httpx.MockTransport(self), base_url="https://codat")
        return CodatClient(http, KEY, AttemptPolicy(attempts=1), sleep=lambda s: None)


@pytest.fixture
def store(tmp_path):
    status = StatusStore(str(tmp_path / "status.duckdb"))
    status.prepare()
    yield status
    release(status.path)


def completed_with_receipt(store: StatusStore, source_id: str, sync_id: str = SYNC, **receipt):
    """A transaction pushed with a receipt and completed by Codat in `sync_id`: its id."""
    receipt = receipt or {"fileName": "taxi.pdf", "content": base64.b64encode(PDF).decode()}
    mapped = map_record(flat(source_id, receipt=receipt), STREAM, settings().mapping)
    store.mark_sending(COMPANY, STREAM, [mapped])
    store.mark_sent(COMPANY, [mapped.transaction_id], {"sync_id": sync_id})
    status = {"syncId": sync_id, "syncStatusCode": 2000, "syncStatus": "Complete"}
    item = {"transactionId": mapped.transaction_id, "status": "Completed", "message": None}
    store.record_sync_outcome(COMPANY, status, [item])
    return mapped.transaction_id


def receipt_row(store: StatusStore, transaction_id: str) -> tuple:
    """(receipt still in the ledger, attachment status, message, attachment id)."""
    with reading(store.path) as db:
        return db.execute(
            "SELECT t.receipt IS NOT NULL, a.status, a.message, a.attachment_id FROM "
            "transactions t LEFT JOIN attachments a USING (company_id, transaction_id) "
            "WHERE t.transaction_id = ?",
            [transaction_id],
        ).fetchone()


def uploader(codat: Attachments, store, pauses=(), sleep=lambda s: None) -> ReceiptUploader:
    return ReceiptUploader(codat.client(), store, pauses_s=pauses, sleep=sleep)


def counts(**n: int) -> dict[str, int]:
    return {"uploaded": 0, "pending": 0, "refused": 0, **n}


def test_a_receipt_codat_cannot_take_now_stays_pending_then_a_later_try_uploads_it(store):
    tid = completed_with_receipt(store, "r-1")
    codat = Attachments((503, {"error": "Service unavailable"}))

    assert uploader(codat, store).upload_pending() == 1

    kept, status, message, _ = receipt_row(store, tid)
    assert kept and status == "pending"  # never dropped: the receipt is still in the ledger
    assert "503" in message and "Service unavailable" in message
    assert receipt_counts(store.path) == receipt_counts(store.path, SYNC) == counts(pending=1)

    assert uploader(codat, store).upload_pending() == 0  # the next run, or status refresh

    assert receipt_row(store, tid) == (False, "uploaded", None, "attachment-1")
    assert receipt_counts(store.path, SYNC) == counts(uploaded=1)
    assert len(codat.requests) == 2
    keys = {r.headers["Idempotency-Key"] for r in codat.requests}
    assert len(keys) == 1  # the same upload each time: Codat answers a repeat once
    assert uploader(codat, store).upload_pending() == 0 and len(codat.requests) == 2


@pytest.mark.parametrize(
    "answer",
    [
        (429, {"error": "Too many requests"}),
        (500, {"error": "Internal error"}),
        httpx.ConnectError("no route"),
        (401, {"error": "Unauthorized"}),  # about the key, not the receipt
        (409, {"error": "A request with this Idempotency-Key is still being processed."}),
    ],
    ids=["429", "500", "transport", "401", "409"],
)
def test_errors_that_are_not_about_the_receipt_leave_it_pending(store, answer):
    tid = completed_with_receipt(store, "r-2")
    uploader(Attachments(answer), store).upload_waiting()
    kept, status, _, _ = receipt_row(store, tid)
    assert kept and status == "pending"


@pytest.mark.parametrize(
    "status, reason",
    [
        (400, "QuickBooks Desktop does not accept attachments."),
        (400, "The file 'taxi.pdf' is 11000000 bytes; Xero accepts attachments up to 10 MB."),
        (400, "Transaction x was not written by sync y; attachments can only be added to "),
        (404, "No sync was found with ID y"),
    ],
)
def test_a_refusal_is_recorded_with_codats_reason_and_not_tried_again(store, status, reason):
    tid = completed_with_receipt(store, "r-3")
    codat = Attachments((status, {"error": reason}))

    assert uploader(codat, store, pauses=(0.0, 0.0)).upload_pending() == 0

    assert receipt_row(store, tid) == (False, "refused", reason, None)
    assert receipt_counts(store.path, SYNC) == counts(refused=1)
    uploader(codat, store).upload_pending()
    assert len(codat.requests) == 1


def test_within_a_run_a_pending_receipt_is_tried_again_after_growing_pauses(store):
    tid = completed_with_receipt(store, "r-4")
    codat = Attachments((503, {}), (500, {}), (200, UPLOADED))
    slept: list[float] = []

    left = uploader(codat, store, pauses=(1.0, 2.0, 4.0), sleep=slept.append).upload_pending()

    assert left == 0 and slept == [1.0, 2.0] and len(codat.requests) == 3
    assert receipt_row(store, tid)[:2] == (False, "uploaded")


def test_the_tries_within_a_run_are_bounded_and_the_rest_stays_pending(store):
    tid = completed_with_receipt(store, "r-5")
    codat = Attachments(*[(503, {})] * 10)
    slept: list[float] = []

    left = uploader(codat, store, pauses=(1.0, 2.0, 4.0), sleep=slept.append).upload_pending()

    assert left == 1 and slept == [1.0, 2.0, 4.0] and len(codat.requests) == 4
    assert receipt_row(store, tid)[:2] == (True, "pending")


def test_a_receipt_path_waits_for_a_process_that_may_read_the_receipts_folder(store):
    tid = completed_with_receipt(store, "r-6", fileName="hotel.pdf", path="2024/hotel.pdf")
    codat = Attachments()

    assert uploader(codat, store).upload_pending() == 0  # nothing it may try

    assert codat.requests == [] and receipt_row(store, tid) == (True, None, None, None)
    assert receipt_counts(store.path) == counts(pending=1)
    [listed] = sync_receipts(store.path, SYNC)
    assert (listed["file_name"], listed["status"]) == ("hotel.pdf", "pending")


def test_counts_are_per_completing_sync_and_older_failures_count_as_refused(store):
    completed_with_receipt(store, "c-1")
    completed_with_receipt(store, "c-2")
    completed_with_receipt(store, "c-3", OTHER_SYNC)
    completed_with_receipt(store, "c-4", OTHER_SYNC)
    uploader(Attachments((400, {"error": "No attachments here."})), store).upload_waiting(
        COMPANY, SYNC
    )
    with transaction(store.path) as db:  # as a version before pending existed left it
        db.execute(
            "INSERT INTO attachments VALUES (?, 'gone', ?, 'old.pdf', 1, 'failed', 'HTTP 500', "
            "NULL, now())",
            [COMPANY, OTHER_SYNC],
        )

    assert receipt_counts(store.path, SYNC) == counts(uploaded=1, refused=1)
    assert receipt_counts(store.path, OTHER_SYNC) == counts(pending=2, refused=1)
    assert receipt_counts(store.path) == counts(uploaded=1, pending=2, refused=2)
