"""Fault injection over real loopback HTTP: every knob of FaultPlan does what it says."""

from __future__ import annotations

import time

import httpx
import pytest

from integration_tests.conftest import QBO, XERO, expense, expenses_path, wait_for

PUSH = expenses_path(XERO) + "/expense-transactions"
SYNCS = expenses_path(XERO) + "/syncs/list/status"


def set_faults(api: httpx.Client, **knobs) -> None:
    response = api.put("/_sandbox/faults", json=knobs)
    assert response.status_code == 200, response.text


def timed_get(api: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = api.get(path)
    return response, time.monotonic() - started


def assert_error_message(response: httpx.Response, status: int) -> None:
    body = response.json()
    assert body["statusCode"] == status
    assert body["error"]
    assert body["correlationId"]
    assert body["canBeRetried"] == "True"


@pytest.mark.parametrize(
    ("knob", "status"), [("rate_429", 429), ("rate_500", 500), ("rate_503", 503)]
)
def test_error_fault_at_full_rate_answers_error_message(api, knob, status):
    set_faults(api, **{knob: 1.0})

    response = api.get(f"/companies/{XERO}")

    assert response.status_code == status
    assert_error_message(response, status)


def test_rate_429_fault_carries_configured_retry_after(api):
    set_faults(api, rate_429=1.0, retry_after_s=7)

    response = api.get("/companies")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"


@pytest.mark.parametrize("knob", ["rate_429", "rate_500", "rate_503"])
def test_error_fault_on_push_writes_nothing(api, knob):
    set_faults(api, **{knob: 1.0})

    assert api.post(PUSH, json=[expense()]).status_code != 200

    set_faults(api)
    api.post("/_sandbox/clock/advance", json={"seconds": 5})
    assert api.get(SYNCS).json() == []
    assert api.get("/_sandbox/ground-truth").json()[XERO] == []


def test_rate_reset_drops_connection_and_writes_nothing(api):
    before = api.get("/_sandbox/ground-truth").json()
    set_faults(api, rate_reset=1.0)

    with pytest.raises(httpx.TransportError):
        api.post(PUSH, json=[expense()])

    set_faults(api)
    api.post("/_sandbox/clock/advance", json={"seconds": 5})
    assert api.get(SYNCS).json() == []
    assert api.get("/_sandbox/ground-truth").json() == before


def test_rate_lost_response_drops_connection_after_commit(api):
    item = expense()
    set_faults(api, rate_lost_response=1.0)

    with pytest.raises(httpx.TransportError):
        api.post(PUSH, json=[item])

    set_faults(api)
    syncs = wait_for(lambda: [s for s in api.get(SYNCS).json() if s["syncStatusCode"] == 2000])
    assert len(syncs) == 1
    written = api.get("/_sandbox/ground-truth").json()[XERO]
    assert [entry["transaction_id"] for entry in written] == [item["id"]]
    assert written[0]["sync_id"] == syncs[0]["syncId"]


def test_rate_slow_fault_delays_answer_by_slow_ms(api):
    set_faults(api, rate_slow=1.0, slow_ms=400)

    response, elapsed = timed_get(api, "/companies")

    assert response.status_code == 200
    assert elapsed >= 0.35


def test_latency_ms_delays_every_answer(api):
    set_faults(api, latency_ms=300)

    for _ in range(3):
        response, elapsed = timed_get(api, f"/companies/{XERO}")
        assert response.status_code == 200
        assert elapsed >= 0.25


def test_latency_jitter_adds_delay_on_top_of_latency(api):
    set_faults(api, seed=3, latency_ms=50, latency_jitter_ms=200)

    elapsed = [timed_get(api, f"/companies/{XERO}")[1] for _ in range(5)]

    assert min(elapsed) >= 0.045
    assert sum(elapsed) >= 0.25 + 0.2  # the five fixed delays plus some exponential jitter


def test_rate_drip_delivers_complete_valid_body_in_pieces(api):
    expected = api.get("/companies").json()
    set_faults(api, rate_drip=1.0, drip_delay_ms=40)

    started = time.monotonic()
    with api.stream("GET", "/companies") as response:
        chunks = list(response.iter_raw())
    elapsed = time.monotonic() - started

    body = b"".join(chunks)
    assert response.status_code == 200
    assert len(body) == int(response.headers["content-length"])
    assert len(chunks) > 1
    assert elapsed >= 0.2  # seven pauses of 40 ms between eight pieces
    assert httpx.Response(200, content=body).json()["results"] == expected["results"]


def test_paths_regex_scopes_faults_to_matching_paths(api):
    set_faults(api, rate_500=1.0, paths=f"^/companies/{QBO}")

    assert api.get(f"/companies/{QBO}").status_code == 500
    assert api.get(f"/companies/{XERO}").status_code == 200
    assert api.get("/companies").status_code == 200


def test_admin_paths_never_faulted_even_when_regex_matches_everything(api):
    set_faults(api, rate_reset=1.0, paths=".*")

    assert api.get("/_sandbox/ground-truth").status_code == 200
    assert api.get("/_sandbox/faults").status_code == 200
    assert api.put("/_sandbox/faults", json={}).status_code == 200
    assert api.get("/companies").status_code == 200


def outcomes(api: httpx.Client, seed: int, count: int = 40) -> list[int]:
    set_faults(api, seed=seed, rate_429=0.1, rate_500=0.2, rate_503=0.2)
    return [api.get(f"/companies/{XERO}").status_code for _ in range(count)]


def test_same_seed_replays_same_outcomes(api):
    first = outcomes(api, seed=42)
    second = outcomes(api, seed=42)

    assert first == second
    assert {200, 429, 500, 503} <= set(first)


def test_different_seed_gives_different_outcomes(api):
    assert outcomes(api, seed=1) != outcomes(api, seed=2)


def test_get_faults_reports_plan_and_injected_counts(api):
    seen = outcomes(api, seed=7)

    report = api.get("/_sandbox/faults").json()

    assert report["plan"]["seed"] == 7
    assert report["plan"]["rate_500"] == 0.2
    assert report["injected"] == {
        name: seen.count(status)
        for name, status in (("rate_429", 429), ("rate_500", 500), ("rate_503", 503))
        if status in seen
    }


def test_setting_new_plan_resets_injected_counts(api):
    outcomes(api, seed=7, count=10)
    set_faults(api, rate_500=0.5)

    assert api.get("/_sandbox/faults").json()["injected"] == {}


@pytest.mark.parametrize(
    "knobs",
    [
        {"rate_500": -0.1},
        {"rate_500": "often"},
        {"rate_500": True},
        {"no_such_knob": 1},
        {"rate_500": 0.6, "rate_503": 0.3, "rate_lost_response": 0.2},
        {"paths": "(unclosed"},
        {"paths": 42},
        {"retry_after_s": 1.5},
        {"seed": [1, 2]},
        [],
    ],
)
def test_invalid_fault_plan_rejected_with_400_and_plan_kept(api, knobs):
    set_faults(api, rate_503=0.25)

    response = api.put("/_sandbox/faults", json=knobs)

    assert response.status_code == 400
    assert response.json()["statusCode"] == 400
    assert api.get("/_sandbox/faults").json()["plan"]["rate_503"] == 0.25
