"""The one push path against a scripted Codat (httpx.MockTransport) and a real DuckDB file:
ledger first, both flows, "previously processed" settled from Codat's word, refused items,
claims across pushes in flight, and a retry going through the same path."""

from __future__ import annotations

import threading

import pytest
from fake_codat import (
    COMPANY,
    STREAM,
    FakeCodat,
    mapped,
    processed_before,
    settings,
    validation,
)

from destination_codat_expenses.companies import Companies
from destination_codat_expenses.errors import AlreadyProcessed, FatalAPIError
from destination_codat_expenses.outcomes import Outcomes, Tally
from destination_codat_expenses.pushes import (
    LedgerItem,
    Pusher,
    PushSettings,
    idempotency_key,
)
from destination_codat_expenses.store.db import reading, release
from destination_codat_expenses.store.status_store import NOT_COMPLETED, StatusStore

RUN = "run-1"


@pytest.fixture
def codat() -> FakeCodat:
    return FakeCodat()


@pytest.fixture
def store(tmp_path):
    status = StatusStore(str(tmp_path / "status.duckdb"))
    status.prepare()
    yield status
    release(status.path)


def pusher_for(codat, store, flow="direct", sync_size=500, retry_of=None) -> Pusher:
    client = codat.client()
    if retry_of is not None:
        push_settings = PushSettings.retry(retry_of)
    else:
        push_settings = PushSettings.of(settings(push_flow=flow, sync_size=sync_size))
    run_id = RUN if retry_of is None else None  # a retry is no run's
    return Pusher(client, store, push_settings, Companies(client), Outcomes(), run_id)


def batch(*source_ids: str) -> list:
    return [(STREAM, mapped(s)) for s in source_ids]


def ids(*source_ids: str) -> list[str]:
    return [mapped(s).transaction_id for s in source_ids]


def ledger(store: StatusStore) -> dict[str, tuple]:
    with reading(store.path) as db:
        rows = db.execute(
            "SELECT transaction_id, state, codat_status, last_sync_id, message FROM transactions"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def syncs(store: StatusStore) -> list[tuple]:
    with reading(store.path) as db:
        return db.execute(
            "SELECT sync_id, run_id, retry_of, flow, target_platform, item_count FROM syncs "
            "ORDER BY initiated_at"
        ).fetchall()


# -- direct flow ----------------------------------------------------------------------------------
def test_direct_push_commits_sending_before_the_create_and_sent_after(codat, store):
    seen_at_create = {}
    answer = codat.answer

    def spying(request):
        if request.method == "POST":
            seen_at_create.update(store.ledger(COMPANY, ids("a", "b", "c")))
        return answer(request)

    codat.answer = spying
    pusher = pusher_for(codat, store)
    pusher.push(COMPANY, batch("a", "b", "c"))

    assert {state for state, _ in seen_at_create.values()} == {"sending"}
    assert len(seen_at_create) == 3
    assert codat.created() == [ids("a", "b", "c")]
    key = codat.posts("/expense-transactions")[0].headers["Idempotency-Key"]
    hashes = [m.payload_hash for _, m in batch("a", "b", "c")]
    assert key == idempotency_key(COMPANY, "create", hashes)
    (sync_id, run_id, retry_of, flow, platform, count) = syncs(store)[0]
    assert (run_id, retry_of, flow, platform, count) == (RUN, None, "direct", "Xero", 3)
    assert {row[0:3] for row in ledger(store).values()} == {("sent", "Pending", sync_id)}
    assert pusher.opened_syncs == [sync_id] and pusher.in_flight == {}


def test_an_id_already_sent_is_a_repeat_and_other_content_waits_for_its_sync(codat, store):
    """b's first push is not final yet: its change is held in the store, not pushed, not
    refused (updates.py sends it once that sync has ended)."""
    pusher = pusher_for(codat, store)
    pusher.push(COMPANY, batch("a", "b"))
    again = [(STREAM, mapped("a")), (STREAM, mapped("b", amount="99.00")), (STREAM, mapped("c"))]
    pusher.push(COMPANY, again)

    assert codat.created() == [ids("a", "b"), ids("c")]
    assert pusher.outcomes.snapshot() == Tally(repeated=1)
    assert store.held_ids() == {(COMPANY, ids("b")[0])}
    assert store.held_ready() == []  # b's sync has not ended


def test_a_repeat_within_one_batch_is_judged_against_the_first(codat, store):
    pusher = pusher_for(codat, store)
    twice = [(STREAM, mapped("a")), (STREAM, mapped("a")), (STREAM, mapped("a", "1.00"))]
    pusher.push(COMPANY, twice)
    assert codat.created() == [ids("a")]
    tally = pusher.outcomes.snapshot()
    assert (tally.repeated, tally.rejected) == (1, 0)
    assert store.held_ids() == {(COMPANY, ids("a")[0])}  # the change waits for the first push


def test_occurrences_judged_in_memory_are_judged_again_by_what_the_ledger_holds(codat, store):
    """The reading thread reserves and judges from memory; when the reserving batch's ledger
    read finds the id already sent (an earlier run's content), every occurrence is judged again,
    in the order it came, against the ledger's content: the last one delivered decides."""
    pusher = pusher_for(codat, store)
    pusher.push(COMPANY, batch("a"))  # an earlier run: "a" sent with 12.00, not yet final
    pusher.outcomes = Outcomes()
    reserved = pusher.reserve(COMPANY, [(STREAM, mapped("a", "99.00"))])  # other content
    assert pusher.reserve(COMPANY, [(STREAM, mapped("a", "99.00"))]) == []  # same as first
    assert pusher.reserve(COMPANY, batch("a", "a")) == []  # a change of the one in flight
    assert pusher.outcomes.snapshot() == Tally(repeated=1)  # so far
    assert store.held_ids() == {(COMPANY, ids("a")[0])}

    assert pusher.confirm(COMPANY, reserved) == []

    # 99.00 twice: changes of a push not yet final, held; then 12.00 twice: the ledger's own
    # content, the last delivered, so nothing is held any more
    assert pusher.outcomes.snapshot() == Tally(repeated=2)
    assert store.held_ids() == set()
    assert codat.created() == [ids("a")] and pusher.in_flight == {}


def test_a_change_judged_again_on_top_of_a_completed_version_is_pushed_once(codat, store):
    pusher = pusher_for(codat, store)
    pusher.push(COMPANY, batch("a"))  # an earlier run: "a" completed with 12.00
    store.mark_completed_by(COMPANY, {ids("a")[0]: ledger(store)[ids("a")[0]][2]})
    pusher.outcomes = Outcomes()
    reserved = pusher.reserve(COMPANY, [(STREAM, mapped("a", "99.00"))])
    pusher.reserve(COMPANY, [(STREAM, mapped("a", "99.00"))])  # the same again
    pusher.reserve(COMPANY, batch("a"))  # 12.00 once more, after 99.00

    keep = pusher.confirm(COMPANY, reserved)

    assert [m.payload_hash for _, m in keep] == [mapped("a", "99.00").payload_hash]  # an update
    assert pusher.outcomes.snapshot() == Tally(repeated=1)
    assert store.held_ids() == {(COMPANY, ids("a")[0])}  # 12.00 waits for the update to end


def test_a_change_pushed_now_drops_the_change_held_before_it(codat, store):
    """Found by the exactly-once property: 99.00 held behind a push, then 50.00 delivered once
    that push completed; 50.00 is the last content, so 99.00 must never be sent after it."""
    pusher = pusher_for(codat, store)
    pusher.push(COMPANY, batch("a"))  # 12.00 sent
    assert pusher.claim(COMPANY, [(STREAM, mapped("a", "99.00"))]) == []  # held behind it
    assert store.held_ids() == {(COMPANY, ids("a")[0])}
    store.mark_completed_by(COMPANY, {ids("a")[0]: ledger(store)[ids("a")[0]][2]})

    keep = pusher.claim(COMPANY, [(STREAM, mapped("a", "50.00"))])

    assert [m.payload_hash for _, m in keep] == [mapped("a", "50.00").payload_hash]
    assert store.held_ids() == set()


def test_a_failed_id_is_pushed_again_under_the_same_id(codat, store):
    pusher = pusher_for(codat, store)
    codat.refusals.append(validation((ids("a")[0], "lines: account missing")))
    pusher.push(COMPANY, batch("a"))
    assert ledger(store)[ids("a")[0]][0] == "failed"
    pusher.push(COMPANY, batch("a"))
    assert codat.created() == [ids("a"), ids("a")]
    assert ledger(store)[ids("a")[0]][0] == "sent"


# -- refusals -------------------------------------------------------------------------------------
def test_items_codat_refuses_are_rejects_and_the_rest_is_pushed(codat, store):
    pusher = pusher_for(codat, store)
    refused_id = ids("b")[0]
    codat.refusals.append(validation((refused_id, "amount: bad"), (refused_id, "date: bad")))
    pusher.push(COMPANY, batch("a", "b", "c"))

    assert codat.created() == [ids("a", "b", "c"), ids("a", "c")]
    rows = ledger(store)
    assert rows[refused_id][0:2] == ("failed", "Refused")
    assert rows[refused_id][3] == "amount: bad; date: bad"
    assert {rows[t][0] for t in ids("a", "c")} == {"sent"}
    assert pusher.outcomes.snapshot() == Tally(accepted=-1, rejected=1)
    (reject,) = pusher.outcomes.rejects
    assert (reject.record_key, reject.field) == ("b", "codat")
    assert reject.reason == "amount: bad; date: bad"


def test_processed_before_completes_only_what_codat_lists_completed(codat, store):
    pusher = pusher_for(codat, store)
    found, missing = ids("a")[0], ids("b")[0]
    codat.completed[found] = "earlier-sync"
    codat.refusals.append(processed_before(found, missing))
    pusher.push(COMPANY, batch("a", "b", "c"))

    assert codat.created() == [ids("a", "b", "c"), ids("c")]
    rows = ledger(store)
    assert rows[found][0:3] == ("completed", "Completed", "earlier-sync")
    assert rows[missing][0] == "failed" and rows[missing][3] == NOT_COMPLETED
    assert rows[ids("c")[0]][0] == "sent"
    assert pusher.outcomes.snapshot() == Tally()  # not a reject: Codat's word was checked


def test_a_processed_before_refusal_naming_no_id_of_the_push_fails_the_push(codat, store):
    pusher = pusher_for(codat, store)
    codat.refusals.append(processed_before("33333333-3333-4333-8333-333333333333"))
    with pytest.raises(AlreadyProcessed):
        pusher.push(COMPANY, batch("a"))
    assert ledger(store)[ids("a")[0]][0] == "sending"  # the next run reconciles it
    assert pusher.in_flight == {}


def test_a_refusal_of_the_whole_push_leaves_the_ids_sending_and_releases_the_claims(codat, store):
    pusher = pusher_for(codat, store)
    codat.refusals.append((403, {"error": "Forbidden"}))
    with pytest.raises(FatalAPIError):
        pusher.push(COMPANY, batch("a", "b"))
    assert {row[0] for row in ledger(store).values()} == {"sending"}
    assert pusher.in_flight == {} and pusher.opened_syncs == []


# -- claims across pushes in flight ---------------------------------------------------------------
@pytest.mark.parametrize("amount", ["12.00", "13.00"])
def test_an_id_in_flight_is_claimed_by_one_push_only(codat, store, amount):
    """While one push's create is on the wire, another push of the same id does not carry it:
    the same content is a repeat, other content is held for later; the rest of its batch goes
    on."""
    pusher = pusher_for(codat, store)
    release_first = threading.Event()
    codat.hold_next_create = release_first
    first = threading.Thread(target=pusher.push, args=(COMPANY, batch("a", "b")))
    first.start()
    try:
        assert codat.create_entered.wait(10)
        pusher.push(COMPANY, [(STREAM, mapped("a", amount)), (STREAM, mapped("c"))])
        assert codat.created() == [ids("a", "b"), ids("c")]
        assert ledger(store)[ids("a")[0]][0] == "sending"  # the first answer is not in yet
    finally:
        release_first.set()
        first.join(10)

    tally = pusher.outcomes.snapshot()
    assert (tally.repeated, tally.rejected) == ((1, 0) if amount == "12.00" else (0, 0))
    assert store.held_ids() == (set() if amount == "12.00" else {(COMPANY, ids("a")[0])})
    assert {row[0] for row in ledger(store).values()} == {"sent"}
    assert len(syncs(store)) == 2 and pusher.in_flight == {}


# -- datasets flow --------------------------------------------------------------------------------
def test_datasets_wait_for_sync_size_and_keep_their_claims_until_the_sync(codat, store):
    pusher = pusher_for(codat, store, flow="datasets", sync_size=4)
    pusher.push(COMPANY, batch("a", "b"))
    assert len(codat.posts("/data/expense-transactions")) == 1 and not codat.posts("/syncs")
    pusher.push(COMPANY, batch("a", "c"))  # `a` waits in a dataset: still claimed
    assert pusher.outcomes.snapshot().repeated == 1
    assert len(codat.posts("/syncs")) == 0 and len(pusher.pending_datasets[COMPANY]) == 2
    pusher.push(COMPANY, batch("d"))  # 4 transactions in datasets: one sync for all three
    assert len(codat.posts("/syncs")) == 1 and pusher.in_flight == {}

    (sync_id, run_id, _, flow, _, count) = syncs(store)[0]
    assert (run_id, flow, count) == (RUN, "datasets", 4)
    with reading(store.path) as db:
        linked = db.execute("SELECT count(*), min(sync_id), max(run_id) FROM datasets").fetchone()
    assert linked == (3, sync_id, RUN)
    assert {row[0:3] for row in ledger(store).values()} == {("sent", "Pending", sync_id)}


def test_a_checkpoint_initiates_every_dataset_still_waiting(codat, store):
    pusher = pusher_for(codat, store, flow="datasets", sync_size=500)
    pusher.push(COMPANY, batch("a"))
    pusher.initiate_pending_datasets()
    assert len(codat.posts("/syncs")) == 1 and pusher.pending_datasets == {}
    assert pusher.in_flight == {} and pusher.syncs_opened == 1


# -- retry: the same path, with a purpose of its own ----------------------------------------------
def ledger_items(store: StatusStore, *source_ids: str) -> list:
    """The items as retry builds them: the ledger's hash of the content it recorded."""
    recorded = store.ledger(COMPANY, ids(*source_ids))
    items = []
    for m in (mapped(s) for s in source_ids):
        digest = recorded[m.transaction_id][1]
        items.append(
            (STREAM, LedgerItem(m.transaction_id, m.source_key, m.body, digest, m.issue_date))
        )
    return items


def failed_in_the_ledger(codat, store, *source_ids: str) -> None:
    first = pusher_for(codat, store)
    codat.refusals.append(validation(*[(t, "bad") for t in ids(*source_ids)]))
    first.push(COMPANY, batch(*source_ids))
    assert {ledger(store)[t][0] for t in ids(*source_ids)} == {"failed"}


def test_a_retry_pushes_the_ledgers_content_as_a_retry_of_the_old_sync(codat, store):
    failed_in_the_ledger(codat, store, "a", "b")
    retry = pusher_for(codat, store, retry_of="old-sync")
    retry.push(COMPANY, ledger_items(store, "a", "b"))

    assert codat.created()[-1] == ids("a", "b")
    key = codat.posts("/expense-transactions")[-1].headers["Idempotency-Key"]
    hashes = [item.payload_hash for _, item in ledger_items(store, "a", "b")]
    assert key == idempotency_key(COMPANY, "retry:old-sync", hashes)
    (sync_id, run_id, retry_of, flow, _, count) = syncs(store)[-1]
    assert (run_id, retry_of, flow, count) == (None, "old-sync", "direct", 2)
    assert {row[0:3] for row in ledger(store).values()} == {("sent", "Pending", sync_id)}


def test_a_retry_codat_refuses_as_a_whole_is_failed_again_not_left_sending(codat, store):
    failed_in_the_ledger(codat, store, "a")
    retry = pusher_for(codat, store, retry_of="old-sync")
    codat.refusals.append((404, {"error": "Company not found"}))
    with pytest.raises(FatalAPIError):
        retry.push(COMPANY, ledger_items(store, "a"))
    state, codat_status, _, message = ledger(store)[ids("a")[0]]
    assert (state, codat_status) == ("failed", "Refused") and message == "Company not found"


def test_a_retry_never_pushes_an_id_completed_meanwhile(codat, store):
    failed_in_the_ledger(codat, store, "a")
    items = ledger_items(store, "a")
    store.mark_completed_by(COMPANY, {ids("a")[0]: "later-sync"})
    retry = pusher_for(codat, store, retry_of="old-sync")
    creates = len(codat.created())
    retry.push(COMPANY, items)
    assert len(codat.created()) == creates and retry.outcomes.snapshot().repeated == 1
