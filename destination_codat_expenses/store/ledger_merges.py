"""The push path's ledger reads and claims of one writer flush, each kind run together.

Every push thread reads the ledger for its batch (`StatusStore.ledger`) and then claims its ids
(`mark_sending`). With tens of pushes in flight, one flush carries tens of each: here the reads
become one index lookup of all their ids, and the claims one INSERT of every new id and one
UPDATE of every known one (store/writer.py's `Merge`). A fleet's (PostgreSQL) claims stay one
per push: each is a compare-and-set whose answer is that push's alone (pg_claims.py).
"""

from __future__ import annotations

from typing import Any

from destination_codat_expenses.store import ledger as ledger_sql
from destination_codat_expenses.store import pg, pg_claims
from destination_codat_expenses.store.writer import Merge, disjoint_parts

LEDGER = "state, payload_hash, total_amount, currency"


def split_by_company(rows: list[tuple], wanted: list[tuple[str, list[str]]]) -> list[dict]:
    """Rows found by id (any company), as each (company, ids) asked for them."""
    found = {(row[0], row[1]): row[2:] for row in rows}
    return [{tid: found[(co, tid)] for tid in ids if (co, tid) in found} for co, ids in wanted]


class LedgerReads(Merge):
    """(company, ids) -> transaction id -> (state, payload hash, total, currency)."""

    def run_all(self, db, payloads: list[tuple[str, list[str]]]) -> list[dict]:
        ids = list({tid for _, wanted in payloads for tid in wanted})
        return split_by_company(ledger_sql.by_id(db, "transactions", LEDGER, ids), payloads)


# (company, ids, the rows' columns as status_store.columns takes them, ids the ledger holds
# as the pusher read them, or None: read them here)
Claim = tuple[str, list[str], dict[str, tuple[str, list]], set[str] | None]


class SendingClaims(Merge):
    """`mark_sending`: the ids `sending`; answers the ids each push may send."""

    def __init__(self, columns) -> None:
        self.columns = columns  # the store's helper (status_store imports this module)

    def parts(self, payloads: list[Claim]) -> list[list[int]]:
        return disjoint_parts([set(ids) for _, ids, _, _ in payloads])

    def run_all(self, db, payloads: list[Claim]) -> list[list[str]]:
        if pg.is_pg(db):  # a fleet's ledger changes under its readers: read, claim, each
            return [self.claim_shared(db, payload) for payload in payloads]
        unknown = [(co, ids) for co, ids, _, known in payloads if known is None]
        read = iter(LedgerReads().run_all(db, unknown) if unknown else [])
        held = [known if known is not None else next(read) for _, _, _, known in payloads]
        fresh = [
            tid not in h for (_, ids, _, _), h in zip(payloads, held, strict=True) for tid in ids
        ]
        table, params = self.columns(
            **joined([rows for _, _, rows, _ in payloads]), fresh=("BOOLEAN", fresh)
        )
        ledger_sql.write_sending(db, table, params, fresh)
        return [ids for _, ids, _, _ in payloads]

    def claim_shared(self, db, payload: Claim) -> list[str]:
        company_id, ids, rows, _ = payload
        held = ledger_sql.ledger_rows(db, company_id, ids)
        fresh = [tid not in held for tid in ids]
        table, params = self.columns(**rows, fresh=("BOOLEAN", fresh))
        return pg_claims.claim_sending(db, company_id, table, params, ids, fresh, held)


def joined(tables: list[dict[str, tuple[str, list[Any]]]]) -> dict[str, tuple[str, list]]:
    """Column lists of several batches, one after the other (the same columns in each)."""
    return {
        name: (kind, [value for table in tables for value in table[name][1]])
        for name, (kind, _) in tables[0].items()
    }
