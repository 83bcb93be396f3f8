"""Each expense recorded once, whatever happens: the real `destination-codat-expenses write`
process against the sandbox over loopback, (1) with the sandbox failing requests at random and
(2) with the writer SIGKILLed at each named crash point and at random ones, then run again on
the same input. The sandbox's ground truth (what the books hold) is the judge: no expense
missing, none written twice, and the DuckDB store agreeing with it."""

from __future__ import annotations

import os
import random
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from codat_sandbox.app import SandboxSettings, create_app
from codat_sandbox.server import ServerThread
from destination_codat_expenses.crashpoints import ENV, POINTS
from integration_tests.destination_support import (
    API_KEY,
    DYNAMICS,
    FREEAGENT,
    NETSUITE,
    QBD,
    QBO,
    XERO,
    admin,
    books,
    catalog,
    flat,
    messages_of,
    query,
    record,
    routed,
    run_write,
    sandbox_process,
    states_of,
    store_reader,
    stream_state,
    txn_id,
    write_files,
)
from testing.postgres import new_database

S = "card_spend"
# a guard against hangs, not a speed check: the first test of each group waits for all its
# cases, which run in parallel (and share two cores with whatever else the machine runs)
HANG_GUARD_S = 1800


def input_lines(prefix: str, count: int, companies: list[str], every: int) -> list[dict]:
    lines = []
    for i in range(count):
        lines.append(record(S, flat(f"{prefix}-{i}", companies[i % len(companies)])))
        if (i + 1) % every == 0:
            lines.append(stream_state(S, (i + 1) // every))
    return lines


def expected_books(lines: list[dict]) -> dict[str, str]:
    """transaction id -> company, for every record of the input."""
    return {
        txn_id(S, line["record"]["data"]["id"]): line["record"]["data"]["company"]
        for line in lines
        if line["type"] == "RECORD"
    }


def assert_each_expense_once(base_url: str, expected: dict[str, str]) -> dict[str, dict]:
    written = books(base_url)
    missing = set(expected) - set(written)
    assert not missing, f"{len(missing)} expenses lost, e.g. {sorted(missing)[:3]}"
    assert set(written) == set(expected), "the books hold expenses nobody sent"
    twice = [t for t, e in written.items() if e["writes"] != 1]
    assert not twice, f"{len(twice)} expenses written more than once, e.g. {twice[:3]}"
    wrong = [t for t, e in written.items() if e["company_id"] != expected[t]]
    assert not wrong, f"{len(wrong)} expenses in the wrong company's books"
    return written


def assert_store_agrees(store, written: dict[str, dict]) -> None:
    """Every expense completed in the ledger, and its push item names the record the books
    hold, from the sync that wrote it."""
    rows = query(
        store,
        "SELECT t.company_id, t.transaction_id, t.state, p.record_id, p.sync_id "
        "FROM transactions t LEFT JOIN push_items p ON p.transaction_id = t.transaction_id "
        "AND p.company_id = t.company_id AND p.status = 'Completed'",
    )
    seen = {}
    for company_id, transaction_id, state, record_id, sync_id in rows:
        assert transaction_id not in seen, f"{transaction_id}: two completed push items"
        seen[transaction_id] = (company_id, state, record_id, sync_id)
    truth = {
        t: (e["company_id"], "completed", e["record_id"], e["sync_id"]) for t, e in written.items()
    }
    assert set(seen) == set(truth), "the store and the books hold different expenses"
    disagree = [t for t in truth if seen[t] != truth[t]]
    assert not disagree, (
        f"{len(disagree)} disagree, e.g. store {seen[disagree[0]]} vs books {truth[disagree[0]]}"
    )


def in_parallel(request, test_name: str, run_case, workers: int, tmp) -> dict:
    """Run the cases of `test_name` that this session selected, `workers` at a time; returns
    {case params: None, or the error it raised}, for the test of each case to report."""
    cases = [
        tuple(item.callspec.params.values())
        for item in request.session.items
        if getattr(item, "originalname", None) == test_name
    ]
    with ThreadPoolExecutor(workers) as pool:
        futures = {case: pool.submit(run_case, *case, tmp.mktemp("case")) for case in cases}
    return {case: future.exception() for case, future in futures.items()}


def raise_if_failed(error: BaseException | None) -> None:
    if error is not None:
        raise error


# -- faults -----------------------------------------------------------------------------------
FAULTS = {
    "rate_429": 0.1,
    "rate_500": 0.05,
    "rate_503": 0.05,
    "rate_reset": 0.05,
    "rate_lost_response": 0.05,
    "retry_after_s": 0,
}
FAULT_SEEDS = [11, 22, 33, 44, 55]
FAULT_RECORDS = 10_000
FAULT_STATE_EVERY = 1_000
FAULT_COMPANIES = [XERO, QBO, NETSUITE, DYNAMICS, FREEAGENT, QBD]


def run_fault_case(seed: int, tmp) -> None:
    lines = input_lines(f"f{seed}", FAULT_RECORDS, FAULT_COMPANIES, FAULT_STATE_EVERY)
    store = tmp / "status.duckdb"
    with sandbox_process(tmp / "sandbox.log", API_KEY, {**FAULTS, "seed": seed}) as base_url:
        paths = write_files(tmp / "run", routed(base_url, store), catalog(S), lines)
        done = run_write(paths)
        assert done.returncode == 0, done.stdout.decode()[-3000:] + done.stderr.decode()[-3000:]
        states = states_of(messages_of(done.stdout))
        count = FAULT_RECORDS // FAULT_STATE_EVERY
        assert [s["id"] for s in states] == list(range(1, count + 1))
        assert {s["destinationStats"]["recordCount"] for s in states} == {FAULT_STATE_EVERY}

        written = assert_each_expense_once(base_url, expected_books(lines))
        assert_store_agrees(store, written)
        injected = admin(base_url, "GET", "/_sandbox/faults")["injected"]
    kinds = ("rate_429", "rate_500", "rate_503", "rate_reset", "rate_lost_response")
    assert all(injected.get(kind, 0) > 0 for kind in kinds), injected  # every fault happened


@pytest.fixture(scope="module")
def fault_outcomes(request, tmp_path_factory):
    """Every selected seed at once, each with its own sandbox process: a run spends most of
    its time in retry back-off, so they overlap well even on two cores."""
    return in_parallel(
        request,
        "test_faults_lose_nothing_and_write_nothing_twice",
        run_fault_case,
        workers=len(FAULT_SEEDS),
        tmp=tmp_path_factory,
    )


@pytest.mark.slow
@pytest.mark.timeout(HANG_GUARD_S)
@pytest.mark.parametrize("seed", FAULT_SEEDS)
def test_faults_lose_nothing_and_write_nothing_twice(seed, fault_outcomes):
    raise_if_failed(fault_outcomes[(seed,)])


# -- crashes ----------------------------------------------------------------------------------
CRASH_RECORDS, CRASH_STATE_EVERY = 300, 100
CRASH_COMPANIES = [XERO, QBO, DYNAMICS]
MAX_HIT = {"before_push": 9, "after_send": 9, "after_response": 9, "after_commit": 3}
CRASH_WORKERS = 3


def crash_cases() -> list[tuple[str, str, str, int]]:
    """(store, flow, point, nth hit): each named point in both flows, then random ones (seeded),
    on DuckDB; each named point in the direct flow on PostgreSQL too."""
    cases = [("duckdb", flow, point, 2) for point in POINTS for flow in ("direct", "datasets")]
    rng = random.Random(20260101)
    while len(cases) < 12:
        point = rng.choice(POINTS)
        flow = rng.choice(("direct", "datasets"))
        case = ("duckdb", flow, point, rng.randint(1, MAX_HIT[point]))
        if case not in cases:
            cases.append(case)
    return cases + [("postgres", "direct", point, 2) for point in POINTS]


def run_crash_case(store, flow: str, point: str, nth: int, tmp) -> None:
    """Kill the writer at `point:nth`, check the store, run the same input again."""
    lines = input_lines(
        f"k-{flow}-{point}-{nth}", CRASH_RECORDS, CRASH_COMPANIES, CRASH_STATE_EVERY
    )
    with ServerThread(create_app(SandboxSettings(api_key=API_KEY))) as base_url:
        config = routed(base_url, store, push_flow=flow, batch_size=25, sync_size=50)
        paths = write_files(tmp / "run", config, catalog(S), lines)

        killed = run_write(paths, env={**os.environ, ENV: f"{point}:{nth}"})
        assert killed.returncode == -9, killed.stderr.decode()[-3000:]
        echoed = states_of(messages_of(killed.stdout))
        assert_store_opens_and_covers(store, echoed, lines)

        rerun = run_write(paths, env={k: v for k, v in os.environ.items() if k != ENV})
        assert rerun.returncode == 0, rerun.stdout.decode()[-3000:] + rerun.stderr.decode()[-3000:]
        states = states_of(messages_of(rerun.stdout))
        assert [s["id"] for s in states] == [1, 2, 3]
        assert [s["destinationStats"]["recordCount"] for s in states] == [100, 100, 100]

        written = assert_each_expense_once(base_url, expected_books(lines))
        assert_store_agrees(store, written)
    outcomes = query(store, "SELECT outcome FROM runs ORDER BY started_at")
    assert outcomes == [("running",), ("succeeded",)]  # the killed run never got to say


@pytest.fixture(scope="module")
def crash_outcomes(request, tmp_path_factory):
    admin_url = request.getfixturevalue("postgres_url")  # resolved here, not on the pool's threads

    def run_case(store_kind: str, flow: str, point: str, nth: int, tmp) -> None:
        if store_kind == "postgres":
            store = new_database(admin_url, f"crash_{uuid.uuid4().hex[:12]}")
        else:
            store = tmp / "status.duckdb"
        run_crash_case(store, flow, point, nth, tmp)

    return in_parallel(
        request,
        "test_killed_writer_rerun_loses_nothing_and_writes_nothing_twice",
        run_case,
        workers=CRASH_WORKERS,
        tmp=tmp_path_factory,
    )


@pytest.mark.slow
@pytest.mark.timeout(HANG_GUARD_S)
@pytest.mark.parametrize(("store_kind", "flow", "point", "nth"), crash_cases())
def test_killed_writer_rerun_loses_nothing_and_writes_nothing_twice(
    store_kind, flow, point, nth, crash_outcomes
):
    raise_if_failed(crash_outcomes[(store_kind, flow, point, nth)])


def assert_store_opens_and_covers(store, echoed: list[dict], lines: list[dict]) -> None:
    """After SIGKILL the store opens, and every record before an echoed STATE is committed as
    accepted by Codat (sent or completed, never still in flight)."""
    with store_reader(store) as db:
        states = dict(db.execute("SELECT transaction_id, state FROM transactions").fetchall())
    covered, pending = [], []
    for line in lines:
        if line["type"] == "RECORD":
            pending.append(txn_id(S, line["record"]["data"]["id"]))
        elif line["state"]["id"] <= len(echoed):
            assert echoed[line["state"]["id"] - 1]["id"] == line["state"]["id"]
            covered, pending = covered + pending, []
    in_flight = [t for t in covered if states.get(t) not in ("sent", "completed")]
    assert not in_flight, f"a STATE was echoed before {len(in_flight)} of its records committed"


def test_crash_cases_cover_every_named_point():
    for store_kind in ("duckdb", "postgres"):
        cases = [c for c in crash_cases() if c[0] == store_kind]
        assert {point for _, _, point, _ in cases} == set(POINTS)
