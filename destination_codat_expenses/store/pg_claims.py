"""Claims on a shared (PostgreSQL) ledger: the PostgreSQL side of ledger.write_sending and of
StatusStore.mark_retrying / in_flight, for a fleet of processes pushing for the same companies.

- A new id is claimed by inserting its row: `INSERT ... ON CONFLICT DO NOTHING RETURNING`, one
  statement per batch; the primary key lets exactly one process have it. Its claim lock is
  taken before the commit, waiting for a session that rolled back its own insert of the id and
  has not let go of the lock yet.
- A known id is claimed by a compare-and-set of its state (`failed`, or `sending` taken over
  from a dead process by this one), and only while this process can take its claim lock.
- The claim lock (pg.py) is held from the claim until the commit that records the push's
  outcome: a row `sending` whose lock another session holds is that live process's job. A dead
  process's locks are gone, so `take_over_in_flight` (the reconcile step) takes its rows over.
What a process does not claim it does not push (the pusher counts it as a repeat).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from destination_codat_expenses import jsonwire
from destination_codat_expenses.mapping import MappedTransaction, Receipt
from destination_codat_expenses.store.pg import PgDb, claim_key

INSERT_FRESH = (
    "INSERT INTO transactions (company_id, transaction_id, source_stream, source_key, state, "
    "payload, payload_hash, issue_date, currency, total_amount, updated_at, receipt) "
    "SELECT co, tid, stream, source_key, 'sending', payload::JSON, hash, issued, currency, "
    "total, stamp, receipt FROM {table} v WHERE v.fresh ORDER BY v.tid "
    "ON CONFLICT (company_id, transaction_id) DO NOTHING RETURNING transaction_id"
)
# a known id goes back to `sending` only from `failed`, or from `sending` this process took over
CLAIM_KNOWN = (
    "UPDATE transactions t SET state = 'sending', payload = v.payload::JSON, payload_hash = "
    "v.hash, issue_date = v.issued, currency = v.currency, total_amount = v.total, "
    "updated_at = v.stamp, receipt = v.receipt, source_stream = v.stream, source_key = "
    "v.source_key FROM {table} v WHERE t.company_id = v.co AND t.transaction_id = v.tid "
    "AND NOT v.fresh AND v.tid = ANY(?::VARCHAR[]) AND (t.state = 'failed' OR "
    "(t.state = 'sending' AND v.tid = ANY(?::VARCHAR[]))) RETURNING t.transaction_id"
)


def claim_sending(
    db: PgDb,
    company_id: str,
    table: str,
    params: list,
    ids: list[str],
    fresh: list[bool],
    known: dict,
) -> list[str]:
    """The ids of the batch this process claimed, in the batch's order."""
    backend = db.backend
    claimed: set[str] = set()
    if any(fresh):
        rows = db.execute(INSERT_FRESH.format(table=table), params).fetchall()
        inserted = {row[0] for row in rows}
        # locked before commit; a lock another session still holds is waited for: pushed
        # without it, the row would look like a dead process's to a third, which would push it too
        backend.wait_for_locks(db, [(company_id, tid) for tid in inserted])
        claimed |= inserted
    others = [tid for tid, new in zip(ids, fresh, strict=True) if not new and tid in known]
    if others:
        claimed |= claim_known(db, company_id, table, params, others)
    return [tid for tid in dict.fromkeys(ids) if tid in claimed]


def claim_known(db: PgDb, company_id: str, table: str, params: list, ids: list[str]) -> set[str]:
    backend = db.backend
    taken_over = [tid for tid in ids if backend.holds(company_id, tid)]
    locked = [tid for _, tid in backend.try_lock(db, [(company_id, tid) for tid in ids])]
    claimed: set[str] = set()
    if locked:
        sql = CLAIM_KNOWN.format(table=table)
        rows = db.execute(sql, [*params, locked, taken_over]).fetchall()
        claimed = {row[0] for row in rows}
    # locks taken just now for rows not claimed (sent, completed, or in flight before): let go
    backend.unlock(
        [claim_key(company_id, t) for t in locked if t not in claimed and t not in taken_over]
    )
    return claimed


def claim_retrying(db: PgDb, company_id: str, ids: list[str]) -> list[str]:
    """A retry's ids: the same rule as DuckDB's (anything not completed goes back to
    `sending`), for the ids whose claim lock this process can take."""
    backend = db.backend
    locked = [tid for _, tid in backend.try_lock(db, [(company_id, tid) for tid in ids])]
    if not locked:
        return []
    rows = db.execute(
        "UPDATE transactions SET state = 'sending', updated_at = ? WHERE company_id = ? AND "
        "transaction_id = ANY(?::VARCHAR[]) AND state <> 'completed' RETURNING transaction_id",
        [datetime.now(UTC), company_id, locked],
    ).fetchall()
    claimed = {row[0] for row in rows}
    backend.unlock([claim_key(company_id, t) for t in locked if t not in claimed])
    return [tid for tid in dict.fromkeys(ids) if tid in claimed]


def take_over_in_flight(db: PgDb, company_id: str | None) -> list[tuple[str, str, str | None]]:
    """(company, transaction, last sync) of rows left `sending` by processes that are gone
    (their claim locks are free): this process takes their locks, and so the rows, over. Rows
    a live process holds (this one's own pushes included) are not returned."""
    backend = db.backend
    rows = db.execute(
        "SELECT company_id, transaction_id, last_sync_id FROM transactions "
        "WHERE state = 'sending' AND (CAST(? AS VARCHAR) IS NULL OR company_id = ?)",
        [company_id, company_id],
    ).fetchall()
    free = [(c, t) for c, t, _ in rows if not backend.holds(c, t)]
    got = backend.try_lock(db, free)
    backend.taken |= got
    return [(c, t, s) for c, t, s in rows if (c, t) in got]


def held_in_flight(db: PgDb) -> list[tuple[str, str, MappedTransaction]]:
    """Rows this process took over that are still `sending` (reconciled: Codat has none)."""
    backend = db.backend
    taken = sorted(backend.taken)
    if not taken:
        return []
    rows = db.execute(
        "SELECT t.company_id, t.source_stream, t.transaction_id, t.source_key, t.payload, "
        "t.payload_hash, t.issue_date, t.currency, t.total_amount, t.receipt FROM transactions t "
        "JOIN (SELECT unnest(?::VARCHAR[]) AS co, unnest(?::VARCHAR[]) AS tid) k "
        "ON t.company_id = k.co AND t.transaction_id = k.tid WHERE t.state = 'sending' "
        "ORDER BY t.company_id, t.updated_at, t.transaction_id",
        [[c for c, _ in taken], [t for _, t in taken]],
    ).fetchall()
    return [(row[0], row[1] or "", as_mapped(row)) for row in rows]


def as_mapped(row: tuple) -> MappedTransaction:
    _, _, tid, source_key, payload, digest, issued, currency, total, receipt = row
    return MappedTransaction(
        transaction_id=tid,
        source_key=source_key or tid,
        body=jsonwire.loads(payload),
        issue_date=issued,
        currency=currency,
        total=Decimal(total),
        payload_hash=digest,
        receipt=Receipt(**json.loads(receipt)) if receipt else None,
    )
