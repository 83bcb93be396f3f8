"""The receiver as a service, on a loopback port against a real DuckDB file: /healthz says when
an event sent now would not be kept (a broken store, an unwritable spool, a spool piling up), and
/metrics counts each answer, the store wait and the spool's depth in Prometheus' text format
(parsed here with prometheus_client's own parser)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from destination_codat_expenses.store.db import release
from destination_codat_expenses.webhooks.health import Limits
from integration_tests.conftest import wait_for
from integration_tests.test_webhook_receiver import applied_events, hold_lock
from integration_tests.webhook_support import post, running_receiver, signed, sync_event


@pytest.fixture
def store_path(tmp_path) -> str:
    return str(tmp_path / "status.duckdb")


def page(url: str, path: str) -> httpx.Response:
    return httpx.get(url.replace("/webhooks/codat", path), timeout=10)


def samples(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample on /metrics: (name, sorted labels) -> value."""
    response = page(url, "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def events(url: str, outcome: str) -> float:
    return samples(url)[("codat_webhook_events_total", (("outcome", outcome),))]


def send(url: str, sync_id: str, webhook_id: str) -> httpx.Response:
    body = sync_event(True, sync_id, [("x", "Completed", None)])
    return post(url, body, signed(body, webhook_id))


# -- /healthz ----------------------------------------------------------------------------------
def test_healthz_is_ok_and_stays_ok_while_another_process_merely_holds_the_store(store_path):
    with running_receiver(store_path) as url:
        assert page(url, "/healthz").status_code == 200
        holder = hold_lock(store_path, 2.0)
        try:
            busy = page(url, "/healthz")
        finally:
            holder.wait(timeout=30)

    assert busy.status_code == 200, busy.text
    assert busy.json()["store"].startswith("busy: another process holds the store")


def test_healthz_is_503_when_the_store_file_is_broken(store_path):
    with running_receiver(store_path) as url:
        release(store_path)  # the receiver's own connection closes; the next open reads the file
        Path(store_path).write_bytes(b"not a duckdb file at all" * 100)
        response = page(url, "/healthz")

    assert response.status_code == 503
    assert response.json()["ok"] is False
    (reason,) = response.json()["reasons"]
    assert reason.startswith("the status store cannot be opened: ")


def test_healthz_is_503_when_the_spool_cannot_be_written(tmp_path, store_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the spool folder would go")
    with running_receiver(store_path, spool_dir=str(blocker / "spool")) as url:
        response = page(url, "/healthz")

    assert response.status_code == 503
    (reason,) = response.json()["reasons"]
    assert reason.startswith(f"the spool folder {blocker / 'spool'} is not writable")


def test_healthz_is_503_while_the_spool_piles_up_and_ok_once_the_store_takes_it(store_path):
    with running_receiver(store_path, limits=Limits(max_held_events=1)) as url:
        holder = hold_lock(store_path, 3.0)
        try:
            assert send(url, "sync-a", "msg_a").status_code == 202
            assert send(url, "sync-b", "msg_b").status_code == 202
            piling = page(url, "/healthz")
        finally:
            holder.wait(timeout=30)
        wait_for(lambda: len(applied_events(store_path)) == 2, timeout=15)
        wait_for(lambda: page(url, "/healthz").status_code == 200, timeout=15)

    assert piling.status_code == 503
    assert piling.json()["spool"]["events"] >= 2
    assert any("events are held in the spool (more than 1)" in r for r in piling.json()["reasons"])


# -- /metrics ----------------------------------------------------------------------------------
def test_metrics_count_each_answer_the_store_wait_and_the_spool(store_path):
    with running_receiver(store_path) as url:
        assert {events(url, o) for o in ("applied", "duplicate", "held", "refused")} == {0.0}
        assert send(url, "sync-1", "msg_1").json()["outcome"] == "applied"
        assert send(url, "sync-1", "msg_1").json()["outcome"] == "duplicate"
        body = sync_event(True, "sync-2")
        assert post(url, body, {**signed(body), "webhook-signature": "v1,AAAA"}).status_code == 401
        holder = hold_lock(store_path, 2.5)
        try:
            assert send(url, "sync-3", "msg_3").status_code == 202
            while_held = samples(url)
        finally:
            holder.wait(timeout=30)
        wait_for(lambda: ("msg_3", True) in applied_events(store_path), timeout=15)
        wait_for(lambda: samples(url)[("codat_webhook_spool_events", ())] == 0, timeout=15)
        after = samples(url)

    counted = {
        o: after[("codat_webhook_events_total", (("outcome", o),))]
        for o in ("applied", "duplicate", "held", "refused", "unrecorded")
    }
    assert counted == {"applied": 1, "duplicate": 1, "held": 1, "refused": 1, "unrecorded": 0}
    assert while_held[("codat_webhook_spool_events", ())] >= 1
    assert while_held[("codat_webhook_spool_oldest_seconds", ())] >= 0
    # the three verified events each waited for the writer; the held one for the whole wait
    assert after[("codat_webhook_store_wait_seconds_count", ())] == 3
    assert after[("codat_webhook_store_wait_seconds_bucket", (("le", "0.45"),))] <= 2
