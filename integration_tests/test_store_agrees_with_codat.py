"""The store tells the truth: after real runs with webhooks flowing, every sync code, every item
status and every receipt of a completed transaction in the store agrees with Codat (the sandbox).

Real processes over loopback: `codat-expenses sandbox` (the demo scenario's eight companies:
closed periods on Xero, bad accounts everywhere, a de-authorized Zoho Books company, a Sage
Intacct company without expense configuration, receipts inline, QuickBooks Desktop taking no
attachments), `codat-expenses webhooks serve` registered with the sandbox, and two
`destination-codat-expenses write` runs on one DuckDB file: the first waits for its syncs, the
second does not (so only the receiver, or a refresh, can learn how they end).

- With CODAT_API_KEY, the receiver confirms from Codat what its webhooks report; NO refresh runs.
- Without it, the webhooks only mark syncs to confirm (shown as such, never as a code), and
  `codat-expenses status refresh` runs once afterwards.

The sandbox's own pages are read first (each company's sync list and statuses, every sync's
transaction pages, /_sandbox/ground-truth); then the store must agree with them, 100%.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from codat_sandbox.server import free_port
from destination_codat_expenses.cli.env import KEY_ENV, URL_ENV, WEBHOOK_SECRET_ENV
from destination_codat_expenses.codat.http import answers
from destination_codat_expenses.webhooks.receiver import WEBHOOK_PATH
from integration_tests.destination_support import (
    API_KEY,
    DYNAMICS,
    FREEAGENT,
    INTACCT_NO_CONFIG,
    NETSUITE,
    OPERATOR_CLI,
    QBD,
    QBO,
    XERO,
    ZOHO_DEAUTHORIZED,
    admin,
    books,
    catalog,
    flat,
    query,
    record,
    routed,
    run_write,
    sandbox_process,
    stream_state,
    sync_statuses,
    txn_id,
    write_files,
)
from integration_tests.webhook_support import SECRET
from testing.polling import wait_for

S = "card_spend"
COMPANIES = [XERO, QBO, NETSUITE, DYNAMICS, FREEAGENT, QBD, ZOHO_DEAUTHORIZED, INTACCT_NO_CONFIG]
TAKES_NO_ATTACHMENTS = {QBD}  # QuickBooks Desktop: the upload is refused, with Codat's reason
RECEIPT = base64.b64encode(b"%PDF-1.4\n% receipt\n1 0 obj <<>> endobj\n%%EOF\n").decode()
OPEN_CODES = (1000, 1010)
pytestmark = pytest.mark.timeout(240)


# -- the world ---------------------------------------------------------------------------------
@contextlib.contextmanager
def receiver_process(store: Path, log: Path, sandbox_url: str, with_key: bool) -> Iterator[str]:
    """`codat-expenses webhooks serve` as an operator runs it; yields the URL to register."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in (KEY_ENV, URL_ENV)}
    env[WEBHOOK_SECRET_ENV] = SECRET
    if with_key:
        env.update({KEY_ENV: API_KEY, URL_ENV: sandbox_url})
    command = [str(OPERATOR_CLI), "webhooks", "serve", "--store", str(store), "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or answers(base, "/healthz"), 30)
        assert process.poll() is None, log.read_text()[-2000:]
        yield base + WEBHOOK_PATH
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def with_receipt(row: dict, key: str) -> dict:
    return {**row, "receipt": {"fileName": f"{key}.pdf", "content": RECEIPT}}


def runs_of_records() -> tuple[list[dict], list[dict]]:
    """Per company, run 1: two good expenses (one with a receipt), then one naming an account
    that does not exist; run 2: a good one with a receipt, then a bad one (on Xero: dated in
    its closed period). In batches of two: syncs that succeed, fail validation or writing, and
    (Zoho Books, Sage Intacct) fail whole with 4040 and 4000."""
    first, second = [], []
    for n, company in enumerate(COMPANIES):
        key = f"c{n}"
        first += [
            with_receipt(flat(f"{key}-a", company), f"{key}-a"),
            flat(f"{key}-b", company),
            flat(f"{key}-c", company, account_id="999"),
        ]
        spoiled = {"date": "2023-06-01"} if company == XERO else {"account_id": "999"}
        second += [
            with_receipt(flat(f"{key}-d", company), f"{key}-d"),
            flat(f"{key}-e", company, **spoiled),
        ]
    return first, second


def write(sandbox_url: str, store: Path, folder: Path, rows: list[dict], wait: bool) -> None:
    config = routed(
        sandbox_url, store, wait_for_syncs=wait, batch_size=2, sync_wait_timeout_seconds=60
    )
    lines = [*(record(S, row) for row in rows), stream_state(S, 1)]
    result = run_write(write_files(folder, config, catalog(S), lines))
    assert result.returncode == 0, result.stderr.decode()[-3000:]


def codat_is_done(sandbox_url: str) -> bool:
    """Every sync final at Codat and every webhook delivered."""
    for company in COMPANIES:
        if any(s["syncStatusCode"] in OPEN_CODES for s in sync_statuses(sandbox_url, company)):
            return False
    deliveries = admin(sandbox_url, "GET", "/_sandbox/webhooks/deliveries")
    return bool(deliveries) and all(d["delivered"] for d in deliveries)


def nothing_left_to_confirm(store: Path) -> bool:
    rows = query(
        store,
        "SELECT count(*) FROM syncs WHERE status_source IS DISTINCT FROM 'codat' "
        "OR status_code IS NULL OR status_code IN (SELECT unnest(?))",
        [list(OPEN_CODES)],
    )
    return rows == [(0,)]


# -- what Codat says, then whether the store agrees --------------------------------------------
def codat_transactions(sandbox_url: str, company: str, sync_id: str) -> list[dict]:
    path = f"/companies/{company}/sync/expenses/syncs/{sync_id}/transactions?pageSize=5000"
    return admin(sandbox_url, "GET", path)["results"]


def codat_truth(sandbox_url: str) -> dict:
    """Codat's word on every sync: code, and each transaction's status and message."""
    syncs = {}
    for company in COMPANIES:
        for status in sync_statuses(sandbox_url, company):
            items = codat_transactions(sandbox_url, company, status["syncId"])
            syncs[status["syncId"]] = {
                "company": company,
                "code": status["syncStatusCode"],
                "items": {i["transactionId"]: (i["status"], i.get("message")) for i in items},
            }
    return syncs


def assert_every_sync_code_agrees(truth: dict, store: Path) -> None:
    stored = {
        row[0]: row[1:]
        for row in query(store, "SELECT sync_id, company_id, status_code, status_source FROM syncs")
    }
    assert set(stored) == set(truth), "the store and Codat know different syncs"
    disagree = {
        sync_id: (stored[sync_id], fact["code"])
        for sync_id, fact in truth.items()
        if stored[sync_id] != (fact["company"], fact["code"], "codat")
    }
    assert not disagree, f"{len(disagree)} of {len(truth)} sync codes disagree: {disagree}"
    codes = {fact["code"] for fact in truth.values()}
    assert {2000, 4000, 4040, 5120, 5130} <= codes, codes  # the story has each kind


def assert_every_item_agrees(truth: dict, store: Path) -> None:
    rows = query(store, "SELECT sync_id, transaction_id, status, message FROM push_items")
    stored = {(r[0], r[1]): (r[2], r[3]) for r in rows}
    expected = {
        (sync_id, txn): outcome
        for sync_id, fact in truth.items()
        for txn, outcome in fact["items"].items()
    }
    assert stored == expected
    assert {status for status, _ in expected.values()} >= {"Completed", "ValidationError"}


def assert_ledger_and_records_agree(store: Path, written: dict) -> None:
    rows = query(
        store,
        "SELECT t.transaction_id, t.state, p.record_id, p.data_type FROM transactions t "
        "LEFT JOIN push_items p ON p.sync_id = t.last_sync_id "
        "AND p.transaction_id = t.transaction_id",
    )
    for transaction_id, state, record_id, data_type in rows:
        if transaction_id in written:
            entry = written[transaction_id]
            assert (state, record_id, data_type) == (
                "completed",
                entry["record_id"],
                entry["data_type"],
            ), transaction_id
        else:
            assert state == "failed", transaction_id


def assert_every_receipt_of_a_completed_transaction_is_uploaded(
    store: Path, written: dict, receipts: dict[str, str]
) -> None:
    """receipts: transaction id -> file name, for every record that carried one."""
    stored = {
        row[0]: row[1:]
        for row in query(
            store,
            "SELECT transaction_id, file_name, status, message, attachment_id FROM attachments",
        )
    }
    for transaction_id, file_name in receipts.items():
        entry = written.get(transaction_id)
        if entry is None:  # not written: nothing to attach to, nothing tried
            assert transaction_id not in stored
        elif entry["company_id"] in TAKES_NO_ATTACHMENTS:
            assert [a["fileName"] for a in entry["attachments"]] == []
            assert stored[transaction_id][1] != "uploaded"
            assert "does not accept attachments" in stored[transaction_id][2]
        else:
            [attachment] = entry["attachments"]
            assert attachment["fileName"] == file_name
            assert stored[transaction_id] == (file_name, "uploaded", None, attachment["id"])
    waiting = query(
        store, "SELECT count(*) FROM transactions WHERE state = 'completed' AND receipt IS NOT NULL"
    )
    assert waiting == [(0,)]  # no receipt of a completed transaction left waiting


def assert_store_agrees_with_codat(sandbox_url: str, store: Path, receipts: dict) -> None:
    truth = codat_truth(sandbox_url)
    written = books(sandbox_url)
    assert_every_sync_code_agrees(truth, store)
    assert_every_item_agrees(truth, store)
    assert_ledger_and_records_agree(store, written)
    assert_every_receipt_of_a_completed_transaction_is_uploaded(store, written, receipts)


# -- the two ways the loop runs ----------------------------------------------------------------
@pytest.fixture
def world(tmp_path, request) -> Iterator[tuple[str, Path, Path]]:
    """(sandbox URL, store, folder): the sandbox and the receiver running, webhooks registered
    in Codat's current shape and the legacy one (two reports per sync)."""
    store = tmp_path / "status.duckdb"
    with_key = request.param
    with (
        sandbox_process(tmp_path / "sandbox.log", options=["--scenario", "demo"]) as sandbox,
        receiver_process(store, tmp_path / "receiver.log", sandbox, with_key) as hook,
    ):
        for legacy in (False, True):
            endpoint = {"url": hook, "secret": SECRET, "legacy": legacy}
            admin(sandbox, "POST", "/_sandbox/webhooks", endpoint)
        yield sandbox, store, tmp_path


def receipts_in(rows: list[dict]) -> dict[str, str]:
    return {txn_id(S, r["id"]): r["receipt"]["fileName"] for r in rows if "receipt" in r}


@pytest.mark.parametrize("world", [True], indirect=True, ids=["receiver-with-key"])
def test_receiver_with_a_key_and_no_refresh_agrees_with_codat(world):
    sandbox, store, folder = world
    first, second = runs_of_records()

    write(sandbox, store, folder / "run-1", first, wait=True)
    write(sandbox, store, folder / "run-2", second, wait=False)
    wait_for(lambda: codat_is_done(sandbox), 30)
    wait_for(lambda: nothing_left_to_confirm(store), 30)

    assert_store_agrees_with_codat(sandbox, store, receipts_in(first + second))


@pytest.mark.parametrize("world", [False], indirect=True, ids=["receiver-without-key"])
def test_receiver_without_a_key_then_one_refresh_agrees_with_codat(world):
    sandbox, store, folder = world
    first, second = runs_of_records()
    write(sandbox, store, folder / "run-1", first, wait=True)
    write(sandbox, store, folder / "run-2", second, wait=False)
    wait_for(lambda: codat_is_done(sandbox), 30)
    second_run = {txn_id(S, r["id"]) for r in second}
    unconfirmed = query(
        store,
        "SELECT DISTINCT s.sync_id, s.status_code, s.status_source, v.outcome FROM syncs s "
        "JOIN v_syncs v USING (sync_id) JOIN transactions t ON t.last_sync_id = s.sync_id "
        "WHERE t.transaction_id IN (SELECT unnest(?))",
        [sorted(second_run)],
    )
    # the webhooks said these ended; nobody has read Codat: no code, shown as unconfirmed
    assert len(unconfirmed) == len(COMPANIES)
    assert {row[1:] for row in unconfirmed} == {(None, "webhook", "unconfirmed")}

    env = {**os.environ, KEY_ENV: API_KEY, URL_ENV: sandbox}
    refreshed = subprocess.run(
        [str(OPERATOR_CLI), "status", "refresh", "--store", str(store)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )

    assert refreshed.returncode == 0, refreshed.stderr[-2000:]
    assert_store_agrees_with_codat(sandbox, store, receipts_in(first + second))
