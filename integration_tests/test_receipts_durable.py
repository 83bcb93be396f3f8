"""Receipts are durable work, end to end: the destination in this process, the sandbox over
loopback with its fault knobs on the attachment path, the webhook receiver on loopback, the real
`codat-expenses` CLI, a real DuckDB file. The sandbox's books are read first, then the store."""

from __future__ import annotations

import base64
import os
import subprocess

import pytest
from webhook_support import post, running_receiver, signed, sync_event

from destination_codat_expenses.codat.client import AttemptPolicy
from destination_codat_expenses.store.db import release
from destination_codat_expenses.store.queries import receipt_counts
from destination_codat_expenses.uploads import PAUSES_S
from integration_tests.destination_support import (
    API_KEY,
    OPERATOR_CLI,
    QBD,
    XERO,
    books,
    catalog,
    flat,
    iter_write,
    query,
    record,
    routed,
    stream_state,
    txn_id,
    write_in_process,
)

S = "card_spend"
CATALOG = catalog(S)
PDF = base64.b64encode(b"%PDF-1.4\n% a receipt\n%%EOF\n").decode()
ATTEMPTS = AttemptPolicy().attempts  # the destination's client: attempts per call


def with_receipt(key: str, company: str = XERO) -> dict:
    return flat(key, company, receipt={"fileName": f"{key}.pdf", "content": PDF})


def lines_of(records: list[dict]) -> list[dict]:
    return [*(record(S, r) for r in records), stream_state(S, 1)]


def attachments(base_url: str) -> dict[str, list[str]]:
    """transaction id -> the file names of its attachments in the sandbox's books."""
    return {t: [a["fileName"] for a in e["attachments"]] for t, e in books(base_url).items()}


def cli(*args: str, base_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CODAT_API_KEY": API_KEY, "CODAT_BASE_URL": base_url}
    return subprocess.run(
        [str(OPERATOR_CLI), *args], capture_output=True, text=True, env=env, timeout=120
    )


def stored_receipts(store) -> dict[str, tuple]:
    """source key -> (receipt still in the ledger, attachment status, message)."""
    rows = query(
        store,
        "SELECT t.source_key, t.receipt IS NOT NULL, a.status, a.message FROM transactions t "
        "LEFT JOIN attachments a USING (company_id, transaction_id)",
    )
    return {row[0]: row[1:] for row in rows}


def the_sync(store) -> str:
    [(sync_id,)] = query(store, "SELECT sync_id FROM syncs")
    return sync_id


@pytest.mark.parametrize(
    "fault, later", [("rate_503", "status refresh"), ("rate_429", "the next run")]
)
def test_a_receipt_codat_cannot_take_stays_pending_and_a_later_try_uploads_it_once(
    api, sandbox_url, tmp_path, fault, later
):
    store = tmp_path / "status.duckdb"
    # every upload answered 503 or 429 before the sandbox does anything, with Retry-After: 0
    # so the client's own attempts are spent at once
    down = {fault: 1.0, "retry_after_s": 0, "paths": "/attachments$"}
    api.put("/_sandbox/faults", json=down).raise_for_status()

    write_in_process(routed(sandbox_url, store), CATALOG, lines_of([with_receipt("p-1")]))

    assert attachments(sandbox_url) == {txn_id(S, "p-1"): []}  # Codat has no attachment
    # tried (each try spends the client's attempts), then again after each pause of the run's
    # last rounds
    tries, spare = divmod(api.get("/_sandbox/faults").json()["injected"][fault], ATTEMPTS)
    assert spare == 0 and tries >= 1 + len(PAUSES_S)
    release(str(store))
    kept, status, message = stored_receipts(store)["p-1"]
    assert kept and status == "pending"  # not dropped: still in the ledger
    assert f"Codat answered {fault[-3:]}" in message
    sync_id = the_sync(store)
    assert receipt_counts(str(store), sync_id) == {"uploaded": 0, "pending": 1, "refused": 0}
    shown = cli("syncs", "show", sync_id, "--store", str(store), base_url=sandbox_url)
    assert "0 uploaded, 1 pending, 0 refused" in shown.stdout
    assert f"Not uploaded yet, tried again: Codat answered {fault[-3:]}" in shown.stdout
    listed = cli("syncs", "list", "--store", str(store), base_url=sandbox_url)
    assert "1 pending" in next(line for line in listed.stdout.splitlines() if sync_id in line)

    api.put("/_sandbox/faults", json={}).raise_for_status()  # Codat takes uploads again
    try_later(later, sandbox_url, store)

    assert attachments(sandbox_url) == {txn_id(S, "p-1"): ["p-1.pdf"]}
    assert stored_receipts(store)["p-1"] == (False, "uploaded", None)
    assert receipt_counts(str(store)) == {"uploaded": 1, "pending": 0, "refused": 0}
    try_later(later, sandbox_url, store)
    assert attachments(sandbox_url) == {txn_id(S, "p-1"): ["p-1.pdf"]}  # once


def try_later(later: str, sandbox_url: str, store) -> None:
    if later == "the next run":  # a run with nothing new to push
        write_in_process(routed(sandbox_url, store), CATALOG, [stream_state(S, 2)])
        release(str(store))
        return
    refreshed = cli("status", "refresh", "--store", str(store), base_url=sandbox_url)
    assert refreshed.returncode == 0, refreshed.stderr
    assert "receipts: 1 uploaded" in refreshed.stdout


def test_a_refusal_is_recorded_with_codats_reason(sandbox_url, tmp_path):
    store = tmp_path / "status.duckdb"
    records = [with_receipt("ok-1"), with_receipt("qbd-1", QBD)]

    write_in_process(routed(sandbox_url, store), CATALOG, lines_of(records))

    assert attachments(sandbox_url) == {txn_id(S, "ok-1"): ["ok-1.pdf"], txn_id(S, "qbd-1"): []}
    got = stored_receipts(store)
    assert got["ok-1"] == (False, "uploaded", None)
    assert got["qbd-1"] == (False, "refused", "QuickBooks Desktop does not accept attachments.")
    assert receipt_counts(str(store)) == {"uploaded": 1, "pending": 0, "refused": 1}


def test_a_run_uploads_the_receipts_of_syncs_a_webhook_settled_before_the_run_followed_them(
    api, sandbox_url, tmp_path
):
    """The demo's loss: the receiver settled a sync (its items Completed) while the run was
    still reading, so the run never followed it, and its receipts were never uploaded."""
    store = tmp_path / "status.duckdb"
    records = [with_receipt("w-1"), with_receipt("w-2")]
    config = routed(sandbox_url, store)

    with running_receiver(str(store)) as receiver:
        for _ in iter_write(config, CATALOG, lines_of(records)):  # pushed; the run goes on after
            api.post("/_sandbox/clock/advance", json={"seconds": 5}).raise_for_status()
            sync_id = the_sync(store)
            items = [(txn_id(S, r["id"]), "Completed", None) for r in records]
            body = sync_event(True, sync_id, items, company_id=XERO)
            assert post(receiver, body, signed(body)).json()["outcome"] == "applied"

    expected = {txn_id(S, r["id"]): [f"{r['id']}.pdf"] for r in records}
    assert attachments(sandbox_url) == expected
    assert receipt_counts(str(store), sync_id) == {"uploaded": 2, "pending": 0, "refused": 0}


@pytest.fixture(autouse=True)
def no_faults_left(api):
    yield
    api.put("/_sandbox/faults", json={})


def test_status_refresh_uploads_a_pending_receipt_path_only_with_the_receipts_folder(
    api, sandbox_url, tmp_path
):
    root = tmp_path / "receipts"
    root.mkdir()
    (root / "hotel.pdf").write_bytes(base64.b64decode(PDF))
    store = tmp_path / "status.duckdb"
    hotel = flat("path-1", receipt={"fileName": "hotel.pdf", "path": "hotel.pdf"})
    down = {"rate_503": 1.0, "retry_after_s": 0, "paths": "/attachments$"}
    api.put("/_sandbox/faults", json=down).raise_for_status()
    write_in_process(
        routed(sandbox_url, store, receipts_root=str(root)), CATALOG, lines_of([hotel])
    )
    release(str(store))
    api.put("/_sandbox/faults", json={}).raise_for_status()

    blind = cli("status", "refresh", "--store", str(store), base_url=sandbox_url)

    assert blind.returncode == 0, blind.stderr
    assert attachments(sandbox_url) == {txn_id(S, "path-1"): []}
    assert "receipts: 1 pending" in blind.stdout

    seeing = cli(
        "status",
        "refresh",
        "--store",
        str(store),
        "--receipts-root",
        str(root),
        base_url=sandbox_url,
    )

    assert seeing.returncode == 0, seeing.stderr
    assert attachments(sandbox_url) == {txn_id(S, "path-1"): ["hotel.pdf"]}
    assert "receipts: 1 uploaded" in seeing.stdout
    missing = cli(
        "status",
        "refresh",
        "--store",
        str(store),
        "--receipts-root",
        str(tmp_path / "nope"),
        base_url=sandbox_url,
    )
    assert missing.returncode == 2 and "receipts_root" in missing.stderr
