"""Versions: what becomes of an id that comes again with other content, and how every push that
is not an expense create is sent. The pusher (pushes.py) hands both over to `Versions`.

A record whose id the ledger (or this run) already has is judged against the id's current
version (`changed`, called while the batch is claimed):

    same content                          nothing (a repeat); a held change of the id is dropped,
                                          as this content is now the last one delivered
    other content, current version final  completed: an update (the next version) where the kind
                                          has one (an adjustment is refused, with why); failed:
                                          pushed again under the same id and version
    other content, current not final      held: kept in the store (never lost, never sent twice)
                                          and sent as the next version once the current one is
                                          final (`release_held`: after the run followed its
                                          syncs, and at the start of the next run)

Sending (`send`): a transfer always goes by PUT (Codat's one call creates or updates it); an id
whose books entry exists (a completed version, or a version above 1) goes by PUT as an update;
the rest are creates, each kind to its own endpoint under its own Idempotency-Key. A PUT carries
one item and no key: repeating it is harmless (Codat answers "Nothing written" for content it
already holds). Codat's refusal of a PUT (400, 404, 422) is that item's failure, with Codat's
reason; the run goes on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from destination_codat_expenses.errors import FatalAPIError, RecordError
from destination_codat_expenses.models import COMPLETED
from destination_codat_expenses.streams import EXPENSE, KINDS, Kind, kind_of

logger = logging.getLogger("airbyte")
REFUSED_PUT = (400, 404, 409, 422)  # Codat's word on this one item, not on the run


class Versions:
    def __init__(self, pusher: Any) -> None:
        # the pusher's claims, lock, client, store, outcomes and bookkeeping are used as they are
        self.pusher = pusher
        self.known: set[tuple[str, str]] = set()  # ids the ledger had when claimed: sent by PUT?
        self.held: set[tuple[str, str]] | None = None  # ids with a held version (read lazily)

    # -- judging (under the pusher's lock, in the order records came) ---------------------------
    def seen(self, company_id: str, transaction_id: str, ledger: dict) -> None:
        if transaction_id in ledger:
            self.known.add((company_id, transaction_id))

    def repeated(self, company_id: str, transaction_id: str) -> None:
        """The same content again: a change held for the id is no longer the last one."""
        self.forget_held(company_id, transaction_id)

    def forget_held(self, company_id: str, transaction_id: str) -> None:
        """Content delivered later than the id's held change decides: the held one goes."""
        if (company_id, transaction_id) in self.held_ids():
            self.pusher.store.drop_held(company_id, transaction_id, None)
            self.held.discard((company_id, transaction_id))

    def changed(self, company_id: str, stream: str, mapped: Any, ledger: dict) -> bool:
        """Other content than the id's current version: True when it is to be pushed now (the
        caller claims it); else it was held or refused here."""
        tid, kind = mapped.transaction_id, kind_of(stream)
        state = ledger.get(tid, ("new", None))[0]
        if (company_id, tid) in self.pusher.in_flight or state != COMPLETED:
            self.pusher.store.hold_version(company_id, stream, kind.name, mapped)
            self.held_ids().add((company_id, tid))
            logger.info("a change of %s waits for its earlier push to end", tid)
            return False
        if kind.not_updatable:
            id_field = self.pusher.settings.id_field if kind.name == EXPENSE else "id"
            error = RecordError(mapped.source_key, id_field, kind.not_updatable)
            self.pusher.outcomes.withdrawn(stream, error)
            return False
        self.known.add((company_id, tid))
        self.forget_held(company_id, tid)  # came before this one: never sent after it
        return True

    def held_ids(self) -> set[tuple[str, str]]:
        if self.held is None:
            self.held = self.pusher.store.held_ids()
        return self.held

    # -- sending (on a push thread) -------------------------------------------------------------
    def send(self, company_id: str, fresh: list) -> list:
        """Send every PUT and every create of another kind; return the expense creates, which
        the pusher sends as before (direct or datasets)."""
        rows = self.rows(company_id, fresh)
        creates: dict[str, list] = defaultdict(list)
        puts = []
        for stream, mapped in fresh:
            kind, row = kind_of(stream), rows.get(mapped.transaction_id)
            if kind.put_creates or in_books(row):
                puts.append((stream, mapped, next_version(row)))
            else:
                creates[kind.name].append((stream, mapped))
        mine = [(s, m) for s, m, _ in puts] + [
            i for k, b in creates.items() if k != EXPENSE for i in b
        ]
        try:
            for stream, mapped, version in puts:
                self.put(company_id, stream, mapped, version)
            for name, batch in creates.items():
                if name != EXPENSE:
                    self.create(company_id, KINDS[name], batch)
        finally:
            self.pusher.release(company_id, mine)
        return creates.get(EXPENSE, [])

    def rows(self, company_id: str, fresh: list) -> dict[str, tuple[str, str, int]]:
        """The ledger's state and version of the ids claim found in it (no read for new ids)."""
        ids = [m.transaction_id for _, m in fresh if (company_id, m.transaction_id) in self.known]
        with self.pusher.lock:
            self.known.difference_update((company_id, tid) for tid in ids)
        return self.pusher.store.versions_of(company_id, ids)

    def create(self, company_id: str, kind: Kind, batch: list) -> None:
        """Ledger first, then one batch POST of this kind (the pusher's direct path)."""
        batch = self.pusher.mark_sending(company_id, batch)  # a fleet's other process may
        if not batch:  # hold some ids: those are its to push
            return
        self.pusher.store.set_kind(company_id, [m.transaction_id for _, m in batch], kind.name)
        self.pusher.push_direct(company_id, batch, kind.name)

    def put(self, company_id: str, stream: str, mapped: Any, version: int) -> None:
        """Ledger first (the row is `version`, sending), then one PUT; its sync is followed
        like any other. Codat's refusal is the item's failure, with Codat's reason."""
        kind = kind_of(stream)
        store = self.pusher.store
        store.begin_version(company_id, stream, kind.name, mapped, version)
        try:
            sync_id = kind.put(
                self.pusher.client, company_id, mapped.transaction_id, kind.update_body(mapped.body)
            )
        except FatalAPIError as error:
            if error.status not in REFUSED_PUT:
                raise
            self.pusher.refused(company_id, stream, mapped, refusal_reason(error))
            return
        self.pusher.opened(company_id, sync_id, [(stream, mapped)], "direct")

    # -- held versions --------------------------------------------------------------------------
    def release_held(self) -> int:
        """Send every held version whose id's last push is final now, through the one push
        path (claim judges it again: an update, a push again, or a repeat). Returns how many."""
        ready = self.pusher.store.held_ready()
        by_company: dict[str, list] = defaultdict(list)
        for row in ready:
            by_company[row["company_id"]].append((row["source_stream"], held_item(row)))
        for company_id, batch in by_company.items():
            self.pusher.push(company_id, batch)
            for _, item in batch:
                self.pusher.store.drop_held(company_id, item.transaction_id, item.payload_hash)
                self.held_ids().discard((company_id, item.transaction_id))
        return len(ready)


def in_books(row: tuple[str, str, int] | None) -> bool:
    """The books hold an entry for the id: a version completed, or one above the first (an
    update is sent only on top of a completed version)."""
    return row is not None and (row[0] == COMPLETED or row[2] > 1)


def next_version(row: tuple[str, str, int] | None) -> int:
    """A new id is version 1; on top of a completed version comes the next; a version that did
    not complete is pushed again as itself."""
    if row is None:
        return 1
    return row[2] + 1 if row[0] == COMPLETED else row[2]


def refusal_reason(error: FatalAPIError) -> str:
    named = "; ".join(v.get("message") or "" for v in error.validation if v.get("message"))
    return named or error.detail or str(error)


class HeldItem:
    """A held version as the pusher carries it (a Pushable)."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.transaction_id: str = row["transaction_id"]
        self.source_key: str = row["source_key"]
        self.body: dict = row["payload"]
        self.payload_hash: str = row["payload_hash"]
        self.issue_date: date = row["issue_date"]
        self.currency: str | None = row["currency"]
        self.total: Decimal | None = row["total"]


def held_item(row: dict[str, Any]) -> HeldItem:
    return HeldItem(row)
