"""A fleet on one PostgreSQL status store: four destination processes started together on one
sandbox (faults on), each with an overlapping share of the same records, two of them SIGKILLed
mid-run (at a crash point) and run again, while the webhook receiver takes events for the
syncs they open and the report's dashboard query reads the store. The sandbox's books are the
judge: every valid expense exactly once, none lost; then the store agrees with them.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.codat.http import http_client
from destination_codat_expenses.crashpoints import ENV
from integration_tests.destination_support import (
    API_KEY,
    DYNAMICS,
    QBO,
    XERO,
    catalog,
    messages_of,
    routed,
    run_write,
    sandbox_process,
    states_of,
    write_files,
)
from integration_tests.test_destination_reliability import (
    S,
    assert_each_expense_once,
    assert_store_agrees,
    expected_books,
    input_lines,
)
from integration_tests.webhook_support import SECRET, post, running_receiver, signed, sync_event
from report_app import queries as report_queries
from testing.postgres import new_database

FAULTS = {"rate_429": 0.05, "rate_500": 0.05, "rate_lost_response": 0.05, "retry_after_s": 0}
COMPANIES = [XERO, QBO, DYNAMICS]
# (crash point or None) per process: two are killed mid-run, then run again without it
FLEET = ["before_push:2", "after_response:2", None, None]
OFFSET = 5  # records between one process's first record and the next one's


def pushes_per_id(base_url: str) -> Counter:
    """How many of Codat's syncs carried each transaction id (every push that reached it)."""
    carried: Counter = Counter()
    with http_client(base_url) as http:
        client = CodatClient(http, API_KEY)
        for company_id in COMPANIES:
            for status in client.list_sync_statuses(company_id):
                for item in client.iter_sync_transactions(company_id, status["syncId"]):
                    carried[item["transactionId"]] += 1
    return carried


def shares(lines: list[dict], processes: int, size: int) -> list[list[dict]]:
    """Each process's records: a window of `size` records starting a few records after the
    previous process's (so the same ids reach Codat from several processes at the same time),
    with a STATE after every 20 of its records."""
    records = [line for line in lines if line["type"] == "RECORD"]
    step = OFFSET
    out = []
    for n in range(processes):
        window = [records[(n * step + i) % len(records)] for i in range(size)]
        share = []
        for i, record in enumerate(window, 1):
            share.append(record)
            if i % 20 == 0:
                share.append(state_line(i // 20))
        out.append(share)
    return out


def own_records(member: int) -> list[dict]:
    """Two pushes' worth (batch_size 10) of records no other member has."""
    lines = input_lines(f"fleet-own-{member}", 20, COMPANIES, 20)
    return [line for line in lines if line["type"] == "RECORD"]


def state_line(n: int) -> dict:
    return {
        "type": "STATE",
        "state": {
            "type": "STREAM",
            "stream": {"stream_descriptor": {"name": S}, "stream_state": {"n": n}},
        },
    }


class Onlookers:
    """The receiver told of every sync it sees, and the report's dashboard read, in a loop."""

    def __init__(self, store: str, receiver_url: str) -> None:
        self.store, self.receiver_url = store, receiver_url
        self.stop = threading.Event()
        self.reads = self.events = 0
        self.errors: list[str] = []
        self.told: set[str] = set()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        while not self.stop.wait(0.3):
            try:
                report_queries.fetch_dashboard(self.store, report_queries.SyncFilter())
                self.reads += 1
                self.tell_receiver()
            except Exception as error:  # noqa: BLE001 - judged after the run
                self.errors.append(f"{type(error).__name__}: {error}")

    def tell_receiver(self) -> None:
        rows = report_queries.fetch_history(
            self.store, report_queries.SyncFilter(), "sync_id", False
        )
        for sync_id, company_id in zip(rows["sync_id"], rows["company_id"], strict=True):
            if sync_id in self.told:
                continue
            body = sync_event(True, sync_id, company_id=company_id)
            answer = post(self.receiver_url, body, signed(body))
            assert answer.status_code in (200, 202), answer.text
            self.told.add(sync_id)
            self.events += 1


def run_member(paths: dict, crash: str | None) -> list:
    """One process of the fleet; a killed one is run again (no crash point). Its exits."""
    exits = []
    if crash is not None:
        killed = run_write(paths, env={**os.environ, ENV: crash})
        exits.append(killed.returncode)
    again = run_write(paths, env={k: v for k, v in os.environ.items() if k != ENV})
    assert again.returncode == 0, again.stdout.decode()[-3000:] + again.stderr.decode()[-3000:]
    exits.append(again.returncode)
    states = states_of(messages_of(again.stdout))
    assert states, "the run echoed no STATE"
    return exits


def run_fleet(tmp_path, admin_url: str, records: int, size: int) -> None:
    store = new_database(admin_url, f"fleet_{uuid.uuid4().hex[:10]}")
    lines = input_lines("fleet", records, COMPANIES, records)
    with sandbox_process(tmp_path / "sandbox.log", API_KEY, {**FAULTS, "seed": 5}) as base_url:
        with running_receiver(
            store, SECRET, spool_dir=str(tmp_path / "spool"), codat_url=base_url, api_key=API_KEY
        ) as receiver_url:
            onlookers = Onlookers(store, receiver_url)
            members = []
            inputs = shares(lines, len(FLEET), size)
            for n, crash in enumerate(FLEET):
                if crash is not None:  # records only it has: it reaches its crash point, however
                    inputs[n] = own_records(n) + inputs[n]  # many shared ids the others claim
            for n, share in enumerate(inputs):
                config = routed(base_url, "unused", batch_size=10, sync_wait_timeout_seconds=60)
                config["status_store"] = store
                del config["status_store_path"]
                members.append(write_files(tmp_path / f"p{n}", config, catalog(S), share))
            onlookers.thread.start()
            with ThreadPoolExecutor(len(FLEET)) as pool:
                exits = list(pool.map(run_member, members, FLEET))
            onlookers.stop.set()
            onlookers.thread.join(timeout=30)
        written = assert_each_expense_once(base_url, expected_books(sum(inputs, [])))
        twice = {tid: n for tid, n in pushes_per_id(base_url).items() if n != 1}
        assert not twice, f"{len(twice)} ids pushed more than once, e.g. {list(twice.items())[:3]}"
        assert_store_agrees(store, written)
    assert [e[0] for e in exits[:2]] == [-9, -9], exits  # the two were killed mid-run
    assert not onlookers.errors, onlookers.errors[:3]
    assert onlookers.reads > 0 and onlookers.events > 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_fleet_on_one_postgres_store_writes_each_expense_once(tmp_path, postgres_url):
    run_fleet(tmp_path, postgres_url, records=150, size=120)


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_a_bigger_fleet_on_one_postgres_store_writes_each_expense_once(tmp_path, postgres_url):
    run_fleet(tmp_path, postgres_url, records=2000, size=1000)
