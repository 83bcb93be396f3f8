"""Codat's rate limits over loopback: X-Rate-Limit-* headers, the per-minute quota (on the
sandbox clock) and the per-company cap on concurrent requests."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from integration_tests.conftest import AUTH, QBO, XERO, expenses_path

RATE_HEADERS = ("X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset")


def set_limits(api: httpx.Client, **limits) -> None:
    response = api.put("/_sandbox/limits", json=limits)
    assert response.status_code == 200, response.text


def sandbox_now(api: httpx.Client, advance: float = 0) -> datetime:
    response = api.post("/_sandbox/clock/advance", json={"seconds": advance})
    return datetime.fromisoformat(response.json()["now"])


def start_of_minute(api: httpx.Client) -> None:
    """Move the sandbox clock just past a minute boundary, so a quota test has ~59 s of window."""
    now = sandbox_now(api)
    sandbox_now(api, advance=60.5 - now.second - now.microsecond / 1e6)


def parse_reset(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/companies", None, 200),
        ("GET", f"/companies/{XERO}", None, 200),
        ("GET", "/companies/00000000-0000-4000-8000-000000000000", None, 404),
        ("POST", expenses_path(XERO) + "/expense-transactions", {"not": "a list"}, 400),
        ("GET", expenses_path(XERO) + "/syncs/latest/status", None, 404),
    ],
)
def test_any_api_response_carries_rate_limit_headers(api, method, path, body, status):
    start_of_minute(api)
    response = api.request(method, path, json=body)

    assert response.status_code == status
    assert response.headers["X-Rate-Limit-Limit"] == "60000"
    assert 0 <= int(response.headers["X-Rate-Limit-Remaining"]) < 60000
    reset = parse_reset(response.headers["X-Rate-Limit-Reset"])
    assert timedelta(0) < reset - sandbox_now(api) <= timedelta(seconds=61)


def test_each_request_decrements_remaining(api):
    first = int(api.get("/companies").headers["X-Rate-Limit-Remaining"])
    second = int(api.get(f"/companies/{QBO}").headers["X-Rate-Limit-Remaining"])

    assert second == first - 1


def test_per_minute_quota_exhausted_answers_429_with_retry_after(api):
    set_limits(api, perMinute=3)
    start_of_minute(api)

    remaining = [api.get("/companies").headers["X-Rate-Limit-Remaining"] for _ in range(3)]
    refused = api.get(f"/companies/{XERO}")

    assert remaining == ["2", "1", "0"]
    assert refused.status_code == 429
    assert refused.json()["statusCode"] == 429
    assert refused.headers["X-Rate-Limit-Limit"] == "3"
    assert refused.headers["X-Rate-Limit-Remaining"] == "0"
    assert 1 <= int(refused.headers["Retry-After"]) <= 61


def test_retry_after_quota_429_succeeds(api):
    set_limits(api, perMinute=1)
    start_of_minute(api)
    api.get("/companies")
    refused = api.get("/companies")
    assert refused.status_code == 429

    sandbox_now(api, advance=int(refused.headers["Retry-After"]))

    assert api.get("/companies").status_code == 200


def test_new_minute_resets_quota(api):
    set_limits(api, perMinute=2)
    start_of_minute(api)
    for _ in range(2):
        api.get("/companies")
    assert api.get("/companies").status_code == 429

    sandbox_now(api, advance=61)
    response = api.get("/companies")

    assert response.status_code == 200
    assert response.headers["X-Rate-Limit-Remaining"] == "1"


def test_admin_api_not_limited_when_quota_exhausted(api):
    set_limits(api, perMinute=1)
    start_of_minute(api)
    api.get("/companies")
    assert api.get("/companies").status_code == 429

    assert api.get("/_sandbox/faults").status_code == 200
    assert api.get("/_sandbox/ground-truth").status_code == 200


@pytest.mark.parametrize(
    "limits",
    [
        {"perMinute": 0},
        {"perMinute": "many"},
        {"concurrency": -1},
        {"concurrency": 1.5},
        {"windowSeconds": 0},
        {"windowSeconds": "hour"},
    ],
)
def test_invalid_limits_rejected_with_400(api, limits):
    response = api.put("/_sandbox/limits", json=limits)

    assert response.status_code == 400
    assert api.get("/companies").status_code == 200


def test_a_window_of_an_hour_resets_on_the_hour_and_429s_are_counted(api):
    set_limits(api, perMinute=2, windowSeconds=3600)
    now = sandbox_now(api)
    sandbox_now(api, advance=3600.5 - now.minute * 60 - now.second - now.microsecond / 1e6)
    answers = [api.get("/companies") for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    reset = parse_reset(answers[0].headers["X-Rate-Limit-Reset"])
    assert (reset.minute, reset.second) == (0, 0)
    assert timedelta(minutes=59) < reset - sandbox_now(api) <= timedelta(hours=1)
    assert 3500 < int(answers[2].headers["Retry-After"]) <= 3601
    limits = api.get("/_sandbox/limits").json()
    assert limits == {
        "perMinute": 2,
        "windowSeconds": 3600,
        "concurrency": 10,
        "refused": {"quota": 1, "concurrency": 0},
        "admitted": {"GET /companies": 2},  # the refused third is not counted
    }

    sandbox_now(api, advance=3600)
    assert api.get("/companies").status_code == 200


def concurrent_gets(base_url: str, paths: list[str]) -> list[httpx.Response]:
    """GET every path at once, each from its own thread and connection."""
    barrier = threading.Barrier(len(paths))
    responses: list[httpx.Response | None] = [None] * len(paths)

    def fetch(index: int, path: str) -> None:
        with httpx.Client(base_url=base_url, headers=AUTH, timeout=10) as client:
            barrier.wait()
            responses[index] = client.get(path)

    threads = [threading.Thread(target=fetch, args=item) for item in enumerate(paths)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=15)
    assert all(responses), "a request did not finish"
    return responses


def test_too_many_concurrent_requests_to_one_company_get_429(api, sandbox_url):
    set_limits(api, concurrency=2)
    api.put("/_sandbox/faults", json={"latency_ms": 500})

    responses = concurrent_gets(sandbox_url, [f"/companies/{XERO}"] * 6)

    assert {r.status_code for r in responses} == {200, 429}
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["statusCode"] == 429
    assert refused.headers["Retry-After"] == "1"


def test_other_company_unaffected_by_concurrency_limit(api, sandbox_url):
    set_limits(api, concurrency=2)
    api.put("/_sandbox/faults", json={"latency_ms": 500})

    paths = [f"/companies/{XERO}"] * 6 + [f"/companies/{QBO}"] * 2
    responses = concurrent_gets(sandbox_url, paths)

    assert any(r.status_code == 429 for r in responses[:6])
    assert [r.status_code for r in responses[6:]] == [200, 200]


def test_concurrency_slots_freed_after_requests_finish(api, sandbox_url):
    set_limits(api, concurrency=2)
    api.put("/_sandbox/faults", json={"latency_ms": 200})
    concurrent_gets(sandbox_url, [f"/companies/{XERO}"] * 6)

    again = concurrent_gets(sandbox_url, [f"/companies/{XERO}"] * 2)

    assert [r.status_code for r in again] == [200, 200]
