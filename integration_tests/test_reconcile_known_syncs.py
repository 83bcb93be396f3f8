"""Reconciling an id a crash left `sending` when the sync that carried it is already in the
store: the receiver (or another process of a fleet) settled that sync from Codat before the
process that pushed it could record the push. The real sandbox, a real DuckDB store."""

from __future__ import annotations

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.codat.http import http_client
from destination_codat_expenses.config import Config
from destination_codat_expenses.follow import SyncFollower
from destination_codat_expenses.mapping import map_record
from destination_codat_expenses.reconcile import reconcile_in_flight
from destination_codat_expenses.store.db import release
from destination_codat_expenses.store.status_store import StatusStore
from integration_tests.destination_support import API_KEY, XERO, books, flat, ledger, settings

S = "card_spend"


def test_an_id_in_a_sync_the_store_already_settled_is_found_not_pushed_again(sandbox_url, tmp_path):
    path = tmp_path / "status.duckdb"
    store = StatusStore(str(path))
    store.prepare()
    mapped = map_record(flat("r1"), S, Config.from_mapping(settings(sandbox_url, path)).mapping)
    store.mark_sending(XERO, S, [mapped])
    try:
        with http_client(sandbox_url) as http:
            client = CodatClient(http, API_KEY)
            # Codat accepts the push; the process dies before it records the sync
            sync_id = client.create_expense_transactions(XERO, [mapped.body], "died-after-answer")
            # the receiver hears of the sync and settles it from Codat, items and all
            store.mark_sent(XERO, [], {"sync_id": sync_id})
            assert (
                SyncFollower(client, store, upload_receipts=False).follow([(XERO, sync_id)], 60)
                == []
            )
            # the rerun: the id is found in that sync, and is not to be pushed again
            assert reconcile_in_flight(client, store) == 1
            SyncFollower(client, store, upload_receipts=False).complete_unfinished()
    finally:
        release(str(path))
    assert list(books(sandbox_url)) == [mapped.transaction_id]
    _, state, codat_status, _, _, last_sync = ledger(path)[mapped.transaction_id]
    assert (state, codat_status, last_sync) == ("completed", "Completed", sync_id)
