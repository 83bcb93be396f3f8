"""Status refresh, retry of failed items and the terminal views, against the real sandbox and
a real DuckDB file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import API_KEY, XERO, expenses_path

from destination_codat_expenses.destination import DestinationCodatExpenses
from destination_codat_expenses.protocol import InputStats, parse_lines
from destination_codat_expenses.retry import NothingToRetry, plan_retry
from destination_codat_expenses.store.db import reading
from destination_codat_expenses.store.status_store import StatusStore

CLI = Path(sys.executable).with_name("codat-expenses")
CATALOG_STREAM = "card_spend"


def catalog():
    from airbyte_cdk.models import ConfiguredAirbyteCatalogSerializer

    return ConfiguredAirbyteCatalogSerializer.load(
        {
            "streams": [
                {
                    "stream": {
                        "name": CATALOG_STREAM,
                        "json_schema": {},
                        "supported_sync_modes": ["incremental"],
                    },
                    "sync_mode": "incremental",
                    "destination_sync_mode": "append",
                }
            ]
        }
    )


def record(source_id: str, day: str = "2024-05-02", amount: str = "12.00") -> str:
    data = {
        "id": source_id,
        "date": day,
        "amount": amount,
        "tax_amount": "2.00",
        "currency": "GBP",
        "merchant": "Cafe",
        "account_id": "402",
        "tax_rate_id": "STD",
    }
    return json.dumps(
        {"type": "RECORD", "record": {"stream": CATALOG_STREAM, "data": data, "emitted_at": 1}}
    )


def write(sandbox_url: str, store: Path, lines: list[str], **settings) -> list:
    config = {
        "api_key": API_KEY,
        "base_url": sandbox_url,
        "company_id": XERO,
        "status_store_path": str(store),
        **settings,
    }
    messages = parse_lines(lines, InputStats())
    return list(DestinationCodatExpenses().write(config, catalog(), messages))


def cli(*args: str, base_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CODAT_API_KEY": API_KEY, "CODAT_BASE_URL": base_url}
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, env=env, timeout=120)


def books(api) -> dict[str, int]:
    return {
        e["transaction_id"]: e["writes"] for e in api.get("/_sandbox/ground-truth").json()[XERO]
    }


def failed_sync(store: Path) -> str:
    with reading(str(store), read_only=True) as db:
        return db.execute("SELECT sync_id FROM syncs WHERE status_code = 5130").fetchone()[0]


@pytest.fixture
def store(tmp_path) -> Path:
    return tmp_path / "status.duckdb"


@pytest.fixture
def half_failed(api, sandbox_url, store) -> str:
    """One sync where two expenses fall in Xero's closed period and two are fine."""
    lines = [
        record("ok-1"),
        record("ok-2"),
        record("closed-1", "2023-06-01"),
        record("closed-2", "2023-07-01"),
    ]
    write(sandbox_url, store, lines)
    return failed_sync(store)


def test_retry_dry_run_shows_failed_items_and_writes_nothing(api, sandbox_url, store, half_failed):
    before_books, before_store = books(api), store.read_bytes()
    result = cli(
        "retry", "--store", str(store), "--sync", half_failed, "--dry-run", base_url=sandbox_url
    )
    assert result.returncode == 0, result.stderr
    assert "2 failed item(s)" in result.stdout and "closed period" in result.stdout
    assert "dry run" in result.stdout
    assert books(api) == before_books and store.read_bytes() == before_store


def test_retry_after_fix_pushes_only_failed_items_once(api, sandbox_url, store, half_failed):
    api.patch(f"/_sandbox/companies/{XERO}", json={"closedUntil": None})
    result = cli("retry", "--store", str(store), "--sync", half_failed, base_url=sandbox_url)
    assert result.returncode == 0, result.stderr
    assert ": 2000" in result.stdout
    assert sorted(books(api).values()) == [1, 1, 1, 1]
    with reading(str(store), read_only=True) as db:
        retry = db.execute(
            "SELECT item_count, status_code FROM syncs WHERE retry_of = ?", [half_failed]
        ).fetchall()
        states = db.execute("SELECT state, count(*) FROM transactions GROUP BY 1").fetchall()
        history = db.execute("SELECT count(*) FROM transaction_attempts").fetchone()[0]
    assert retry == [(2, 2000)] and states == [("completed", 4)] and history == 6
    again = cli("retry", "--store", str(store), "--sync", half_failed, base_url=sandbox_url)
    assert again.returncode == 2 and "no failed items" in again.stderr


def test_retry_refuses_unknown_sync_and_foreign_transaction(store, half_failed):
    with pytest.raises(NothingToRetry, match="not in the status store"):
        plan_retry(StatusStore(str(store)), "no-such-sync")
    with pytest.raises(NothingToRetry, match="no failed item"):
        plan_retry(StatusStore(str(store)), half_failed, ["0000-not-there"])


def test_refresh_finishes_open_syncs_and_discovers_new_ones(api, sandbox_url, store):
    write(sandbox_url, store, [record("later-1")], wait_for_syncs=False)
    with reading(str(store), read_only=True) as db:
        assert db.execute("SELECT status_code FROM syncs").fetchall() == [(None,)]
    outside = {
        "id": "6f1f4b6e-0000-4000-8000-000000000001",
        "type": "Payment",
        "issueDate": "2024-05-03",
        "currency": "GBP",
        "lines": [{"netAmount": 5, "accountRef": {"id": "402"}}],
    }
    pushed = api.post(f"{expenses_path(XERO)}/expense-transactions", json=[outside])
    assert pushed.status_code == 200
    api.post("/_sandbox/clock/advance", json={"seconds": 5})
    result = cli("status", "refresh", "--store", str(store), base_url=sandbox_url)
    assert result.returncode == 0, result.stderr
    assert "1 now final, 1 discovered" in result.stdout
    with reading(str(store), read_only=True) as db:
        codes = sorted(r[0] for r in db.execute("SELECT status_code FROM syncs").fetchall())
        items = db.execute("SELECT count(*) FROM push_items").fetchone()[0]
    assert codes == [2000, 2000] and items == 2


def test_syncs_list_and_show_print_readable_tables(sandbox_url, store, half_failed):
    listing = cli(
        "syncs", "list", "--store", str(store), "--status-code", "5130", base_url=sandbox_url
    )
    assert listing.returncode == 0 and half_failed in listing.stdout
    assert "sync_id" in listing.stdout.splitlines()[0]
    partial = cli(
        "syncs", "list", "--store", str(store), "--search", half_failed[:8], base_url=sandbox_url
    )
    assert half_failed in partial.stdout
    shown = cli("syncs", "show", half_failed, "--store", str(store), base_url=sandbox_url)
    assert shown.returncode == 0
    assert "status_code" in shown.stdout and "5130" in shown.stdout
    assert "PushError" in shown.stdout and "directCosts" in shown.stdout
    assert (
        cli("syncs", "list", "--store", "/nonexistent/x.duckdb", base_url=sandbox_url).returncode
        == 2
    )


def test_refresh_without_key_explains(store, sandbox_url):
    env = {k: v for k, v in os.environ.items() if k != "CODAT_API_KEY"}
    result = subprocess.run(
        [str(CLI), "status", "refresh", "--store", str(store)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2 and "CODAT_API_KEY" in result.stderr
