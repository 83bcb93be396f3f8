"""A run reads a company's open syncs from one `list/status` request per round, not one status
request per sync: Codat runs a company's syncs one after another, so a run pushing ten at a time
has ten open, and each one asked about alone would spend a request of the company's ten at a
time and of the day's quota. What is recorded is still Codat's own status of each sync.

The real `destination-codat-expenses write` as its own process, the sandbox on loopback (which
counts the requests it let through, by route), one DuckDB file. The sandbox's books and sync
pages are read first; then the store must agree with them.
"""

from __future__ import annotations

import pytest

from integration_tests.conftest import XERO
from integration_tests.destination_support import (
    admin,
    books,
    catalog,
    flat,
    patch_company,
    query,
    record,
    run_write,
    settings,
    stream_state,
    sync_statuses,
    txn_id,
    write_files,
)

S = "card_spend"
SYNCS = 10  # 500 records in batches of 50, pushed ten at a time: ten syncs open at once
LIST = "GET /companies/{id}/sync/expenses/syncs/list/status"
STATUS = "GET /companies/{id}/sync/expenses/syncs/{id}/status"
pytestmark = pytest.mark.timeout(180)


def test_a_run_reads_its_open_syncs_from_the_company_s_list(sandbox_url, tmp_path):
    patch_company(sandbox_url, XERO, {"syncSeconds": 0.3})  # one after another: ~3 s in all
    keys = [f"listed-{n}" for n in range(SYNCS * 50)]
    lines = [record(S, flat(key, XERO)) for key in keys] + [stream_state(S, 1)]
    store = tmp_path / "status.duckdb"
    config = settings(sandbox_url, store, concurrency=SYNCS)

    result = run_write(write_files(tmp_path / "run", config, catalog(S), lines))

    assert result.returncode == 0, result.stderr.decode()[-2000:]
    asked = admin(sandbox_url, "GET", "/_sandbox/limits")["admitted"]
    assert asked.get(LIST, 0) >= 1
    assert asked.get(STATUS, 0) < SYNCS  # one each, at the least, when every sync is asked alone
    booked = books(sandbox_url)
    assert set(booked) == {txn_id(S, key) for key in keys}
    codat_syncs = sync_statuses(sandbox_url, XERO)
    assert len(codat_syncs) == SYNCS and {s["syncStatusCode"] for s in codat_syncs} == {2000}
    stored = dict(query(store, "SELECT sync_id, status_code FROM syncs"))
    assert stored == {s["syncId"]: s["syncStatusCode"] for s in codat_syncs}
    ledger = dict(query(store, "SELECT transaction_id, state FROM transactions"))
    assert ledger == {transaction_id: "completed" for transaction_id in booked}
