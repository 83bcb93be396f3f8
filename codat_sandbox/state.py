"""Everything the sandbox remembers: companies, datasets, syncs, and each company's books.

Syncs queue per company and finish on the sandbox clock; `advance()` settles every sync whose
time has come, in order, so the outcome never depends on when somebody happened to poll.
The books are the ground truth tests read: each transaction written, how many times it was
created (`writes`), and each version an update made of it (`versions`).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from codat_sandbox.engine import SYNC_STATUS_TEXT, Outcome, company_failure
from codat_sandbox.family import EXPENSE, Pending, book_facts, book_total, judge_item
from codat_sandbox.ledger import Company
from codat_sandbox.schemas import ExpenseTransaction

LONG_RUNNING = timedelta(minutes=10)


class Clock:
    """Wall-clock UTC plus an offset the admin API can move forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class ItemResult:
    transaction_id: str
    status: str = "Pending"
    message: str | None = None


@dataclass
class Sync:
    id: str
    company_id: str
    items: list[Pending]
    initiated: datetime
    starts: datetime
    finishes: datetime
    flow: str  # direct | datasets
    dataset_ids: list[str] = field(default_factory=list)
    code: int | None = None  # None while in progress
    error_message: str = ""
    exception_message: str = ""
    completed: datetime | None = None
    data_pushed: bool = False
    results: dict[str, ItemResult] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.code is not None


@dataclass
class BookEntry:
    transaction_id: str
    record_id: str
    data_type: str
    sync_id: str
    type: str
    issue_date: str
    currency: str
    total: str
    writes: int = 1
    attachments: list[dict] = field(default_factory=list)
    # what was posted to: the refs given, else the company's configured defaults
    bank_account: str | None = None
    contact: str | None = None
    lines: list[dict] = field(default_factory=list)  # {account, tax_rate, tracking} per line
    kind: str = "expense"  # expense | transfer | reimbursable | adjustment
    version: int = 1
    versions: list[dict] = field(default_factory=list)  # {version, sync_id, total, content}
    fingerprint: str = ""  # the current version's content, to tell a repeat from a change

    def content(self) -> dict:
        return self.versions[-1]["content"] if self.versions else {}


@dataclass
class Dataset:
    id: str
    company_id: str
    items: list[ExpenseTransaction]
    synced_by: str | None = None


class SandboxState:
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.lock = threading.RLock()
        self.clock = Clock()
        self.companies: dict[str, Company] = {}
        self.syncs: dict[str, Sync] = {}
        self.company_syncs: dict[str, list[str]] = {}
        self.settled_upto: dict[str, int] = {}  # per company: syncs before this index are final
        self.datasets: dict[str, Dataset] = {}
        self.completed: dict[tuple[str, str], str] = {}  # (company, txn) -> sync that wrote it
        self.books: dict[str, dict[str, BookEntry]] = {}
        self.record_counter = 0
        self.on_sync_final: list = []  # callbacks(state, sync), e.g. webhook fan-out

    # -- companies -------------------------------------------------------------------------
    def add_company(self, company: Company) -> Company:
        with self.lock:
            self.companies[company.id] = company
            self.company_syncs.setdefault(company.id, [])
            self.books.setdefault(company.id, {})
            return company

    # -- pushes ----------------------------------------------------------------------------
    def previously_processed(self, company_id: str, items: list) -> list[str]:
        """The ids among these creates that a sync has completed already."""
        return [
            t.id
            for t in items
            if getattr(t, "mode", "create") == "create" and (company_id, t.id) in self.completed
        ]

    def knows(self, company_id: str, transaction_id: str) -> bool:
        """Completed, or queued in a sync not yet settled: something an update may aim at."""
        if (company_id, transaction_id) in self.completed:
            return True
        return any(
            any(item.id == transaction_id for item in sync.items)
            for sync in self.syncs_of(company_id)
            if not sync.final
        )

    def queue_sync(
        self,
        company: Company,
        items: list[Pending],
        flow: str,
        dataset_ids: list[str] | None = None,
    ) -> Sync:
        with self.lock:
            now = self.clock.now()
            queue = self.company_syncs[company.id]
            last_finish = self.syncs[queue[-1]].finishes if queue else now
            starts = max(now, last_finish)
            sync = Sync(
                id=str(uuid.uuid4()),
                company_id=company.id,
                items=items,
                initiated=now,
                starts=starts,
                finishes=starts + timedelta(seconds=company.sync_seconds),
                flow=flow,
                dataset_ids=dataset_ids or [],
                results={t.id: ItemResult(t.id) for t in items},
            )
            self.syncs[sync.id] = sync
            queue.append(sync.id)
            return sync

    def create_dataset(self, company: Company, items: list[ExpenseTransaction]) -> Dataset:
        with self.lock:
            dataset = Dataset(str(uuid.uuid4()), company.id, items)
            self.datasets[dataset.id] = dataset
            return dataset

    # -- settling syncs ----------------------------------------------------------------------
    def advance(self) -> list[Sync]:
        """Finish every sync whose time has come, company by company, in queue order."""
        finished = []
        with self.lock:
            now = self.clock.now()
            for company_id, sync_ids in self.company_syncs.items():
                position = self.settled_upto.get(company_id, 0)
                while position < len(sync_ids) and self.syncs[sync_ids[position]].finishes <= now:
                    sync = self.syncs[sync_ids[position]]
                    self.settle(sync)
                    finished.append(sync)
                    position += 1
                self.settled_upto[company_id] = position
        for sync in finished:
            for callback in self.on_sync_final:
                callback(self, sync)
        return finished

    def settle(self, sync: Sync) -> None:
        company = self.companies[sync.company_id]
        failure = company_failure(company) or self.duplication_failure(sync)
        if failure:
            self.fail_whole_sync(sync, *failure)
        else:
            self.write_items(company, sync)
        sync.completed = max(sync.finishes, self.clock.now())
        sync.items = []  # settled: the outcome is in results; the bodies need not be kept

    def duplication_failure(self, sync: Sync) -> tuple[int, str] | None:
        duplicates = self.previously_processed(sync.company_id, sync.items)
        already_synced = [
            d for d in sync.dataset_ids if self.datasets[d].synced_by not in (None, sync.id)
        ]
        for dataset_id in sync.dataset_ids:
            self.datasets[dataset_id].synced_by = self.datasets[dataset_id].synced_by or sync.id
        if not duplicates and not already_synced:
            return None
        which = ", ".join(duplicates[:5]) or ", ".join(already_synced[:5])
        return 5080, f"One or more transactions have previously been processed: {which}"

    def fail_whole_sync(self, sync: Sync, code: int, message: str) -> None:
        sync.code, sync.error_message = code, message
        sync.exception_message = f"{SYNC_STATUS_TEXT[code]}: {message}"
        for result in sync.results.values():
            if (sync.company_id, result.transaction_id) in self.completed and code == 5080:
                result.status, result.message = (
                    "ValidationError",
                    (
                        "One or more transactions have previously been processed: "
                        f"{result.transaction_id}"
                    ),
                )
            else:
                result.status, result.message = "PushError", f"Not written: {message}"

    def write_items(self, company: Company, sync: Sync) -> None:
        outcomes = []
        for item in sync.items:  # one by one: a later item sees what an earlier one wrote
            outcome = judge_item(company, self.books[company.id].get(item.id), item)
            self.record_outcome(company, sync, item, outcome)
            outcomes.append((item, outcome))
        failed = [o for _, o in outcomes if o.status != "Completed"]
        sync.data_pushed = any(o.written for _, o in outcomes)
        if not failed:
            sync.code = 2000 if sync.data_pushed else 2040
            return
        sync.code = 5130 if any(o.status == "PushError" for o in failed) else 5120
        sync.error_message = (
            f"{len(failed)} of {len(outcomes)} transactions failed: {failed[0].message}"
        )
        sync.exception_message = f"{SYNC_STATUS_TEXT[sync.code]}: {sync.error_message}"

    def record_outcome(self, company: Company, sync: Sync, item: Pending, outcome: Outcome) -> None:
        result = sync.results[item.id]
        result.status, result.message = outcome.status, outcome.message or None
        if outcome.status != "Completed":
            return
        self.completed.setdefault((company.id, item.id), sync.id)
        if not outcome.written:
            return
        book = self.books[company.id]
        entry = book.get(item.id)
        if entry is not None and item.mode == "create":
            entry.writes += 1  # never expected: Codat refuses completed ids; counted if it happens
            return
        if entry is not None:
            self.add_version(company, sync, entry, item)
            result.message = (
                f"Updated {entry.data_type} {entry.record_id} in {company.platform.name} "
                f"(version {entry.version})"
            )
            return
        self.record_counter += 1
        record_id = f"{company.platform.record_prefix}-{self.record_counter:07d}"
        result.message = f"Created {outcome.data_type} {record_id} in {company.platform.name}"
        book[item.id] = new_entry(company, sync, item, record_id, outcome.data_type)

    def add_version(self, company: Company, sync: Sync, entry: BookEntry, item: Pending) -> None:
        """An update rewrites the one record the books hold and keeps the history."""
        entry.type, entry.issue_date, entry.currency = book_facts(company, item)
        entry.total = str(book_total(item))
        entry.version += 1
        entry.fingerprint = item.fingerprint
        vars(entry).update(posted_refs(company, item))
        entry.versions.append(version_of(entry.version, sync, entry.total, item))

    # -- reading -------------------------------------------------------------------------------
    def status_of(self, sync: Sync) -> dict:
        now = self.clock.now()
        if sync.final:
            code, text = (
                sync.code,
                (
                    "Complete"
                    if sync.code in (2000, 2040)
                    else "PushError"
                    if sync.code == 5130
                    else "Failed"
                ),
            )
        else:
            code = 1010 if now - sync.initiated > LONG_RUNNING else 1000
            text = "Pushing" if now >= sync.starts else "NotStarted"
        return {
            "companyId": sync.company_id,
            "syncId": sync.id,
            "syncStatusCode": code,
            "syncStatus": text,
            "errorMessage": sync.error_message,
            "syncExceptionMessage": sync.exception_message,
            "syncUtc": format_utc(sync.completed or sync.initiated),
            "dataPushed": sync.data_pushed,
        }

    def syncs_of(self, company_id: str) -> list[Sync]:
        return [self.syncs[s] for s in self.company_syncs.get(company_id, [])]

    def ground_truth(self) -> dict:
        return {cid: [entry_json(e) for e in book.values()] for cid, book in self.books.items()}


def entry_json(entry: BookEntry) -> dict:
    return {name: value for name, value in vars(entry).items() if name != "fingerprint"}


def new_entry(
    company: Company, sync: Sync, item: Pending, record_id: str, data_type: str
) -> BookEntry:
    txn_type, when, currency = book_facts(company, item)
    total = str(book_total(item))
    return BookEntry(
        item.id,
        record_id,
        data_type,
        sync.id,
        txn_type,
        when,
        currency,
        total,
        kind=item.kind,
        versions=[version_of(1, sync, total, item)],
        fingerprint=item.fingerprint,
        **posted_refs(company, item),
    )


def version_of(number: int, sync: Sync, total: str, item: Pending) -> dict:
    return {"version": number, "sync_id": sync.id, "total": total, "content": item.content()}


def posted_refs(company: Company, item: Pending) -> dict:
    """The bank account, supplier and per-line refs an expense was written with (the other
    kinds' books show their refs in their content)."""
    if item.kind != EXPENSE:
        return {}
    txn, config = item.body, company.config or {}
    return {
        "bank_account": (txn.bankAccountRef.id if txn.bankAccountRef else None)
        or config.get("bankAccount", {}).get("id"),
        "contact": (txn.contactRef.id if txn.contactRef else None)
        or config.get("supplier", {}).get("id"),
        "lines": [
            {
                "account": line.accountRef.id if line.accountRef else None,
                "tax_rate": line.taxRateRef.id if line.taxRateRef else None,
                "tracking": [t.id for t in line.trackingRefs or []],
            }
            for line in txn.lines or []
        ],
    }


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
