"""What a write does, end to end: `DestinationCodatExpenses().write(...)` in this process, the
sandbox served over loopback (a real HTTP server on a free port), the status store a real DuckDB
file. Each test reads both sides afterwards: the store, and the sandbox's ground truth (what the
companies' books hold)."""

from __future__ import annotations

import base64
import os
import re

import httpx
import pytest
from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from codat_sandbox.app import SandboxSettings, create_app
from codat_sandbox.server import ServerThread
from integration_tests.destination_support import (
    API_KEY,
    DYNAMICS,
    FREEAGENT,
    INTACCT_NO_CONFIG,
    NETSUITE,
    QBD,
    QBO,
    XERO,
    ZOHO_DEAUTHORIZED,
    books,
    catalog,
    flat,
    iter_write,
    ledger,
    patch_company,
    query,
    record,
    routed,
    settings,
    stream_state,
    sync_statuses,
    txn_id,
    write_in_process,
)
from testing.sandbox import auth_header

S = "card_spend"
CATALOG = catalog(S)
HEALTHY = [XERO, QBO, NETSUITE, DYNAMICS, FREEAGENT, QBD]


def with_states(records: list[dict], every: int) -> list[dict]:
    """RECORD lines with a STREAM state after every `every` records (and at the end)."""
    lines, number = [], 0
    for position, data in enumerate(records, start=1):
        lines.append(record(S, data))
        if position % every == 0 or position == len(records):
            number += 1
            lines.append(stream_state(S, number))
    return lines


def echoed_ids(states: list[dict]) -> list[int]:
    return [state["state"]["id"] for state in states]


def keyed(store, table: str, key: str, columns: list[str]) -> dict[str, dict]:
    """{key: {column: value}} for every row of a store table."""
    rows = query(store, f"SELECT {key}, {', '.join(columns)} FROM {table}")
    return {row[0]: dict(zip(columns, row[1:], strict=True)) for row in rows}


SYNC_COLUMNS = [
    "company_id",
    "flow",
    "status_code",
    "status_text",
    "error_message",
    "data_pushed",
    "item_count",
    "failed_count",
    "target_platform",
]
ITEM_COLUMNS = ["sync_id", "data_type", "record_id", "status", "message"]


def store_syncs(store) -> dict[str, dict]:
    return keyed(store, "syncs", "sync_id", SYNC_COLUMNS)


def push_items(store) -> dict[str, dict]:
    return keyed(store, "push_items", "transaction_id", ITEM_COLUMNS)


# -- both push flows ---------------------------------------------------------------------------
@pytest.mark.parametrize("flow", ["direct", "datasets"])
def test_push_flow_end_to_end(flow, sandbox_url, tmp_path):
    companies = [XERO, QBO, DYNAMICS]
    records = [
        flat(f"{flow}-{i}", companies[i % 3], date=f"2024-05-{1 + i % 28:02d}") for i in range(90)
    ]
    store = tmp_path / "status.duckdb"
    config = routed(sandbox_url, store, push_flow=flow, batch_size=10, sync_size=20)

    states = write_in_process(config, CATALOG, with_states(records, every=45))

    assert echoed_ids(states) == [1, 2]
    assert [s["state"]["destinationStats"]["recordCount"] for s in states] == [45, 45]
    expected = {txn_id(S, r["id"]): r["company"] for r in records}
    assert {t: row[:2] for t, row in ledger(store).items()} == {
        t: (c, "completed") for t, c in expected.items()
    }
    written = books(sandbox_url)
    assert {t: e["company_id"] for t, e in written.items()} == expected
    assert all(e["writes"] == 1 for e in written.values())

    syncs = store_syncs(store)
    assert {s["flow"] for s in syncs.values()} == {flow}
    assert all(s["status_code"] == 2000 and s["failed_count"] == 0 for s in syncs.values())
    assert sum(s["item_count"] for s in syncs.values()) == 90
    items = push_items(store)
    assert {t: i["record_id"] for t, i in items.items()} == {
        t: e["record_id"] for t, e in written.items()
    }
    datasets = query(store, "SELECT company_id, item_count, sync_id FROM datasets")
    if flow == "direct":
        assert datasets == []
        assert all(s["item_count"] <= 10 for s in syncs.values())
    else:
        assert sum(d[1] for d in datasets) == 90 and all(d[1] <= 10 for d in datasets)
        assert {d[2] for d in datasets} == set(syncs)  # every dataset went into a sync
        assert any(s["item_count"] > 10 for s in syncs.values())  # a sync over several datasets


# -- item errors: the sync fails, the store says which item and why -----------------------------
ITEM_ERRORS = {
    "unknown_account": (
        {"account_id": "999"},
        "ValidationError",
        "Line 1: account '999' was not found in the chart of accounts.",
    ),
    "account_wrong_type": (
        {"type": "reward"},
        "ValidationError",
        "Line 1: account '402 Meals and entertainment' cannot be used for Reward transactions.",
    ),
    "unknown_tax_rate": (
        {"tax_rate_id": "NOPE"},
        "ValidationError",
        "Line 1: tax rate 'NOPE' was not found.",
    ),
    "unknown_tracking": (
        {"tracking_ids": "DEPT-NOPE"},
        "ValidationError",
        "Line 1: tracking category 'DEPT-NOPE' was not found.",
    ),
    "tracking_parent": (
        {"tracking_ids": ["DEPARTMENTS"]},
        "ValidationError",
        "Line 1: tracking category 'Departments' has sub-categories; choose one of them.",
    ),
    "unknown_supplier": (
        {"supplier_id": "SUP-NOPE"},
        "ValidationError",
        "Supplier 'SUP-NOPE' was not found in Xero.",
    ),
    "unknown_bank_account": (
        {"bank_account_id": "999"},
        "ValidationError",
        "Bank account '999' was not found in Xero.",
    ),
    "foreign_currency_without_rate": (
        {"currency": "USD"},
        "ValidationError",
        "The transaction is in USD but the company's base currency is GBP; a currencyRate "
        "is required for foreign currency.",
    ),
    "bank_account_currency": (
        {"currency": "EUR", "currency_rate": "0.85", "bank_account_id": "091"},
        "ValidationError",
        "Bank account 'Company card (USD)' is in USD but the transaction is in EUR.",
    ),
    "closed_period": (
        {"date": "2023-06-30"},
        "PushError",
        "The transaction date 2023-06-30 is in a closed period: Xero is locked for entries "
        "on or before 2023-12-31.",
    ),
    "negative_payment": (
        {"amount": "-5.00", "tax_amount": None},
        "PushError",
        "The payment total is negative; record money coming back as a Refund.",
    ),
}


@pytest.fixture(scope="module")
def item_error_run(tmp_path_factory):
    """One run on the Xero company: each sync carries one good record and one bad one."""
    store = tmp_path_factory.mktemp("item-errors") / "status.duckdb"
    records = []
    for case, (overrides, _, _) in ITEM_ERRORS.items():
        records += [flat(f"ok-{case}"), flat(f"bad-{case}", **overrides)]
    with ServerThread(create_app(SandboxSettings(api_key=API_KEY))) as base_url:
        config = settings(base_url, store, batch_size=2)
        states = write_in_process(config, CATALOG, with_states(records, every=len(records)))
        return states, store, books(base_url)


@pytest.mark.parametrize("case", list(ITEM_ERRORS))
def test_item_error_fails_its_sync_and_is_recorded(case, item_error_run):
    states, store, written = item_error_run
    assert echoed_ids(states) == [1]  # item failures in Codat do not fail the run
    _, status, message = ITEM_ERRORS[case]
    bad, good = txn_id(S, f"bad-{case}"), txn_id(S, f"ok-{case}")
    rows = ledger(store)
    assert rows[bad][1:4] == ("failed", status, message)
    assert rows[good][1] == "completed"
    sync_id = rows[bad][5]
    assert rows[good][5] == sync_id

    sync = store_syncs(store)[sync_id]
    expected_code = 5130 if status == "PushError" else 5120
    assert (sync["status_code"], sync["item_count"], sync["failed_count"]) == (
        expected_code,
        2,
        1,
    )
    assert sync["status_text"] == ("PushError" if status == "PushError" else "Failed")
    assert sync["error_message"] == f"1 of 2 transactions failed: {message}"
    assert sync["data_pushed"] is True  # the good one was written

    items = push_items(store)
    assert items[bad] == {
        "sync_id": sync_id,
        "data_type": None,
        "record_id": None,
        "status": status,
        "message": message,
    }
    assert items[good]["status"] == "Completed" and items[good]["data_type"] == "directCosts"
    assert bad not in written and written[good]["writes"] == 1
    attempts = query(
        store, "SELECT sync_id, status FROM transaction_attempts WHERE transaction_id = ?", [bad]
    )
    assert attempts == [(sync_id, status)]


# -- company-level status codes ----------------------------------------------------------------
COMPANY_CODES = {
    INTACCT_NO_CONFIG: (4000, "Sage Intacct"),
    ZOHO_DEAUTHORIZED: (4040, "Zoho Books"),
    QBO: (4260, "QuickBooks Online"),
    NETSUITE: (5000, "NetSuite"),
    XERO: (2000, "Xero"),
}


def test_company_level_status_codes_are_recorded(sandbox_url, tmp_path):
    patch_company(sandbox_url, QBO, {"billingExpired": True})
    patch_company(sandbox_url, NETSUITE, {"forcedSyncStatus": 5000})
    records = [flat(f"co-{c[:4]}-{i}", c) for i in range(3) for c in COMPANY_CODES]
    store = tmp_path / "status.duckdb"

    states = write_in_process(routed(sandbox_url, store), CATALOG, with_states(records, 15))

    assert echoed_ids(states) == [1]
    syncs = store_syncs(store)
    by_company = {s["company_id"]: s for s in syncs.values()}
    assert len(by_company) == len(syncs) == len(COMPANY_CODES)
    for company, (code, platform) in COMPANY_CODES.items():
        sync = by_company[company]
        assert (sync["status_code"], sync["target_platform"]) == (code, platform), company
        assert sync["item_count"] == 3
        if code == 2000:
            assert sync["failed_count"] == 0 and sync["error_message"] is None
            continue
        assert sync["status_text"] == "Failed" and sync["error_message"], company
        assert sync["failed_count"] == 3 and sync["data_pushed"] is False
    rows = ledger(store)
    items = push_items(store)
    for data in records:
        tid = txn_id(S, data["id"])
        if data["company"] == XERO:
            assert rows[tid][1] == "completed"
            continue
        error = by_company[data["company"]]["error_message"]
        assert rows[tid][1:4] == ("failed", "PushError", f"Not written: {error}")
        assert items[tid]["status"] == "PushError"
    written = books(sandbox_url)
    assert {e["company_id"] for e in written.values()} == {XERO}
    assert "expense configuration" in by_company[INTACCT_NO_CONFIG]["error_message"].lower()


# -- routing ----------------------------------------------------------------------------------
def test_records_are_routed_by_a_record_field(sandbox_url, tmp_path):
    records = [flat(f"route-{i}", HEALTHY[i % len(HEALTHY)]) for i in range(24)]
    records.append({k: v for k, v in flat("no-company").items() if k != "company"})
    records.append(flat("not-a-uuid", company="acme"))
    records.append(flat("unknown-co", company="0b6c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3"))
    store = tmp_path / "status.duckdb"
    config = routed(sandbox_url, store, max_rejected_share=0.2)

    states = write_in_process(config, CATALOG, with_states(records, every=9))

    assert echoed_ids(states) == [1, 2, 3]
    written = books(sandbox_url)
    expected = {txn_id(S, r["id"]): r["company"] for r in records[:24]}
    assert {t: e["company_id"] for t, e in written.items()} == expected
    assert {t: row[0] for t, row in ledger(store).items()} == expected
    companies = {s["company_id"] for s in store_syncs(store).values()}
    assert companies == set(HEALTHY)
    rejects = query(store, "SELECT record_key, field, reason FROM rejects ORDER BY record_key")
    assert [r[:2] for r in rejects] == [
        ("no-company", "company"),
        ("not-a-uuid", "company"),
        ("unknown-co", "company"),
    ]
    assert "does not exist in Codat" in rejects[2][2]
    # each company's name as Codat gives it, then the store's copy for the report
    named = {c: codat_company(sandbox_url, c) for c in HEALTHY}
    assert all(named.values()), named
    stored = query(store, "SELECT company_id, name, target_platform FROM v_companies")
    assert {r[0]: r[1] for r in stored} == {c: named[c]["name"] for c in HEALTHY}
    assert {r[0]: r[2] for r in stored} == {c: named[c]["platform"] for c in HEALTHY}


def codat_company(sandbox_url: str, company_id: str) -> dict:
    answer = httpx.get(f"{sandbox_url}/companies/{company_id}", headers=auth_header(API_KEY))
    answer.raise_for_status()
    return answer.json()


# -- retry and repeat --------------------------------------------------------------------------
def test_failed_id_is_retried_with_the_same_id_after_the_books_are_fixed(sandbox_url, tmp_path):
    store = tmp_path / "status.duckdb"
    config = settings(sandbox_url, store)
    lines = with_states([flat("train-1", account_id="405"), flat("coffee-1")], every=2)
    tid = txn_id(S, "train-1")

    write_in_process(config, CATALOG, lines)
    assert ledger(store)[tid][1:3] == ("failed", "ValidationError")
    assert tid not in books(sandbox_url)

    patch_company(sandbox_url, XERO, {"accounts": [{"id": "405", "name": "Training"}]})
    states = write_in_process(config, CATALOG, lines)

    assert echoed_ids(states) == [1]
    row = ledger(store)[tid]
    assert row[1:3] == ("completed", "Completed") and row[4] == 2  # two attempts, one id
    written = books(sandbox_url)
    assert written[tid]["writes"] == 1 and written[txn_id(S, "coffee-1")]["writes"] == 1
    attempts = query(
        store,
        "SELECT a.status, s.status_code FROM transaction_attempts a JOIN syncs s USING "
        "(sync_id) WHERE a.transaction_id = ? ORDER BY s.initiated_at",
        [tid],
    )
    assert attempts == [("ValidationError", 5120), ("Completed", 2000)]
    assert len(sync_statuses(sandbox_url, XERO)) == 2  # the completed one was not sent again


@pytest.mark.parametrize("flow", ["direct", "datasets"])
def test_rerunning_the_same_input_pushes_nothing_new(flow, sandbox_url, tmp_path):
    store = tmp_path / "status.duckdb"
    config = settings(sandbox_url, store, push_flow=flow, batch_size=5)
    lines = with_states([flat(f"again-{i}") for i in range(12)], every=6)

    first = write_in_process(config, CATALOG, lines)
    syncs_before = sync_statuses(sandbox_url, XERO)
    second = write_in_process(config, CATALOG, lines)

    assert echoed_ids(first) == echoed_ids(second) == [1, 2]
    assert [s["state"]["destinationStats"] for s in second] == [{"recordCount": 6}] * 2
    assert sync_statuses(sandbox_url, XERO) == syncs_before
    written = books(sandbox_url)
    assert len(written) == 12 and all(e["writes"] == 1 for e in written.values())
    runs = query(store, "SELECT outcome, records_in, records_accepted FROM runs")
    assert runs == [("succeeded", 12, 12)] * 2
    assert {row[1] for row in ledger(store).values()} == {"completed"}


# -- receipts ---------------------------------------------------------------------------------
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def receipts_folder(tmp_path) -> dict[str, object]:
    """The operator's receipts_root with a small PDF in a sub-folder, and a file outside it."""
    root = tmp_path / "receipts"
    (root / "2024").mkdir(parents=True)
    hotel = root / "2024" / "hotel.pdf"
    hotel.write_bytes(b"%PDF-1.4\n% a small receipt\n%%EOF\n")
    outside = tmp_path / "outside.pdf"
    outside.write_bytes(b"%PDF-1.4\n% not a receipt of this pipeline\n%%EOF\n")
    return {"root": root, "hotel": hotel, "outside": outside}


def attachments_in_books(base_url: str) -> dict[str, list[tuple[str, int]]]:
    """transaction id -> [(file name, size)] of every attachment in the sandbox's books."""
    return {
        entry["transaction_id"]: [(a["fileName"], a["size"]) for a in entry["attachments"]]
        for entry in books(base_url).values()
    }


def test_receipts_are_uploaded_after_completion(sandbox_url, tmp_path):
    folder = receipts_folder(tmp_path)
    root, hotel = folder["root"], folder["hotel"]
    (root / "latest.pdf").symlink_to(hotel)  # a symlink that stays inside the root is fine
    (root / "scan.pdf").write_bytes(b"%PDF" + b"0" * (10 * 1024 * 1024))  # over Xero's 10 MB
    content = base64.b64encode(PNG).decode()
    records = [
        flat("rc-b64", receipt={"fileName": "coffee.png", "content": content}),
        flat("rc-path", receipt={"fileName": "hotel.pdf", "path": "2024/hotel.pdf"}),
        flat("rc-link", receipt={"fileName": "latest.pdf", "path": "latest.pdf"}),
        flat("rc-huge", receipt={"fileName": "scan.pdf", "path": "scan.pdf"}),
        flat("rc-qbd", QBD, receipt={"fileName": "lunch.png", "content": content}),
        flat("rc-failed", account_id="999", receipt={"fileName": "y.png", "content": content}),
    ]
    store = tmp_path / "status.duckdb"

    config = routed(sandbox_url, store, receipts_root=str(root))
    write_in_process(config, CATALOG, with_states(records, every=6))

    attached = attachments_in_books(sandbox_url)
    assert attached[txn_id(S, "rc-b64")] == [("coffee.png", len(PNG))]
    assert attached[txn_id(S, "rc-path")] == [("hotel.pdf", hotel.stat().st_size)]
    assert attached[txn_id(S, "rc-link")] == [("latest.pdf", hotel.stat().st_size)]
    assert attached[txn_id(S, "rc-huge")] == [] and attached[txn_id(S, "rc-qbd")] == []
    rows = query(
        store,
        "SELECT t.source_key, a.file_name, a.size_bytes, a.status, a.message, a.attachment_id, "
        "a.sync_id = t.last_sync_id FROM attachments a JOIN transactions t USING "
        "(company_id, transaction_id)",
    )
    got = {row[0]: row[1:] for row in rows}
    assert got["rc-b64"][:3] == ("coffee.png", len(PNG), "uploaded")
    assert got["rc-path"][:3] == ("hotel.pdf", hotel.stat().st_size, "uploaded")
    assert got["rc-link"][2] == "uploaded"
    assert all(got[k][4] and got[k][5] for k in ("rc-b64", "rc-path", "rc-link"))
    assert got["rc-huge"][2] == "refused" and "up to 10 MB" in got["rc-huge"][3]
    assert got["rc-qbd"][2] == "refused"
    assert "QuickBooks Desktop does not accept attachments" in got["rc-qbd"][3]
    assert "rc-failed" not in got  # a transaction that failed gets no upload attempt


def refused_receipt_records(folder: dict) -> dict[str, dict]:
    """Records whose receipt must never be read, by key."""
    (folder["root"] / "environ.pdf").symlink_to("/proc/self/environ")
    (folder["root"] / "away.pdf").symlink_to(folder["outside"])
    os.mkfifo(folder["root"] / "pipe.pdf")
    pdf = "JVBERi0xLjQK"
    return {
        "rc-environ": flat(
            "rc-environ", receipt={"fileName": "environ.pdf", "path": "/proc/self/environ"}
        ),
        "rc-absolute": flat(
            "rc-absolute", receipt={"fileName": "o.pdf", "path": str(folder["outside"])}
        ),
        "rc-dotdot": flat(
            "rc-dotdot", receipt={"fileName": "o.pdf", "path": "2024/../../outside.pdf"}
        ),
        "rc-link-environ": flat(
            "rc-link-environ", receipt={"fileName": "e.pdf", "path": "environ.pdf"}
        ),
        "rc-link-away": flat("rc-link-away", receipt={"fileName": "o.pdf", "path": "away.pdf"}),
        "rc-fifo": flat("rc-fifo", receipt={"fileName": "p.pdf", "path": "pipe.pdf"}),
        "rc-folder": flat("rc-folder", receipt={"fileName": "f.pdf", "path": "2024"}),
        "rc-missing": flat("rc-missing", receipt={"fileName": "gone.pdf", "path": "gone.pdf"}),
        "rc-garbled": flat("rc-garbled", receipt={"fileName": "x.png", "content": "not base64!"}),
        "rc-name": flat("rc-name", receipt={"fileName": "../../x.pdf", "content": pdf}),
    }


@pytest.mark.parametrize("with_root", [False, True], ids=["no-root", "root"])
def test_a_receipt_the_record_points_outside_the_receipts_root_is_refused(
    sandbox_url, tmp_path, with_root
):
    folder = receipts_folder(tmp_path)
    refused = refused_receipt_records(folder)
    good = [
        flat(
            "rc-inline",
            receipt={"fileName": "coffee.png", "content": base64.b64encode(PNG).decode()},
        ),
        flat("rc-in-root", receipt={"fileName": "hotel.pdf", "path": "2024/hotel.pdf"}),
    ]
    store = tmp_path / "status.duckdb"
    root = str(folder["root"]) if with_root else None
    config = routed(sandbox_url, store, receipts_root=root, max_rejected_share=1)

    write_in_process(config, CATALOG, with_states([*refused.values(), *good], every=5))

    written = books(sandbox_url)  # the books first: no refused record reached Codat at all
    refused_ids = {txn_id(S, key) for key in refused}
    assert not refused_ids & set(written)
    uploaded = {name for files in attachments_in_books(sandbox_url).values() for name, _ in files}
    expected = {"coffee.png", "hotel.pdf"} if with_root else {"coffee.png"}
    assert uploaded == expected
    rejects = {
        row[0]: row[1:] for row in query(store, "SELECT record_key, field, reason FROM rejects")
    }
    expected_rejects = set(refused) if with_root else {*refused, "rc-in-root"}
    assert set(rejects) == expected_rejects
    fields = {key: field for key, (field, _) in rejects.items()}
    assert (
        fields.pop("rc-garbled") == "receipt.content"
        and fields.pop("rc-name") == "receipt.fileName"
    )
    assert set(fields.values()) == {"receipt.path"}
    reasons = {key: reason for key, (_, reason) in rejects.items()}
    if not with_root:
        assert "no receipts_root is configured" in reasons["rc-environ"]
        assert "no receipts_root is configured" in reasons["rc-in-root"]
        return
    assert "not absolute" in reasons["rc-environ"] and "not absolute" in reasons["rc-absolute"]
    assert "'..'" in reasons["rc-dotdot"]
    assert (
        "leads outside" in reasons["rc-link-environ"] and "leads outside" in reasons["rc-link-away"]
    )
    assert (
        "not a regular file" in reasons["rc-fifo"] and "not a regular file" in reasons["rc-folder"]
    )
    assert "names no file" in reasons["rc-missing"]
    assert query(store, "SELECT count(*) FROM attachments WHERE status = 'uploaded'") == [(2,)]


def test_a_receipt_file_changed_after_acceptance_is_checked_again_and_not_read(
    sandbox_url, tmp_path
):
    folder = receipts_folder(tmp_path)
    root = folder["root"]
    (root / "swapped.pdf").write_bytes(b"%PDF-1.4 accepted\n")
    (root / "vanishing.pdf").write_bytes(b"%PDF-1.4 accepted\n")
    records = [
        flat("rc-swapped", receipt={"fileName": "swapped.pdf", "path": "swapped.pdf"}),
        flat("rc-vanishing", receipt={"fileName": "vanishing.pdf", "path": "vanishing.pdf"}),
        flat("rc-steady", receipt={"fileName": "hotel.pdf", "path": "2024/hotel.pdf"}),
    ]
    store = tmp_path / "status.duckdb"
    config = routed(sandbox_url, store, receipts_root=str(root))

    # the STATE is echoed once the records were accepted and pushed; uploads come at the end
    for _ in iter_write(config, CATALOG, with_states(records, every=3)):
        (root / "swapped.pdf").unlink()
        (root / "swapped.pdf").symlink_to("/proc/self/environ")
        (root / "vanishing.pdf").unlink()

    attached = attachments_in_books(sandbox_url)
    assert attached[txn_id(S, "rc-swapped")] == [] and attached[txn_id(S, "rc-vanishing")] == []
    assert attached[txn_id(S, "rc-steady")] == [("hotel.pdf", folder["hotel"].stat().st_size)]
    rows = query(
        store,
        "SELECT t.source_key, a.status, a.message, a.size_bytes FROM attachments a "
        "JOIN transactions t USING (company_id, transaction_id)",
    )
    got = {row[0]: row[1:] for row in rows}
    assert got["rc-swapped"][:1] == ("rejected",) and "leads outside" in got["rc-swapped"][1]
    assert got["rc-swapped"][1].startswith("Receipt could not be read: receipt.path ")
    assert got["rc-vanishing"][0] == "rejected" and "names no file" in got["rc-vanishing"][1]
    assert got["rc-steady"][0] == "uploaded"
    assert {row[1] for row in ledger(store).values()} == {"completed"}


# -- too many bad records ----------------------------------------------------------------------
def test_too_many_rejects_fail_the_run_with_counts(sandbox_url, tmp_path):
    records = [flat(f"ok-{i}") for i in range(7)]
    records += [flat("bad-1", amount="abc"), flat("bad-2", currency="GB"), flat("bad-3", date="")]
    store = tmp_path / "status.duckdb"
    config = settings(sandbox_url, store, max_rejected_share=0.25)
    echoed = []

    with pytest.raises(AirbyteTracedException) as failure:
        for state in iter_write(config, CATALOG, with_states(records, every=5)):
            echoed.append(state)

    error = failure.value
    assert error.failure_type == FailureType.config_error
    assert re.search(r"\b3 of 10 records were rejected\b.*30\.0%.*25\.0%", error.message)
    assert echoed_ids(echoed) == [1, 2]  # STATEs before the end were still echoed
    assert query(store, "SELECT outcome, records_rejected FROM runs") == [("failed", 3)]
    assert sorted(r[0] for r in query(store, "SELECT record_key FROM rejects")) == [
        "bad-1",
        "bad-2",
        "bad-3",
    ]
    assert len(books(sandbox_url)) == 7  # the good ones were still recorded, once
