"""Status refresh, retry of failed items and the terminal views, against the real sandbox and
a real DuckDB file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import API_KEY, XERO, expenses_path
from echo_upstream import Echo, echo_upstream
from webhook_support import post, running_receiver, signed, sync_event

from destination_codat_expenses.destination import DestinationCodatExpenses
from destination_codat_expenses.errors import NothingToRetry
from destination_codat_expenses.protocol import InputStats, parse_lines
from destination_codat_expenses.redaction import api_key_forms as key_forms
from destination_codat_expenses.retry import plan_retry
from destination_codat_expenses.store.db import reading, release
from destination_codat_expenses.store.status_store import StatusStore
from report_app.queries import fetch_attempts

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
    assert ": 2000 Success (Data written) (Complete)" in result.stdout
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


def test_attempts_stay_in_the_order_they_happened_after_a_refresh(
    api, sandbox_url, store, half_failed
):
    """The report lists an expense's failed attempt before the retry that completed it, also
    after `status refresh --sync` has read the failed sync again (which records its items anew)."""
    api.patch(f"/_sandbox/companies/{XERO}", json={"closedUntil": None})
    retried = cli("retry", "--store", str(store), "--sync", half_failed, base_url=sandbox_url)
    assert retried.returncode == 0, retried.stderr
    again = ["status", "refresh", "--store", str(store), "--sync", half_failed]
    refreshed = cli(*again, base_url=sandbox_url)
    assert refreshed.returncode == 0, refreshed.stderr
    [(retry,)] = rows(store, f"SELECT sync_id FROM syncs WHERE retry_of = '{half_failed}'")
    failed = rows(
        store,
        f"SELECT transaction_id FROM push_items WHERE sync_id = '{half_failed}' "
        "AND status = 'PushError'",
    )
    assert len(failed) == 2
    for (transaction_id,) in failed:
        attempts = fetch_attempts(str(store), transaction_id)
        assert attempts["sync_id"].tolist() == [half_failed, retry]
        assert attempts["status"].tolist() == ["PushError", "Completed"]


def test_retry_records_the_company_name_as_a_run_does(api, sandbox_url, store, half_failed):
    """A store that lost (or never had) the company's row gets it back from a retry: the report
    shows the name Codat gives, not a bare id."""
    with reading(str(store)) as db:
        db.execute("DELETE FROM companies")
    release(str(store))
    result = cli("retry", "--store", str(store), "--sync", half_failed, base_url=sandbox_url)
    assert result.returncode in (0, 1), result.stderr
    codat_name = api.get(f"/companies/{XERO}").json()["name"]
    assert codat_name
    assert rows(store, "SELECT company_id, name FROM companies") == [(XERO, codat_name)]


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
    header = listing.stdout.splitlines()[0].split()
    assert header[:5] == ["sync_id", "company_id", "outcome", "status_code", "meaning"]
    line = next(row for row in listing.stdout.splitlines() if half_failed in row)
    assert "5130         Data write error" in line  # the code, and beside it what it means
    partial = cli(
        "syncs", "list", "--store", str(store), "--search", half_failed[:8], base_url=sandbox_url
    )
    assert half_failed in partial.stdout
    shown = cli("syncs", "show", half_failed, "--store", str(store), base_url=sandbox_url)
    assert shown.returncode == 0
    assert re.search(r"^status_code +5130 Data write error$", shown.stdout, re.MULTILINE)
    assert re.search(r"^receipts +0 uploaded, 0 pending, 0 refused$", shown.stdout, re.MULTILINE)
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


# -- refresh: syncs Codat does not know, and errors that must not stop the others ----------------
UNKNOWN_SYNC = "0badc0de-0000-4000-8000-00000000a404"
UNKNOWN_COMPANY = "99999999-9999-4999-8999-999999999999"
UNKNOWN_COMPANY_SYNC = "0badc0de-0000-4000-8000-00000000b404"


def rows(store: Path, sql: str) -> list[tuple]:
    with reading(str(store), read_only=True) as db:
        return db.execute(sql).fetchall()


def open_sync_of(sandbox_url: str, store: Path, key: str) -> str:
    """A sync of a real run, left open in the store (the run did not wait for it)."""
    before = {r[0] for r in rows(store, "SELECT sync_id FROM syncs")} if store.exists() else set()
    write(sandbox_url, store, [record(key)], wait_for_syncs=False)
    release(str(store))
    [sync_id] = {r[0] for r in rows(store, "SELECT sync_id FROM syncs")} - before
    return sync_id


def webhook_for_unknown_syncs(store: Path) -> None:
    """Validly signed webhooks for syncs Codat never had: one for a company Codat knows, one for
    a company it does not."""
    with running_receiver(str(store)) as url:
        for sync_id, company in ((UNKNOWN_SYNC, XERO), (UNKNOWN_COMPANY_SYNC, UNKNOWN_COMPANY)):
            body = sync_event(True, sync_id, company_id=company)
            assert post(url, body, signed(body)).json()["outcome"] == "applied"
    release(str(store))


def codat_status(api, sync_id: str) -> dict:
    return api.get(f"{expenses_path(XERO)}/syncs/{sync_id}/status").json()


def stored_syncs(store: Path) -> dict[str, tuple]:
    found = rows(store, "SELECT sync_id, status_code, status_text, data_pushed FROM syncs")
    return {row[0]: row[1:] for row in found}


def test_refresh_settles_syncs_codat_does_not_know_and_refreshes_the_rest(api, sandbox_url, store):
    open_sync = open_sync_of(sandbox_url, store, "open-1")
    webhook_for_unknown_syncs(store)
    api.post("/_sandbox/clock/advance", json={"seconds": 5})

    first = cli("status", "refresh", "--store", str(store), base_url=sandbox_url)

    assert first.returncode == 0, first.stderr
    assert (
        "checked 3 open syncs, 1 now final, 0 discovered, 2 not found at Codat, "
        "0 could not be refreshed" in first.stdout
    )
    for sync_id, company in ((UNKNOWN_SYNC, XERO), (UNKNOWN_COMPANY_SYNC, UNKNOWN_COMPANY)):
        assert f"sync {sync_id} (company {company}): Codat answered 404" in first.stdout
    # Codat's word first: the open sync ended, the others do not exist there
    codat = codat_status(api, open_sync)
    assert codat["syncStatusCode"] == 2000
    assert api.get(f"{expenses_path(XERO)}/syncs/{UNKNOWN_SYNC}/status").status_code == 404
    stored = stored_syncs(store)
    assert stored[open_sync] == (2000, codat["syncStatus"], codat["dataPushed"])
    assert rows(store, "SELECT state FROM transactions") == [("completed",)]
    assert stored[UNKNOWN_SYNC] == stored[UNKNOWN_COMPANY_SYNC] == (404, "NotFoundAtCodat", False)
    [(note,)] = rows(store, f"SELECT error_message FROM syncs WHERE sync_id = '{UNKNOWN_SYNC}'")
    assert "answered 404" in note and f"No sync was found with ID {UNKNOWN_SYNC}" in note

    again = cli("status", "refresh", "--store", str(store), base_url=sandbox_url)

    assert again.returncode == 0, again.stderr
    assert "checked 0 open syncs" in again.stdout and "0 not found at Codat" in again.stdout
    assert stored_syncs(store) == stored
    listing = cli("syncs", "list", "--store", str(store), base_url=sandbox_url)
    line = next(row for row in listing.stdout.splitlines() if UNKNOWN_SYNC in row)
    assert "404" in line and "NotFoundAtCodat" in line


def test_refresh_goes_on_past_a_sync_it_cannot_refresh_and_exits_1_naming_it(
    api, sandbox_url, store
):
    """An upstream refuses one sync's status (and echoes the key while at it): the other sync
    is still settled from Codat, the refused one is named with the reason, the key nowhere."""
    refused, fine = open_sync_of(sandbox_url, store, "a-1"), open_sync_of(sandbox_url, store, "b-1")
    api.post("/_sandbox/clock/advance", json={"seconds": 5})
    rules = [Echo("GET", f"/syncs/{refused}/status$", 400)]

    with echo_upstream(sandbox_url, rules) as gateway:
        result = cli("status", "refresh", "--store", str(store), base_url=gateway)

    assert result.returncode == 1, result.stderr
    why = f"could not refresh sync {refused} (company {XERO}): Codat answered 400"
    assert why in result.stderr and "[redacted]" in result.stderr
    assert (
        "1 now final, 0 discovered, 0 not found at Codat, 1 could not be refreshed" in result.stdout
    )
    codat = codat_status(api, fine)
    stored = stored_syncs(store)
    assert stored[fine] == (codat["syncStatusCode"], codat["syncStatus"], codat["dataPushed"])
    assert stored[refused] == (None, None, None)
    for form in key_forms(API_KEY):
        assert form.lower() not in (result.stdout + result.stderr).lower()


def test_refresh_at_a_wrong_address_settles_nothing(api, sandbox_url, store):
    """Every path 404s at a wrong base URL: that must not read as "every sync not found"."""
    open_sync = open_sync_of(sandbox_url, store, "c-1")

    result = cli("status", "refresh", "--store", str(store), base_url=f"{sandbox_url}/v9")

    assert result.returncode == 2
    assert "Nothing was refreshed" in result.stderr and "404" in result.stderr
    assert stored_syncs(store)[open_sync] == (None, None, None)


# -- retry tells whether it succeeded ---------------------------------------------------------
def test_retry_whose_new_sync_fails_again_exits_1_and_says_so(api, sandbox_url, store, half_failed):
    result = cli("retry", "--store", str(store), "--sync", half_failed, base_url=sandbox_url)

    [new_sync] = [
        r[0] for r in rows(store, f"SELECT sync_id FROM syncs WHERE retry_of = '{half_failed}'")
    ]
    assert codat_status(api, new_sync)["syncStatusCode"] == 5130  # still the closed period
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"new sync {new_sync}: 5130 Data write error (PushError)" in result.stdout
    assert (
        f"codat-expenses: the retry did not succeed: sync {new_sync} ended 5130 Data write error"
        in result.stderr
    )


# -- a company's latest and last successful sync, from Codat -----------------------------------
def test_syncs_latest_and_last_successful_read_codat(api, sandbox_url, store, half_failed):
    latest = api.get(f"{expenses_path(XERO)}/syncs/latest/status").json()
    assert latest["syncId"] == half_failed and latest["syncStatusCode"] == 5130
    assert api.get(f"{expenses_path(XERO)}/syncs/lastSuccessful/status").status_code == 404

    shown = cli("syncs", "latest", "--company", XERO, "--store", str(store), base_url=sandbox_url)

    assert shown.returncode == 0, shown.stderr
    assert re.search(rf"^sync +{half_failed}$", shown.stdout, re.MULTILINE)
    assert re.search(r"^status +5130 Data write error$", shown.stdout, re.MULTILINE)
    assert re.search(rf"^sync time +{re.escape(latest['syncUtc'])}$", shown.stdout, re.M)
    assert re.search(r"^initiated \(store\) +\d{4}-", shown.stdout, re.MULTILINE)
    none_yet = cli("syncs", "last-successful", "--company", XERO, base_url=sandbox_url)
    assert none_yet.returncode == 4, none_yet.stderr
    assert f"company {XERO} has no successful sync yet" in none_yet.stdout

    write(sandbox_url, store, [record("good-1")])
    good = api.get(f"{expenses_path(XERO)}/syncs/lastSuccessful/status").json()
    assert good["syncStatusCode"] == 2000 and good["syncId"] != half_failed
    found = cli("syncs", "last-successful", "--company", XERO, base_url=sandbox_url)
    assert found.returncode == 0, found.stderr
    assert re.search(rf"^sync +{good['syncId']}$", found.stdout, re.MULTILINE)
    assert re.search(r"^status +2000 Success \(Data written\)$", found.stdout, re.MULTILINE)


def test_syncs_latest_refuses_an_unknown_or_malformed_company(sandbox_url):
    unknown = cli("syncs", "latest", "--company", UNKNOWN_COMPANY, base_url=sandbox_url)
    assert unknown.returncode == 2 and f"Codat has no company {UNKNOWN_COMPANY}" in unknown.stderr
    malformed = cli("syncs", "latest", "--company", "../companies", base_url=sandbox_url)
    assert malformed.returncode == 2 and "must be a Codat company id" in malformed.stderr


# -- runs and rejects ---------------------------------------------------------------------------
def bad_record(source_id: str, **changes) -> str:
    message = json.loads(record(source_id))
    message["record"]["data"].update(changes)
    return json.dumps(message)


def test_runs_list_shows_outcome_counts_duration_and_the_error(sandbox_url, store, half_failed):
    from airbyte_cdk.utils.traced_exception import AirbyteTracedException

    with pytest.raises(AirbyteTracedException):
        write(sandbox_url, store, [bad_record("x-1", date="2024-02-30")], max_rejected_share=0)
    [(failed_run, error)] = rows(store, "SELECT run_id, error FROM runs WHERE outcome = 'failed'")
    assert "1 of 1 records were rejected" in error

    listing = cli("runs", "list", "--store", str(store), base_url=sandbox_url)

    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split() == [
        "run_id",
        "outcome",
        "started_at",
        "duration_s",
        "records_in",
        "records_accepted",
        "records_rejected",
        "checkpoints",
        "syncs",
        "error",
    ]
    assert lines[2].startswith(f"{failed_run}  failed") and lines[2].endswith(error)  # newest
    assert re.search(r"  succeeded  .* \d+\.\d s +4 +4 +0 +\d+ +1$", lines[3])
    only_failed = cli("runs", "list", "--store", str(store), "--outcome", "failed", base_url="")
    assert len(only_failed.stdout.splitlines()) == 3 and failed_run in only_failed.stdout


def test_rejects_list_filters_and_shows_the_newest_first(sandbox_url, store):
    first = [record("a-ok"), bad_record("a-date", date="2024-02-30")]
    write(sandbox_url, store, first, max_rejected_share=1)
    later = [bad_record("b-amount", amount="1.234"), bad_record("b-date", date="yesterday")]
    write(sandbox_url, store, [record("b-ok"), *later], max_rejected_share=1)
    [(first_run,)] = rows(store, "SELECT run_id FROM rejects WHERE record_key = 'a-date'")

    every = cli("rejects", "list", "--store", str(store), base_url=sandbox_url)

    assert every.returncode == 0, every.stderr
    keys = [line.split()[4] for line in every.stdout.splitlines()[2:]]
    assert sorted(keys[:2]) == ["b-amount", "b-date"] and keys[2] == "a-date"
    line = next(row for row in every.stdout.splitlines() if "b-amount" in row)
    assert "card_spend" in line and "amount" in line and "decimal places" in line
    dates = cli("rejects", "list", "--store", str(store), "--field", "date", base_url="")
    assert {line.split()[4] for line in dates.stdout.splitlines()[2:]} == {"a-date", "b-date"}
    by_run = cli("rejects", "list", "--store", str(store), "--run", first_run, base_url="")
    assert [line.split()[4] for line in by_run.stdout.splitlines()[2:]] == ["a-date"]
    found = cli("rejects", "list", "--store", str(store), "--search", "DECIMAL", base_url="")
    assert [line.split()[4] for line in found.stdout.splitlines()[2:]] == ["b-amount"]
    other = cli("rejects", "list", "--store", str(store), "--stream", "other", base_url="")
    assert other.stdout.strip() == "no rejects match"
