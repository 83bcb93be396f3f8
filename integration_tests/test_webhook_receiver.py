"""The webhook receiver on a loopback port against a real DuckDB file: who gets in (signatures),
what is too big, what happens once, what order does not matter, and what a busy store answers.

A webhook triggers, the API decides: an event marks its sync "to confirm" and keeps what it
reported apart (`reported_outcome`); it never sets a status code, writes a push item or moves a
ledger row. (Receivers here have no Codat key; test_webhook_receiver_e2e.py confirms from the
sandbox's API.)"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import logging
import subprocess
import sys
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from destination_codat_expenses.mapping import MappedTransaction
from destination_codat_expenses.store.status_store import StatusStore
from destination_codat_expenses.webhooks.receiver import MAX_BODY_BYTES
from integration_tests.conftest import wait_for
from integration_tests.webhook_support import (
    COMPANY,
    OTHER_SECRET,
    SECRET,
    VECTOR_BODY,
    VECTOR_ID,
    VECTOR_SIGNATURE,
    VECTOR_TS,
    Clock,
    legacy_event,
    post,
    query,
    raw_exchange,
    running_receiver,
    signature,
    signed,
    sync_event,
)

VECTOR_HEADERS = {
    "webhook-id": VECTOR_ID,
    "webhook-timestamp": str(VECTOR_TS),
    "webhook-signature": VECTOR_SIGNATURE,
}
FORGED = "v1," + base64.b64encode(b"\x00" * 32).decode()


@pytest.fixture
def store_path(tmp_path) -> str:
    return str(tmp_path / "status.duckdb")


@pytest.fixture
def clock() -> Clock:
    return Clock(VECTOR_TS)


@pytest.fixture
def vector_url(store_path, clock):
    """A receiver whose clock stands at the docs vector's timestamp (movable per test)."""
    with running_receiver(store_path, clock=clock) as url:
        yield url


@pytest.fixture
def url(store_path):
    with running_receiver(store_path) as url:
        yield url


def headers_with(**changes: str | None) -> dict[str, str]:
    headers = {**VECTOR_HEADERS, **{k.replace("_", "-"): v for k, v in changes.items()}}
    return {k: v for k, v in headers.items() if v is not None}


def as_svix(headers: dict[str, str]) -> dict[str, str]:
    return {k.replace("webhook-", "svix-"): v for k, v in headers.items()}


# -- signatures --------------------------------------------------------------------------------
ACCEPTED = {
    "docs test vector": (VECTOR_HEADERS, VECTOR_BODY, 0),
    "svix-* header names": (as_svix(VECTOR_HEADERS), VECTOR_BODY, 0),
    "several signatures, the second valid": (
        headers_with(webhook_signature=f"{FORGED} {VECTOR_SIGNATURE}"),
        VECTOR_BODY,
        0,
    ),
    "malformed and foreign entries beside a valid one": (
        headers_with(webhook_signature=f"v1 v1,!!! v2,{FORGED[3:]} v1a,abc {VECTOR_SIGNATURE}"),
        VECTOR_BODY,
        0,
    ),
    "4 minutes old": (VECTOR_HEADERS, VECTOR_BODY, 240),
    "4 minutes ahead": (VECTOR_HEADERS, VECTOR_BODY, -240),
}
REJECTED = {
    "forged signature": (headers_with(webhook_signature=FORGED), VECTOR_BODY, 0),
    "signed with another secret": (
        headers_with(webhook_signature=signature(VECTOR_BODY, VECTOR_ID, VECTOR_TS, OTHER_SECRET)),
        VECTOR_BODY,
        0,
    ),
    "one byte of the body changed": (VECTOR_HEADERS, b'{"test": 2432232315}', 0),
    "body re-serialised": (VECTOR_HEADERS, b'{"test":2432232314}', 0),
    "another webhook-id": (headers_with(webhook_id="msg_someone_else"), VECTOR_BODY, 0),
    "6 minutes old": (VECTOR_HEADERS, VECTOR_BODY, 360),
    "6 minutes ahead": (VECTOR_HEADERS, VECTOR_BODY, -360),
    "just over 5 minutes old": (VECTOR_HEADERS, VECTOR_BODY, 301),
    "missing webhook-id": (headers_with(webhook_id=None), VECTOR_BODY, 0),
    "missing webhook-timestamp": (headers_with(webhook_timestamp=None), VECTOR_BODY, 0),
    "missing webhook-signature": (headers_with(webhook_signature=None), VECTOR_BODY, 0),
    "no headers at all": ({}, VECTOR_BODY, 0),
    "empty signature": (headers_with(webhook_signature=""), VECTOR_BODY, 0),
    "signature without a version": (headers_with(webhook_signature="v1"), VECTOR_BODY, 0),
    "signature not base64": (headers_with(webhook_signature="v1,!!!"), VECTOR_BODY, 0),
    "signature v1,a,b": (headers_with(webhook_signature="v1,a,b"), VECTOR_BODY, 0),
    "right digest, wrong version": (
        headers_with(webhook_signature="v2," + VECTOR_SIGNATURE[3:]),
        VECTOR_BODY,
        0,
    ),
    "timestamp not a number": (headers_with(webhook_timestamp="yesterday"), VECTOR_BODY, 0),
    "timestamp with a fraction": (headers_with(webhook_timestamp=f"{VECTOR_TS}.0"), VECTOR_BODY, 0),
    "negative timestamp": (headers_with(webhook_timestamp=f"-{VECTOR_TS}"), VECTOR_BODY, 0),
    "webhook-id too long": (headers_with(webhook_id="m" * 300), VECTOR_BODY, 0),
    "header sets mixed": (
        {
            "webhook-id": VECTOR_ID,
            "svix-timestamp": str(VECTOR_TS),
            "webhook-signature": VECTOR_SIGNATURE,
        },
        VECTOR_BODY,
        0,
    ),
    "svix-* names, stale": (as_svix(VECTOR_HEADERS), VECTOR_BODY, 400),
}


@pytest.mark.parametrize("case", ACCEPTED, ids=list(ACCEPTED))
def test_verifiable_requests_are_accepted(vector_url, clock, case):
    headers, body, clock_offset = ACCEPTED[case]
    clock.now = VECTOR_TS + clock_offset

    response = post(vector_url, body, headers)

    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "outcome": "stored"}  # not a sync event: kept


@pytest.mark.parametrize("case", REJECTED, ids=list(REJECTED))
def test_unverifiable_requests_get_401_with_a_reason(vector_url, clock, store_path, case):
    headers, body, clock_offset = REJECTED[case]
    clock.now = VECTOR_TS + clock_offset

    response = post(vector_url, body, headers)

    assert response.status_code == 401, response.text
    assert response.json()["ok"] is False
    assert len(response.json()["reason"]) > 10
    assert query(store_path, "SELECT count(*) FROM webhook_events") == [(0,)]


def test_stale_and_future_reasons_say_which(vector_url, clock):
    clock.now = VECTOR_TS + 301
    assert "old" in post(vector_url, VECTOR_BODY, VECTOR_HEADERS).json()["reason"]
    clock.now = VECTOR_TS - 301
    assert "ahead" in post(vector_url, VECTOR_BODY, VECTOR_HEADERS).json()["reason"]


def test_refusal_is_logged_with_reason_and_never_the_secret(vector_url, caplog):
    caplog.set_level(logging.INFO, logger="destination_codat_expenses")
    post(vector_url, VECTOR_BODY, headers_with(webhook_signature=FORGED))

    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused and "No signature matches" in refused[0] and "401" in refused[0]
    everything = caplog.text
    assert SECRET not in everything
    assert SECRET.removeprefix("whsec_") not in everything
    assert FORGED[3:] not in everything and VECTOR_SIGNATURE[3:] not in everything


def test_rotated_secrets_both_verify(store_path, clock):
    with running_receiver(store_path, secret=f"{OTHER_SECRET} {SECRET}", clock=clock) as url:
        assert post(url, VECTOR_BODY, VECTOR_HEADERS).status_code == 200
        other = headers_with(
            webhook_id="msg_2",
            webhook_signature=signature(VECTOR_BODY, "msg_2", VECTOR_TS, OTHER_SECRET),
        )
        assert post(url, VECTOR_BODY, other).status_code == 200


def test_malformed_secret_is_refused_at_start_without_echoing_it(store_path):
    with pytest.raises(ValueError) as refused:
        running_receiver(store_path, secret="whsec_not-base64!").__enter__()
    assert "not-base64" not in str(refused.value)


GARBAGE = [
    ("POST", {"webhook-id": "\x7f", "webhook-timestamp": "1", "webhook-signature": "v1,"}, b"x"),
    ("POST", {"content-type": "text/plain"}, b"\xff\xfe\x00garbage"),
    ("POST", {"content-length": "12", "webhook-id": "a"}, b"123456789012"),
    ("POST", {**VECTOR_HEADERS, "webhook-timestamp": "9" * 40}, VECTOR_BODY),
    ("GET", {}, b""),
    ("PUT", VECTOR_HEADERS, VECTOR_BODY),
]


@pytest.mark.parametrize("method,headers,body", GARBAGE)
def test_garbage_never_gets_a_5xx(vector_url, method, headers, body):
    response = httpx.request(method, vector_url, headers=headers, content=body, timeout=10)
    assert 400 <= response.status_code < 500


def test_healthz_answers_ok(vector_url):
    response = httpx.get(vector_url.replace("/webhooks/codat", "/healthz"))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "ok": True,
        "store": "ok",
        "spool": {"events": 0, "oldest_seconds": 0},
    }


# -- size --------------------------------------------------------------------------------------
def padded(size: int) -> bytes:
    """A JSON body of exactly `size` bytes."""
    return json.dumps({"pad": "x" * (size - 11)}).encode()


def test_body_at_the_limit_is_accepted_and_one_byte_over_is_413(url):
    at_limit, over = padded(MAX_BODY_BYTES), padded(MAX_BODY_BYTES + 1)
    assert len(at_limit) == MAX_BODY_BYTES

    assert post(url, at_limit, signed(at_limit)).status_code == 200
    response = post(url, over, signed(over))
    assert response.status_code == 413 and response.json()["ok"] is False


def test_declared_length_over_limit_is_413_before_any_body_is_sent(url):
    head = (
        "POST /webhooks/codat HTTP/1.1\nHost: localhost\nContent-Type: application/json\n"
        f"Content-Length: {50 * 1024 * 1024}\n"
    )
    started = time.monotonic()

    assert raw_exchange(url, head, []) == 413
    assert time.monotonic() - started < 2


def test_chunked_body_is_cut_off_once_past_the_limit(url):
    """The body never ends: a receiver that read it whole would still be waiting."""
    piece = b"x" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    headers = signed(b"{}")
    head = "POST /webhooks/codat HTTP/1.1\nHost: localhost\nTransfer-Encoding: chunked\n" + "".join(
        f"{name}: {value}\n" for name, value in headers.items()
    )

    assert raw_exchange(url, head, [chunk] * 5) == 413


# -- once, in any order ------------------------------------------------------------------------
def sync_row(path: str, sync_id: str) -> tuple | None:
    rows = query(
        path,
        "SELECT company_id, status_code, status_text, error_message, data_pushed, run_id, "
        "failed_count, updated_at FROM syncs WHERE sync_id = ?",
        [sync_id],
    )
    return rows[0] if rows else None


def mark(path: str, sync_id: str) -> tuple | None:
    """(status_source, reported_outcome): to confirm, and what the webhooks said."""
    rows = query(
        path, "SELECT status_source, reported_outcome FROM syncs WHERE sync_id = ?", [sync_id]
    )
    return rows[0] if rows else None


TO_CONFIRM_OK, TO_CONFIRM_FAILED = ("webhook", "successful"), ("webhook", "unsuccessful")


def test_same_event_delivered_5_times_is_applied_once(url, store_path):
    sync_id = str(uuid.uuid4())
    body = sync_event(
        False, sync_id, [("t1", "PushError", "Closed period"), ("t2", "Completed", None)]
    )
    webhook_id = "msg_redelivered"

    first = post(url, body, signed(body, webhook_id)).json()
    after_first = sync_row(store_path, sync_id)
    # Codat's retries keep the id and body and sign a new timestamp
    again = [
        post(url, body, signed(body, webhook_id, int(time.time()) + n)).json() for n in range(4)
    ]

    assert first == {"ok": True, "outcome": "applied"}
    assert again == [{"ok": True, "outcome": "duplicate"}] * 4
    assert sync_row(store_path, sync_id) == after_first  # updated_at included: untouched
    assert query(store_path, "SELECT count(*) FROM webhook_events") == [(1,)]
    # the payload's items are not push items: those come from Codat's transaction pages
    assert query(store_path, "SELECT count(*) FROM push_items") == [(0,)]
    assert mark(store_path, sync_id) == TO_CONFIRM_FAILED


def test_same_event_delivered_5_times_at_once_is_applied_once(url, store_path):
    sync_id = str(uuid.uuid4())
    body = sync_event(True, sync_id, [("t1", "Completed", None)])
    headers = signed(body, "msg_at_once")

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda _: post(url, body, headers).json(), range(5)))

    assert sorted(a["outcome"] for a in answers) == ["applied"] + ["duplicate"] * 4
    assert query(store_path, "SELECT count(*) FROM webhook_events") == [(1,)]
    assert sync_row(store_path, sync_id)[1:3] == (None, None)  # no code until Codat gives one
    assert mark(store_path, sync_id) == TO_CONFIRM_OK


def mapped(transaction_id: str) -> MappedTransaction:
    return MappedTransaction(
        transaction_id,
        transaction_id,
        {"id": transaction_id},
        date(2024, 5, 1),
        "GBP",
        Decimal("12.00"),
        "hash",
    )


def pushed(store: StatusStore, sync_id: str, *ids: str) -> None:
    """What the destination records when Codat accepts a push."""
    store.mark_sending(COMPANY, "card_spend", [mapped(i) for i in ids])
    store.mark_sent(COMPANY, list(ids), {"sync_id": sync_id, "run_id": "run-1", "flow": "direct"})


def snapshot(path: str) -> dict:
    """Everything the events can change, without times."""
    return {
        "syncs": query(
            path,
            "SELECT sync_id, company_id, status_code, status_text, error_message, data_pushed, "
            "run_id, failed_count FROM syncs ORDER BY sync_id",
        ),
        "marks": query(
            path, "SELECT sync_id, status_source, reported_outcome FROM syncs ORDER BY sync_id"
        ),
        "items": query(
            path,
            "SELECT sync_id, transaction_id, status, message FROM push_items ORDER BY ALL",
        ),
        "ledger": query(
            path,
            "SELECT transaction_id, state, codat_status, last_sync_id FROM transactions "
            "ORDER BY transaction_id",
        ),
        "attempts": query(
            path,
            "SELECT transaction_id, sync_id, status FROM transaction_attempts ORDER BY ALL",
        ),
    }


@pytest.mark.parametrize("unsuccessful_first", [True, False], ids=["failed-first", "success-first"])
def test_failed_sync_and_its_retry_are_marked_the_same_in_either_order(
    url, store_path, unsuccessful_first
):
    """Sync A's webhook says it failed X and completed Y; the retry B's says it completed X.
    Whatever arrives first, both syncs are to confirm with what each webhook reported, and
    nothing is settled from the payloads: no code, no push item, no ledger move."""
    store = StatusStore(store_path)
    pushed(store, "sync-a", "x", "y")
    pushed(store, "sync-b", "x")  # the retry: same id, new sync
    failed = sync_event(
        False, "sync-a", [("x", "PushError", "Closed period"), ("y", "Completed", None)]
    )
    succeeded = sync_event(True, "sync-b", [("x", "Completed", None)])
    order = [failed, succeeded] if unsuccessful_first else [succeeded, failed]

    for body in order:
        assert post(url, body, signed(body)).json()["outcome"] == "applied"

    state = snapshot(store_path)
    assert state["syncs"] == [
        ("sync-a", COMPANY, None, None, None, None, "run-1", None),
        ("sync-b", COMPANY, None, None, None, None, "run-1", None),
    ]
    assert state["marks"] == [
        ("sync-a", "webhook", "unsuccessful"),
        ("sync-b", "webhook", "successful"),
    ]
    assert state["ledger"] == [
        ("x", "sent", "Pending", "sync-b"),
        ("y", "sent", "Pending", "sync-a"),
    ]
    assert state["items"] == [] and state["attempts"] == []
    assert StatusStore(store_path).syncs_to_confirm() == [
        (COMPANY, s) for s in sorted(["sync-a", "sync-b"], key=order_reported(store_path))
    ]


def order_reported(path: str):
    reported = dict(query(path, "SELECT sync_id, reported_at FROM syncs"))
    return lambda sync_id: (reported[sync_id], sync_id)


def test_conflicting_events_for_one_sync_end_the_same_in_every_order(tmp_path):
    """The legacy "Sync Completed" fired on any completion; with the current unsuccessful event
    and a legacy "Sync Failed" for the same sync, every arrival order gives one state: to
    confirm, reported unsuccessful, and nothing inferred from the payloads."""
    events = [
        legacy_event("Sync Completed", "sync-c"),
        sync_event(
            False, "sync-c", [("x", "Failed", "Account 999 not found"), ("y", "Completed", None)]
        ),
        legacy_event("Sync Failed", "sync-c"),
    ]
    states = []
    for n, order in enumerate(itertools.permutations(events)):
        path = str(tmp_path / f"order-{n}.duckdb")
        StatusStore(path).prepare()
        pushed(StatusStore(path), "sync-c", "x", "y")
        with running_receiver(path) as url:
            for body in order:
                assert post(url, body, signed(body)).status_code == 200
        states.append(snapshot(path))

    assert all(state == states[0] for state in states)
    assert states[0]["syncs"][0][2:5] == (None, None, None)
    assert states[0]["marks"] == [("sync-c", "webhook", "unsuccessful")]
    assert states[0]["ledger"] == [
        ("x", "sent", "Pending", "sync-c"),
        ("y", "sent", "Pending", "sync-c"),
    ]
    assert states[0]["items"] == []


def test_a_status_the_api_recorded_is_never_replaced(url, store_path):
    store = StatusStore(store_path)
    pushed(store, "sync-api", "x")
    store.record_sync_status(
        {
            "syncId": "sync-api",
            "syncStatusCode": 2040,
            "syncStatus": "Complete",
            "dataPushed": False,
            "syncUtc": "2024-09-01T00:00:00Z",
        }
    )
    body = sync_event(False, "sync-api", [("x", "PushError", "late and wrong")])

    assert post(url, body, signed(body)).json()["outcome"] == "applied"

    assert sync_row(store_path, "sync-api")[1:5] == (2040, "Complete", None, False)
    assert mark(store_path, "sync-api") == ("codat", "unsuccessful")  # its word, kept apart
    assert store.syncs_to_confirm() == []


def api_status(sync_id: str, code: int, text: str) -> dict:
    return {
        "syncId": sync_id,
        "syncStatusCode": code,
        "syncStatus": text,
        "dataPushed": code == 2000,
        "syncUtc": "2024-09-01T00:00:00Z",
    }


def test_the_api_settles_what_a_webhook_marked_to_confirm(url, store_path):
    store = StatusStore(store_path)
    pushed(store, "sync-w", "x")
    body = sync_event(True, "sync-w", [("x", "Completed", None)])
    post(url, body, signed(body))
    assert store.syncs_to_confirm() == [(COMPANY, "sync-w")]
    assert store.open_syncs() == [(COMPANY, "sync-w")]  # no final status: followed as open

    store.record_sync_status(api_status("sync-w", 1000, "Pushing"))  # Codat not caught up yet
    assert store.syncs_to_confirm() == [(COMPANY, "sync-w")]

    store.record_sync_status(api_status("sync-w", 2040, "Complete"))
    assert sync_row(store_path, "sync-w")[1:3] == (2040, "Complete")
    assert mark(store_path, "sync-w") == ("codat", "successful")
    assert store.syncs_to_confirm() == [] and store.open_syncs() == []


def test_outcomes_read_from_codat_before_the_push_was_recorded_move_its_ledger(url, store_path):
    """The receiver confirmed a sync from Codat (its items' outcomes are in the store) before the
    destination committed the push that opened it: recording the push moves its transactions to
    those outcomes at once, not `sent` until a refresh."""
    store = StatusStore(store_path)
    body = sync_event(False, "sync-early", [("x", "PushError", "Closed period")])
    post(url, body, signed(body))
    items = [
        {"transactionId": "x", "status": "PushError", "message": "Closed period"},
        {"transactionId": "y", "status": "Completed"},
    ]
    store.record_sync_outcome(COMPANY, api_status("sync-early", 5130, "Failed"), items)
    assert mark(store_path, "sync-early")[0] == "codat"

    pushed(store, "sync-early", "x", "y")

    assert snapshot(store_path)["ledger"] == [
        ("x", "failed", "PushError", "sync-early"),
        ("y", "completed", "Completed", "sync-early"),
    ]


def test_a_webhook_never_moves_the_ledger(url, store_path):
    store = StatusStore(store_path)
    pushed(store, "sync-d", "x")
    ok = sync_event(True, "sync-d", [("x", "Completed", None)])
    contradiction = sync_event(False, "sync-d", [("x", "Failed", "nonsense")])

    post(url, ok, signed(ok))
    post(url, contradiction, signed(contradiction))

    assert snapshot(store_path)["ledger"] == [("x", "sent", "Pending", "sync-d")]
    assert snapshot(store_path)["items"] == []
    assert mark(store_path, "sync-d") == TO_CONFIRM_FAILED


# -- events the store has not seen -------------------------------------------------------------
def test_event_for_an_unknown_sync_is_stored_and_applied(url, store_path):
    body = sync_event(
        False, "sync-new", [("x", "PushError", "Closed period"), ("y", "Pending", None)]
    )

    answer = post(url, body, signed(body, "msg_new"))

    assert answer.status_code == 200 and answer.json()["outcome"] == "applied"
    assert sync_row(store_path, "sync-new")[:7] == (COMPANY, None, None, None, None, None, None)
    assert mark(store_path, "sync-new") == TO_CONFIRM_FAILED
    # no start is known; the time it was first seen stands in for it in the views
    assert query(
        store_path,
        "SELECT s.initiated_at IS NULL, s.first_seen_at IS NOT NULL, v.start_known, "
        "v.initiated_at = s.first_seen_at, v.outcome FROM syncs s JOIN v_syncs v USING (sync_id)",
    ) == [(True, True, False, True, "unconfirmed")]
    assert query(
        store_path,
        "SELECT webhook_id, event_type, verified, applied, sync_id, "
        "company_id, payload->>'$.payload.syncId' FROM webhook_events",
    ) == [("msg_new", "expenses.sync.unsuccessful", True, True, "sync-new", COMPANY, "sync-new")]
    assert StatusStore(store_path).syncs_to_confirm() == [(COMPANY, "sync-new")]


def test_legacy_sync_failed_for_an_unknown_sync(url, store_path):
    body = legacy_event("Sync Failed", "sync-legacy")

    assert post(url, body, signed(body)).json()["outcome"] == "applied"

    assert sync_row(store_path, "sync-legacy")[:4] == (COMPANY, None, None, None)
    assert mark(store_path, "sync-legacy") == TO_CONFIRM_FAILED


def test_destination_recording_the_sync_after_its_webhook_fills_in_the_rest(url, store_path):
    """The webhook won the race with the destination's own commit: nothing is lost either way,
    and the sync stays to confirm with its transactions sent (Codat has not been read)."""
    body = sync_event(
        False, "sync-race", [("x", "PushError", "Closed period"), ("y", "Completed", None)]
    )
    post(url, body, signed(body))

    pushed(StatusStore(store_path), "sync-race", "x", "y")

    assert sync_row(store_path, "sync-race")[1:3] == (None, None)
    assert sync_row(store_path, "sync-race")[5] == "run-1"
    assert mark(store_path, "sync-race") == TO_CONFIRM_FAILED
    assert snapshot(store_path)["ledger"] == [
        ("x", "sent", "Pending", "sync-race"),
        ("y", "sent", "Pending", "sync-race"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(
            {
                "id": "e1",
                "eventType": "client.rateLimit.reached",
                "payload": {"dailyQuota": 1000, "quotaRemaining": 0},
            }
        ).encode(),
        b"signed, but not JSON",
        json.dumps([1, 2, 3]).encode(),
        sync_event(True, "sync-nobody", [("x", "Completed", None)], company_id=None),
        json.dumps({"eventType": "expenses.sync.successful", "payload": {"syncId": 42}}).encode(),
    ],
    ids=["rate-limit event", "not JSON", "JSON array", "no company", "sync id not a string"],
)
def test_events_with_nothing_to_apply_are_kept_and_acknowledged(url, store_path, body):
    answer = post(url, body, signed(body, "msg_other"))

    assert answer.status_code == 200 and answer.json()["outcome"] == "stored"
    assert query(store_path, "SELECT applied, payload IS NOT NULL FROM webhook_events") == [
        (False, True)
    ]
    assert query(store_path, "SELECT count(*) FROM syncs") == [(0,)]


# -- a busy store ------------------------------------------------------------------------------
def hold_lock(path: str, seconds: float) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import duckdb, time
        while True:  # the receiver may hold the file for a moment itself
            try:
                connection = duckdb.connect({path!r})
                break
            except duckdb.IOException:
                time.sleep(0.01)
        print("locked", flush=True)
        time.sleep({seconds})
        connection.close()
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def spooled(store_path: str) -> list[str]:
    folder = Path(f"{store_path}.webhook-spool")
    return sorted(p.name for p in folder.glob("*.jsonl")) if folder.is_dir() else []


def applied_events(store_path: str) -> list[tuple]:
    return query(store_path, "SELECT webhook_id, applied FROM webhook_events ORDER BY ALL")


def test_store_held_by_another_process_gets_a_quick_202_and_is_applied_once_free(url, store_path):
    body = sync_event(True, "sync-busy", [("x", "Completed", None)])
    holder = hold_lock(store_path, 2.5)
    try:
        started = time.monotonic()
        first = post(url, body, signed(body, "msg_busy"))
        waited = time.monotonic() - started
        redelivered = post(url, body, signed(body, "msg_busy"))  # Codat's retry, meanwhile
        held = spooled(store_path)
    finally:
        holder.wait(timeout=30)

    assert (first.status_code, first.json()) == (202, {"ok": True, "outcome": "queued"})
    assert waited < 1.0
    # each delivery is on disk; the writer and a tired request may both have written one
    assert redelivered.status_code == 202 and len(held) >= 2
    wait_for(lambda: applied_events(store_path) == [("msg_busy", True)], timeout=10)
    wait_for(lambda: spooled(store_path) == [], timeout=10)
    assert mark(store_path, "sync-busy") == TO_CONFIRM_OK
    assert post(url, body, signed(body, "msg_busy")).json()["outcome"] == "duplicate"


def test_events_held_at_shutdown_are_applied_at_the_next_start(store_path):
    body = sync_event(False, "sync-later", [("x", "PushError", "Closed period")])
    with contextlib.ExitStack() as receiver:
        url = receiver.enter_context(running_receiver(store_path))
        holder = hold_lock(store_path, 2.0)
        try:
            assert post(url, body, signed(body, "msg_later")).status_code == 202
            receiver.close()  # stopped while the store is still held
            # on disk at least once (the writer and a tired request may each have spooled it)
            assert len(spooled(store_path)) >= 1
        finally:
            holder.wait(timeout=30)

    with running_receiver(store_path):  # no traffic at all: the start applies the spool
        wait_for(lambda: applied_events(store_path) == [("msg_later", True)], timeout=10)
    assert spooled(store_path) == []
    assert mark(store_path, "sync-later") == TO_CONFIRM_FAILED


def test_503_only_when_neither_the_store_nor_the_spool_takes_the_event(tmp_path, store_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the spool folder would go")
    body = sync_event(True, "sync-nowhere", [("x", "Completed", None)])
    with running_receiver(store_path, spool_dir=str(blocker / "spool")) as url:
        holder = hold_lock(store_path, 2.0)
        try:
            refused = post(url, body, signed(body, "msg_nowhere"))
        finally:
            holder.wait(timeout=30)
        retried = post(url, body, signed(body, "msg_nowhere"))

    assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    assert refused.json()["ok"] is False
    assert retried.json() == {"ok": True, "outcome": "applied"}
