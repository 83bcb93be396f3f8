"""The benchmarks' figures rest on these helpers: a wrong percentile or ratio would misreport
every run (the benchmarks themselves are not run by `make test`)."""

from __future__ import annotations

import json
import math

import pytest

from benchmarks.measure import percentile, ratio, verdict
from benchmarks.peer_records import chunks, item
from benchmarks.peer_sdk_loop import round_robin


def test_percentile_interpolates_between_closest_ranks():
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert percentile(list(range(1, 21)), 95) == pytest.approx(19.05)  # numpy's default
    assert percentile([3, 1, 2], 0) == 1 and percentile([3, 1, 2], 100) == 3


def test_percentile_refuses_what_it_cannot_answer():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_ratio_is_ours_over_theirs_and_nan_without_a_peer():
    assert ratio(900, 1000) == 0.9
    assert math.isnan(ratio(900, 0))
    assert math.isnan(ratio(math.nan, 1000))


def test_verdict_reads_the_target_in_the_right_direction():
    assert verdict(0.9, 0.9) == "meets" and verdict(0.89, 0.9) == "misses"
    assert verdict(1.4, 1.5, higher_is_better=False) == "meets"
    assert verdict(1.6, 1.5, higher_is_better=False) == "misses"
    assert verdict(math.nan, 1.0) == "not measured"


def test_peers_send_every_record_once_in_50_item_creates():
    assert [len(c) for c in chunks(list(range(120)))] == [50, 50, 20]
    work = {"a": [["a1"], ["a2"], ["a3"]], "b": [["b1"]]}
    assert round_robin(work) == [("a", ["a1"]), ("b", ["b1"]), ("a", ["a2"]), ("a", ["a3"])]


def test_peers_keep_money_decimal_and_net_of_tax():
    data = {"id": "x", "date": "2024-05-02", "amount": "12.30", "tax_amount": "2.05"}
    data |= {"currency": "GBP", "merchant": "M", "account_id": "402", "tax_rate_id": "STD"}
    line = item(data)["lines"][0]
    assert str(line["netAmount"]) == "10.25" and str(line["taxAmount"]) == "2.05"


def test_fleet_shares_give_every_process_every_company(tmp_path):
    """Records cycle through the companies; a round-robin deal to 4 processes gave each process
    one company, so per-company limits serialised the fleet and the benchmark measured that."""
    from benchmarks.destination_throughput import COMPANIES, write_input
    from benchmarks.fleet_postgres import split_input

    write_input(tmp_path / "messages.jsonl", 400, 400)
    shares = split_input(tmp_path, 4)
    records = []
    for share in shares:
        lines = [json.loads(line) for line in share.read_text().splitlines()]
        assert lines[-1]["type"] == "STATE"
        data = [line["record"]["data"] for line in lines if line["type"] == "RECORD"]
        assert {d["company"] for d in data} == set(COMPANIES)
        records += [d["id"] for d in data]
    assert len(records) == len(set(records)) == 400
