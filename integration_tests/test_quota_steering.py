"""Codat's rate-limit headers steer a run (codat/quota.py): against a quota that resets soon it
paces itself and meets no 429; against one used up until a reset far away it stops pushing,
still follows every sync it opened, ends with a sentence naming the reset, and the next run
goes on from there with nothing lost or sent twice.

The real `destination-codat-expenses write` as its own process, the sandbox on loopback with a
small quota (`PUT /_sandbox/limits`: per window, and how many 429s it answered), one DuckDB file.
The sandbox's books and sync pages are read first; then the store must agree with them.
"""

from __future__ import annotations

import json
from datetime import datetime

import httpx
import pytest

from integration_tests.conftest import AUTH, XERO
from integration_tests.destination_support import (
    admin,
    books,
    catalog,
    flat,
    messages_of,
    patch_company,
    query,
    record,
    run_cli,
    run_write,
    settings,
    stream_state,
    sync_statuses,
    txn_id,
    write_files,
)

S = "card_spend"
pytestmark = pytest.mark.timeout(240)


def lines(count: int) -> list[dict]:
    keys = [f"quota-{n}" for n in range(count)]
    return [record(S, flat(key, XERO)) for key in keys] + [stream_state(S, 1)]


def limits(sandbox_url: str, **changes) -> dict:
    return admin(sandbox_url, "PUT" if changes else "GET", "/_sandbox/limits", changes or None)


def start_of_hour(sandbox_url: str) -> None:
    now = datetime.fromisoformat(clock(sandbox_url, 0))
    clock(sandbox_url, 3601 - now.minute * 60 - now.second - now.microsecond / 1e6)


def clock(sandbox_url: str, advance: float) -> str:
    return admin(sandbox_url, "POST", "/_sandbox/clock/advance", {"seconds": advance})["now"]


def quick_syncs(sandbox_url: str) -> None:
    patch_company(sandbox_url, XERO, {"syncSeconds": 0.05})


def store_agrees_with_codat(sandbox_url: str, store) -> tuple[dict, list[dict]]:
    """Codat first (its books, its syncs), then the store: each booked id completed, each other
    id never completed, each of Codat's syncs recorded with Codat's own code."""
    booked = books(sandbox_url)
    codat_syncs = sync_statuses(sandbox_url, XERO)
    ledger = dict(query(store, "SELECT transaction_id, state FROM transactions"))
    for transaction_id in booked:
        assert ledger.get(transaction_id) == "completed", transaction_id
    assert not [t for t, state in ledger.items() if state == "completed" and t not in booked]
    stored = dict(query(store, "SELECT sync_id, status_code FROM syncs"))
    for sync in codat_syncs:
        assert stored.get(sync["syncId"]) == sync["syncStatusCode"], sync["syncId"]
    return booked, codat_syncs


def test_a_quota_that_resets_soon_is_waited_for_and_no_request_meets_a_429(sandbox_url, tmp_path):
    quick_syncs(sandbox_url)
    limits(sandbox_url, perMinute=12, windowSeconds=2)
    store = tmp_path / "status.duckdb"
    paths = write_files(tmp_path / "run", settings(sandbox_url, store), catalog(S), lines(400))

    result = run_write(paths)

    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert limits(sandbox_url)["refused"] == {"quota": 0, "concurrency": 0}
    limits(sandbox_url, perMinute=100_000, windowSeconds=60)  # room to read Codat's pages
    booked, codat_syncs = store_agrees_with_codat(sandbox_url, store)
    assert set(booked) == {txn_id(S, f"quota-{n}") for n in range(400)}
    assert len(codat_syncs) == 8


def test_a_quota_used_up_until_a_far_reset_stops_pushing_not_following(sandbox_url, tmp_path):
    quick_syncs(sandbox_url)
    start_of_hour(sandbox_url)  # so the window's reset is an hour away, too far to wait for
    limits(sandbox_url, perMinute=20, windowSeconds=3600)  # an hour stands for Codat's day
    store = tmp_path / "status.duckdb"
    config = settings(sandbox_url, store)
    everything = lines(600)
    first = run_write(write_files(tmp_path / "first", config, catalog(S), everything))

    assert first.returncode != 0
    traces = [m["trace"]["error"] for m in messages_of(first.stdout) if m["type"] == "TRACE"]
    assert traces and "quota for this API key is used up until" in traces[0]["message"]
    assert traces[0]["failure_type"] == "transient_error"
    assert limits(sandbox_url)["refused"] == {"quota": 0, "concurrency": 0}
    pushed_first = len(books(sandbox_url))
    assert 0 < pushed_first < 600 and pushed_first % 50 == 0
    limits(sandbox_url, perMinute=100_000)  # the reset came: room again
    store_agrees_with_codat(sandbox_url, store)  # every sync the run opened, followed
    (run_id, outcome, error) = query(store, "SELECT run_id, outcome, error FROM runs")[0]
    assert outcome == "failed" and "quota" in error

    second = run_write(write_files(tmp_path / "second", config, catalog(S), everything))

    assert second.returncode == 0, second.stderr.decode()[-2000:]
    booked, codat_syncs = store_agrees_with_codat(sandbox_url, store)
    assert set(booked) == {txn_id(S, f"quota-{n}") for n in range(600)}  # each once (books)
    assert len(codat_syncs) == 12


def test_check_says_the_quota_is_used_up_and_until_when(sandbox_url, tmp_path):
    start_of_hour(sandbox_url)
    limits(sandbox_url, perMinute=1, windowSeconds=3600)
    assert httpx.get(sandbox_url + "/companies", headers=AUTH).status_code == 200  # the last one
    config = tmp_path / "config.json"
    config.write_text(json.dumps(settings(sandbox_url, tmp_path / "status.duckdb")))

    done = run_cli("check", "--config", str(config), timeout=120)

    statuses = [m["connectionStatus"] for m in messages_of(done.stdout) if m["type"] != "LOG"]
    assert statuses[0]["status"] == "FAILED"
    assert "quota for this API key is used up until" in statuses[0]["message"]
    assert limits(sandbox_url)["refused"]["quota"] == 1  # one 429 told it; none after
