"""`completed` in the ledger comes only from Codat's own word about that id, and what a crash
left half recorded is finished by the next run and by `status refresh`.

The sandbox is served over loopback and each store is a real DuckDB file. A "lost ledger" is a
fresh store file beside a sandbox whose books already hold some ids: the destination must find
out from Codat, id by id, which ids are really written. Every test reads the sandbox's books
first, then checks that the store agrees.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess

from integration_tests.destination_support import (
    API_KEY,
    OPERATOR_CLI,
    XERO,
    books,
    catalog,
    flat,
    ledger,
    query,
    record,
    settings,
    stream_state,
    sync_statuses,
    txn_id,
    write_in_process,
)

S = "card_spend"
CATALOG = catalog(S)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
PNG_BASE64 = base64.b64encode(PNG).decode()


def lines_of(records: list[dict]) -> list[dict]:
    return [record(S, r) for r in records] + [stream_state(S, 1)]


def status_refresh(sandbox_url: str, store) -> subprocess.CompletedProcess:
    env = {**os.environ, "CODAT_API_KEY": API_KEY, "CODAT_BASE_URL": sandbox_url}
    command = [str(OPERATOR_CLI), "status", "refresh", "--store", str(store)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_a_5080_sync_completes_only_the_id_codat_completed(sandbox_url, tmp_path):
    """Datasets flow, ledger lost: the new sync carries one id Codat completed earlier, so
    Codat fails the whole sync 5080 and tells every item "previously processed: <that id>".
    Only that id is completed (with the sync where Codat lists it Completed); the others were
    not written, stay failed, and the next run writes them once."""
    first = tmp_path / "first.duckdb"
    write_in_process(settings(sandbox_url, first), CATALOG, lines_of([flat("dup-0")]))
    repeated = txn_id(S, "dup-0")
    earlier_sync = books(sandbox_url)[repeated]["sync_id"]

    lost = tmp_path / "lost.duckdb"
    records = [flat(f"dup-{i}") for i in range(10)]
    config = settings(sandbox_url, lost, push_flow="datasets")
    write_in_process(config, CATALOG, lines_of(records))

    written = books(sandbox_url)
    others = [txn_id(S, f"dup-{i}") for i in range(1, 10)]
    assert [s["syncStatusCode"] for s in sync_statuses(sandbox_url, XERO)][0] == 5080
    assert written[repeated]["writes"] == 1 and not any(t in written for t in others)
    rows = ledger(lost)
    assert rows[repeated][1:3] == ("completed", "Completed")
    assert rows[repeated][5] == earlier_sync  # Codat's word: the sync that wrote it
    assert {rows[t][1] for t in others} == {"failed"}

    write_in_process(config, CATALOG, lines_of(records))

    written = books(sandbox_url)
    assert all(written[t]["writes"] == 1 for t in [repeated, *others])
    assert {row[1] for row in ledger(lost).values()} == {"completed"}
    assert all(ledger(lost)[t][5] == written[t]["sync_id"] for t in [repeated, *others])


def test_a_refused_create_completes_the_named_id_from_codats_sync(sandbox_url, tmp_path):
    """Direct flow, ledger lost: Codat refuses the create naming one id; that id is completed
    with the sync Codat lists it in, and the rest of the batch is pushed once."""
    first = tmp_path / "first.duckdb"
    write_in_process(settings(sandbox_url, first), CATALOG, lines_of([flat("seen-0")]))

    lost = tmp_path / "lost.duckdb"
    records = [flat(f"seen-{i}") for i in range(5)]
    write_in_process(settings(sandbox_url, lost), CATALOG, lines_of(records))

    written = books(sandbox_url)
    ids = [txn_id(S, f"seen-{i}") for i in range(5)]
    assert all(written[t]["writes"] == 1 for t in ids)
    rows = ledger(lost)
    assert all(rows[t][1] == "completed" and rows[t][5] == written[t]["sync_id"] for t in ids)
    attempts = query(
        lost,
        "SELECT sync_id, status FROM transaction_attempts WHERE transaction_id = ?",
        [ids[0]],
    )
    assert attempts == [(written[ids[0]]["sync_id"], "Completed")]


def forget_items(store) -> None:
    """What a kill between a sync's final status and its items left behind (and what older
    versions committed that way): the status is final, the items are not in the store."""
    from destination_codat_expenses.store.db import transaction

    with transaction(str(store)) as db:
        db.execute("DELETE FROM push_items")
        db.execute("DELETE FROM transaction_attempts")
        db.execute("DELETE FROM attachments")
        db.execute(
            "UPDATE transactions SET state = 'sent', codat_status = 'Pending', receipt = ?",
            [json.dumps({"file_name": "coffee.png", "content_base64": PNG_BASE64})],
        )


def half_recorded_store(sandbox_url, tmp_path):
    store = tmp_path / "status.duckdb"
    records = [flat(f"half-{i}") for i in range(4)]
    write_in_process(settings(sandbox_url, store), CATALOG, lines_of(records))
    assert query(store, "SELECT DISTINCT status_code FROM syncs") == [(2000,)]
    forget_items(store)
    return store, [txn_id(S, f"half-{i}") for i in range(4)]


def assert_store_agrees_with_books(sandbox_url, store, ids) -> None:
    written = books(sandbox_url)
    rows = ledger(store)
    for transaction_id in ids:
        assert written[transaction_id]["writes"] == 1
        assert rows[transaction_id][1:3] == ("completed", "Completed")
        assert [a["fileName"] for a in written[transaction_id]["attachments"]] == ["coffee.png"]
    items = query(store, "SELECT transaction_id, status, record_id FROM push_items")
    assert {(t, s) for t, s, _ in items} == {(t, "Completed") for t in ids}
    assert all(record_id for _, _, record_id in items)
    uploaded = query(store, "SELECT transaction_id FROM attachments WHERE status = 'uploaded'")
    assert sorted(t for (t,) in uploaded) == sorted(ids)


def test_status_refresh_finishes_a_sync_left_final_without_items(sandbox_url, tmp_path):
    store, ids = half_recorded_store(sandbox_url, tmp_path)

    result = status_refresh(sandbox_url, store)

    assert result.returncode == 0, result.stdout + result.stderr
    assert_store_agrees_with_books(sandbox_url, store, ids)


def test_the_next_run_finishes_a_sync_left_final_without_items(sandbox_url, tmp_path):
    store, ids = half_recorded_store(sandbox_url, tmp_path)

    write_in_process(settings(sandbox_url, store), CATALOG, [stream_state(S, 2)])

    assert_store_agrees_with_books(sandbox_url, store, ids)
    assert len(sync_statuses(sandbox_url, XERO)) == 1  # nothing was pushed again
