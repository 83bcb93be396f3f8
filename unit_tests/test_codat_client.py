"""CodatClient attempts, backoff and error mapping, with exact answers from a MockTransport."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import httpx
import pytest

from destination_codat_expenses import jsonwire
from destination_codat_expenses.codat.client import (
    AttemptBudget,
    AttemptPolicy,
    CodatClient,
    retry_after,
)
from destination_codat_expenses.errors import FatalAPIError, RetriableAPIError

COMPANY = "11111111-1111-4111-8111-111111111111"
SECRET = "canary-key-7f3a"


def scripted(*answers):
    """A client whose transport answers with the given (status, body, headers) in turn."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, body, headers = queue.pop(0)
        if isinstance(status, Exception):
            raise status
        return httpx.Response(status, json=body, headers=headers)

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="https://codat.test")
    sleeps: list[float] = []
    client = CodatClient(http, SECRET, AttemptPolicy(attempts=4, budget=10), sleep=sleeps.append)
    return client, seen, sleeps


def test_429_retry_after_seconds_is_honoured_then_succeeds():
    client, seen, sleeps = scripted((429, {}, {"Retry-After": "7"}), (200, {"syncId": "s1"}, {}))
    assert client.create_expense_transactions(COMPANY, [{"id": "a"}], key="k1") == "s1"
    assert sleeps == [7.0]
    assert [r.headers["Idempotency-Key"] for r in seen] == ["k1", "k1"]


def test_retry_after_http_date_is_understood():
    later = datetime.now(UTC) + timedelta(seconds=30)
    seconds = retry_after(httpx.Headers({"Retry-After": format_datetime(later, usegmt=True)}))
    assert 25 <= seconds <= 31


def test_5xx_and_transport_errors_back_off_with_jitter():
    client, seen, sleeps = scripted(
        (500, {}, {}),
        (httpx.ConnectError("boom"), None, None),
        (503, {}, {}),
        (200, {"syncId": "s1"}, {}),
    )
    assert client.create_expense_transactions(COMPANY, [{"id": "a"}], key="k") == "s1"
    assert len(seen) == 4 and len(sleeps) == 3
    assert all(0 <= s <= 30 for s in sleeps)


def test_post_without_idempotency_key_is_never_retried():
    client, seen, _ = scripted((503, {}, {}), (200, {}, {}))
    with pytest.raises(RetriableAPIError):
        client._send("POST", "/companies", body={"name": "x"})
    assert len(seen) == 1


def test_attempts_exhausted_raise_retriable_with_status():
    client, seen, _ = scripted(*[(503, {"error": "down"}, {})] * 4)
    with pytest.raises(RetriableAPIError) as raised:
        client.get_sync_status(COMPANY, "s1")
    assert raised.value.status == 503 and len(seen) == 4


def test_attempt_budget_is_shared_across_calls():
    client, seen, _ = scripted(*[(503, {}, {})] * 20)
    client.budget = AttemptBudget(floor=2, ratio=0)
    with pytest.raises(RetriableAPIError):
        client.get_sync_status(COMPANY, "s1")
    with pytest.raises(RetriableAPIError):
        client.get_sync_status(COMPANY, "s1")
    assert len(seen) == 4  # 3 for the first call (2 extra attempts), then 1 with no budget left


def test_400_is_fatal_with_codat_validation_and_no_secret():
    body = {
        "statusCode": 400,
        "error": "Error processing request - not valid.",
        "correlationId": "c0ffee",
        "validation": {"errors": [{"itemId": "a", "message": "type: bad"}]},
    }
    client, seen, _ = scripted((400, body, {}))
    with pytest.raises(FatalAPIError) as raised:
        client.create_expense_transactions(COMPANY, [{"id": "a"}], key="k")
    error = raised.value
    assert error.status == 400 and error.correlation_id == "c0ffee"
    assert error.validation[0]["itemId"] == "a" and len(seen) == 1
    assert SECRET not in str(error) and SECRET not in repr(error.__dict__)


SECRET_B64 = base64.b64encode(SECRET.encode()).decode()
# what an upstream that repeats the request might say, in every form and letter case
ECHOES = [
    f"Authorization: Basic {SECRET_B64}",
    f"authorization: basic {SECRET_B64.lower()}",
    f"AUTHORIZATION: BASIC {SECRET_B64.upper()}",
    f"key={SECRET}",
    f"key={SECRET.upper()}",
]


def echoing_body() -> dict:
    echo = " | ".join(ECHOES)
    return {
        "error": f"Bad request; you sent {echo}",
        "correlationId": f"Basic {SECRET_B64}",
        "validation": {
            "errors": [
                {"itemId": "a", "message": f"header {echo}", "validatorName": SECRET},
                "not an object",
                {"itemId": "b", "message": {"nested": SECRET}},
            ]
        },
    }


def assert_scrubbed(error) -> None:
    texts = [str(error), repr(error), repr(error.__dict__)]
    for text in texts:
        for form in (SECRET, SECRET_B64):
            assert form.lower() not in text.lower(), f"{form!r} in {text!r}"


@pytest.mark.parametrize("status", [400, 404, 503])
def test_an_error_body_echoing_the_key_is_scrubbed_before_the_error_carries_it(status):
    policy = AttemptPolicy(attempts=1)
    answer = httpx.Response(status, json=echoing_body())
    http = httpx.Client(
        transport=httpx.MockTransport(lambda request: answer), base_url="https://codat.test"
    )
    client = CodatClient(http, SECRET, policy, sleep=lambda s: None)
    with pytest.raises((FatalAPIError, RetriableAPIError)) as raised:
        client.list_companies()
    error = raised.value
    assert_scrubbed(error)
    assert error.detail.count("[redacted]") == len(ECHOES)
    assert error.detail.startswith("Bad request; you sent Authorization: Basic [redacted]")
    assert error.correlation_id == "Basic [redacted]"
    assert error.validation == [
        {
            "itemId": "a",
            "message": f"header {error.detail.split('sent ')[1]}",
            "validatorName": "[redacted]",
        },
        {"itemId": "b"},
    ]


def test_auth_header_is_basic_base64_of_key():
    client, seen, _ = scripted((200, {"id": COMPANY}, {}))
    client.list_companies(page_size=1)
    assert seen[0].headers["Authorization"] == "Basic Y2FuYXJ5LWtleS03ZjNh"


def test_money_goes_on_the_wire_exactly():
    client, seen, _ = scripted((200, {"syncId": "s"}, {}))
    line = {"netAmount": Decimal("10.10"), "taxAmount": Decimal("0.000000001")}
    client.create_expense_transactions(COMPANY, [{"id": "a", "lines": [line]}], key="k")
    wire = seen[0].content.decode()
    assert '"netAmount":10.10' in wire and '"taxAmount":0.000000001' in wire
    assert json.loads(wire, parse_float=Decimal)[0]["lines"][0]["netAmount"] == Decimal("10.10")


def test_floats_are_refused_on_the_wire():
    with pytest.raises(TypeError):
        jsonwire.dumps({"netAmount": 1.1})


def test_paging_follows_next_links():
    page1 = {"results": [{"transactionId": "a"}], "_links": {"next": {"href": "x"}}}
    page2 = {"results": [{"transactionId": "b"}], "_links": {}}
    client, seen, _ = scripted((200, page1, {}), (200, page2, {}))
    ids = [t["transactionId"] for t in client.iter_sync_transactions(COMPANY, "s1")]
    assert ids == ["a", "b"]
    assert [r.url.params["page"] for r in seen] == ["1", "2"]


def test_attempt_budget_grows_with_traffic():
    budget = AttemptBudget(floor=1, ratio=0.5)
    assert budget.take() and not budget.take()
    for _ in range(4):
        budget.sent()
    assert budget.take() and budget.take() and not budget.take()


def test_one_upload_is_the_same_bytes_every_time_it_is_sent():
    """Two senders of one receipt (a run and the receiver, or a retry after a lost answer)
    send the same key and, with a boundary derived from it, the same body: Codat replays its
    first answer instead of refusing a different body under a used key (422)."""
    client, seen, _ = scripted((200, {"id": "a1"}, {}), (200, {"id": "a1"}, {}))
    for _ in range(2):
        client.upload_attachment(COMPANY, "s1", "t1", "r.png", b"\x89PNG", "image/png", "k-1")
    first, second = (request.read() for request in seen)
    assert first == second and b"\x89PNG" in first
    assert seen[0].headers["Content-Type"].startswith("multipart/form-data; boundary=")


OTHER_COMPANY = "33333333-3333-4333-8333-333333333333"


def test_a_429_halves_the_companys_requests_in_flight_and_answers_earn_them_back():
    answers = [(429, {}, {"Retry-After": "1"}), (200, {"syncId": "s1"}, {})]
    answers += [(200, {"syncId": "s"}, {})] * 40
    client, _, sleeps = scripted(*answers)

    client.create_expense_transactions(COMPANY, [{"id": "a"}], key="k1")
    assert sleeps == [1.0]  # the request that met the 429 waited its Retry-After
    assert client.gates.limit(COMPANY) == 5
    assert client.gates.limit(OTHER_COMPANY) == 10  # another company's share is its own

    grown = []
    for n in range(36):  # AIMD: one more in flight per `limit` answers, 5+6+7+8+9 to get to 10
        client.create_expense_transactions(COMPANY, [{"id": f"b{n}"}], key=f"k{n}")
        grown.append(client.gates.limit(COMPANY))
    # the retry's answer was the first of the 5 that earn the sixth
    assert (grown[2], grown[3]) == (5, 6)
    assert (grown[32], grown[33], grown[35]) == (9, 10, 10)
    assert client.gates.limit(COMPANY) == 10  # never more than Codat's 10


def test_no_company_has_more_requests_in_flight_than_its_limit():
    """Four threads ask for one company narrowed to 2: two requests reach Codat, the others
    wait at the gate until one of those is answered."""
    entered, release = [], threading.Event()
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            entered.append(request)
        assert release.wait(10)
        return httpx.Response(200, json={"syncId": "s"})

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="https://codat.test")
    client = CodatClient(http, SECRET, AttemptPolicy(attempts=1))
    client.gates.throttled(COMPANY)
    client.gates.throttled(COMPANY)  # 10 -> 5 -> 2
    threads = [
        threading.Thread(
            target=client.create_expense_transactions, args=(COMPANY, [{"id": str(n)}], str(n))
        )
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while len(entered) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # room for a third to slip through, were the gate open
    assert len(entered) == 2 and client.gates.in_flight[COMPANY] == 2
    release.set()
    for thread in threads:
        thread.join(10)
    assert len(entered) == 4 and client.gates.in_flight[COMPANY] == 0
