"""The receiver with everything around it: the sandbox sending signed webhooks for real syncs,
the destination writing the same store meanwhile, and three processes sharing one DuckDB file.

No run waits and no refresh runs here: a webhook only says a sync ended, and the receiver (given
the sandbox's key) reads each such sync's status and items from the API itself. The sandbox's
API is read again afterwards, to check the store against it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from codat_sandbox.app import SandboxSettings, create_app
from codat_sandbox.server import ServerThread, free_port
from destination_codat_expenses.cli.env import KEY_ENV
from destination_codat_expenses.cli.env import WEBHOOK_SECRET_ENV as SECRET_ENV
from destination_codat_expenses.store.status_store import StatusStore
from destination_codat_expenses.webhooks.receiver import WEBHOOK_PATH
from integration_tests.conftest import AUTH, XERO, expense, expenses_path, wait_for
from integration_tests.destination_support import (
    books,
    catalog,
    flat,
    record,
    run_write,
    settings,
    stream_state,
    txn_id,
    write_files,
)
from integration_tests.webhook_support import (
    SECRET,
    query,
    running_receiver,
    signed,
    sync_event,
)

API_KEY = "sandbox-test-key"
CLI = Path(sys.executable).with_name("codat-expenses")
RETRY_SCHEDULE = (0, 0.3, 0.6, 1.0, 2.0, 4.0)


@pytest.fixture
def sandbox_url():
    settings_ = SandboxSettings(
        api_key=API_KEY, scenario="demo", webhook_retry_schedule=RETRY_SCHEDULE
    )
    with ServerThread(create_app(settings_)) as base_url:
        yield base_url


@pytest.fixture
def api(sandbox_url):
    with httpx.Client(base_url=sandbox_url, headers=AUTH, timeout=10) as client:
        yield client


@pytest.fixture
def store_path(tmp_path) -> str:
    return str(tmp_path / "status.duckdb")


@pytest.fixture
def receiver_url(store_path, sandbox_url):
    """The receiver with the sandbox's key: it confirms what its webhooks report."""
    with running_receiver(store_path, codat_url=sandbox_url, api_key=API_KEY) as url:
        yield url


def register(api, url: str, **options) -> None:
    body = {"url": url, "secret": SECRET, **options}
    response = api.post("/_sandbox/webhooks", json=body)
    assert response.status_code == 200, response.text


def push(api, *items: dict) -> str:
    response = api.post(expenses_path(XERO) + "/expense-transactions", json=list(items))
    assert response.status_code == 200, response.text
    return response.json()["syncId"]


def final_codes(store_path: str, sync_ids: list[str]) -> dict[str, int] | None:
    """Each sync's code once every one is final from Codat's API (not just reported)."""
    rows = query(
        store_path,
        "SELECT sync_id, status_code FROM syncs WHERE sync_id IN (SELECT unnest(?)) "
        "AND status_code NOT IN (1000, 1010) AND status_source = 'codat'",
        [sync_ids],
    )
    return dict(rows) if len(rows) == len(sync_ids) else None


def api_items(api, sync_id: str) -> dict[str, str]:
    page = api.get(expenses_path(XERO) + f"/syncs/{sync_id}/transactions").json()
    return {t["transactionId"]: t["status"] for t in page["results"]}


def all_delivered(api) -> bool:
    deliveries = api.get("/_sandbox/webhooks/deliveries").json()
    return bool(deliveries) and all(d["delivered"] for d in deliveries)


def test_sandbox_webhooks_settle_every_sync_in_the_store(api, receiver_url, store_path):
    register(api, receiver_url, headerStyle="webhook")
    register(api, receiver_url, headerStyle="svix")
    register(api, receiver_url, legacy=True)
    closed, unknown_account = "2023-01-01", [{"netAmount": 5, "accountRef": {"id": "999"}}]
    batches = [
        [expense(), expense()],
        [expense(), expense(issueDate=closed)],
        [expense(lines=unknown_account)],
        [expense(lines=unknown_account), expense(issueDate=closed), expense()],
    ]
    sync_ids = [push(api, *batch) for batch in batches]

    codes = wait_for(lambda: final_codes(store_path, sync_ids), timeout=30)
    wait_for(lambda: all_delivered(api), timeout=30)

    for sync_id in sync_ids:  # the API, read again now, agrees with what the receiver read
        status = api.get(expenses_path(XERO) + f"/syncs/{sync_id}/status").json()
        assert codes[sync_id] == status["syncStatusCode"]
        items = query(
            store_path,
            "SELECT transaction_id, status FROM push_items WHERE sync_id = ?",
            [sync_id],
        )
        assert dict(items) == api_items(api, sync_id)  # ValidationError, not the payload's Failed
    assert [codes[s] for s in sync_ids] == [2000, 5130, 5120, 5130]
    events = query(store_path, "SELECT count(*), count(*) FILTER (applied) FROM webhook_events")
    assert events == [(3 * len(sync_ids), 3 * len(sync_ids))]


def test_destination_writes_while_sandbox_webhooks_arrive(
    sandbox_url, api, receiver_url, store_path, tmp_path
):
    """The destination (its own process) pushes without waiting for syncs; the receiver
    records how every one of them ended, on the same store file."""
    register(api, receiver_url)
    keys = [f"card-{n}" for n in range(30)]
    closed = set(keys[::7])
    lines = [
        record("card_spend", flat(key, date="2023-01-01" if key in closed else "2024-05-01"))
        for key in keys
    ]
    config = settings(sandbox_url, store_path, wait_for_syncs=False, batch_size=4)
    paths = write_files(
        tmp_path / "run",
        config,
        catalog("card_spend"),
        [
            *lines,
            stream_state("card_spend", 1),
        ],
    )

    result = run_write(paths)

    assert result.returncode == 0, result.stderr.decode()[-2000:]
    sync_ids = [r[0] for r in query(store_path, "SELECT sync_id FROM syncs")]
    assert len(sync_ids) == 8
    wait_for(lambda: final_codes(store_path, sync_ids), timeout=30)
    written = books(sandbox_url)
    ledger = dict(query(store_path, "SELECT transaction_id, state FROM transactions"))
    for key in keys:
        expected = "failed" if key in closed else "completed"
        assert ledger[txn_id("card_spend", key)] == expected, key
        assert (txn_id("card_spend", key) in written) == (key not in closed)
    runs = query(store_path, "SELECT count(*) FROM syncs WHERE run_id IS NULL OR flow IS NULL")
    assert runs == [(0,)]  # the destination's details and the webhook's status, side by side


# -- three processes, one file ----------------------------------------------------------------
WRITER = """
    import sys, uuid
    from datetime import date
    from decimal import Decimal
    from destination_codat_expenses.mapping import MappedTransaction
    from destination_codat_expenses.store.status_store import StatusStore
    store = StatusStore(sys.argv[1])
    for n in range(int(sys.argv[2])):
        ids = [str(uuid.uuid4()) for _ in range(5)]
        batch = [MappedTransaction(i, i, {"id": i}, date(2024, 5, 1), "GBP", Decimal("1"), "h")
                 for i in ids]
        store.mark_sending("writer-co", "card_spend", batch)
        store.mark_sent("writer-co", ids, {"sync_id": f"writer-{n}", "flow": "direct"})
        print(n, flush=True)
"""
READER = """
    import json, sys, time
    from destination_codat_expenses.store.db import reading
    ok = failed = 0
    deadline = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline:
        try:
            with reading(sys.argv[1], read_only=True) as db:
                db.execute("SELECT outcome, count(*) FROM v_syncs GROUP BY ALL").fetchall()
                db.execute("SELECT count(*) FROM v_push_items").fetchall()
            ok += 1
        except Exception as error:
            failed += 1
            print(repr(error), file=sys.stderr)
        time.sleep(0.01)
    print(json.dumps({"ok": ok, "failed": failed}))
"""


def spawn(code: str, *args: str) -> subprocess.Popen:
    script = textwrap.dedent(code)
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextlib.contextmanager
def receiver_process(store_path: str) -> Iterator[str]:
    """`codat-expenses webhooks serve` in its own process, as an operator would run it (without
    an API key: webhooks only mark their syncs to confirm)."""
    port = free_port()
    env = {**os.environ, SECRET_ENV: SECRET}
    env.pop(KEY_ENV, None)
    command = [str(CLI), "webhooks", "serve", "--store", store_path, "--port", str(port)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(base_url) or process.poll() is not None, timeout=30)
        assert process.poll() is None, process.stderr.read()[-2000:]
        yield base_url + WEBHOOK_PATH
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)


def healthy(base_url: str) -> bool:
    try:
        return httpx.get(base_url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def deliver(client: httpx.Client, url: str, n: int) -> tuple[int, float]:
    body = sync_event(
        n % 3 != 0,
        f"hook-{n}",
        [(f"t-{n}-a", "Completed", None), (f"t-{n}-b", "Completed" if n % 3 else "PushError", "x")],
    )
    started = time.monotonic()
    response = client.post(url, content=body, headers=signed(body, f"msg_{uuid.uuid4().hex}"))
    return response.status_code, time.monotonic() - started


def all_applied(store_path: str, events: int) -> bool:
    rows = query(store_path, "SELECT count(*) FILTER (applied) FROM webhook_events")
    return rows == [(events,)]


def test_receiver_writer_and_reader_share_the_file_losing_nothing(store_path):
    """Three processes on one DuckDB file: the receiver (the real CLI), a writer doing what the
    destination does, and a read-only reader. Every delivery gets a 2xx within a second, every
    write lands, every read succeeds."""
    events, batches, senders = 200, 60, 8
    StatusStore(store_path).prepare()
    with receiver_process(store_path) as url:
        writer = spawn(WRITER, store_path, str(batches))
        reader = spawn(READER, store_path, "6")
        with httpx.Client(timeout=15) as client, ThreadPoolExecutor(senders) as pool:
            answers = list(pool.map(lambda n: deliver(client, url, n), range(events)))
        writer_out, writer_err = writer.communicate(timeout=120)
        reader_out, reader_err = reader.communicate(timeout=120)
        wait_for(lambda: all_applied(store_path, events), timeout=60)

    statuses = [status for status, _ in answers]
    slowest = max(seconds for _, seconds in answers)
    assert set(statuses) <= {200, 202}, {s: statuses.count(s) for s in set(statuses)}
    assert slowest < 1.0, f"slowest answer took {slowest:.2f} s"
    assert writer.returncode == 0, writer_err[-2000:]
    assert len(writer_out.split()) == batches
    assert reader.returncode == 0 and json.loads(reader_out)["failed"] == 0, reader_err[-2000:]
    assert json.loads(reader_out)["ok"] > 0
    assert query(
        store_path,
        "SELECT count(*) FROM syncs WHERE sync_id LIKE 'hook-%' AND status_code IS NULL "
        "AND status_source = 'webhook' AND reported_outcome IS NOT NULL",
    ) == [(events,)]
    assert query(
        store_path,
        "SELECT count(*) FROM transactions WHERE company_id = 'writer-co' AND state = 'sent'",
    ) == [(5 * batches,)]
    assert query(store_path, "SELECT count(*) FROM syncs WHERE sync_id LIKE 'writer-%'") == [
        (batches,)
    ]
    assert not list(Path(f"{store_path}.webhook-spool").glob("*.jsonl"))
