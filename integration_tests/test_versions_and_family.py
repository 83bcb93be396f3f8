"""Changed records become updates, and the rest of the family flows end to end: the destination in
process, the sandbox over loopback, a real DuckDB file. The books (ground truth) are judged first,
then the store (ledger, versions, rejects)."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from destination_codat_expenses.store.db import release
from integration_tests.destination_support import (
    DYNAMICS,
    QBD,
    QBO,
    XERO,
    bill,
    books,
    catalog,
    flat,
    query,
    record,
    settings,
    stream_state,
    sync_statuses,
    transfer,
    txn_id,
    write_in_process,
)
from report_app import ui

CLI = Path(sys.executable).with_name("codat-expenses")
REPORT_APP = Path(__file__).resolve().parents[1] / "report_app" / "app.py"

CARDS = "card_spend"


def write(base_url, store, stream: str, rows: list[dict], company: str = XERO, **extra):
    config = settings(base_url, store, company_id=company, max_rejected_share=1, **extra)
    lines = [record(stream, row) for row in rows] + [stream_state(stream, 1)]
    return write_in_process(config, catalog(stream), lines)


def versions(store, transaction_id: str) -> list[tuple]:
    return query(
        store,
        "SELECT version, kind, state, codat_status, CAST(total_amount AS VARCHAR) "
        "FROM v_transaction_versions WHERE transaction_id = ? ORDER BY version",
        [transaction_id],
    )


def rejects(store) -> list[tuple]:
    return query(store, "SELECT record_key, field, reason FROM rejects ORDER BY rejected_at")


def no_held(store) -> bool:
    return query(store, "SELECT count(*) FROM transaction_versions WHERE state = 'held'") == [(0,)]


# -- expenses -------------------------------------------------------------------------------------
def test_a_changed_expense_is_one_update_and_repeats_do_nothing(sandbox_url, tmp_path):
    store = tmp_path / "status.duckdb"
    tid = txn_id(CARDS, "e1")
    write(sandbox_url, store, CARDS, [flat("e1")])
    syncs_before = len(sync_statuses(sandbox_url, XERO))

    write(sandbox_url, store, CARDS, [flat("e1", amount="20.00"), flat("e1", amount="20.00")])

    entry = books(sandbox_url)[tid]
    assert (entry["kind"], entry["version"], entry["writes"]) == ("expense", 2, 1)
    assert Decimal(entry["total"]) == Decimal("20.00")
    assert len([e for e in books(sandbox_url).values() if e["company_id"] == XERO]) == 1
    assert len(sync_statuses(sandbox_url, XERO)) == syncs_before + 1  # one PUT, no create
    assert versions(store, tid) == [
        (1, "expense", "completed", "Completed", "12.000000000"),
        (2, "expense", "completed", "Completed", "20.000000000"),
    ]

    write(sandbox_url, store, CARDS, [flat("e1", amount="20.00")])  # the same content again
    assert books(sandbox_url)[tid]["version"] == 2
    assert len(sync_statuses(sandbox_url, XERO)) == syncs_before + 1
    assert len(versions(store, tid)) == 2

    # the operator sees the same history from the command line
    release(str(store))
    shown = subprocess.run(
        [str(CLI), "transactions", "history", "--store", str(store), "--id", tid.upper()],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    lines = [line.split() for line in shown.stdout.splitlines()[2:]]
    assert [(line[1], line[3], line[6], line[7]) for line in lines] == [
        ("1", "completed", "GBP", "12.000000000"),
        ("2", "completed", "GBP", "20.000000000"),
    ]


def test_a_change_while_the_first_push_is_open_is_held_then_sent(sandbox_url, tmp_path):
    """Created and changed twice in one run: the last content is sent as version 2 once the
    create's sync has ended; the middle one is never sent."""
    store = tmp_path / "status.duckdb"
    tid = txn_id(CARDS, "e2")
    rows = [flat("e2"), flat("e2", amount="15.00"), flat("e2", amount="16.00")]

    write(sandbox_url, store, CARDS, rows, batch_size=1)

    entry = books(sandbox_url)[tid]
    assert (entry["version"], Decimal(entry["total"])) == (2, Decimal("16.00"))
    assert [Decimal(v["total"]) for v in entry["versions"]] == [Decimal("12.0"), Decimal("16.0")]
    assert [v[:3] for v in versions(store, tid)] == [
        (1, "expense", "completed"),
        (2, "expense", "completed"),
    ]
    assert no_held(store) and rejects(store) == []


@pytest.mark.parametrize(
    ("company", "row", "changed", "reason"),
    [
        (DYNAMICS, {}, {"amount": "30.00"}, "Expense transaction updates are not supported"),
        (XERO, {"type": "refund"}, {"amount": "30.00"}, "for Payment only"),
    ],
    ids=["platform without updates", "not a Payment"],
)
def test_an_update_codat_refuses_is_recorded_with_codats_reason(
    sandbox_url, tmp_path, company, row, changed, reason
):
    store = tmp_path / "status.duckdb"
    tid = txn_id(CARDS, "r1")
    write(sandbox_url, store, CARDS, [flat("r1", company, **row)], company=company)
    first_total = books(sandbox_url)[tid]["total"]

    write(sandbox_url, store, CARDS, [flat("r1", company, **row, **changed)], company=company)

    entry = books(sandbox_url)[tid]
    assert (entry["version"], entry["total"]) == (1, first_total)
    (v1, v2) = versions(store, tid)
    assert v1[:3] == (1, "expense", "completed")
    assert v2[:4] == (2, "expense", "failed", "Refused")
    (message,) = query(store, "SELECT message FROM transactions WHERE transaction_id = ?", [tid])[0]
    assert reason in message
    assert [(k, f) for k, f, _ in rejects(store)] == [("r1", "codat")]
    assert reason in rejects(store)[0][2]


# -- the rest of the family ---------------------------------------------------------------------
def journal(key: str, amount: str = "50.00", account: str = "401") -> dict:
    return {
        "id": key,
        "date": "2024-05-03",
        "currency": "USD",
        "lines": [
            {"amount": amount, "accountRef": {"id": account}},
            {"amount": f"-{amount}", "accountRef": {"id": "800"}},
        ],
    }


@pytest.mark.parametrize(
    ("stream", "company", "kind", "first", "changed", "total"),
    [
        ("transfers", QBO, "transfer", transfer("t1"), transfer("t1", "250.00"), "250.00"),
        (
            "reimbursable_expense_transactions",
            QBO,
            "reimbursable",
            bill("b1"),
            bill("b1", "45.00"),
            "45.00",
        ),
    ],
    ids=["transfers", "reimbursable expenses"],
)
def test_each_updatable_stream_creates_then_updates_one_entry(
    sandbox_url, tmp_path, monkeypatch, stream, company, kind, first, changed, total
):
    store = tmp_path / "status.duckdb"
    tid = txn_id(stream, first["id"])
    write(sandbox_url, store, stream, [first], company=company)
    write(sandbox_url, store, stream, [changed, changed], company=company)

    entry = books(sandbox_url)[tid]
    assert (entry["kind"], entry["version"], entry["writes"]) == (kind, 2, 1)
    assert Decimal(entry["total"]) == Decimal(total)
    assert [v[:4] for v in versions(store, tid)] == [
        (1, kind, "completed", "Completed"),
        (2, kind, "completed", "Completed"),
    ]
    assert Decimal(versions(store, tid)[-1][4]) == Decimal(total)
    release(str(store))
    page = expense_page(store, tid, monkeypatch)  # what the report's expense page shows
    [grid] = [d.value for d in page.dataframe if "version" in d.value.columns]
    assert grid["version"].tolist() == [1, 2] and grid["kind"].tolist() == [kind, kind]
    assert [Decimal(a) for a in grid["total_amount"]][-1] == Decimal(total)


def expense_page(store, transaction_id: str, monkeypatch) -> AppTest:
    monkeypatch.setenv(ui.STORE_ENV, str(store))
    page = AppTest.from_file(str(REPORT_APP), default_timeout=60)
    page.query_params["transaction"] = transaction_id
    page.run()
    assert not page.exception, [e.message for e in page.exception]
    return page


def test_an_adjustment_is_created_and_a_change_is_refused_here(sandbox_url, tmp_path):
    store = tmp_path / "status.duckdb"
    tid = txn_id("adjustments", "j1")
    write(sandbox_url, store, "adjustments", [journal("j1")], company=QBD)

    write(sandbox_url, store, "adjustments", [journal("j1", "70.00")], company=QBD)

    entry = books(sandbox_url)[tid]
    assert (entry["kind"], entry["version"], Decimal(entry["total"])) == (
        "adjustment",
        1,
        Decimal("50"),
    )
    assert [v[:3] for v in versions(store, tid)] == [(1, "adjustment", "completed")]
    ((key, field, reason),) = rejects(store)
    assert (key, field) == ("j1", "id") and "reversing adjustment" in reason


@pytest.mark.parametrize(
    ("stream", "company", "row", "message"),
    [
        ("transfers", QBO, transfer("t9", source="401"), "cannot take transfers"),
        (
            "reimbursable_expense_transactions",
            QBO,
            bill("b9", supplier="NOPE"),
            "was not found as a supplier",
        ),
        ("adjustments", QBD, journal("j9", account="nope"), "was not found"),
    ],
    ids=["transfers", "reimbursable expenses", "adjustments"],
)
def test_each_stream_records_codats_failure(sandbox_url, tmp_path, stream, company, row, message):
    store = tmp_path / "status.duckdb"
    tid = txn_id(stream, row["id"])
    write(sandbox_url, store, stream, [row], company=company)

    assert tid not in books(sandbox_url)
    (state, status, text, sync_id) = query(
        store,
        "SELECT state, codat_status, message, last_sync_id FROM v_transactions "
        "WHERE transaction_id = ?",
        [tid],
    )[0]
    assert (state, status) == ("failed", "ValidationError") and message in text
    (code,) = query(store, "SELECT status_code FROM v_syncs WHERE sync_id = ?", [sync_id])[0]
    assert code == 5120


def test_a_transfer_where_the_platform_has_none_is_refused_with_codats_reason(
    sandbox_url, tmp_path
):
    store = tmp_path / "status.duckdb"
    tid = txn_id("transfers", "t0")
    write(sandbox_url, store, "transfers", [transfer("t0")], company=DYNAMICS)

    assert tid not in books(sandbox_url)
    (state, status, text) = query(
        store,
        "SELECT state, codat_status, message FROM v_transactions WHERE transaction_id = ?",
        [tid],
    )[0]
    assert (state, status) == ("failed", "Refused") and "not supported" in text
