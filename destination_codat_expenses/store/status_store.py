"""StatusStore: every write the product makes, named for what it means.

The ledger (`transactions`) is what makes each expense land once: a row is committed as
`sending` before its push leaves, becomes `sent` with the sync that carries it, then `completed`
or `failed` from Codat's answer. The store is a DuckDB file or a PostgreSQL database (pg.py):
the same statements run on both; where they differ, both sit side by side here or in ledger.py.
On PostgreSQL many processes share the ledger, and `mark_sending` claims ids for real (pg.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from destination_codat_expenses import jsonwire
from destination_codat_expenses.codat.errors import PREVIOUSLY_PROCESSED
from destination_codat_expenses.mapping import MappedTransaction, Receipt
from destination_codat_expenses.models import (
    FAILED_ITEM,
    FROM_CODAT,
    FROM_PRODUCT,
    FROM_WEBHOOK,
    IN_PROGRESS,
    NOT_FOUND_AT_CODAT,
    NOT_FOUND_AT_CODAT_TEXT,
    PENDING,
    is_final,
    sql_list,
)
from destination_codat_expenses.redaction import is_postgres
from destination_codat_expenses.store import ledger as ledger_sql
from destination_codat_expenses.store import pg, pg_claims
from destination_codat_expenses.store import versions as versions_sql
from destination_codat_expenses.store import webhook_events as webhook_sql
from destination_codat_expenses.store.db import migrate, transaction
from destination_codat_expenses.store.ledger_merges import LedgerReads, SendingClaims
from destination_codat_expenses.store.sent_syncs import SentSyncs
from destination_codat_expenses.store.sync_outcomes import SyncOutcomes
from destination_codat_expenses.store.writer import writer_for

OPEN, FAILED_STATUSES = sql_list(IN_PROGRESS), sql_list(FAILED_ITEM)
NOT_COMPLETED = (
    "Codat answered that this id was processed before, but lists it completed in none of the "
    "company's syncs, so it is not counted as written; it is pushed again, with the same id, "
    "when its record comes again or by a retry."
)


def columns(**lists: tuple[str, list]) -> tuple[str, list]:
    """Parallel lists as one derived table, so a batch is one statement, not one per row
    (DuckDB's executemany runs row by row: ~85 ms for 50 rows). Each column names its type.
    A column holding one value all along (the flush's time, a company, a status) is bound
    once, as a scalar beside the lists, not once per row: binding a value costs about as much
    as the statement's own work. At least one column stays a list: it makes the rows."""
    same = {name for name, (_, values) in lists.items() if holds_one_value(values)}
    if len(same) == len(lists):
        same.discard(next(iter(lists)))
    select = ", ".join(
        f"?::{kind} AS {name}" if name in same else f"unnest(?::{kind}[]) AS {name}"
        for name, (kind, _) in lists.items()
    )
    params = [values[0] if name in same else values for name, (_, values) in lists.items()]
    return f"(SELECT {select})", params


def holds_one_value(values: list) -> bool:
    """Every item the same, type included (1 and True and 1.0 are equal, yet not one value)."""
    if not values:
        return False
    first = values[0]
    return all(v is first or (type(v) is type(first) and v == first) for v in values)


def now() -> datetime:
    return datetime.now(UTC)


def parse_utc(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(normalise_fraction(text))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def normalise_fraction(text: str) -> str:
    """Codat writes 7 fractional digits; Python reads at most 6."""
    text = text.replace("Z", "+00:00")
    if "." not in text:
        return text
    head, tail = text.split(".", 1)
    digits = "".join(ch for ch in tail if ch.isdigit())
    zone = tail[len(digits) :]
    return f"{head}.{digits[:6]}{zone}"


class StatusStore:
    """The store's public surface: methods named for what they mean, no SQL outside store/.
    Every method's work goes through the store's one writer (store/writer.py), which commits
    what many threads queued in one transaction and answers each after that commit."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.writer = writer_for(path, lambda: transaction(path))
        self.shared = is_postgres(path)  # a fleet's ledger: claims are real (pg.py)

    def prepare(self) -> None:
        migrate(self.path)

    def write(self, work: Callable[[Any], Any]) -> Any:
        """`work` runs in the writer's next transaction; returns once that committed."""
        return self.writer.run(work)

    def read(self, work: Callable[[Any], Any]) -> Any:
        """A read, by the same owner (it sees every write queued before it)."""
        return self.writer.run(work)

    # -- runs -----------------------------------------------------------------------------------
    def start_run(self, run_id: str, config: dict) -> None:
        def work(db):
            db.execute(
                "INSERT INTO runs (run_id, started_at, outcome, config_redacted) "
                "VALUES (?, ?, 'running', ?)",
                [run_id, now(), json.dumps(config)],
            )

        self.write(work)

    def finish_run(
        self, run_id: str, counts: dict[str, int], outcome: str, error: str | None = None
    ) -> None:
        def work(db):
            db.execute(
                "UPDATE runs SET finished_at = ?, records_in = ?, records_accepted = ?, "
                "records_rejected = ?, checkpoints = ?, outcome = ?, error = ? WHERE run_id = ?",
                [
                    now(),
                    counts["in"],
                    counts["accepted"],
                    counts["rejected"],
                    counts["checkpoints"],
                    outcome,
                    storable(error, 2000) if error is not None else None,
                    run_id,
                ],
            )

        self.write(work)
        if self.shared:  # what this run still holds (pushes that failed) is anyone's to reconcile
            pg.backend_for(self.path).unlock_all()

    def record_rejects(self, run_id: str, rejects: Iterable[tuple[str, str, str, str]]) -> None:
        rows = list(rejects)
        if not rows:
            return
        table, params = columns(
            stream=("VARCHAR", [storable(r[0], 200) for r in rows]),
            key=("VARCHAR", [storable(r[1], 500) for r in rows]),
            field=("VARCHAR", [storable(r[2], 200) for r in rows]),
            reason=("VARCHAR", [storable(r[3], 1000) for r in rows]),
        )

        def work(db):
            db.execute(
                f"INSERT INTO rejects SELECT ?, stream, key, field, reason, ? FROM {table} v",
                [run_id, now(), *params],
            )

        self.write(work)

    # -- ledger ---------------------------------------------------------------------------------
    def ledger(self, company_id: str, ids: list[str]) -> dict[str, tuple[str, str | None]]:
        """State and payload hash of each known id: what decides push, skip or refuse."""
        if not ids:
            return {}
        rows = self.writer.run_merged(LEDGER_READS, (company_id, ids))  # a flush's, together
        return {tid: (row[0], row[1]) for tid, row in rows.items()}

    def mark_sending(
        self,
        company_id: str,
        stream: str,
        batch: list[MappedTransaction],
        known: set[str] | None = None,
    ) -> list[str]:
        """The ids `sending`, before their push leaves; returns those this process claimed and
        may push. A DuckDB file has one writing process: all of them. On PostgreSQL, an id
        another live process holds (or that it recorded first) is not claimed (pg_claims.py).
        `known`: the ids the company's ledger holds, as the caller read them while no one else
        could write them (a DuckDB file's one process): the ledger is not read again."""
        ids = [t.transaction_id for t in batch]
        rows = {  # built here, on the pusher's thread: the writer's time is the store's
            "tid": ("VARCHAR", ids),
            "co": ("VARCHAR", [company_id] * len(batch)),
            "stream": ("VARCHAR", [stream] * len(batch)),
            "source_key": ("VARCHAR", [t.source_key for t in batch]),
            "payload": ("VARCHAR", [jsonwire.dumps(t.body) for t in batch]),
            "hash": ("VARCHAR", [t.payload_hash for t in batch]),
            "issued": ("DATE", [t.issue_date for t in batch]),
            "currency": ("VARCHAR", [t.currency for t in batch]),
            "total": ("DECIMAL(38,9)", [t.total for t in batch]),
            "stamp": ("TIMESTAMPTZ", [now()] * len(batch)),
            "receipt": ("JSON", [receipt_json(t.receipt) for t in batch]),
        }

        # a flush's claims run together (store/ledger_merges.py)
        return self.writer.run_merged(SENDING_CLAIMS, (company_id, ids, rows, known))

    def mark_sent(self, company_id: str, ids: list[str], sync: dict[str, Any]) -> None:
        """Codat accepted the push: remember its sync, and the sync itself (a flush's accepted
        pushes are recorded together: store/sent_syncs.py)."""
        self.writer.run_merged(SENT_SYNCS, (company_id, ids, sync))

    def mark_dataset(self, company_id: str, dataset_id: str, run_id: str, count: int) -> None:
        def work(db):
            db.execute(
                "INSERT INTO datasets VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING",
                [dataset_id, company_id, run_id, count, now()],
            )

        self.write(work)

    def link_datasets(self, dataset_ids: list[str], sync_id: str) -> None:
        def work(db):
            db.execute(
                "UPDATE datasets SET sync_id = ? WHERE dataset_id IN (SELECT unnest(?::VARCHAR[]))",
                [sync_id, dataset_ids],
            )

        self.write(work)

    def syncs_that_carried(self, company_id: str, ids: list[str]) -> list[tuple[str, str]]:
        """(transaction, sync) for every sync the store saw carry one of these ids."""
        if not ids:
            return []

        def work(db):
            return db.execute(
                "SELECT transaction_id, sync_id FROM transaction_attempts WHERE company_id = ? "
                "AND transaction_id IN (SELECT unnest(?::VARCHAR[])) UNION SELECT transaction_id, "
                "last_sync_id FROM transactions WHERE company_id = ? AND transaction_id IN "
                "(SELECT unnest(?::VARCHAR[])) AND last_sync_id IS NOT NULL",
                [company_id, ids, company_id, ids],
            ).fetchall()

        return self.read(work)

    def mark_completed_by(self, company_id: str, completions: dict[str, str]) -> None:
        """Codat lists these ids `Completed` in these syncs (an earlier push's): the ledger and
        each id's attempt history say so. A sync the store did not know is kept as discovered,
        open, so whoever follows open syncs records it whole."""
        if not completions:
            return
        ids, sync_ids = list(completions), list(completions.values())
        messages = [
            f"Codat had already completed this transaction in sync {sync_id}; "
            "it was not written again."
            for sync_id in sync_ids
        ]
        stamp = now()
        table, params = columns(
            tid=("VARCHAR", ids),
            sync=("VARCHAR", sync_ids),
            message=("VARCHAR", messages),
            # in the table, not a parameter: DuckDB binds the FROM clause's parameters first
            changed_at=("TIMESTAMPTZ", [stamp] * len(ids)),
        )

        def work(db):
            if pg.is_pg(db):
                db.release_after_commit(company_id, ids)
            for sync_id in set(sync_ids):
                db.execute(
                    "INSERT INTO syncs (sync_id, company_id, flow, initiated_at, updated_at) "
                    "VALUES (?, ?, 'discovered', ?, ?) ON CONFLICT DO NOTHING",
                    [sync_id, company_id, stamp, stamp],
                )
            db.execute(
                "UPDATE transactions t SET state = 'completed', codat_status = 'Completed', "
                "last_sync_id = c.sync, message = c.message, updated_at = c.changed_at "
                f"FROM {table} c WHERE t.company_id = ? AND t.transaction_id = c.tid",
                [*params, company_id],
            )
            # PostgreSQL names the conflict's columns; DuckDB's is the primary key already
            target = "(company_id, transaction_id, sync_id) " if pg.is_pg(db) else ""
            db.execute(
                "INSERT INTO transaction_attempts SELECT ?, tid, sync, 'Completed', message, "
                f"changed_at FROM {table} v ON CONFLICT {target}DO UPDATE SET status = "
                "excluded.status, message = excluded.message, recorded_at = excluded.recorded_at",
                [company_id, *params],
            )

        self.write(work)

    def mark_not_completed(self, company_id: str, ids: list[str]) -> None:
        """Codat called these ids processed before, yet lists them completed in no sync: they
        stay failed (pushed again with the same id when their record comes, or by retry)."""
        if not ids:
            return

        def work(db):
            if pg.is_pg(db):
                db.release_after_commit(company_id, ids)
            db.execute(
                "UPDATE transactions SET state = 'failed', message = ?, updated_at = ? WHERE "
                "company_id = ? AND transaction_id IN (SELECT unnest(?::VARCHAR[])) "
                "AND state <> 'completed'",
                [NOT_COMPLETED, now(), company_id, ids],
            )

        self.write(work)

    def mark_retrying(self, company_id: str, ids: list[str]) -> list[str]:
        """A retry is about to push these failed ids again: in flight, like any push. Returns
        the ids claimed (on PostgreSQL, not those another live process holds)."""

        def work(db):
            if pg.is_pg(db):
                return pg_claims.claim_retrying(db, company_id, ids)
            db.execute(
                "UPDATE transactions SET state = 'sending', updated_at = ? WHERE "
                "company_id = ? AND transaction_id IN (SELECT unnest(?::VARCHAR[])) "
                "AND state <> 'completed'",
                [now(), company_id, ids],
            )
            return ids

        return self.write(work)

    def mark_refused(self, company_id: str, transaction_id: str, message: str) -> None:
        """Codat refused the item itself (its schema check): failed, with Codat's reason."""

        def work(db):
            if pg.is_pg(db):
                db.release_after_commit(company_id, [transaction_id])
            db.execute(
                "UPDATE transactions SET state = 'failed', codat_status = 'Refused', "
                "message = ?, updated_at = ? WHERE company_id = ? AND transaction_id = ?",
                [message, now(), company_id, transaction_id],
            )

        self.write(work)

    def reported_or_settled(self, sync_ids: list[str]) -> set[str]:
        """Those of these syncs a webhook marked to confirm or whose final status is recorded
        (one query: the receiver may have been told while the destination waited)."""

        def work(db):
            return db.execute(
                "SELECT sync_id FROM syncs WHERE sync_id IN (SELECT unnest(?::VARCHAR[])) AND "
                f"(status_source = '{FROM_WEBHOOK}' OR (status_code IS NOT NULL AND "
                f"status_code NOT IN {OPEN}))",
                [sync_ids],
            ).fetchall()

        rows = self.read(work)
        return {row[0] for row in rows}

    def settled(self, sync_ids: list[str]) -> set[str]:
        """Those of these syncs whose final status is recorded from Codat's API (with their
        items), or as not found at Codat: nothing is left to read about them."""

        def work(db):
            return db.execute(
                "SELECT sync_id FROM syncs WHERE sync_id IN (SELECT unnest(?::VARCHAR[])) AND "
                f"status_source IN ('{FROM_CODAT}', '{FROM_PRODUCT}') AND "
                f"status_code IS NOT NULL AND status_code NOT IN {OPEN}",
                [sync_ids],
            ).fetchall()

        rows = self.read(work)
        return {row[0] for row in rows}

    def in_flight(self, company_id: str | None = None) -> list[tuple[str, str, str | None]]:
        """(company, transaction, last sync) of every row left `sending`: to reconcile. On
        PostgreSQL only those no live process holds, and this one takes them over (pg.py)."""

        def work(db):
            if pg.is_pg(db):
                return pg_claims.take_over_in_flight(db, company_id)
            return db.execute(
                "SELECT company_id, transaction_id, last_sync_id FROM transactions "
                "WHERE state = 'sending' AND (CAST(? AS VARCHAR) IS NULL OR company_id = ?)",
                [company_id, company_id],
            ).fetchall()

        return self.read(work)

    def taken_over(self) -> list[tuple[str, str, MappedTransaction]]:
        """(company, stream, expense as the ledger holds it) of rows this process took over
        from a dead one and still holds `sending` after reconciling them (Codat has none of
        them): pushing them is this process's job now, whether its records bring them or not.
        Always empty on a DuckDB file (one writing process: its records bring them again)."""
        if not self.shared:
            return []
        return self.read(pg_claims.held_in_flight)

    # -- syncs ----------------------------------------------------------------------------------
    def open_syncs(
        self, company_id: str | None = None, run_id: str | None = None
    ) -> list[tuple[str, str]]:
        """(company, sync) without a final status from Codat: running, or reported ended by a
        webhook and still to confirm; of one company, or of one run, when given."""

        def work(db):
            return db.execute(
                "SELECT company_id, sync_id FROM syncs WHERE (status_code IS NULL OR "
                f"status_code IN {OPEN}) AND (CAST(? AS VARCHAR) IS NULL OR company_id = ?) "
                "AND (CAST(? AS VARCHAR) IS NULL OR run_id = ?) "
                "ORDER BY coalesce(initiated_at, first_seen_at), sync_id",
                [company_id, company_id, run_id, run_id],
            ).fetchall()

        return self.read(work)

    def left_open_by_unfinished_runs(self, run_id: str) -> list[tuple[str, str]]:
        """(company, sync) still open whose run never recorded its end (it was killed): nobody
        else waits for them, so the run after the crash follows them with its own."""

        def work(db):
            return db.execute(
                "SELECT company_id, sync_id FROM syncs WHERE (status_code IS NULL OR "
                f"status_code IN {OPEN}) AND run_id IN (SELECT run_id FROM runs WHERE "
                "outcome = 'running' AND finished_at IS NULL AND run_id <> ?) "
                "ORDER BY coalesce(initiated_at, first_seen_at), sync_id",
                [run_id],
            ).fetchall()

        return self.read(work)

    def company_sync_count(self, company_id: str) -> int:
        """How many of the company's syncs the store knows: what Codat's list of them holds at
        the least."""

        def work(db):
            return db.execute(
                "SELECT count(*) FROM syncs WHERE company_id = ?", [company_id]
            ).fetchone()[0]

        return self.read(work)

    def settled_count(self, run_id: str) -> int:
        """How many of the run's syncs have a final status."""

        def work(db):
            return db.execute(
                "SELECT count(*) FROM syncs WHERE run_id = ? AND status_code IS NOT NULL "
                f"AND status_code NOT IN {OPEN}",
                [run_id],
            ).fetchone()[0]

        return self.read(work)

    def known_sync_ids(self, company_id: str) -> set[str]:
        def work(db):
            rows = db.execute("SELECT sync_id FROM syncs WHERE company_id = ?", [company_id])
            return {row[0] for row in rows.fetchall()}

        return self.read(work)

    def settle_not_found(self, sync_id: str, note: str) -> None:
        """Codat answered 404 for the sync: final as NOT_FOUND_AT_CODAT with `note`, so no
        refresh asks again. Its source is this tool ('product'): a webhook does not mark it to
        confirm again; the API's own status replaces it if Codat ever knows the sync."""

        def work(db):
            db.execute(
                "UPDATE syncs SET status_code = ?, status_text = ?, error_message = ?, "
                "exception_message = NULL, data_pushed = FALSE, status_source = ?, "
                "updated_at = ? WHERE sync_id = ?",
                [NOT_FOUND_AT_CODAT, NOT_FOUND_AT_CODAT_TEXT, note, FROM_PRODUCT, now(), sync_id],
            )

        self.write(work)

    def record_sync_status(self, status: dict[str, Any]) -> None:
        """A status on its own: an open sync's progress (a final one comes with its items)."""

        def work(db):
            write_status(db, status)

        self.write(work)

    def record_sync_outcome(
        self, company_id: str, status: dict[str, Any], items: list[dict]
    ) -> bool:
        """A final status and every item's outcome, in one transaction: a crash leaves the
        sync open (followed again), never final with its items missing. True when this call
        settled it (the store had no final status from Codat before): whoever settles a sync
        uploads its receipts, so two processes confirming it at once do not both upload."""

        return self.writer.run_merged(OUTCOMES, (company_id, status, items))

    def half_recorded_syncs(self, company_id: str | None = None) -> list[tuple[str, str]]:
        """(company, sync) of final syncs that still carry a `sent` transaction: recorded by
        an older version, or before a crash, without their items."""

        def work(db):
            return db.execute(
                "SELECT DISTINCT s.company_id, s.sync_id FROM syncs s JOIN transactions t ON "
                "t.company_id = s.company_id AND t.last_sync_id = s.sync_id WHERE t.state = "
                f"'sent' AND s.status_code IS NOT NULL AND s.status_code NOT IN {OPEN} "
                "AND (CAST(? AS VARCHAR) IS NULL OR s.company_id = ?)",
                [company_id, company_id],
            ).fetchall()

        return self.read(work)

    def failed_as_processed_before(self, company_id: str | None = None) -> list[tuple[str, str]]:
        """(company, transaction) failed with Codat's "processed before" message, so
        not yet checked against Codat's own transaction statuses (a crash came between)."""

        def work(db):
            return db.execute(
                "SELECT company_id, transaction_id FROM transactions WHERE state = 'failed' "
                "AND strpos(message, ?) > 0 AND (CAST(? AS VARCHAR) IS NULL OR company_id = ?)",
                [PREVIOUSLY_PROCESSED, company_id, company_id],
            ).fetchall()

        return self.read(work)

    def receipts_waiting(
        self, company_id: str | None = None, sync_id: str | None = None
    ) -> list[tuple[str, str, str, Receipt]]:
        """(company, transaction, completing sync, receipt) of completed transactions whose
        receipt is not yet uploaded or refused for good (it is cleared once it is; a pending
        one stays)."""

        def work(db):
            return db.execute(
                "SELECT company_id, transaction_id, last_sync_id, receipt FROM transactions "
                "WHERE state = 'completed' AND receipt IS NOT NULL AND "
                "(CAST(? AS VARCHAR) IS NULL OR company_id = ?) AND "
                "(CAST(? AS VARCHAR) IS NULL OR last_sync_id = ?)",
                [company_id, company_id, sync_id, sync_id],
            ).fetchall()

        rows = self.read(work)
        return [(c, t, s, Receipt(**json.loads(raw))) for c, t, s, raw in rows]

    def record_attachment(
        self,
        company_id: str,
        transaction_id: str,
        sync_id: str,
        file_name: str,
        size: int,
        status: str,
        message: str | None,
        attachment_id: str | None,
    ) -> None:
        def work(db):
            db.execute(
                "INSERT INTO attachments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
                "(company_id, transaction_id, file_name) DO UPDATE SET sync_id = "
                "excluded.sync_id, size_bytes = excluded.size_bytes, status = "
                "excluded.status, message = excluded.message, attachment_id = "
                "excluded.attachment_id, recorded_at = excluded.recorded_at",
                [
                    company_id,
                    transaction_id,
                    sync_id,
                    file_name,
                    size,
                    status,
                    message,
                    attachment_id,
                    now(),
                ],
            )
            # an outcome for good is kept, the receipt's content need not be; a pending one
            # keeps its receipt in the ledger, to be uploaded later
            db.execute(
                "UPDATE transactions SET receipt = NULL WHERE company_id = ? AND "
                "transaction_id = ? AND ?",
                [company_id, transaction_id, status != PENDING],
            )

        self.write(work)

    # -- webhook events (the receiver; the SQL is in store/webhook_events.py) ------------------
    def record_webhook_events(
        self, events: list[tuple[str, webhook_sql.WebhookEvent, datetime]], wait_s: float
    ) -> list[str]:
        """Keep and apply verified (webhook-id, event, received at) triples, each webhook-id at
        most once, in one transaction that waits at most `wait_s` for the file (else
        StoreError). Per event: 'applied' (its sync marked to confirm), 'stored' (kept, nothing
        to apply) or
        'duplicate' (seen before: nothing changed)."""
        with transaction(self.path, wait_s) as db:
            return webhook_sql.record_events(db, events)

    def keep_webhook_event(
        self,
        webhook_id: str,
        event: webhook_sql.WebhookEvent,
        received_at: datetime,
        wait_s: float,
    ) -> str:
        """Keep an event unapplied (applying it failed), so it is acknowledged and not lost."""
        with transaction(self.path, wait_s) as db:
            return webhook_sql.record_events(db, [(webhook_id, event, received_at)], apply=False)[0]

    def syncs_to_confirm(self, company_id: str | None = None) -> list[tuple[str, str]]:
        """(company, sync) a webhook reported ended that Codat has not confirmed yet: their
        status and items are to be read from the API (they are open syncs too)."""

        def work(db):
            return webhook_sql.to_confirm(db, company_id)

        return self.read(work)

    # -- versions and kinds (store/schema_v7.sql; the deciding is updates.py's) ----------------
    def versions_of(self, company_id: str, ids: list[str]) -> dict[str, tuple[str, str, int]]:
        """transaction id -> (state, payload hash, current version) of the company's rows."""
        if not ids:
            return {}

        def work(db):
            return ledger_sql.by_id(db, "transactions", "state, payload_hash, version", ids)

        rows = self.read(work)
        return {r[1]: (r[2], r[3], r[4] or 1) for r in rows if r[0] == company_id}

    def set_kind(self, company_id: str, ids: list[str], kind: str) -> None:
        """The rows just marked `sending` are of this kind (a stream other than expenses)."""

        def work(db):
            db.execute(
                "UPDATE transactions SET kind = ?, version = coalesce(version, 1) "
                "WHERE transaction_id IN (SELECT unnest(?::VARCHAR[])) AND company_id = ?",
                [kind, ids, company_id],
            )

        self.write(work)

    def begin_version(
        self, company_id: str, stream: str, kind: str, item: Any, version: int
    ) -> None:
        """Ledger first, for a push by PUT: the row becomes `version` with this content,
        `sending`. The version it supersedes (a lower number) is archived as it ended; a held
        copy of this very content is no longer waiting."""
        tid = item.transaction_id

        def work(db):
            row = versions_sql.current(db, company_id, tid)
            if row is None:
                versions_sql.insert_sending(db, company_id, stream, kind, item, version, now())
                return
            if row["version"] < version:
                versions_sql.archive(db, company_id, tid, row, now())
            versions_sql.update_sending(db, company_id, stream, kind, item, version, now())
            versions_sql.drop_held(db, company_id, tid, item.payload_hash)

        self.write(work)

    def hold_version(self, company_id: str, stream: str, kind: str, item: Any) -> None:
        """Content that came while the id's last push is not final: kept (one per id, the
        newest) to be sent as the next version once that push is final."""

        def work(db):
            row = versions_sql.current(db, company_id, item.transaction_id)
            version = (row["version"] if row else 1) + 1
            versions_sql.drop_held(db, company_id, item.transaction_id)
            versions_sql.insert_held(db, company_id, stream, kind, item, version, now())

        self.write(work)

    def held_ids(self) -> set[tuple[str, str]]:
        """(company, transaction) of every held version."""

        def work(db):
            return db.execute(
                "SELECT company_id, transaction_id FROM transaction_versions WHERE state = 'held'"
            ).fetchall()

        return {tuple(row) for row in self.read(work)}

    def held_ready(self) -> list[dict[str, Any]]:
        """Held versions whose id's last push is final now (completed or failed): to send."""
        return self.read(versions_sql.held_ready)

    def drop_held(self, company_id: str, transaction_id: str, payload_hash: str | None) -> None:
        """The held version is sent, or is the content already sent (None: whatever it is)."""
        self.write(lambda db: versions_sql.drop_held(db, company_id, transaction_id, payload_hash))

    # -- companies ------------------------------------------------------------------------------
    def record_company(
        self, company_id: str, name: str | None, source: str | None, target: str | None
    ) -> None:
        """What Codat calls the company and its platforms, for the report. A name that could
        not be read this time (None) leaves the one read before."""

        def work(db):
            db.execute(
                "INSERT INTO companies (company_id, name, source_platform, target_platform, "
                "updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (company_id) DO UPDATE SET "
                "name = coalesce(excluded.name, companies.name), "
                "source_platform = coalesce(excluded.source_platform, companies.source_platform), "
                "target_platform = coalesce(excluded.target_platform, companies.target_platform), "
                "updated_at = excluded.updated_at",
                [
                    company_id,
                    storable(name, 300) if name else None,
                    storable(source, 100) if source else None,
                    storable(target, 100) if target else None,
                    now(),
                ],
            )

        self.write(work)


def write_status(db, status: dict[str, Any]) -> None:
    """Codat's own status for the sync. A running one stays to confirm if a webhook said it
    ended (Codat has not caught up yet); a final one is Codat's word from now on."""
    code = status.get("syncStatusCode")
    final = is_final(code)
    db.execute(
        "UPDATE syncs SET status_code = ?, status_text = ?, error_message = ?, "
        "exception_message = ?, data_pushed = ?, completed_at = ?, updated_at = ?, "
        f"status_source = CASE WHEN ? OR status_source IS DISTINCT FROM '{FROM_WEBHOOK}' "
        f"THEN '{FROM_CODAT}' ELSE status_source END WHERE sync_id = ?",
        [
            code,
            status.get("syncStatus"),
            status.get("errorMessage") or None,
            status.get("syncExceptionMessage") or None,
            status.get("dataPushed"),
            parse_utc(status.get("syncUtc")) if final else None,
            now(),
            final,
            status["syncId"],
        ],
    )


def storable(text: str, limit: int) -> str:
    """Text from a record, bounded and valid UTF-8 (DuckDB refuses a lone surrogate, which
    JSON's \\ud800 escape can carry); such a character is kept visible as its escape."""
    return text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


def receipt_json(receipt: Receipt | None) -> str | None:
    return json.dumps(vars(receipt)) if receipt is not None else None


def produced_record(message: str | None) -> tuple[str | None, str | None]:
    """Codat's message for a written item names what it produced: 'Created {type} {id} in ...'."""
    words = (message or "").split()
    if len(words) >= 3 and words[0] == "Created":
        return words[1], words[2]
    return None, None


def record_discovered_sync(store: StatusStore, company_id: str, status: dict[str, Any]) -> None:
    """A sync Codat has for a known company that this store never recorded (another run, a
    lost answer): remember it, open, for the follower to record with its items."""
    store.mark_sent(
        company_id,
        [],
        {
            "sync_id": status["syncId"],
            "flow": "discovered",
            "initiated_at": parse_utc(status.get("syncUtc")) or now(),
        },
    )


OUTCOMES = SyncOutcomes(columns, parse_utc, now, produced_record)
SENT_SYNCS = SentSyncs(columns, now)
LEDGER_READS, SENDING_CLAIMS = LedgerReads(), SendingClaims(columns)
