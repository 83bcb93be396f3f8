"""The statements behind a transaction's versions (schema v7). The current version is the
`transactions` row; superseded versions and held content are rows of `transaction_versions`.
Rows are found by transaction id alone (schema v6's index) and told apart by company here, as in
ledger.py. Written for DuckDB and PostgreSQL alike: plain SQL, parameters only."""

from __future__ import annotations

import json
from typing import Any

from destination_codat_expenses import jsonwire
from destination_codat_expenses.store.ledger import by_id, ledger_rows

CURRENT = (
    "kind, version, state, codat_status, message, last_sync_id, source_stream, source_key, "
    "payload, payload_hash, issue_date, currency, total_amount"
)


def current(db, company_id: str, transaction_id: str) -> dict[str, Any] | None:
    """The company's row for the id, by name, or None."""
    names = [n.strip() for n in CURRENT.split(",")]
    for row in by_id(db, "transactions", CURRENT, [transaction_id]):
        if row[0] == company_id:
            found = dict(zip(names, row[2:], strict=True))
            found["version"] = found["version"] or 1
            return found
    return None


def archive(db, company_id: str, transaction_id: str, row: dict[str, Any], stamp) -> None:
    """The current version, as it ended, into the history (it never changes again)."""
    payload = row["payload"]
    db.execute(
        "INSERT INTO transaction_versions (company_id, transaction_id, version, kind, state, "
        "codat_status, message, sync_id, source_stream, source_key, payload, payload_hash, "
        "issue_date, currency, total_amount, recorded_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [
            company_id,
            transaction_id,
            row["version"],
            row["kind"],
            row["state"],
            row["codat_status"],
            row["message"],
            row["last_sync_id"],
            row["source_stream"],
            row["source_key"],
            payload if isinstance(payload, str) or payload is None else json.dumps(payload),
            row["payload_hash"],
            row["issue_date"],
            row["currency"],
            row["total_amount"],
            stamp,
        ],
    )


def content(item, stamp) -> list:
    """payload, payload_hash, issue_date, currency, total_amount, and the time: what a version
    holds, in the order every statement below lists those columns."""
    return [
        jsonwire.dumps(item.body),
        item.payload_hash,
        item.issue_date,
        getattr(item, "currency", None),
        getattr(item, "total", None),
        stamp,
    ]


def insert_sending(db, company_id: str, stream: str, kind: str, item, version: int, stamp):
    db.execute(
        "INSERT INTO transactions (company_id, transaction_id, source_stream, source_key, "
        "state, payload, payload_hash, issue_date, currency, total_amount, updated_at, kind, "
        "version) VALUES (?, ?, ?, ?, 'sending', ?, ?, ?, ?, ?, ?, ?, ?)",
        [company_id, item.transaction_id, stream, item.source_key]
        + content(item, stamp)
        + [kind, version],
    )


def update_sending(db, company_id: str, stream: str, kind: str, item, version: int, stamp):
    """The row holds `version` with this content, `sending`; Codat's word on the version it
    replaces is cleared (the history keeps it)."""
    db.execute(
        "UPDATE transactions SET state = 'sending', codat_status = NULL, message = NULL, "
        "payload = ?, payload_hash = ?, issue_date = ?, currency = coalesce(?, currency), "
        "total_amount = coalesce(?, total_amount), updated_at = ?, source_stream = ?, "
        "source_key = ?, kind = ?, version = ? WHERE transaction_id = ? AND company_id = ?",
        content(item, stamp)
        + [stream, item.source_key, kind, version, item.transaction_id, company_id],
    )


def insert_held(db, company_id: str, stream: str, kind: str, item, version: int, stamp) -> None:
    db.execute(
        "INSERT INTO transaction_versions (company_id, transaction_id, version, kind, state, "
        "source_stream, source_key, payload, payload_hash, issue_date, currency, total_amount, "
        "recorded_at) VALUES (?, ?, ?, ?, 'held', ?, ?, ?, ?, ?, ?, ?, ?)",
        [company_id, item.transaction_id, version, kind, stream, item.source_key]
        + content(item, stamp),
    )


def drop_held(db, company_id: str, transaction_id: str, payload_hash: str | None = None) -> None:
    db.execute(
        "DELETE FROM transaction_versions WHERE transaction_id = ? AND company_id = ? "
        "AND state = 'held' AND (CAST(? AS VARCHAR) IS NULL OR payload_hash = ?)",
        [transaction_id, company_id, payload_hash, payload_hash],
    )


def held_ready(db) -> list[dict[str, Any]]:
    """Held versions whose id has no push waiting for Codat's answer (its row is not `sent`).
    Called when nothing of this process is in flight: a row still `sending` then is one a
    crash left that Codat never got, and is pushed again like a failed one."""
    held = db.execute(
        "SELECT company_id, transaction_id, source_stream, source_key, payload, payload_hash, "
        "issue_date, currency, total_amount FROM transaction_versions WHERE state = 'held' "
        "ORDER BY company_id, recorded_at"
    ).fetchall()
    ready = []
    for company_id, tid, stream, key, payload, digest, day, currency, total in held:
        state = ledger_rows(db, company_id, [tid]).get(tid, (None,))[0]
        if state != "sent":
            ready.append(
                {
                    "company_id": company_id,
                    "transaction_id": tid,
                    "source_stream": stream,
                    "source_key": key,
                    "payload": jsonwire.loads(payload),
                    "payload_hash": digest,
                    "issue_date": day,
                    "currency": currency,
                    "total": total,
                }
            )
    return ready
