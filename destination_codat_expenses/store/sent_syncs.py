"""Every accepted push of one writer flush (`StatusStore.mark_sent`), recorded together.

Each push's ids become `sent` with their sync, and the sync is inserted or brought up to date
(its item count added to, never recounted). The writer hands all such jobs of a flush here
(store/writer.py's `Merge`): one ledger UPDATE over every push's ids and one upsert of every
sync (which answers where each sync's status came from), whatever the number of pushes. A
push whose sync the receiver had confirmed from Codat already moves its ids to the recorded
outcomes (rare: one statement each).
"""

from __future__ import annotations

import json
from typing import Any

from destination_codat_expenses.models import FROM_CODAT
from destination_codat_expenses.store import ledger as ledger_sql
from destination_codat_expenses.store import pg
from destination_codat_expenses.store import webhook_events as webhook_sql
from destination_codat_expenses.store.writer import Merge, disjoint_parts

# (company, ids, the sync record pushes.sync_record made)
Sent = tuple[str, list[str], dict[str, Any]]


class SentSyncs(Merge):
    def __init__(self, columns, now) -> None:
        self.columns, self.now = columns, now  # the store's helpers (status_store imports this)

    def parts(self, payloads: list[Sent]) -> list[list[int]]:
        """Pushes that share no sync and no id go together (one upsert may not name a sync
        twice, one UPDATE may not join an id to two rows); the rest go later."""
        keys = [{"sync:" + s["sync_id"], *("tid:" + t for t in ids)} for _, ids, s in payloads]
        return disjoint_parts(keys)

    def run_all(self, db, payloads: list[Sent]) -> list[None]:
        stamp = self.now()
        if pg.is_pg(db):  # the claims end with this commit
            for company_id, ids, _ in payloads:
                db.release_after_commit(company_id, ids)
        rows = [(co, tid, sync["sync_id"]) for co, ids, sync in payloads for tid in ids]
        if rows:
            self.write_sent(db, rows, stamp)
        sources = self.upsert_syncs(db, payloads, stamp)
        for company_id, ids, sync in payloads:
            if ids and sources.get(sync["sync_id"]) == FROM_CODAT:
                # the receiver confirmed the sync from Codat before this commit: its items'
                # outcomes are recorded, and these transactions move to them now
                webhook_sql.adopt_recorded_outcomes(db, company_id, sync["sync_id"])
        return [None] * len(payloads)

    def write_sent(self, db, rows: list[tuple[str, str, str]], stamp) -> None:
        table, params = self.columns(
            tid=("VARCHAR", [tid for _, tid, _ in rows]),
            co=("VARCHAR", [co for co, _, _ in rows]),
            sync=("VARCHAR", [sync for _, _, sync in rows]),
            stamp=("TIMESTAMPTZ", [stamp] * len(rows)),
        )
        db.execute(
            "UPDATE transactions t SET "
            + ledger_sql.guarded("t", "t.company_id = v.co", ledger_sql.SENT)
            + f" FROM {table} v WHERE t.transaction_id = v.tid",
            params,
        )

    def upsert_syncs(self, db, payloads: list[Sent], stamp) -> dict[str, str | None]:
        """Insert or bring up to date every sync; returns sync id -> where its status came from
        (the upsert leaves that column as it was: a webhook's or the receiver's word stands)."""
        syncs = [sync for _, _, sync in payloads]
        table, params = self.columns(
            sync=("VARCHAR", [s["sync_id"] for s in syncs]),
            co=("VARCHAR", [co for co, _, _ in payloads]),
            run=("VARCHAR", [s.get("run_id") for s in syncs]),
            retry_of=("VARCHAR", [s.get("retry_of") for s in syncs]),
            flow=("VARCHAR", [s.get("flow") for s in syncs]),
            initiated=("TIMESTAMPTZ", [s.get("initiated_at") or stamp for s in syncs]),
            source=("VARCHAR", [s.get("source_platform") for s in syncs]),
            target=("VARCHAR", [s.get("target_platform") for s in syncs]),
            d_from=("DATE", [s.get("expenses_from") for s in syncs]),
            d_to=("DATE", [s.get("expenses_to") for s in syncs]),
            items=("INTEGER", [len(ids) for _, ids, _ in payloads]),
            config=("JSON", [json.dumps(s.get("config_snapshot")) for s in syncs]),
            stamp=("TIMESTAMPTZ", [stamp] * len(syncs)),
        )
        return dict(db.execute(UPSERT_SYNCS.format(table=table), params).fetchall())


UPSERT_SYNCS = (
    "INSERT INTO syncs (sync_id, company_id, run_id, retry_of, flow, initiated_at, "
    "source_platform, target_platform, expenses_from, expenses_to, item_count, "
    "config_snapshot, updated_at) SELECT sync, co, run, retry_of, flow, initiated, source, "
    "target, d_from, d_to, items, config, stamp FROM {table} v "
    "ON CONFLICT (sync_id) DO UPDATE SET "
    # kept as it goes, never recounted: the ids this call linked to the sync are added
    "item_count = coalesce(syncs.item_count, 0) + excluded.item_count, "
    "expenses_from = least(syncs.expenses_from, excluded.expenses_from),"
    " expenses_to = greatest(syncs.expenses_to, excluded.expenses_to), updated_at = "
    "excluded.updated_at, "
    # a webhook may have recorded the sync first, knowing only its company: fill the rest
    "run_id = coalesce(syncs.run_id, excluded.run_id), "
    "retry_of = coalesce(syncs.retry_of, excluded.retry_of), "
    "flow = coalesce(syncs.flow, excluded.flow), "
    "initiated_at = coalesce(syncs.initiated_at, excluded.initiated_at), "
    "source_platform = coalesce(syncs.source_platform, excluded.source_platform), "
    "target_platform = coalesce(syncs.target_platform, excluded.target_platform), "
    "config_snapshot = coalesce(syncs.config_snapshot, excluded.config_snapshot) "
    "RETURNING sync_id, status_source"
)
