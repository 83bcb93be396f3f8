"""SQL for the webhook receiver: keep each event once, apply it once, never undo the API.

Codat delivers at least once and in no promised order, so everything here is idempotent and
order-free:
- `webhook_events.webhook_id` is the dedupe key. An id seen before changes nothing. Rows are kept
  (never pruned here): Codat retries for about 28 hours and the Portal can replay later.
- A sync's status only moves forward. A webhook fills a status that is still open (none, 1000,
  1010); among webhook-set statuses failure beats success, and a specific failure beats the
  generic one, so the end state does not depend on arrival order. A status the API recorded is
  never replaced: the API sets `data_pushed`, a webhook leaves it NULL, and that NULL is how
  `settled_by_webhook` finds the syncs a `status refresh` should still confirm.
- An item only moves up: unknown/pending < failed < completed. The ledger follows the same rule
  as the API path: only the sync that last carried a transaction may fail it, any sync may
  complete it, and a completed transaction never goes back.

A batch of events is applied set-wise, a dozen statements whatever its size: one upsert per
table over `unnest`ed lists, after reducing the batch in Python to one row per key by the same
ranks (so the order inside a batch does not matter either). Row by row, an event cost ~30 ms.
The receiver calls this inside `db.transaction(path, wait_s)` with a short wait; if the file
stays busy, its events go to the receiver's spool instead (webhooks/spool.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from destination_codat_expenses.models import (
    COMPLETED_ITEM,
    FAILED_ITEM,
    IN_PROGRESS,
    WebhookEvent,
    sql_list,
)

APPLIED, STORED, DUPLICATE = "applied", "stored", "duplicate"
# how sure a webhook-set sync status is: success < generic failure < failure from its items
WEBHOOK_CODE_RANK = {2000: 1, 5000: 2, 5120: 3, 5130: 3}
OPEN, FAILED_STATUSES = sql_list(IN_PROGRESS), sql_list(FAILED_ITEM)
Entry = tuple[str, WebhookEvent, datetime]  # webhook-id, event, received at

INSERT_EVENTS = (
    "INSERT INTO webhook_events (webhook_id, event_type, received_at, verified, applied, "
    "sync_id, company_id, payload) SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
    "unnest(?::TIMESTAMPTZ[]), TRUE, unnest(?::BOOLEAN[]), unnest(?::VARCHAR[]), "
    "unnest(?::VARCHAR[]), unnest(?::VARCHAR[])::JSON"
)
INSERT_SYNCS = (
    "INSERT INTO syncs (sync_id, company_id, item_count, updated_at) SELECT "
    "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::INTEGER[]), unnest(?::TIMESTAMPTZ[])"
)
# Each statement is written out whole; only models' fixed word sets are put in. Item ranks:
# unknown/pending 0 < failed (ValidationError, PushError, Failed) 1 < Completed 2.
UPSERT_PUSH_ITEMS = (
    "INSERT INTO push_items (sync_id, company_id, transaction_id, status, message, updated_at) "
    "SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
    "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::TIMESTAMPTZ[]) "
    "ON CONFLICT (sync_id, transaction_id) DO UPDATE SET "
    "status = excluded.status, message = excluded.message, updated_at = excluded.updated_at "
    "WHERE (CASE WHEN push_items.status = 'Completed' THEN 2 WHEN push_items.status IN "
    f"{FAILED_STATUSES} THEN 1 ELSE 0 END) < "
    "(CASE WHEN excluded.status = 'Completed' THEN 2 WHEN excluded.status IN "
    f"{FAILED_STATUSES} THEN 1 ELSE 0 END)"
)
UPSERT_ATTEMPTS = (
    "INSERT INTO transaction_attempts (sync_id, company_id, transaction_id, status, message, "
    "recorded_at) SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
    "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::TIMESTAMPTZ[]) "
    "ON CONFLICT DO UPDATE SET status = excluded.status, "
    "message = excluded.message, recorded_at = excluded.recorded_at "
    "WHERE (CASE WHEN transaction_attempts.status = 'Completed' THEN 2 WHEN "
    f"transaction_attempts.status IN {FAILED_STATUSES} THEN 1 ELSE 0 "
    "END) < (CASE WHEN excluded.status = 'Completed' THEN 2 WHEN excluded.status IN "
    f"{FAILED_STATUSES} THEN 1 ELSE 0 END)"
)
ITEM_ROWS = (
    "(SELECT unnest(?::VARCHAR[]) AS sync_id, unnest(?::VARCHAR[]) AS company_id, "
    "unnest(?::VARCHAR[]) AS transaction_id, unnest(?::VARCHAR[]) AS status, "
    "unnest(?::VARCHAR[]) AS message, unnest(?::TIMESTAMPTZ[]) AS at) v"
)
# only the sync that last carried a transaction fails it; then any sync may complete it
FAIL_LEDGER = (
    "UPDATE transactions t SET state = 'failed', codat_status = v.status, "
    "message = v.message, updated_at = v.at FROM " + ITEM_ROWS + " "
    "WHERE t.company_id = v.company_id AND t.transaction_id = v.transaction_id "
    "AND t.last_sync_id = v.sync_id AND t.state NOT IN ('completed', 'failed')"
)
COMPLETE_LEDGER = (
    "UPDATE transactions t SET state = 'completed', codat_status = v.status, "
    "message = v.message, updated_at = v.at FROM " + ITEM_ROWS + " "
    "WHERE t.company_id = v.company_id AND t.transaction_id = v.transaction_id "
    "AND t.state <> 'completed'"
)
# open (none, or IN_PROGRESS): fill it; set by a webhook (data_pushed unknown): only a surer webhook
# status replaces it (WEBHOOK_CODE_RANK); set by the API: never
SETTLE_SYNCS = (
    "UPDATE syncs s SET status_code = v.code, status_text = v.text, "
    "error_message = coalesce(v.error_message, s.error_message), "
    "completed_at = coalesce(s.completed_at, v.completed_at), updated_at = v.at FROM "
    "(SELECT unnest(?::VARCHAR[]) AS sync_id, unnest(?::INTEGER[]) AS code, "
    "unnest(?::VARCHAR[]) AS text, unnest(?::VARCHAR[]) AS error_message, "
    "unnest(?::TIMESTAMPTZ[]) AS completed_at, unnest(?::TIMESTAMPTZ[]) AS at, "
    "unnest(?::INTEGER[]) AS rank) v "
    f"WHERE s.sync_id = v.sync_id AND (s.status_code IS NULL OR s.status_code IN {OPEN} "
    "OR (s.data_pushed IS NULL AND (CASE s.status_code WHEN 2000 THEN 1 WHEN 5000 THEN 2 "
    "WHEN 5120 THEN 3 WHEN 5130 THEN 3 ELSE 99 END) < v.rank))"
)
FILL_ITEM_TOTALS = (
    "UPDATE push_items p SET amount = t.total_amount, currency = t.currency "
    "FROM transactions t WHERE p.sync_id IN (SELECT unnest(?::VARCHAR[])) AND p.amount IS NULL "
    "AND t.company_id = p.company_id AND t.transaction_id = p.transaction_id"
)
COUNT_FAILED = (
    "UPDATE syncs SET failed_count = (SELECT count(*) FROM push_items p WHERE "
    f"p.sync_id = syncs.sync_id AND p.status IN {FAILED_STATUSES}) "
    "WHERE sync_id IN (SELECT unnest(?::VARCHAR[]))"
)


@dataclass(frozen=True)
class ItemRow:
    sync_id: str
    company_id: str
    transaction_id: str
    status: str
    message: str | None
    at: datetime

    @property
    def rank(self) -> int:
        return 2 if self.status == COMPLETED_ITEM else 1 if self.status in FAILED_ITEM else 0


def record_events(db, entries: list[Entry], apply: bool = True) -> list[str]:
    """Keep each new event and apply the applicable ones: per entry APPLIED, STORED or
    DUPLICATE (its webhook-id was seen before, or earlier in this batch)."""
    fresh, outcomes = first_sightings(db, entries)
    companies = sync_companies(db, fresh) if apply else {}
    applied = [e for e in fresh if e[1].applicable and e[1].sync_id in companies]
    if applied:
        apply_events(db, applied, companies)
    applied_ids = {wid for wid, _, _ in applied}
    insert_events(db, fresh, applied_ids)
    verdict = {wid: (APPLIED if wid in applied_ids else STORED) for wid, _, _ in fresh}
    return [outcome or verdict[wid] for (wid, _, _), outcome in zip(entries, outcomes, strict=True)]


def first_sightings(db, entries: list[Entry]) -> tuple[list[Entry], list[str | None]]:
    """The entries whose webhook-id is new (first of each), and DUPLICATE for the others."""
    ids = [wid for wid, _, _ in entries]
    rows = db.execute(
        "SELECT webhook_id FROM webhook_events WHERE webhook_id IN (SELECT unnest(?::VARCHAR[]))",
        [ids],
    ).fetchall()
    seen = {row[0] for row in rows}
    fresh, outcomes = [], []
    for entry in entries:
        outcomes.append(DUPLICATE if entry[0] in seen else None)
        if entry[0] not in seen:
            seen.add(entry[0])
            fresh.append(entry)
    return fresh, outcomes


def sync_companies(db, entries: list[Entry]) -> dict[str, str]:
    """sync id -> company for every applicable event's sync; unknown syncs are recorded with
    the company their event names (events naming none stay unapplied)."""
    wanted = [e for _, e, _ in entries if e.applicable]
    sync_ids = list({e.sync_id for e in wanted})
    rows = db.execute(
        "SELECT sync_id, company_id FROM syncs WHERE sync_id IN (SELECT unnest(?::VARCHAR[]))",
        [sync_ids],
    ).fetchall()
    companies = dict(rows)
    new: dict[str, tuple] = {}
    for _, event, at in entries:
        if event.applicable and event.company_id and event.sync_id not in companies:
            new.setdefault(event.sync_id, (event.company_id, len(event.items) or None, at))
    if new:
        columns = list(zip(*[(sync, *values) for sync, values in new.items()], strict=True))
        db.execute(INSERT_SYNCS, [list(column) for column in columns])
        companies.update({sync: values[0] for sync, values in new.items()})
    return companies


def apply_events(db, entries: list[Entry], companies: dict[str, str]) -> None:
    items = item_rows(entries, companies)
    if items:
        columns = item_columns(items)
        db.execute(UPSERT_PUSH_ITEMS, columns)
        db.execute(UPSERT_ATTEMPTS, columns)
        failed = [i for i in items if i.rank == 1]
        completed = list(
            {(i.company_id, i.transaction_id): i for i in items if i.rank == 2}.values()
        )
        if failed:
            db.execute(FAIL_LEDGER, item_columns(failed))
        if completed:
            db.execute(COMPLETE_LEDGER, item_columns(completed))
        synced = list({i.sync_id for i in items})
        db.execute(FILL_ITEM_TOTALS, [synced])
        db.execute(COUNT_FAILED, [synced])
    settle_syncs(db, entries)


def item_rows(entries: list[Entry], companies: dict[str, str]) -> list[ItemRow]:
    """One row per (sync, transaction): the highest-ranked outcome any event in the batch gave."""
    best: dict[tuple[str, str], ItemRow] = {}
    for _, event, at in entries:
        for item in event.items:
            row = ItemRow(
                event.sync_id,
                companies[event.sync_id],
                item.transaction_id,
                item.status,
                item.message,
                at,
            )
            key = (row.sync_id, row.transaction_id)
            if key not in best or best[key].rank < row.rank:
                best[key] = row
    return list(best.values())


def item_columns(rows: list[ItemRow]) -> list[list]:
    return [
        [r.sync_id for r in rows],
        [r.company_id for r in rows],
        [r.transaction_id for r in rows],
        [r.status for r in rows],
        [r.message for r in rows],
        [r.at for r in rows],
    ]


def settle_syncs(db, entries: list[Entry]) -> None:
    """Per sync, the surest status among the batch's events, if it may replace the stored one."""
    best: dict[str, tuple[int, WebhookEvent, datetime]] = {}
    messages: dict[str, str] = {}
    for _, event, at in entries:
        rank = WEBHOOK_CODE_RANK[event.status()[0]]
        if event.sync_id not in best or best[event.sync_id][0] < rank:
            best[event.sync_id] = (rank, event, at)
        if event.error_message():
            messages.setdefault(event.sync_id, event.error_message())
    rows = []
    for sync_id, (rank, event, at) in best.items():
        code, text = event.status()
        message = event.error_message() or messages.get(sync_id)
        rows.append((sync_id, code, text, message, event.generated_at or at, at, rank))
    db.execute(SETTLE_SYNCS, [list(column) for column in zip(*rows, strict=True)])


def insert_events(db, entries: list[Entry], applied: set[str]) -> None:
    if not entries:
        return
    db.execute(
        INSERT_EVENTS,
        [
            [wid for wid, _, _ in entries],
            [e.event_type for _, e, _ in entries],
            [at for _, _, at in entries],
            [wid in applied for wid, _, _ in entries],
            [e.sync_id for _, e, _ in entries],
            [e.company_id for _, e, _ in entries],
            [e.payload_json for _, e, _ in entries],
        ],
    )


def adopt_recorded_outcomes(db, company_id: str, sync_id: str) -> None:
    """Item outcomes a webhook recorded for a sync before the destination linked its
    transactions to it (the webhook won the race): move those transactions now."""
    db.execute(
        "UPDATE transactions t SET state = CASE WHEN p.status = 'Completed' THEN 'completed' "
        "ELSE 'failed' END, codat_status = p.status, message = p.message, "
        "updated_at = p.updated_at FROM push_items p WHERE p.sync_id = ? "
        "AND p.company_id = t.company_id AND p.transaction_id = t.transaction_id "
        "AND t.company_id = ? AND t.last_sync_id = p.sync_id AND t.state <> 'completed' "
        f"AND p.status IN {sql_list((COMPLETED_ITEM, *FAILED_ITEM))}",
        [sync_id, company_id],
    )


def settled_by_webhook(db, company_id: str | None) -> list[tuple[str, str]]:
    """(company, sync) whose final status so far comes only from a webhook."""
    return db.execute(
        "SELECT s.company_id, s.sync_id FROM syncs s WHERE s.data_pushed IS NULL "
        "AND s.status_code IS NOT NULL AND s.status_code NOT IN (SELECT unnest(?)) "
        "AND (? IS NULL OR s.company_id = ?) AND EXISTS (SELECT 1 FROM webhook_events e "
        "WHERE e.sync_id = s.sync_id AND e.applied) ORDER BY s.updated_at",
        [list(IN_PROGRESS), company_id, company_id],
    ).fetchall()
