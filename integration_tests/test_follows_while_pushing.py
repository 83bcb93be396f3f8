"""A run follows its syncs while it still reads and pushes: a sync opened for the first
checkpoint is recorded final in the store before the input has ended, not only at the end.

The sandbox on loopback (slow syncs), a real DuckDB file, the destination in process on a
paced input: the input does not go on until the store shows the first sync final (an event,
not a time), so a run that follows only after its last push never gets past it.
"""

from __future__ import annotations

import pytest

from integration_tests.conftest import XERO
from integration_tests.destination_support import (
    books,
    catalog,
    flat,
    iter_write,
    ledger,
    patch_company,
    query,
    record,
    settings,
    stream_state,
    sync_statuses,
    txn_id,
    wait_until,
)

S = "card_spend"
pytestmark = pytest.mark.timeout(120)


def final_syncs(store) -> list[tuple]:
    return query(store, "SELECT sync_id, status_code FROM syncs WHERE status_code = 2000")


def test_a_sync_is_recorded_final_while_later_records_are_still_coming(sandbox_url, tmp_path):
    store = tmp_path / "status.duckdb"
    patch_company(sandbox_url, XERO, {"syncSeconds": 0.5})
    seen_final_before_the_end: list[tuple] = []

    def paced_input():
        yield record(S, flat("first"))
        yield stream_state(S, 1)  # its push is committed before this STATE is echoed
        # the input waits here until the store shows the first sync final
        seen_final_before_the_end.extend(wait_until(lambda: final_syncs(store), timeout=30))
        yield record(S, flat("second"))
        yield stream_state(S, 2)

    config = settings(sandbox_url, store, sync_wait_timeout_seconds=60)
    states = list(iter_write(config, catalog(S), paced_input()))

    assert len(states) == 2
    # Codat's word first: both syncs succeeded, each booked its one expense once
    codat = {s["syncId"]: s["syncStatusCode"] for s in sync_statuses(sandbox_url, XERO)}
    assert sorted(codat.values()) == [2000, 2000]
    entries = books(sandbox_url)
    assert {txn_id(S, "first"), txn_id(S, "second")} <= set(entries)
    # the store had the first sync final before the second record was read, and agrees now
    [(first_sync, _)] = seen_final_before_the_end
    assert first_sync in codat
    assert ledger(store)[txn_id(S, "first")][1:3] == ("completed", "Completed")
    assert ledger(store)[txn_id(S, "first")][5] == first_sync
    assert dict(query(store, "SELECT sync_id, status_code FROM syncs")) == codat
