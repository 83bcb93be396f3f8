"""The exactly-once tests' model of a message stream.

A `Stream` is a list of events: valid records for a few companies (a key seen again with the
same content is a repeat, with other content an update: the books end at the last content),
records the mapper refuses, lines that are not Airbyte messages at all, and STATEs. A record is
of one of the streams whose changes Codat takes as updates: card spend (expenses), transfers or
reimbursable expenses; `streams(kinds=...)` mixes them. From it come the lines the destination
reads and the oracle (`expect`): what the sandbox's books, the ledger, its versions and the
rejects table must hold. The assertions judge the books first (the sandbox's ground
truth) and the store second. The hypothesis strategy `streams` builds random streams over the
same vocabulary.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from hypothesis import strategies as st

from integration_tests.destination_support import (
    BASE_CURRENCY,
    FREEAGENT,
    QBO,
    XERO,
    admin,
    bill,
    books,
    catalog,
    flat,
    global_state,
    iter_write,
    query,
    record,
    stream_state,
    transfer,
    txn_id,
)

S = "card_spend"
TRANSFERS, BILLS = "transfers", "reimbursable_expense_transactions"
FAMILY = (S, TRANSFERS, BILLS)  # the kinds whose changed content Codat takes as an update
CATALOG = catalog(*FAMILY)
# three platforms that update expenses, all healthy (Dynamics, which has no expense updates, is
# judged apart: test_versions_and_family.py)
COMPANIES = (XERO, QBO, FREEAGENT)
# per stream: the companies whose platforms create and update its kind (Xero only creates
# transfers and takes no reimbursables: judged apart, test_versions_and_family.py)
UPDATING = {S: COMPANIES, TRANSFERS: (QBO, FREEAGENT), BILLS: (QBO, FREEAGENT)}
BOOK_KIND = {S: "expense", TRANSFERS: "transfer", BILLS: "reimbursable"}
# a row of each stream holding `amount` as its one total (a card's gross, a transfer's from and
# to, a bill's one line), and the field a reject names when that amount is not a number
ROWS = {
    S: lambda key, company, amount: flat(key, company, amount=amount),
    TRANSFERS: lambda key, company, amount: {**transfer(key, amount), "company": company},
    BILLS: lambda key, company, amount: {
        **bill(key, amount, currency=BASE_CURRENCY[company]),
        "company": company,
    },
}
AMOUNT_FIELD = {S: "amount", TRANSFERS: "from.amount", BILLS: "lines[0].netAmount"}
BASE_AMOUNT = Decimal("12.00")
KEY_NAMESPACE = uuid.UUID("6f1d4c0e-7a51-4c8e-9d0b-2f3e4a5b6c7d")
# Lines the protocol reader cannot turn into a message: each must leave the run standing.
UNREADABLE = {
    "not JSON": '{"type": "RECORD", "record": {"stream": "card_spend", "data": {"id": ',
    "a JSON array": "[1, 2, 3]",
    "a JSON string": '"RECORD"',
    "a RECORD without a record": '{"type": "RECORD"}',
    "a RECORD without data": json.dumps({"type": "RECORD", "record": {"stream": S}}),
    "a RECORD whose data is a list": json.dumps(
        {"type": "RECORD", "record": {"stream": S, "data": [1], "emitted_at": 1}}
    ),
    "a STATE without a state": '{"type": "STATE"}',
}


def uuid_key(name: str) -> str:
    """A stable UUID source id (used as the transaction id as it is)."""
    return str(uuid.uuid5(KEY_NAMESPACE, name))


# -- events ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expense:
    """A valid record of `stream` (a Sync for Expenses transaction: a card expense, a transfer or
    a reimbursable expense); `variant` sets its amount, so two variants of one key differ in
    content."""

    key: str
    company: str = XERO
    variant: int = 0
    stream: str = S

    @property
    def total(self) -> Decimal:
        return BASE_AMOUNT + self.variant

    @property
    def transaction_id(self) -> str:
        return txn_id(self.stream, self.key)

    def line(self) -> dict:
        return record(self.stream, ROWS[self.stream](self.key, self.company, str(self.total)))


@dataclass(frozen=True)
class BadExpense:
    """A record the mapper refuses: its amount is not a number."""

    key: str
    company: str = XERO
    stream: str = S

    @property
    def field(self) -> str:
        return AMOUNT_FIELD[self.stream]

    def line(self) -> dict:
        return record(self.stream, ROWS[self.stream](self.key, self.company, "twelve"))


@dataclass(frozen=True)
class Unreadable:
    kind: str  # a key of UNREADABLE

    def line(self) -> str:
        return UNREADABLE[self.kind]


@dataclass(frozen=True)
class Checkpoint:
    scope: str = "stream"  # "stream" (a STATE of `stream`) or "global"
    stream: str = S


Event = Expense | BadExpense | Unreadable | Checkpoint


# -- the oracle --------------------------------------------------------------------------------
@dataclass
class Expected:
    """What the books and the store must say about the records of a stream (or of its part
    before a STATE)."""

    books: dict[str, Expense] = field(default_factory=dict)  # id -> its last occurrence
    rejects: Counter = field(default_factory=Counter)  # (record key, field) -> times
    keys: set[str] = field(default_factory=set)  # every record key in the stream
    changed: set[str] = field(default_factory=set)  # ids that came again with other content

    def name(self, transaction_id: str) -> str:
        first = self.books.get(transaction_id)
        return first.key if first else transaction_id


def expect(events: Iterable[Event]) -> Expected:
    """The last occurrence of an id decides its content: a later one with the same content is
    a repeat (nothing happens), with other content an update (never a second entry)."""
    out = Expected()
    for event in events:
        if isinstance(event, Expense):
            out.keys.add(event.key)
            earlier = out.books.get(event.transaction_id)
            if earlier is not None and earlier.total != event.total:
                out.changed.add(event.transaction_id)
            out.books[event.transaction_id] = event
        elif isinstance(event, BadExpense):
            out.keys.add(event.key)
            out.rejects[(event.key, event.field)] += 1
    return out


@dataclass
class Stream:
    events: list[Event]
    batch_size: int | None = None  # None: the configured default
    fault_seed: int | None = None  # None: no faults
    push_latency_ms: int = 0  # how long Codat takes to answer a push (without faults)

    def lines(self) -> list[dict | str]:
        out: list[dict | str] = []
        number = 0
        for event in self.events:
            if isinstance(event, Checkpoint):
                number += 1
                if event.scope == "stream":
                    out.append(stream_state(event.stream, number))
                else:
                    out.append(global_state(number))
            else:
                out.append(event.line())
        return out

    def describe(self) -> str:
        """One line a person can replay: settings, then each event in order."""
        names = {XERO: "Xero", QBO: "QBO", FREEAGENT: "FreeAgent"}
        shown = []
        for event in self.events:
            kind = "" if getattr(event, "stream", S) == S else f" {event.stream}"
            if isinstance(event, Expense):
                changed = f" (+{event.variant})" if event.variant else ""
                company = names.get(event.company, event.company)
                shown.append(f"{event.key}@{company}{kind}{changed}")
            elif isinstance(event, BadExpense):
                shown.append(f"{event.key}{kind} (bad amount)")
            elif isinstance(event, Unreadable):
                shown.append(f"<{event.kind}>")
            else:
                shown.append(f"STATE({event.scope}{kind if event.scope == 'stream' else ''})")
        settings = (
            f"batch {self.batch_size or 'default'}, faults seed {self.fault_seed}, "
            f"push latency {self.push_latency_ms} ms"
        )
        return f"{settings}: " + ", ".join(shown)

    @property
    def state_count(self) -> int:
        return sum(isinstance(e, Checkpoint) for e in self.events)

    def expected(self, through_state: int | None = None) -> Expected:
        """The oracle for the whole stream, or for the events before STATE `through_state`."""
        if through_state is None:
            return expect(self.events)
        return expect(self.events[: self.checkpoint_at(through_state)])

    def totals_after(self, state: int) -> dict[str, set[Decimal]]:
        """id -> the totals of its records after STATE `state` (reading goes on past a STATE
        while its records are pushed, so the store may hold some of them when it is echoed)."""
        totals = defaultdict(set)
        for event in self.events[self.checkpoint_at(state) :]:
            if isinstance(event, Expense):
                totals[event.transaction_id].add(event.total)
        return totals

    def checkpoint_at(self, state: int) -> int:
        """The index in `events` of STATE number `state` (from 1)."""
        return [i for i, e in enumerate(self.events) if isinstance(e, Checkpoint)][state - 1]


# -- hypothesis --------------------------------------------------------------------------------
@st.composite
def streams(
    draw,
    min_events: int = 1,
    max_events: int = 30,
    faults: bool = False,
    kinds: tuple[str, ...] = (S,),
    max_keys: int = 8,
) -> Stream:
    """Interleavings of records of `kinds` (streams of FAMILY) for the companies that update
    each (UUID and text ids, repeats with the same and other content), bad records, unreadable
    lines and STATEs, with a small batch size so repeats land in the same batch, the next one,
    or after a STATE."""
    key_count = draw(st.integers(1, max_keys))
    keys = [key_of(draw, f"k{i}", kinds) for i in range(key_count)]
    expense = st.builds(
        lambda index, variant: Expense(*keys[index][:2], variant, keys[index][2]),
        st.integers(0, key_count - 1),
        st.one_of(st.just(0), st.integers(0, 2)),  # mostly the first content
    )
    bad = st.builds(
        BadExpense,
        st.integers(0, 2).map(lambda n: f"bad-{n}"),
        st.just(QBO),
        st.sampled_from(kinds),
    )
    unreadable = st.sampled_from(sorted(UNREADABLE)).map(Unreadable)
    checkpoint = st.builds(
        Checkpoint, st.sampled_from(["stream", "global"]), st.sampled_from(kinds)
    )
    event = st.integers(0, 9).flatmap(
        lambda n: expense if n < 6 else bad if n == 6 else unreadable if n == 7 else checkpoint
    )
    return Stream(
        events=draw(st.lists(event, min_size=min_events, max_size=max_events)),
        batch_size=draw(st.integers(3, 7)),
        fault_seed=draw(st.integers(0, 2**16)) if faults else None,
        push_latency_ms=0 if faults else draw(st.sampled_from([0, 150])),
    )


def key_of(draw, name: str, kinds: tuple[str, ...]) -> tuple[str, str, str]:
    """(key, company, stream) of one id: a UUID or a text key, in one stream, for a company
    whose platform updates that stream's kind."""
    key = uuid_key(name) if draw(st.booleans()) else name
    stream = draw(st.sampled_from(kinds))
    return key, draw(st.sampled_from(UPDATING[stream])), stream


# -- the sandbox -------------------------------------------------------------------------------
FAULTS = {
    "rate_429": 0.04,
    "rate_500": 0.04,
    "rate_503": 0.04,
    "rate_reset": 0.04,
    "rate_lost_response": 0.06,
    "retry_after_s": 0,
}
PUSH_PATH = r"^/companies/[^/]+/sync/expenses/expense-transactions$"


def fresh_sandbox(base_url: str, stream: Stream) -> None:
    """Empty books, the demo companies, no idempotency keys; then the stream's faults (on
    every API path), or its push latency (on the direct push alone: the next batch is read
    and checked while a push is in flight, as over a real network)."""
    admin(base_url, "POST", "/_sandbox/reset")
    if stream.fault_seed is not None:
        admin(base_url, "PUT", "/_sandbox/faults", {**FAULTS, "seed": stream.fault_seed})
    elif stream.push_latency_ms:
        plan = {"latency_ms": stream.push_latency_ms, "paths": PUSH_PATH}
        admin(base_url, "PUT", "/_sandbox/faults", plan)


# -- running and judging -----------------------------------------------------------------------
def write_checking_states(config: dict, stream: Stream) -> list[dict]:
    """The write, in this process; at each echoed STATE (reading paused right there, the pushes
    of records read after it going on) the store must already hold every record before it as
    accepted by Codat, and every bad one before it as a reject. Returns the STATEs echoed,
    which must be all of them, in order."""
    store = config["status_store_path"]  # a DuckDB path or a PostgreSQL URL
    echoed: list[dict] = []
    for state in iter_write(config, CATALOG, stream.lines()):
        echoed.append(state)
        assert_state_is_covered(store, stream, len(echoed))
    assert [s["state"]["id"] for s in echoed] == list(range(1, stream.state_count + 1))
    return echoed


def assert_state_is_covered(store: Path, stream: Stream, number: int) -> None:
    before = stream.expected(through_state=number)
    running = query(store, "SELECT run_id FROM runs WHERE outcome = 'running'")
    assert len(running) == 1, f"STATE {number}: {len(running)} runs are running"
    current = {t: (s, a) for t, s, a in query(store, TRANSACTIONS_NOW)}
    settled = {t for (t,) in query(store, "SELECT transaction_id FROM transaction_attempts")}
    later = stream.totals_after(number)
    unaccepted = [
        f"{before.name(t)}: {current.get(t, (None,))[0]}"
        for t in before.books
        if not accepted_by_codat(current.get(t), t in settled, later_content(before, later, t))
    ]
    assert not unaccepted, f"STATE {number} echoed before Codat accepted {unaccepted}"
    stored = rejects_of(store, running[0][0], before.keys)
    unstored = before.rejects - stored
    assert not unstored, f"STATE {number} echoed before these rejects were stored: {unstored}"


TRANSACTIONS_NOW = "SELECT transaction_id, state, total_amount FROM transactions"


def later_content(before: Expected, later: dict[str, set[Decimal]], transaction_id: str) -> set:
    """The totals a push of the id in flight at the STATE's echo may carry: those of its
    records read after the STATE, not its content before the STATE, which must be accepted by
    then. Except for an id that changed before the STATE: its last content there may have been
    held (committed in the store, behind a version Codat had not settled), and the same content
    read again after the STATE, on top of a settled version by then, goes out as an update
    while the echo is checked."""
    totals = later[transaction_id]
    if transaction_id in before.changed:
        return totals
    return totals - {before.books[transaction_id].total}


def accepted_by_codat(
    current: tuple[str, Decimal] | None, settled: bool, changed_later: set[Decimal]
) -> bool:
    """An id's content before a STATE was accepted: its ledger row is sent or completed; or the
    row is already a later content, read after the STATE, being pushed on top of a version
    whose sync Codat has settled (an update goes out only on top of a settled version)."""
    if current is None:
        return False
    state, total = current
    if state in ("sent", "completed"):
        return True
    return state == "sending" and settled and Decimal(total) in changed_later


def rejects_of(store: Path, run_id: str, keys: set[str]) -> Counter:
    """(record key, field) -> times, for the run's rejects of the stream's records."""
    rows = query(store, "SELECT record_key, field FROM rejects WHERE run_id = ?", [run_id])
    return Counter((key, name) for key, name in rows if key in keys)


def run_ids(store: Path) -> list[tuple[str, str]]:
    return [tuple(r) for r in query(store, "SELECT run_id, outcome FROM runs ORDER BY started_at")]


def assert_books_hold_exactly(base_url: str, expected: Expected) -> dict[str, dict]:
    """The judge: each expected id once, in its company's books, with the content of its last
    occurrence, and nothing else. Returns the books."""
    written = books(base_url)

    def named(ids: Iterable[str]) -> list[str]:
        return sorted(expected.name(t) for t in ids)[:5]

    lost = [t for t in expected.books if t not in written]
    unknown = [t for t in written if t not in expected.books]
    twice = [t for t, entry in written.items() if entry["writes"] != 1]
    elsewhere = [
        t
        for t, first in expected.books.items()
        if t in written
        and (written[t]["company_id"], written[t]["kind"])
        != (first.company, BOOK_KIND[first.stream])
    ]
    other_content = [
        t
        for t, first in expected.books.items()
        if t in written and Decimal(written[t]["total"]) != first.total
    ]
    problems = [
        f"{len(ids)} {what}, e.g. {named(ids)}"
        for ids, what in (
            (lost, f"of {len(expected.books)} transactions lost"),
            (unknown, "transactions nobody sent"),
            (twice, "transactions written more than once"),
            (elsewhere, "transactions in the wrong company's books, or of another kind"),
            (other_content, "transactions with other content than their last occurrence"),
        )
        if ids
    ]
    assert not problems, "the books: " + "; ".join(problems)
    return written


def assert_ledger_agrees(store: Path, written: dict[str, dict], expected: Expected) -> None:
    """Completed in the ledger exactly when in the books, for the same company and content (the
    current version's); a completed push item naming the record and sync the books name (the
    create's; updates add items of their own); and no change left held."""
    rows = query(store, "SELECT transaction_id, company_id, state, total_amount FROM transactions")
    ledger = {tid: (company, state, total) for tid, company, state, total in rows}
    booked = {t: (e["company_id"], "completed", Decimal(e["total"])) for t, e in written.items()}
    items = defaultdict(list)
    for tid, company, sync_id, record_id in query(
        store,
        "SELECT transaction_id, company_id, sync_id, record_id FROM push_items "
        "WHERE status = 'Completed'",
    ):
        items[tid].append((company, sync_id, record_id))
    ghosts = [t for t, (_, state, _) in ledger.items() if state == "completed" and t not in written]
    unrecorded = [t for t in written if t not in ledger or ledger[t][1] != "completed"]
    disagree = [t for t in written if t in ledger and ledger[t] != booked[t]]
    known_syncs = {sync_id for (sync_id,) in query(store, "SELECT sync_id FROM syncs")}
    unlike_items = [
        t
        for t, entry in written.items()
        if not names_booked_record(entry, items.get(t, []), known_syncs)
    ]
    held = [
        t
        for (t,) in query(
            store, "SELECT transaction_id FROM transaction_versions WHERE state = 'held'"
        )
    ]
    problems = [
        f"{len(ids)} {what}, e.g. {sorted(expected.name(t) for t in ids)[:5]}"
        for ids, what in (
            (ghosts, "completed in the ledger but not in the books"),
            (unrecorded, "in the books but not completed in the ledger"),
            (disagree, "in the ledger with another state, company or content than the books"),
            (unlike_items, "without one completed push item naming the booked record"),
            (held, "with a change still held"),
        )
        if ids
    ]
    assert not problems, "the ledger: " + "; ".join(problems)


def names_booked_record(entry: dict, items: list[tuple], known_syncs: set[str]) -> bool:
    """A completed push item names the company, sync and record the books name. A transfer is
    created by a PUT, which takes no Idempotency-Key: when Codat's answer to it was lost, the
    store never heard of the sync that wrote it, and the retry's sync (which wrote nothing,
    the books holding that content already) is the completed item of the company instead."""
    if (entry["company_id"], entry["sync_id"], entry["record_id"]) in items:
        return True
    answer_lost = entry["kind"] == "transfer" and entry["sync_id"] not in known_syncs
    return answer_lost and any(company == entry["company_id"] for company, _, _ in items)


def assert_versions_agree(store: Path, written: dict[str, dict], expected: Expected) -> None:
    """v_transaction_versions: an id's completed versions are the versions its books entry
    holds, one for one (number, kind and total), and no other id has one."""
    rows = query(
        store,
        "SELECT transaction_id, version, kind, total_amount FROM v_transaction_versions "
        "WHERE state = 'completed' ORDER BY transaction_id, version",
    )
    stored = defaultdict(list)
    for tid, version, kind, total in rows:
        stored[tid].append((version, kind, Decimal(total)))
    booked = {
        t: [(v["version"], e["kind"], Decimal(v["total"])) for v in e["versions"]]
        for t, e in written.items()
    }
    differ = {
        expected.name(t): (stored.get(t), booked.get(t))
        for t in set(stored) | set(booked)
        if stored.get(t) != booked.get(t)
    }
    assert not differ, f"versions (store, books) that differ: {dict(list(differ.items())[:3])}"


def judge_run(base_url: str, store: Path, stream: Stream, run_number: int) -> dict[str, dict]:
    """After run `run_number` (1-based) on `store`: books, ledger, versions, this run's rejects
    and every run's outcome. Returns the books."""
    expected = stream.expected()
    written = assert_books_hold_exactly(base_url, expected)
    assert_ledger_agrees(store, written, expected)
    assert_versions_agree(store, written, expected)
    runs = run_ids(store)
    assert [outcome for _, outcome in runs] == ["succeeded"] * run_number
    got = rejects_of(store, runs[-1][0], expected.keys)
    assert got == expected.rejects, f"rejects {dict(got)}, expected {dict(expected.rejects)}"
    return written
