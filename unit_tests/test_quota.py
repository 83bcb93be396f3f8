"""RequestQuota: Codat's X-Rate-Limit-* headers steer what the client sends (codat/quota.py),
with a fake clock; and the client with exact answers from a MockTransport."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from destination_codat_expenses.codat.client import AttemptPolicy, CodatClient
from destination_codat_expenses.codat.quota import RESET_MARGIN_S, RequestQuota
from destination_codat_expenses.errors import QuotaExhausted

NOW = 1_800_000_000.0  # the fake clock's start (2027-01-15)
COMPANY = "11111111-1111-4111-8111-111111111111"


class Clock:
    def __init__(self) -> None:
        self.now = NOW
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def headers(remaining, limit=100, reset_in: float | None = 30.0) -> dict[str, str]:
    answer = {"x-rate-limit-remaining": str(remaining), "x-rate-limit-limit": str(limit)}
    if reset_in is not None:
        moment = datetime.fromtimestamp(NOW + reset_in, UTC)
        answer["x-rate-limit-reset"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return answer


def quota(**options) -> tuple[RequestQuota, Clock]:
    clock = Clock()
    return RequestQuota(clock=clock, pause=clock.pause, **options), clock


def test_without_rate_headers_nothing_is_steered():
    steered, clock = quota()
    for _ in range(3):
        with steered.request(opens=True):
            pass
    assert clock.pauses == []


def test_a_request_goes_while_the_quota_has_room():
    steered, clock = quota()
    steered.observe(headers(remaining=1))
    with steered.request():
        pass
    assert clock.pauses == []


def test_a_near_reset_is_waited_for_instead_of_sending_into_a_429():
    steered, clock = quota(max_wait_s=60)
    steered.observe(headers(remaining=0, limit=40, reset_in=12))

    with steered.request():
        pass

    assert clock.pauses == [12 + RESET_MARGIN_S]
    assert steered.remaining == 40  # the new window's whole quota, until an answer says more


def test_a_far_reset_ends_at_once_with_a_sentence_naming_it():
    steered, clock = quota(max_wait_s=120)
    steered.observe(headers(remaining=0, limit=5000, reset_in=6 * 3600))

    with pytest.raises(QuotaExhausted) as raised, steered.request():
        pass

    assert clock.pauses == []
    when = datetime.fromtimestamp(NOW + 6 * 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"used up until {when} (0 of 5000 requests left)" in str(raised.value)
    assert steered.in_flight == 0


def test_opening_a_sync_keeps_quota_to_follow_every_open_one():
    steered, _ = quota(max_wait_s=0)
    steered.opened("sync-a")
    steered.opened("sync-b")
    steered.observe(headers(remaining=7, reset_in=3600))

    # 1 for the create, 3 for each of the three syncs then open: 10 > 7
    with pytest.raises(QuotaExhausted, match="3 kept for each of the 2 syncs still open"):
        steered.check_open()
    with steered.request():  # following them may use what was kept
        pass

    steered.settled("sync-a")
    steered.check_open()  # 1 + 3 x 2 = 7 <= 7


def test_without_following_no_quota_is_kept_for_syncs():
    steered, _ = quota(max_wait_s=0, reserve_per_sync=0)
    steered.opened("sync-a")
    steered.observe(headers(remaining=1, reset_in=3600))
    steered.check_open()


def test_requests_in_flight_count_as_spent():
    steered, clock = quota(max_wait_s=60)
    steered.observe(headers(remaining=2, reset_in=10))
    with steered.request(), steered.request():
        assert steered.shortfall(False, clock()) == 10
    assert steered.shortfall(False, clock()) is None


def test_a_far_reset_waits_for_answers_in_flight_before_giving_up():
    steered = RequestQuota(max_wait_s=0)
    steered.observe(
        {
            "x-rate-limit-remaining": "1",
            "x-rate-limit-limit": "9",
            "x-rate-limit-reset": "2999-01-01T00:00:00Z",
        }
    )
    admitted = threading.Event()
    with steered.request():
        waiter = threading.Thread(target=lambda: (steered.admit(False), admitted.set()))
        waiter.start()
        assert not admitted.wait(0.3)  # short while one is in flight
        steered.observe(
            {"x-rate-limit-remaining": "1", "x-rate-limit-reset": "2999-01-01T00:00:00Z"}
        )
    waiter.join(5)  # that answer left 1 and nothing is in flight: it goes
    assert admitted.is_set()


def test_an_answer_from_an_older_window_is_ignored():
    steered, _ = quota()
    steered.observe(headers(remaining=90, reset_in=60))
    steered.observe(headers(remaining=3, reset_in=0))
    assert (steered.remaining, steered.reset) == (90, NOW + 60)


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=20))
def test_within_a_window_the_least_remaining_is_the_latest_word(remainings):
    steered, _ = quota()
    for remaining in remainings:
        steered.observe(headers(remaining))
    assert steered.remaining == min(remainings)


@pytest.mark.parametrize(
    "answer",
    [
        {},
        {"x-rate-limit-remaining": "-1"},
        {"x-rate-limit-remaining": "lots"},
        {"x-rate-limit-remaining": "1e3"},
        {"x-rate-limit-remaining": ""},
    ],
)
def test_headers_that_do_not_read_steer_nothing(answer):
    steered, _ = quota()
    steered.observe(answer)
    assert steered.remaining is None


@pytest.mark.parametrize("reset", ["tomorrow", "", "2026-13-45T00:00:00Z"])
def test_a_reset_that_does_not_read_leaves_the_429_path_to_decide(reset):
    steered, clock = quota(max_wait_s=0)
    steered.observe({"x-rate-limit-remaining": "0", "x-rate-limit-reset": reset})
    with steered.request():
        pass
    assert clock.pauses == []


def test_a_reset_given_as_an_http_date_or_naive_iso_time_is_read():
    steered, clock = quota(max_wait_s=60)
    moment = datetime.fromtimestamp(NOW + 20, UTC)
    steered.observe(
        {"x-rate-limit-remaining": "0", "x-rate-limit-reset": format_datetime(moment, True)}
    )
    assert steered.reset == NOW + 20
    other, _ = quota()
    other.observe(
        {"x-rate-limit-remaining": "0", "x-rate-limit-reset": moment.strftime("%Y-%m-%dT%H:%M:%S")}
    )
    assert other.reset == NOW + 20


# -- the client ----------------------------------------------------------------------------------
def client_answering(*answers) -> tuple[CodatClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, body, extra = queue.pop(0)
        return httpx.Response(status, json=body, headers=extra)

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="https://codat.test")
    policy = AttemptPolicy(attempts=4, budget=10)
    return CodatClient(http, "key", policy, sleep=lambda s: None), seen


def far(remaining: int) -> dict[str, str]:
    return {
        "X-Rate-Limit-Remaining": str(remaining),
        "X-Rate-Limit-Limit": "5000",
        "X-Rate-Limit-Reset": "2999-01-01T00:00:00Z",
    }


def test_the_client_sends_nothing_once_the_quota_is_used_up_until_a_far_reset():
    client, seen = client_answering((200, {"syncId": "s1"}, far(2)))

    assert client.create_expense_transactions(COMPANY, [{"id": "a"}], key="k1") == "s1"
    with pytest.raises(QuotaExhausted):  # 1 + 3 x 2 (s1 and its own) > 2
        client.create_expense_transactions(COMPANY, [{"id": "b"}], key="k2")
    assert len(seen) == 1


def test_a_429_that_used_the_quota_up_is_not_waited_on_nor_tried_again():
    sleeps: list[float] = []
    client, seen = client_answering((429, {}, {**far(0), "Retry-After": "86000"}))
    client.sleep = sleeps.append

    with pytest.raises(QuotaExhausted, match="used up until 2999-01-01T00:00:00Z"):
        client.get_company(COMPANY)

    assert (len(seen), sleeps) == (1, [])  # no wait, and no second try into the same answer


def test_a_final_status_frees_the_quota_kept_for_its_sync():
    final = {"syncId": "s1", "syncStatusCode": 2000}
    client, seen = client_answering(
        (200, {"syncId": "s1"}, far(100)), (200, final, far(99)), (200, {"syncId": "s2"}, far(3))
    )
    client.create_expense_transactions(COMPANY, [{"id": "a"}], key="k1")
    client.get_sync_status(COMPANY, "s1")

    assert client.quota.open_syncs == set()
    assert client.create_expense_transactions(COMPANY, [{"id": "b"}], key="k2") == "s2"


def test_a_progress_line_says_what_the_answers_said_of_the_quota():
    steered, _ = quota()
    assert steered.said() == ""
    steered.observe(headers(remaining=37, limit=5000, reset_in=3600))
    when = datetime.fromtimestamp(NOW + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert steered.said() == f", Codat quota 37 of 5000 left until {when}"


@given(
    quota_left=st.integers(0, 30),
    steps=st.lists(st.tuples(st.booleans(), st.integers(0, 10**6)), min_size=1, max_size=80),
)
def test_no_request_is_sent_into_a_used_up_quota_whatever_the_order_of_answers(quota_left, steps):
    """A model of Codat: each request it receives spends one of `quota_left`, and its answer
    says what is left then; answers come back in any order. Once one answer has told the quota,
    the client never lets a request go that Codat would have to refuse (the reset is far)."""
    steered, clock = quota(max_wait_s=0, reserve_per_sync=0)
    steered.observe(headers(quota_left, reset_in=3600))
    codat_left, in_flight = quota_left, []  # what each request in flight will be told
    for send, pick in steps:
        if send:
            with steered.changed:  # admit's decision, without its wait for answers in flight
                if steered.shortfall(False, clock()) is not None:
                    continue
                steered.in_flight += 1
            assert codat_left > 0, "sent into a used-up quota: Codat answers 429"
            codat_left -= 1
            in_flight.append(codat_left)
        elif in_flight:
            told = in_flight.pop(pick % len(in_flight))
            steered.observe(headers(told, reset_in=3600))
            with steered.changed:
                steered.in_flight -= 1
    assert steered.remaining - steered.in_flight <= codat_left  # never more than Codat has
