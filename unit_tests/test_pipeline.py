"""The pipeline's lifecycle against a scripted Codat (MockTransport) and a real DuckDB file:
what is counted when records are accepted, buffered, pushed and checkpointed, and what the run's
row says when it closes."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from fake_codat import (
    COMPANY,
    COMPANY_NAME,
    MISSING_COMPANY,
    STREAM,
    FakeCodat,
    flat,
    mapped,
    settings,
    validation,
)

from destination_codat_expenses import protocol
from destination_codat_expenses.destination import run_pipeline
from destination_codat_expenses.errors import FatalAPIError, RecordError, TooManyRejectsError
from destination_codat_expenses.outcomes import Tally
from destination_codat_expenses.pipeline import Pipeline
from destination_codat_expenses.store.db import reading, release
from destination_codat_expenses.store.status_store import StatusStore

RUN = "run-1"


@pytest.fixture
def codat() -> FakeCodat:
    return FakeCodat()


@pytest.fixture
def store(tmp_path):
    status = StatusStore(str(tmp_path / "status.duckdb"))
    yield status
    release(status.path)


def started(codat, store, **changes) -> Pipeline:
    config = settings(status_store_path=store.path, wait_for_syncs=False, **changes)
    pipeline = Pipeline(config, codat.client(), store, run_id=RUN)
    pipeline.start()
    return pipeline


def query(store: StatusStore, sql: str) -> list[tuple]:
    with reading(store.path) as db:
        return db.execute(sql).fetchall()


def run_row(store: StatusStore) -> tuple:
    (row,) = query(
        store,
        "SELECT outcome, records_in, records_accepted, records_rejected, checkpoints, error "
        "FROM runs",
    )
    return row


def ids(*source_ids: str) -> list[str]:
    return [mapped(s).transaction_id for s in source_ids]


def test_accepted_rejected_and_repeated_records_are_counted_and_stored(codat, store):
    pipeline = started(codat, store)
    pipeline.accept(STREAM, flat("a"))
    pipeline.accept(STREAM, flat("bad", amount="1,234.56"))
    pipeline.refuse(STREAM, RecordError("line 3", "(line)", "is not valid JSON"))
    pipeline.accept(STREAM, flat("b"))
    pipeline.accept(STREAM, flat("a"))  # the same record again: a repeat
    pipeline.accept(STREAM, flat("a", amount="99.00"))  # the same id, other content: held
    assert pipeline.outcomes.snapshot() == Tally(read=6, accepted=4, rejected=2)

    pipeline.checkpoint()

    assert codat.created() == [ids("a", "b")]
    tally = pipeline.outcomes.snapshot()
    assert tally == Tally(read=6, accepted=4, rejected=2, repeated=1, checkpoints=1)
    rejects = query(store, "SELECT record_key, field FROM rejects ORDER BY record_key")
    assert rejects == [("bad", "amount"), ("line 3", "(line)")]
    assert store.held_ids() == {(COMPANY, ids("a")[0])}  # sent once a's sync has ended
    pipeline.close("succeeded")
    assert run_row(store) == ("succeeded", 6, 4, 2, 1, None)


def test_a_full_buffer_is_pushed_at_once_and_a_checkpoint_pushes_the_rest(codat, store):
    pipeline = started(codat, store, batch_size=2)
    for source_id in ("a", "b", "c"):
        pipeline.accept(STREAM, flat(source_id))
    (pushing,) = pipeline.in_flight
    pushing.result(10)
    assert codat.created() == [ids("a", "b")]
    pipeline.checkpoint()
    assert codat.created() == [ids("a", "b"), ids("c")]
    assert pipeline.buffers == {} and pipeline.in_flight == []


def test_a_checkpoint_returns_only_when_every_push_is_in_the_ledger(codat, store):
    """The STATE gate: while a create is still on the wire, checkpoint waits for it."""
    pipeline = started(codat, store)
    hold = threading.Event()
    codat.hold_next_create = hold
    pipeline.accept(STREAM, flat("a"))
    later = threading.Timer(0.3, hold.set)
    later.start()
    pipeline.checkpoint()
    later.join()
    assert codat.create_entered.is_set()
    assert query(store, "SELECT state FROM transactions") == [("sent",)]


def test_batches_are_claimed_in_the_order_their_records_came(codat, store):
    """A changed repeat in a later batch is judged at once against the first content, even
    while every push thread is busy: were claims made on the push threads, a later batch's
    could overtake an earlier one's and Codat would get the changed content first."""
    pipeline = started(codat, store, batch_size=1, concurrency=2)
    holds = [threading.Event(), threading.Event()]
    for number, hold in enumerate(holds, start=1):  # both push threads wait inside a create
        codat.hold_next_create = hold
        pipeline.accept(STREAM, flat(f"busy-{number}"))
        wait_for(lambda n=number: len(codat.posts("/expense-transactions")) == n)
    pipeline.accept(STREAM, flat("x", amount="13.00"))  # queued behind them: first content
    pipeline.accept(STREAM, flat("x", amount="12.00"))  # queued too: a change, held now

    assert store.held_ids() == {(COMPANY, ids("x")[0])}
    for hold in holds:
        hold.set()
    pipeline.checkpoint()
    bodies = [json.loads(r.content) for r in codat.posts("/expense-transactions")]
    assert [[item["id"] for item in body] for body in bodies][2:] == [ids("x")]
    assert bodies[2][0]["lines"][0]["netAmount"] == 11  # 13.00 less 2.00 tax: the first content


def wait_for(check, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_items_codat_refuses_move_from_accepted_to_rejected(codat, store):
    pipeline = started(codat, store, max_rejected_share=0.5)
    codat.refusals.append(validation((ids("b")[0], "accountRef: unknown")))
    for source_id in ("a", "b", "c"):
        pipeline.accept(STREAM, flat(source_id))
    pipeline.finish()
    assert run_row(store) == ("succeeded", 3, 2, 1, 1, None)
    assert query(store, "SELECT record_key, field, reason FROM rejects") == [
        ("b", "codat", "accountRef: unknown")
    ]


def test_too_many_rejects_fail_the_run_and_the_row_says_why(codat, store):
    pipeline = started(codat, store, max_rejected_share=0.3)
    pipeline.accept(STREAM, flat("a"))
    pipeline.accept(STREAM, flat("bad", currency="XXX"))
    with pytest.raises(TooManyRejectsError) as raised:
        pipeline.finish()
    assert "1 of 2 records were rejected" in str(raised.value)
    pipeline.close("failed", str(raised.value))
    outcome, read, accepted, rejected, checkpoints, error = run_row(store)
    assert (outcome, read, accepted, rejected, checkpoints) == ("failed", 2, 1, 1, 1)
    assert error == str(raised.value)


def test_a_push_codat_refuses_fails_the_checkpoint_and_close_still_stores_the_rejects(codat, store):
    pipeline = started(codat, store)
    codat.refusals.append((403, {"error": "Forbidden"}))
    pipeline.accept(STREAM, flat("bad", date="2023-02-29"))
    pipeline.accept(STREAM, flat("a"))
    with pytest.raises(FatalAPIError):
        pipeline.checkpoint()
    pipeline.close("failed", "Codat refused")
    assert run_row(store) == ("failed", 2, 1, 1, 0, "Codat refused")
    assert query(store, "SELECT record_key, field FROM rejects") == [("bad", "date")]


def test_records_are_routed_by_their_company_field_and_each_company_is_learned_once(codat, store):
    pipeline = started(codat, store, company_id=None, company_id_field="company")
    pipeline.accept(STREAM, flat("a", company=COMPANY))
    pipeline.accept(STREAM, flat("b", company=COMPANY.upper()))
    pipeline.accept(STREAM, flat("c", company=MISSING_COMPANY))
    pipeline.accept(STREAM, flat("d"))
    pipeline.checkpoint()

    assert codat.created() == [ids("a", "b")]
    asked = [r for r in codat.requests if r.url.path.endswith("/connections")]
    assert sorted(r.url.path.split("/")[2] for r in asked) == [COMPANY, MISSING_COMPANY]
    reasons = dict(query(store, "SELECT record_key, reason FROM rejects"))
    assert "does not exist in Codat" in reasons["c"]
    assert "must hold a Codat company id" in reasons["d"]
    assert query(store, "SELECT DISTINCT company_id FROM transactions") == [(COMPANY,)]
    # the company Codat knows is named once for the report; the missing one is not recorded
    named = [r for r in codat.requests if r.url.path == f"/companies/{COMPANY}"]
    assert len(named) == 1
    assert query(store, "SELECT company_id, name, target_platform FROM v_companies") == [
        (COMPANY, COMPANY_NAME, "Xero")
    ]


OTHER = "33333333-3333-4333-8333-333333333333"


class CountingCodat(FakeCodat):
    """Creates wait until released, counting each company's creates in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.now: dict[str, int] = {}
        self.most: dict[str, int] = {}

    def create(self, request):
        company = request.url.path.split("/")[2]
        with self.lock:
            self.now[company] = self.now.get(company, 0) + 1
            self.most[company] = max(self.most.get(company, 0), self.now[company])
        try:
            assert self.release.wait(10), "the creates were never released"
            return super().create(request)
        finally:
            with self.lock:
                self.now[company] -= 1


def test_each_company_has_its_own_pushes_in_flight_up_to_concurrency(store):
    codat = CountingCodat()
    pipeline = started(
        codat, store, batch_size=1, concurrency=3, company_id=None, company_id_field="company"
    )
    for n in range(8):
        pipeline.accept(STREAM, flat(f"a{n}", company=COMPANY))
        pipeline.accept(STREAM, flat(f"b{n}", company=OTHER))
    # both companies reach their cap at the same moment (before any create is answered)
    wait_for(lambda: codat.now.get(COMPANY) == 3 and codat.now.get(OTHER) == 3)
    codat.release.set()
    pipeline.checkpoint()

    assert codat.most == {COMPANY: 3, OTHER: 3}  # never more than `concurrency` per company
    assert sorted(i for batch in codat.created() for i in batch) == sorted(
        ids(*[f"a{n}" for n in range(8)], *[f"b{n}" for n in range(8)])
    )


def test_a_company_name_codat_will_not_give_keeps_the_one_read_before(codat, store):
    """A name is for people: a refusal neither stops the run nor forgets the earlier name."""
    first = started(codat, store)
    first.accept(STREAM, flat("a"))
    first.checkpoint()
    first.companies.finish()  # the name is recorded in the background
    codat.company_name_status = 403
    second = Pipeline(
        settings(status_store_path=store.path, wait_for_syncs=False), codat.client(), store, "r2"
    )
    second.start()
    second.accept(STREAM, flat("b"))
    second.checkpoint()
    second.companies.finish()
    assert codat.created()[-1] == ids("b")
    assert query(store, "SELECT name FROM v_companies") == [(COMPANY_NAME,)]


class SlowToDescribeCompanies(FakeCodat):
    """Codat at its latency, for the reads that describe a company (its connections and its
    expense configuration): each waits until the test lets them all go, counted meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.let_go = threading.Event()
        self.asking = self.most_asking = 0

    def answer(self, request):
        if not request.url.path.endswith(("/connections", "/sync/expenses/config")):
            return super().answer(request)
        with self.lock:
            self.asking += 1
            self.most_asking = max(self.most_asking, self.asking)
        try:
            assert self.let_go.wait(10), "the company reads were never let go"
            return super().answer(request)
        finally:
            with self.lock:
                self.asking -= 1


def test_companies_are_learned_together_in_the_background_while_records_are_read(store):
    """At Codat's latency a company takes a round trip to learn: the reading thread does not
    wait for it (it would wait once per company, one after another), and a company's two reads
    go out together."""
    codat = SlowToDescribeCompanies()
    pipeline = started(codat, store, company_id=None, company_id_field="company")
    companies = [COMPANY, OTHER, MISSING_COMPANY]
    for n, company in enumerate(companies):
        pipeline.accept(STREAM, flat(f"r{n}", company=company))  # returns before any answer
    wait_for(lambda: codat.most_asking == 2 * len(companies))
    codat.let_go.set()
    pipeline.checkpoint()

    assert sorted(codat.created()) == [ids("r0"), ids("r1")]
    reasons = dict(query(store, "SELECT record_key, reason FROM rejects"))
    assert "does not exist in Codat" in reasons["r2"]
    assert pipeline.outcomes.snapshot().accepted == 2


class SlowToEndSyncs(FakeCodat):
    """Codat at its latency for sync statuses: each read (of one sync, or of a company's list)
    waits until the test lets them go, counted meanwhile; then every sync has ended."""

    def __init__(self, syncs: list[tuple[str, str]]) -> None:
        super().__init__()
        self.syncs = syncs
        self.let_go = threading.Event()
        self.asking = self.most_asking = 0

    def answer(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/status"):
            return super().answer(request)
        with self.lock:
            self.asking += 1
            self.most_asking = max(self.most_asking, self.asking)
        try:
            assert self.let_go.wait(10), "the status reads were never let go"
            return httpx.Response(200, json=self.statuses(request.url.path))
        finally:
            with self.lock:
                self.asking -= 1

    def statuses(self, path: str) -> dict | list[dict]:
        _, _, company_id, *_, sync_id, _ = path.split("/")
        if sync_id != "list":
            return {"syncId": sync_id, "syncStatusCode": 2000}
        ended = [s for company, s in self.syncs if company == company_id]
        return [{"syncId": s, "syncStatusCode": 2000} for s in ended]


def test_many_syncs_are_asked_about_at_once_whatever_the_push_concurrency(store):
    """At Codat's latency each status read takes a round trip: following a many-company run's
    syncs a few at a time made following, not pushing, the end of the run. Three companies
    with eight syncs each are read from three lists, eight companies with one sync each from
    eight status reads, all at once. (Codat's limit of 10 requests in flight per company still
    holds: the client keeps it.)"""
    listed = [COMPANY, OTHER, "44444444-4444-4444-8444-444444444444"]
    alone = [f"5555555{n}-5555-4555-8555-555555555555" for n in range(8)]
    syncs = [(company, f"sync-{n}-{company}") for n in range(8) for company in listed]
    syncs += [(company, f"sync-{company}") for company in alone]
    codat = SlowToEndSyncs(syncs)
    config = settings(status_store_path=store.path, concurrency=2)
    pipeline = Pipeline(config, codat.client(), store, run_id=RUN)
    pipeline.start()
    following = threading.Thread(target=pipeline.follower.follow, args=(syncs, 30))
    following.start()
    wait_for(lambda: codat.most_asking == len(listed) + len(alone))
    codat.let_go.set()
    following.join()
    assert pipeline.follower.finished == len(syncs)


class HoldsOneCreate(FakeCodat):
    """Codat slow to answer the create that carries one id, until the test lets it go."""

    def __init__(self, held_id: str) -> None:
        super().__init__()
        self.held_id, self.let_go = held_id, threading.Event()

    def create(self, request):
        if self.held_id in {item["id"] for item in json.loads(request.content)}:
            assert self.let_go.wait(10), "the held create was never let go"
        return super().create(request)


def test_reading_goes_on_while_the_records_before_a_state_are_pushed(store):
    """A source may send a STATE every few records: each used to stop reading until Codat had
    answered every push before it. Now the STATE waits alone, and goes out once those pushes
    are in the ledger, even while the source sends nothing more."""
    codat = HoldsOneCreate(ids("a1")[0])
    config = settings(
        status_store_path=store.path, wait_for_syncs=False, batch_size=1, concurrency=2
    )
    pipeline = Pipeline(config, codat.client(), store, run_id=RUN)
    state = {"type": "STREAM", "stream": {"stream_descriptor": {"name": STREAM}}}
    source_done = threading.Event()

    def source():
        yield protocol.Record(STREAM, flat("a1"), 1)
        yield protocol.State(state, STREAM)
        yield protocol.Record(STREAM, flat("a2"), 3)
        while not source_done.is_set():  # a source with nothing more to say for now
            yield protocol.QUIET
            time.sleep(0.01)

    echoed: list[dict] = []
    run = threading.Thread(target=lambda: echoed.extend(run_pipeline(pipeline, {STREAM}, source())))
    run.start()
    wait_for(lambda: ids("a2") in codat.created())  # while Codat still holds a1's create
    assert echoed == []
    codat.let_go.set()
    wait_for(lambda: len(echoed) == 1)  # a1 is in the ledger: its STATE goes, input quiet
    source_done.set()
    run.join(timeout=10)
    assert echoed[0]["state"] == {**state, "destinationStats": {"recordCount": 1}}
    assert sorted(codat.created()) == sorted([ids("a1"), ids("a2")])


def test_each_state_of_the_datasets_flow_counts_one_checkpoint(codat, store):
    """The datasets flow still waits at each STATE (it initiates its syncs there); the echo
    counts that checkpoint, once."""
    config = settings(status_store_path=store.path, wait_for_syncs=False, push_flow="datasets")
    pipeline = Pipeline(config, codat.client(), store, run_id=RUN)
    state = {"type": "STREAM", "stream": {"stream_descriptor": {"name": STREAM}}}
    source = [
        protocol.Record(STREAM, flat("d1"), 1),
        protocol.State(state, STREAM),
        protocol.Record(STREAM, flat("d2"), 3),
        protocol.State(state, STREAM),
    ]
    echoed = list(run_pipeline(pipeline, {STREAM}, source))
    assert len(echoed) == 2
    assert len(codat.posts("/data/expense-transactions")) == 2  # each STATE's records pushed
    assert run_row(store)[:5] == ("succeeded", 2, 2, 0, 3)  # two STATEs and the run's end
