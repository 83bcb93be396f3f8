"""The one push path: claim, ledger first, then Codat, then the ledger again. A run's records
(pipeline.py) and a retry of a sync's failed items (retry.py) both go through `Pusher`.

An id is claimed before its push: an id this run is still pushing (its answer not yet in the
ledger) is a repeat, like one the ledger has as sent or completed, so two pushes in flight never
carry one id (Codat would refuse the second as processed before, with every other item of its
sync). Direct flow: one create queues one sync. Datasets flow: each push makes a dataset, and
once a company has `sync_size` transactions in datasets (or at a checkpoint) one sync is
initiated for all of them; their claims last until then. A "previously processed" refusal is
checked id by id against Codat's transaction statuses (reconcile.settle_processed_before).

A retry pushes what the ledger already holds (only its state goes back to `sending`), direct,
under an Idempotency-Key of its own purpose, and records its sync as a retry of the old one.
What the pusher learns about a record (a repeat, a refusal) it reports to `Outcomes`.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.companies import Companies, CompanyInfo
from destination_codat_expenses.config import Config
from destination_codat_expenses.crashpoints import crash_point
from destination_codat_expenses.errors import AlreadyProcessed, FatalAPIError, RecordError
from destination_codat_expenses.mapping import ID_NAMESPACE
from destination_codat_expenses.models import ON_ITS_WAY
from destination_codat_expenses.outcomes import Outcomes
from destination_codat_expenses.reconcile import settle_processed_before
from destination_codat_expenses.store.status_store import StatusStore
from destination_codat_expenses.streams import EXPENSE, KINDS
from destination_codat_expenses.updates import Versions

logger = logging.getLogger("airbyte")


class Pushable(Protocol):
    """What a push needs of an expense: a MappedTransaction (a record of this run) or a
    LedgerItem (one the ledger holds, pushed again by retry)."""

    @property
    def transaction_id(self) -> str: ...
    @property
    def source_key(self) -> str: ...
    @property
    def body(self) -> dict: ...
    @property
    def payload_hash(self) -> str: ...
    @property
    def issue_date(self) -> date: ...


@dataclass(frozen=True)
class LedgerItem:
    """An expense as the ledger holds it: its payload exactly as first pushed, and that
    payload's hash."""

    transaction_id: str
    source_key: str
    body: dict
    payload_hash: str
    issue_date: date


Batch = list[tuple[str, Pushable]]  # (stream, expense)
REPEATED, HELD = "repeated", "held"  # what became of an occurrence judged in memory
Judged = tuple[str, Pushable, str]  # an occurrence and its verdict


@dataclass
class Claim:
    """An id reserved by a batch of this run: the content every other occurrence is judged
    against, and (until the ledger confirmed it) those occurrences, in case it does not."""

    payload_hash: str
    confirmed: bool = False
    judged: list[Judged] = field(default_factory=list)
    in_ledger: bool | None = None  # the company's ledger had the id when confirmed


@dataclass(frozen=True)
class PushSettings:
    flow: str  # "direct" or "datasets"
    sync_size: int  # datasets flow: transactions per initiated sync
    id_field: str  # the record field a refused change of an id is rejected on
    retry_of: str | None = None  # set: these pushes carry that sync's failed items again

    @classmethod
    def of(cls, config: Config) -> PushSettings:
        return cls(config.push_flow, config.sync_size, config.mapping.fields.id)

    @classmethod
    def retry(cls, sync_id: str) -> PushSettings:
        """A retry pushes direct what the ledger holds: no datasets, and no record whose id
        could conflict (each item comes with the content recorded for its id)."""
        return cls("direct", sync_size=1, id_field="id", retry_of=sync_id)


def idempotency_key(company_id: str, purpose: str, parts: list[str]) -> str:
    """The same push always carries the same key, so a repeat within 90 minutes is replayed."""
    return str(uuid.uuid5(ID_NAMESPACE, "\x1f".join([company_id, purpose, *parts])))


def sync_record(
    sync_id: str,
    info: CompanyInfo,
    dates: list[date],
    flow: str,
    run_id: str | None,
    retry_of: str | None,
) -> dict:
    """What the store keeps about a sync this process opened."""
    return {
        "sync_id": sync_id,
        "initiated_at": datetime.now(UTC),
        "source_platform": info.source_platform,
        "target_platform": info.target_platform,
        "expenses_from": min(dates),
        "expenses_to": max(dates),
        "config_snapshot": info.config,
        "flow": flow,
        "run_id": run_id,
        "retry_of": retry_of,
    }


class Pusher:
    def __init__(
        self,
        client: CodatClient,
        store: StatusStore,
        settings: PushSettings,
        companies: Companies,
        outcomes: Outcomes,
        run_id: str | None,
        on_opened: Callable[[str, str, bool], None] = lambda company, sync, receipts: None,
    ) -> None:
        self.client, self.store, self.settings = client, store, settings
        # (company, sync, any receipt among its items) once the sync is in the store
        self.on_opened = on_opened
        self.companies, self.outcomes, self.run_id = companies, outcomes, run_id
        self.lock = threading.Lock()  # the claims, the datasets waiting, the syncs opened
        self.in_flight: dict[tuple[str, str], Claim] = {}  # (company, id) reserved
        self.pending_datasets: dict[str, list[tuple[str, Batch]]] = defaultdict(list)
        self.opened_syncs: list[str] = []
        self.versions = Versions(self)  # changed repeats, PUTs and the other kinds' creates

    @property
    def syncs_opened(self) -> int:
        with self.lock:
            return len(self.opened_syncs)

    def push(self, company_id: str, batch: Batch) -> None:
        self.send(company_id, self.claim(company_id, batch))

    def claim(self, company_id: str, batch: Batch) -> Batch:
        """`reserve` then `confirm`, in one go (a retry, a test)."""
        return self.confirm(company_id, self.reserve(company_id, batch))

    def send(self, company_id: str, fresh: Batch) -> None:
        """Push what `claim` let through; its claims end once the outcome is in the ledger."""
        if not fresh:
            return
        fresh = self.versions.send(company_id, fresh)  # leaves the expense creates
        if not fresh:
            return
        try:
            if self.settings.flow == "direct":  # a refusal now leaves no id `sending`
                self.client.quota.check_open()
            fresh = self.mark_sending(company_id, fresh)
            if not fresh:
                return
            crash_point("before_push")
            if self.settings.flow == "direct":
                self.push_direct(company_id, fresh)
            else:
                self.push_dataset(company_id, fresh)
        except BaseException:
            self.release(company_id, fresh)
            raise
        if self.settings.flow == "direct":
            self.release(company_id, fresh)

    # -- claims ---------------------------------------------------------------------------------
    def reserve(self, company_id: str, batch: Batch) -> Batch:
        """What memory can decide, at once and in the order records came (the reading thread,
        which never waits for the store): the first occurrence of an id not in flight in this
        run is reserved for this batch; any other occurrence is judged against the content in
        flight (a repeat, or a change held until that push ends). That judgment is provisional
        until the reserving batch's `confirm` has read the ledger, which may hold the id with
        other content (then every occurrence is judged again, in order). Returns the reserved:
        the batch's candidates for `confirm`."""
        with self.lock:
            keep = []
            for stream, mapped in batch:
                key = (company_id, mapped.transaction_id)
                claim = self.in_flight.get(key)
                if claim is None:
                    self.in_flight[key] = Claim(mapped.payload_hash)
                    keep.append((stream, mapped))
                    continue
                verdict = self.judge_by_claim(company_id, stream, mapped, claim.payload_hash)
                if not claim.confirmed:
                    claim.judged.append((stream, mapped, verdict))
            return keep

    def confirm(self, company_id: str, reserved: Batch) -> Batch:
        """What the ledger decides (a push thread): a reserved id the ledger has as sent or
        completed is a repeat of the content recorded there, and so is every occurrence judged
        against it meanwhile; the rest may be pushed. Batches never share a reserved id, so
        confirms need no order among themselves."""
        if not reserved:
            return []
        try:
            ledger = self.store.ledger(company_id, [m.transaction_id for _, m in reserved])
        except BaseException:
            self.release(company_id, reserved)
            raise
        with self.lock:
            keep = []
            for stream, mapped in reserved:
                key = (company_id, mapped.transaction_id)
                state, recorded = ledger.get(mapped.transaction_id, ("new", None))
                claim = self.in_flight[key]
                self.versions.seen(company_id, mapped.transaction_id, ledger)
                if state not in ON_ITS_WAY:
                    claim.confirmed, claim.judged = True, []
                    claim.in_ledger = mapped.transaction_id in ledger
                    keep.append((stream, mapped))
                    continue
                # judged in memory against this run's content, which the ledger's predates:
                # every occurrence is judged again, in order, against the ledger's
                del self.in_flight[key]
                for _, _, verdict in claim.judged:
                    if verdict == REPEATED:
                        self.outcomes.undo(None)
                again = [(stream, mapped)] + [(s, m) for s, m, _ in claim.judged]
                keep += self.judge_by_ledger(company_id, again, recorded, ledger)
            return keep

    def judge_by_claim(self, company_id: str, stream: str, mapped: Pushable, in_flight: str) -> str:
        """Another occurrence of an id this run has in flight: the same content is a repeat;
        other content is a change, held until that push has ended (updates.py)."""
        if mapped.payload_hash == in_flight:
            self.repeated(company_id, mapped)
            return REPEATED
        self.versions.changed(company_id, stream, mapped, {})
        return HELD

    def judge_by_ledger(
        self, company_id: str, occurrences: Batch, recorded: str | None, ledger: dict
    ) -> Batch:
        """An id's occurrences, in the order they came, judged against the content the ledger
        has on its way to Codat: the same is a repeat; a change is pushed now (an update on top
        of a completed version: then later occurrences are judged against it), held, or
        refused, as updates.py decides. Returns what is to be pushed (one at most)."""
        current, keep = recorded, []
        for stream, mapped in occurrences:
            if mapped.payload_hash == current:
                self.repeated(company_id, mapped)
            elif self.versions.changed(company_id, stream, mapped, ledger):
                current = mapped.payload_hash
                key = (company_id, mapped.transaction_id)
                self.in_flight[key] = Claim(current, confirmed=True, in_ledger=True)
                keep.append((stream, mapped))
        return keep

    def repeated(self, company_id: str, mapped: Pushable) -> None:
        """The same id with the same content again: skipped."""
        self.versions.repeated(company_id, mapped.transaction_id)
        self.outcomes.repeated()

    def release(self, company_id: str, batch: Batch) -> None:
        """The push's outcome is in the ledger now (or it failed): the ledger judges repeats."""
        with self.lock:
            for _, mapped in batch:
                self.in_flight.pop((company_id, mapped.transaction_id), None)

    def mark_sending(self, company_id: str, batch: Batch) -> Batch:
        """Ledger first: the ids are `sending` before their push leaves. A record of this run
        brings its content; a retry pushes the content the ledger already holds. Returns what
        the ledger let this process claim: on a shared (PostgreSQL) ledger an id another live
        process holds is its job, not pushed here, and counted as a repeat."""
        if self.settings.retry_of is not None:
            claimed = set(
                self.store.mark_retrying(company_id, [m.transaction_id for _, m in batch])
            )
        else:
            claimed = set()
            known = self.known_to_ledger(company_id, batch)
            for stream in {s for s, _ in batch}:
                ours = [m for s, m in batch if s == stream]
                claimed.update(self.store.mark_sending(company_id, stream, ours, known))
        held_elsewhere = [(s, m) for s, m in batch if m.transaction_id not in claimed]
        if held_elsewhere:
            self.release(company_id, held_elsewhere)
            for _ in held_elsewhere:
                self.outcomes.repeated()
        return [(s, m) for s, m in batch if m.transaction_id in claimed]

    def known_to_ledger(self, company_id: str, batch: Batch) -> set[str] | None:
        """The batch's ids the ledger had when `confirm` read it, so claiming them need not read
        it again: no other batch may reserve them meanwhile. None when confirm did not see one
        of them (then the claim reads the ledger itself)."""
        with self.lock:
            claims = [self.in_flight.get((company_id, m.transaction_id)) for _, m in batch]
        if any(claim is None or claim.in_ledger is None for claim in claims):
            return None
        return {m.transaction_id for (_, m), c in zip(batch, claims, strict=True) if c.in_ledger}

    # -- direct flow ----------------------------------------------------------------------------
    def push_direct(self, company_id: str, batch: Batch, kind: str = EXPENSE) -> None:
        items = [m.body for _, m in batch]
        purpose = f"retry:{self.settings.retry_of}" if self.settings.retry_of else "create"
        if kind != EXPENSE:  # another endpoint: keys of its own
            purpose = f"{kind}:{purpose}"
        key = idempotency_key(company_id, purpose, [m.payload_hash for _, m in batch])
        try:
            sync_id = KINDS[kind].create(self.client, company_id, items, key)
        except FatalAPIError as error:
            remaining = self.settle_refusal(company_id, batch, error)
            if remaining is None:
                self.failed_again(company_id, batch, error)
                raise
            if remaining and len(remaining) < len(batch):
                self.push_direct(company_id, remaining, kind)
            return
        crash_point("after_response")
        self.opened(company_id, sync_id, batch, "direct")

    def settle_refusal(self, company_id: str, batch: Batch, error: FatalAPIError) -> Batch | None:
        """Resolve what Codat refused item by item; return what may still be pushed. None: the
        refusal names no item of the batch (the push was refused as a whole)."""
        if error.status != 400:
            return None
        if isinstance(error, AlreadyProcessed):
            named = {m.transaction_id for _, m in batch if m.transaction_id in error.ids}
            if not named:
                return None
            settle_processed_before(self.client, self.store, company_id, named)
            return [(s, m) for s, m in batch if m.transaction_id not in named]
        named = {v.get("itemId") for v in error.validation if v.get("itemId")}
        refused = [(s, m) for s, m in batch if m.transaction_id in named]
        if not refused:
            return None
        for stream, mapped in refused:
            reasons = "; ".join(
                v.get("message") or ""
                for v in error.validation
                if v.get("itemId") == mapped.transaction_id
            )
            self.refused(company_id, stream, mapped, reasons)
        return [(s, m) for s, m in batch if m.transaction_id not in named]

    def refused(self, company_id: str, stream: str, mapped: Pushable, reason: str) -> None:
        """Codat's own schema check refused one item of a push: stored like a bad record."""
        refusal = RecordError(mapped.source_key, "codat", reason or "refused")
        self.outcomes.withdrawn(stream, refusal)
        self.store.mark_refused(company_id, mapped.transaction_id, reason or "refused by Codat")

    def failed_again(self, company_id: str, batch: Batch, error: FatalAPIError) -> None:
        """A retry Codat refused as a whole: its ids are failed again, with Codat's reason, not
        left in flight. (A run's refused push leaves them `sending`: the run fails, and the next
        one looks them up in Codat before pushing.)"""
        if self.settings.retry_of is None:
            return
        for _, mapped in batch:
            self.store.mark_refused(company_id, mapped.transaction_id, error.detail or str(error))

    # -- datasets flow --------------------------------------------------------------------------
    def push_dataset(self, company_id: str, batch: Batch) -> None:
        items = [m.body for _, m in batch]
        key = idempotency_key(company_id, "dataset", [m.payload_hash for _, m in batch])
        dataset_id = self.client.create_expense_dataset(company_id, items, key)
        crash_point("after_response")
        self.store.mark_dataset(company_id, dataset_id, self.run_id, len(batch))
        with self.lock:
            self.pending_datasets[company_id].append((dataset_id, batch))
            waiting = sum(len(b) for _, b in self.pending_datasets[company_id])
        if waiting >= self.settings.sync_size:
            self.initiate(company_id)

    def initiate_pending_datasets(self) -> None:
        with self.lock:
            companies = list(self.pending_datasets)
        for company_id in companies:
            self.initiate(company_id)

    def initiate(self, company_id: str) -> None:
        with self.lock:
            pending = self.pending_datasets.pop(company_id, [])
        if not pending:
            return
        dataset_ids = [d for d, _ in pending]
        batch = [item for _, b in pending for item in b]
        try:
            sync_id = self.client.initiate_sync(
                company_id, dataset_ids, idempotency_key(company_id, "sync", dataset_ids)
            )
            self.opened(company_id, sync_id, batch, "datasets")
            self.store.link_datasets(dataset_ids, sync_id)
        finally:
            self.release(company_id, batch)

    # -- bookkeeping ----------------------------------------------------------------------------
    def opened(self, company_id: str, sync_id: str, batch: Batch, flow: str) -> None:
        record = sync_record(
            sync_id,
            self.companies.info(company_id),
            [m.issue_date for _, m in batch],
            flow,
            self.run_id,
            self.settings.retry_of,
        )
        self.store.mark_sent(company_id, [m.transaction_id for _, m in batch], record)
        with self.lock:
            self.opened_syncs.append(sync_id)
        receipts = any(getattr(m, "receipt", None) is not None for _, m in batch)
        self.on_opened(company_id, sync_id, receipts)
        logger.info(
            "sync %s opened for company %s with %d transactions (%s flow)",
            sync_id,
            company_id,
            len(batch),
            flow,
        )
