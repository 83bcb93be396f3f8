"""A run follows its own syncs, not the whole store: another run's sync of another company, still
running at Codat, neither holds the run up nor shows in its progress line. And when another
process (the webhook receiver with a key) settles one of the run's syncs first, the run still
uploads the receipt files only it may read.

The real `destination-codat-expenses write` as its own process, the sandbox on loopback, one
DuckDB file; the sandbox's status pages are read first, then the store is checked against them.
"""

from __future__ import annotations

import time

import httpx
import pytest

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.codat.http import http_client
from destination_codat_expenses.follow import SyncFollower
from destination_codat_expenses.store.status_store import StatusStore
from integration_tests.conftest import AUTH, QBO, XERO, expenses_path, wait_for
from integration_tests.destination_support import (
    API_KEY,
    books,
    catalog,
    flat,
    messages_of,
    patch_company,
    query,
    record,
    run_write,
    settings,
    stream_state,
    write_files,
)

S = "card_spend"
WAIT_S = 60  # what the run would have waited for the other run's sync before this change
pytestmark = pytest.mark.timeout(180)


def write(sandbox_url: str, store, folder, company: str, key: str, wait: bool) -> tuple:
    config = settings(
        sandbox_url,
        store,
        company_id=company,
        wait_for_syncs=wait,
        sync_wait_timeout_seconds=WAIT_S,
    )
    lines = [record(S, flat(key, company)), stream_state(S, 1)]
    paths = write_files(folder, config, catalog(S), lines)
    started = time.monotonic()
    result = run_write(paths)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return result, time.monotonic() - started


def codat_code(sandbox_url: str, company: str, sync_id: str) -> int:
    path = f"{expenses_path(company)}/syncs/{sync_id}/status"
    return httpx.get(sandbox_url + path, headers=AUTH, timeout=10).json()["syncStatusCode"]


def run_line(stdout: bytes) -> str:
    """The run's last log line: 'run <id> succeeded: ... N syncs opened, M finished, ...'."""
    logs = [m["log"]["message"] for m in messages_of(stdout) if m["type"] == "LOG"]
    return next(line for line in reversed(logs) if line.startswith("run "))


def test_a_run_finishes_without_waiting_for_another_runs_open_sync(sandbox_url, tmp_path):
    store = tmp_path / "status.duckdb"
    patch_company(sandbox_url, QBO, {"syncSeconds": 600})  # the other company's long sync
    write(sandbox_url, store, tmp_path / "other", QBO, "other-1", wait=False)
    [(other_sync,)] = query(str(store), "SELECT sync_id FROM syncs")

    result, took = write(sandbox_url, store, tmp_path / "own", XERO, "own-1", wait=True)

    # Codat's word first: the other run's sync is still running, this run's ended
    own_sync = query(str(store), "SELECT sync_id FROM syncs WHERE sync_id <> ?", [other_sync])
    [(own_sync,)] = own_sync
    assert codat_code(sandbox_url, QBO, other_sync) == 1000
    assert codat_code(sandbox_url, XERO, own_sync) == 2000
    assert took < WAIT_S / 2, f"the run took {took:.1f} s: it waited for another run's sync"
    assert dict(query(str(store), "SELECT sync_id, status_code FROM syncs")) == {
        other_sync: None,  # nobody asked about it: not this run's to follow
        own_sync: 2000,
    }
    assert "1 syncs opened, 1 finished" in run_line(result.stdout)


def test_a_sync_another_process_settled_still_gets_the_runs_receipt_files(sandbox_url, tmp_path):
    """The receiver (no receipts folder) settles the sync first and uploads what it can; the
    run, following the same sync, finds it settled and uploads the file only it may read."""
    store, root = tmp_path / "status.duckdb", tmp_path / "receipts"
    root.mkdir()
    (root / "hotel.pdf").write_bytes(b"%PDF-1.4\n% hotel\n%%EOF\n")
    inline = {"fileName": "coffee.pdf", "content": "JVBERi0xLjQKJSUgY29mZmVlCiUlRU9G"}
    rows = [
        flat("file-1", receipt={"fileName": "hotel.pdf", "path": "hotel.pdf"}),
        flat("inline-1", receipt=inline),
    ]
    config = settings(sandbox_url, store, wait_for_syncs=False, receipts_root=str(root))
    lines = [*(record(S, row) for row in rows), stream_state(S, 1)]
    assert run_write(write_files(tmp_path / "run", config, catalog(S), lines)).returncode == 0
    [(sync_id,)] = query(str(store), "SELECT sync_id FROM syncs")
    wait_for(lambda: codat_code(sandbox_url, XERO, sync_id) == 2000, timeout=30)
    with http_client(sandbox_url) as http:
        client = CodatClient(http, API_KEY)
        receiver = SyncFollower(client, StatusStore(str(store)), upload_receipts=True)
        run = SyncFollower(
            client, StatusStore(str(store)), upload_receipts=True, receipts_root=str(root)
        )

        assert receiver.settle(XERO, sync_id)  # first: it uploads the inline receipt
        assert run.follow([(XERO, sync_id)], timeout_s=30) == []

    written = {
        entry["transaction_id"]: entry["attachments"] for entry in books(sandbox_url).values()
    }
    names = sorted(a["fileName"] for attachments in written.values() for a in attachments)
    assert names == ["coffee.pdf", "hotel.pdf"]  # each once: nothing uploaded twice
    assert query(str(store), "SELECT file_name, status FROM attachments ORDER BY 1") == [
        ("coffee.pdf", "uploaded"),
        ("hotel.pdf", "uploaded"),
    ]
