"""SQL for the webhook receiver: keep each event once, and let it mark its sync "to confirm".

A webhook triggers; the API decides. An event never sets a sync's status code, never writes a
push item and never moves a ledger row: it says "look at sync X". So an applied event
- keeps the sync's row (creating it, with the company the event names, when the store has not
  seen the sync: `first_seen_at` is then the only time it has);
- records what the webhook reported beside the status, never in it: `reported_outcome`
  (successful / unsuccessful; among a sync's events unsuccessful wins, so arrival order does not
  matter) and `reported_at`;
- marks the sync to confirm (`status_source = 'webhook'`) unless Codat's own final status, or
  this tool's not-found marker, is already recorded.
The receiver (with an API key), the running destination and `status refresh` then read the
sync's status and every transaction page from Codat (follow.SyncFollower), which sets
`status_source = 'codat'`.

Codat delivers at least once and in no promised order: `webhook_events.webhook_id` is the dedupe
key (an id seen before changes nothing); rows are kept (Codat retries for about 28 hours and the
Portal can replay later). A batch is applied set-wise, a handful of statements whatever its size.
The receiver calls this inside `db.transaction(path, wait_s)` with a short wait; if the file
stays busy, its events go to the receiver's spool instead (webhooks/spool.py).
"""

from __future__ import annotations

from datetime import datetime

from destination_codat_expenses.models import (
    COMPLETED_ITEM,
    FAILED_ITEM,
    IN_PROGRESS,
    WebhookEvent,
    sql_list,
)

APPLIED, STORED, DUPLICATE = "applied", "stored", "duplicate"
SUCCESSFUL, UNSUCCESSFUL = "successful", "unsuccessful"
OPEN = sql_list(IN_PROGRESS)
Entry = tuple[str, WebhookEvent, datetime]  # webhook-id, event, received at

INSERT_EVENTS = (
    "INSERT INTO webhook_events (webhook_id, event_type, received_at, verified, applied, "
    "sync_id, company_id, payload) SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
    "unnest(?::TIMESTAMPTZ[]), TRUE, unnest(?::BOOLEAN[]), unnest(?::VARCHAR[]), "
    "unnest(?::VARCHAR[]), unnest(?::VARCHAR[])::JSON"
)
INSERT_SYNCS = (
    "INSERT INTO syncs (sync_id, company_id, updated_at, first_seen_at) SELECT "
    "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::TIMESTAMPTZ[]), "
    "unnest(?::TIMESTAMPTZ[])"
)
# The report only moves up (successful < unsuccessful) and its time only forward; the mark is set
# while no final status from Codat (or the not-found marker) is recorded.
MARK_TO_CONFIRM = (
    "UPDATE syncs s SET "
    "reported_outcome = CASE WHEN s.reported_outcome = 'unsuccessful' THEN s.reported_outcome "
    "ELSE v.outcome END, reported_at = greatest(s.reported_at, v.at), "
    "status_source = CASE WHEN (s.status_code IS NULL OR s.status_code IN "
    f"{OPEN}) AND s.status_source IS DISTINCT FROM 'product' THEN 'webhook' "
    "ELSE s.status_source END, "
    "updated_at = greatest(s.updated_at, v.at) FROM "
    "(SELECT unnest(?::VARCHAR[]) AS sync_id, unnest(?::VARCHAR[]) AS outcome, "
    "unnest(?::TIMESTAMPTZ[]) AS at) v WHERE s.sync_id = v.sync_id"
)


def record_events(db, entries: list[Entry], apply: bool = True) -> list[str]:
    """Keep each new event and apply the applicable ones: per entry APPLIED, STORED or
    DUPLICATE (its webhook-id was seen before, or earlier in this batch)."""
    fresh, outcomes = first_sightings(db, entries)
    companies = sync_companies(db, fresh) if apply else {}
    applied = [e for e in fresh if e[1].applicable and e[1].sync_id in companies]
    if applied:
        mark_to_confirm(db, applied)
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
    new: dict[str, tuple[str, datetime]] = {}
    for _, event, at in entries:
        if event.applicable and event.company_id and event.sync_id not in companies:
            new.setdefault(event.sync_id, (event.company_id, at))
    if new:
        syncs = list(new)
        firsts = [new[s][1] for s in syncs]
        db.execute(INSERT_SYNCS, [syncs, [new[s][0] for s in syncs], firsts, firsts])
        companies.update({sync: values[0] for sync, values in new.items()})
    return companies


def mark_to_confirm(db, entries: list[Entry]) -> None:
    """Per sync, what its events reported (unsuccessful if any said so; the latest time)."""
    reported: dict[str, tuple[str, datetime]] = {}
    for _, event, at in entries:
        outcome = SUCCESSFUL if event.succeeded else UNSUCCESSFUL
        before = reported.get(event.sync_id)
        if before is not None:
            outcome = UNSUCCESSFUL if UNSUCCESSFUL in (outcome, before[0]) else outcome
            at = max(at, before[1])
        reported[event.sync_id] = (outcome, at)
    syncs = list(reported)
    db.execute(
        MARK_TO_CONFIRM,
        [syncs, [reported[s][0] for s in syncs], [reported[s][1] for s in syncs]],
    )


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
    """Item outcomes read from Codat for a sync before the destination linked its transactions
    to it (the receiver confirmed the sync first): move those transactions now."""
    db.execute(
        "UPDATE transactions t SET state = CASE WHEN p.status = 'Completed' THEN 'completed' "
        "ELSE 'failed' END, codat_status = p.status, message = p.message, "
        "updated_at = p.updated_at FROM push_items p WHERE p.sync_id = ? "
        "AND p.company_id = t.company_id AND p.transaction_id = t.transaction_id "
        "AND t.company_id = ? AND t.last_sync_id = p.sync_id AND t.state <> 'completed' "
        f"AND p.status IN {sql_list((COMPLETED_ITEM, *FAILED_ITEM))}",
        [sync_id, company_id],
    )


def to_confirm(db, company_id: str | None = None) -> list[tuple[str, str]]:
    """(company, sync) a webhook reported ended that Codat has not yet confirmed, oldest first."""
    return db.execute(
        "SELECT company_id, sync_id FROM syncs WHERE status_source = 'webhook' "
        "AND (CAST(? AS VARCHAR) IS NULL OR company_id = ?) ORDER BY reported_at, sync_id",
        [company_id, company_id],
    ).fetchall()
