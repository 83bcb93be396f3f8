"""Outgoing webhooks over loopback: a real receiver gets signed, retried sync events."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from codat_sandbox.app import SandboxSettings, create_app
from codat_sandbox.server import ServerThread
from codat_sandbox.webhooks import Endpoint, signed_headers
from integration_tests.conftest import API_KEY, XERO, expense, expenses_path, wait_for

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
RETRY_SCHEDULE = (0, 0.2, 0.2, 0.2)


class Receiver:
    """Collects every delivery's raw body and headers; answers 500 to the first `fail_first`."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, dict[str, str]]] = []
        self.fail_first = 0
        self.app = Starlette(routes=[Route("/hook", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        self.calls.append((await request.body(), dict(request.headers)))
        return Response(status_code=500 if len(self.calls) <= self.fail_first else 204)

    def events(self) -> list[dict]:
        return [json.loads(body) for body, _ in self.calls]


@pytest.fixture
def sandbox_app():
    settings = SandboxSettings(
        api_key=API_KEY, scenario="demo", webhook_retry_schedule=RETRY_SCHEDULE
    )
    return create_app(settings)


@pytest.fixture
def receiver():
    receiver = Receiver()
    with ServerThread(receiver.app) as base_url:
        receiver.url = base_url + "/hook"
        yield receiver


def register(api, receiver: Receiver, **options) -> str:
    body = {"url": receiver.url, "secret": SECRET, "legacy": False, "headerStyle": "webhook"}
    response = api.post("/_sandbox/webhooks", json={**body, **options})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def push(api, *items: dict) -> str:
    response = api.post(expenses_path(XERO) + "/expense-transactions", json=list(items))
    assert response.status_code == 200, response.text
    return response.json()["syncId"]


def deliveries(api) -> list[dict]:
    return api.get("/_sandbox/webhooks/deliveries").json()


def settled_delivery(api, sync_id: str) -> dict:
    """Wait until the sync's one delivery has stopped retrying (delivered, or out of tries)."""

    def done():
        rows = [d for d in deliveries(api) if d["syncId"] == sync_id]
        finished = rows and (rows[0]["delivered"] or len(rows[0]["attempts"]) == 4)
        return finished and rows

    rows = wait_for(done)
    assert len(rows) == 1
    return rows[0]


def test_successful_sync_sends_one_successful_event(api, receiver):
    register(api, receiver)
    items = [expense(), expense()]
    sync_id = push(api, *items)

    delivery = settled_delivery(api, sync_id)

    assert api.post("/_sandbox/tick").json()["deliveries"] == 0  # nothing left to send
    assert len(receiver.calls) == 1
    event = receiver.events()[0]
    assert event["eventType"] == delivery["eventType"] == "expenses.sync.successful"
    assert event["payload"]["referenceCompany"]["id"] == XERO
    assert event["payload"]["syncId"] == sync_id
    assert event["payload"]["transactions"] == [
        {"id": item["id"], "status": "Completed", "errorMessage": None} for item in items
    ]
    status = api.get(expenses_path(XERO) + f"/syncs/{sync_id}/status").json()
    assert status["syncStatusCode"] == 2000
    assert receiver.calls[0][1]["webhook-id"] == delivery["messageId"]


def test_closed_period_sync_sends_unsuccessful_event_with_error(api, receiver):
    register(api, receiver)
    good, closed = expense(), expense(issueDate="2023-01-01")
    sync_id = push(api, good, closed)

    settled_delivery(api, sync_id)

    event = receiver.events()[0]
    assert event["eventType"] == "expenses.sync.unsuccessful"
    assert event["payload"]["syncId"] == sync_id
    by_id = {t["id"]: t for t in event["payload"]["transactions"]}
    assert by_id[good["id"]] == {"id": good["id"], "status": "Completed", "errorMessage": None}
    assert by_id[closed["id"]]["status"] == "PushError"
    assert "closed period" in by_id[closed["id"]]["errorMessage"]


def test_delivered_signature_verifies_with_endpoint_secret(api, receiver):
    register(api, receiver)
    sync_id = push(api, expense())
    settled_delivery(api, sync_id)
    body, headers = receiver.calls[0]

    assert Webhook(SECRET).verify(body, headers)["payload"]["syncId"] == sync_id
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"another secret").decode()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(sync_id.encode(), b"tampered"), headers)


def test_svix_header_style_sends_verifiable_svix_headers(api, receiver):
    register(api, receiver, headerStyle="svix")
    sync_id = push(api, expense())
    settled_delivery(api, sync_id)
    body, headers = receiver.calls[0]

    assert not any(name.startswith("webhook-") for name in headers)
    renamed = {name.replace("svix-", "webhook-"): value for name, value in headers.items()}
    assert Webhook(SECRET).verify(body, renamed)["payload"]["syncId"] == sync_id


def test_legacy_endpoint_gets_sync_completed_and_sync_failed_rules(api, receiver):
    register(api, receiver, legacy=True)
    ok_sync = push(api, expense())
    settled_delivery(api, ok_sync)
    failed_sync = push(api, expense(issueDate="2023-01-01"))
    settled_delivery(api, failed_sync)

    completed, failed = receiver.events()

    assert completed["RuleType"] == "Sync Completed"
    assert completed["CompanyId"] == XERO
    assert completed["Data"]["syncId"] == ok_sync
    assert failed["RuleType"] == "Sync Failed"
    assert failed["CompanyId"] == XERO
    assert failed["Data"] == {
        "syncId": failed_sync,
        "syncType": "Expense",
        "FailureStage": "Pushing",
    }
    for body, headers in receiver.calls:
        Webhook(SECRET).verify(body, headers)


def test_receiver_failing_twice_gets_same_message_until_2xx(api, receiver):
    receiver.fail_first = 2
    register(api, receiver)
    sync_id = push(api, expense())

    delivery = settled_delivery(api, sync_id)

    assert delivery["delivered"] is True
    assert [a["status"] for a in delivery["attempts"]] == [500, 500, 204]
    assert {headers["webhook-id"] for _, headers in receiver.calls} == {delivery["messageId"]}
    assert len({body for body, _ in receiver.calls}) == 1
    for body, headers in receiver.calls:
        Webhook(SECRET).verify(body, headers)


def test_receiver_never_2xx_gets_one_try_per_schedule_slot(api, receiver):
    receiver.fail_first = 100
    register(api, receiver)
    sync_id = push(api, expense())

    delivery = settled_delivery(api, sync_id)

    assert api.post("/_sandbox/tick").json()["deliveries"] == 0
    assert delivery["delivered"] is False
    assert [a["status"] for a in delivery["attempts"]] == [500] * len(RETRY_SCHEDULE)
    assert len(receiver.calls) == len(RETRY_SCHEDULE)


def test_each_registered_endpoint_gets_its_own_delivery(api, receiver):
    first, second = register(api, receiver), register(api, receiver, legacy=True)
    sync_id = push(api, expense())

    wait_for(lambda: len(receiver.calls) == 2)

    rows = [d for d in deliveries(api) if d["syncId"] == sync_id]
    assert sorted(d["endpointId"] for d in rows) == sorted([first, second])
    assert len({d["messageId"] for d in rows}) == 2


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://127.0.0.1:9/hook", "secret": "whsec_"},
        {"url": "http://127.0.0.1:9/hook", "secret": 42},
        {"url": "http://127.0.0.1:9/hook", "secret": SECRET, "headerStyle": "carrier-pigeon"},
        {"secret": SECRET},
    ],
)
def test_invalid_webhook_endpoint_rejected_with_400(api, body):
    response = api.post("/_sandbox/webhooks", json=body)

    assert response.status_code == 400
    assert response.json()["statusCode"] == 400


# -- the signing algorithm, against the test vector in Codat's docs ---------------------------
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_docs_test_vector_matches_hmac_sha256_over_id_timestamp_body():
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    content = f"{VECTOR_ID}.{VECTOR_TS}.{VECTOR_BODY}".encode()
    digest = hmac.new(key, content, hashlib.sha256).digest()

    assert "v1," + base64.b64encode(digest).decode() == VECTOR_SIGNATURE


@pytest.mark.parametrize("offset_hours", [0, 5.5, -8])
def test_signed_headers_reproduce_docs_test_vector_in_any_timezone(offset_hours):
    zone = timezone(timedelta(hours=offset_hours))
    moment = datetime.fromtimestamp(VECTOR_TS, tz=zone)
    endpoint = Endpoint("ep_test", "http://127.0.0.1/hook", SECRET)

    headers = signed_headers(endpoint, VECTOR_ID, VECTOR_BODY, timestamp=moment)

    assert headers["webhook-id"] == VECTOR_ID
    assert headers["webhook-timestamp"] == str(VECTOR_TS)
    assert headers["webhook-signature"] == VECTOR_SIGNATURE


def test_signed_headers_without_timestamp_verify_now():
    endpoint = Endpoint("ep_test", "http://127.0.0.1/hook", SECRET, header_style="webhook")

    headers = signed_headers(endpoint, VECTOR_ID, VECTOR_BODY)

    assert abs(int(headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60
    assert Webhook(SECRET).verify(VECTOR_BODY, headers) == {"test": 2432232314}
