"""Shared by the destination's integration tests: input builders, the real CLI, the sandbox's
ground truth and read-only looks at the DuckDB store. No fakes: the sandbox is served over
loopback and the store is a real DuckDB file."""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
from conftest import wait_for

from codat_sandbox.server import free_port
from destination_codat_expenses import protocol
from destination_codat_expenses.mapping import transaction_id_for
from destination_codat_expenses.store.db import reading

API_KEY = "sandbox-test-key"
XERO = "11111111-1111-4111-8111-111111111111"
QBO = "22222222-2222-4222-8222-222222222222"
NETSUITE = "33333333-3333-4333-8333-333333333333"
DYNAMICS = "44444444-4444-4444-8444-444444444444"
FREEAGENT = "55555555-5555-4555-8555-555555555555"
QBD = "66666666-6666-4666-8666-666666666666"
ZOHO_DEAUTHORIZED = "77777777-7777-4777-8777-777777777777"
INTACCT_NO_CONFIG = "88888888-8888-4888-8888-888888888888"
BASE_CURRENCY = {
    XERO: "GBP",
    QBO: "USD",
    NETSUITE: "USD",
    DYNAMICS: "EUR",
    FREEAGENT: "GBP",
    QBD: "USD",
    ZOHO_DEAUTHORIZED: "USD",
    INTACCT_NO_CONFIG: "USD",
}
NO_TAX_RATES = {FREEAGENT}
CLI = Path(sys.executable).with_name("destination-codat-expenses")
OPERATOR_CLI = Path(sys.executable).with_name("codat-expenses")


def auth_header(api_key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(api_key.encode()).decode()}


# -- input -----------------------------------------------------------------------------------
def flat(key: str, company: str | None = None, **overrides: Any) -> dict:
    """A valid flat card-spend row for `company` (default Xero); override any field."""
    company = company or XERO
    row = {
        "id": key,
        "type": "payment",
        "date": "2024-05-01",
        "amount": "12.00",
        "tax_amount": "2.00",
        "currency": BASE_CURRENCY.get(company, "GBP"),
        "merchant": "Coffee Corner",
        "account_id": "402",
        "tax_rate_id": "STD",
        "company": company,
    }
    if company in NO_TAX_RATES:
        del row["tax_amount"], row["tax_rate_id"]
    row.update(overrides)
    return {k: v for k, v in row.items() if v is not None}


def record(stream: str, data: dict) -> dict:
    return {"type": "RECORD", "record": {"stream": stream, "data": data, "emitted_at": 1}}


def stream_state(stream: str, state_id: int, **extra: Any) -> dict:
    state = {
        "type": "STREAM",
        "stream": {"stream_descriptor": {"name": stream}, "stream_state": {"n": state_id}},
        "id": state_id,
        **extra,
    }
    return {"type": "STATE", "state": state}


def global_state(state_id: int, **extra: Any) -> dict:
    state = {
        "type": "GLOBAL",
        "global": {"shared_state": {"n": state_id}, "stream_states": []},
        "id": state_id,
        **extra,
    }
    return {"type": "STATE", "state": state}


def catalog(*streams: str) -> dict:
    return {
        "streams": [
            {
                "stream": {
                    "name": name,
                    "json_schema": {"type": "object"},
                    "supported_sync_modes": ["full_refresh", "incremental"],
                },
                "sync_mode": "incremental",
                "destination_sync_mode": "append",
            }
            for name in streams
        ]
    }


def settings(base_url: str, store: Path, **overrides: Any) -> dict:
    config = {
        "api_key": API_KEY,
        "base_url": base_url,
        "company_id": XERO,
        "status_store_path": str(store),
        "sync_wait_timeout_seconds": 120,
    }
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


def routed(base_url: str, store: Path, **overrides: Any) -> dict:
    """Settings that route every record by its `company` field."""
    return settings(base_url, store, company_id=None, company_id_field="company", **overrides)


def txn_id(stream: str, key: str) -> str:
    return transaction_id_for(stream, key)


# -- the real CLI ------------------------------------------------------------------------------
def write_files(folder: Path, config: dict, catalog_: dict, lines: Iterable[dict]) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "config": folder / "config.json",
        "catalog": folder / "catalog.json",
        "messages": folder / "messages.jsonl",
    }
    paths["config"].write_text(json.dumps(config))
    paths["catalog"].write_text(json.dumps(catalog_))
    with paths["messages"].open("w") as out:
        for line in lines:
            out.write(json.dumps(line) + "\n")
    return paths


def run_cli(
    *args: str, stdin: Path | None = None, env: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`destination-codat-expenses <args>`, the console script next to this interpreter."""
    with contextlib.ExitStack() as stack:
        feed = stack.enter_context(stdin.open("rb")) if stdin else subprocess.DEVNULL
        return subprocess.run(
            [str(CLI), *args],
            stdin=feed,
            capture_output=True,
            env=env,
            timeout=timeout,
            check=False,
        )


def run_write(paths: dict, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_cli(
        "write",
        "--config",
        str(paths["config"]),
        "--catalog",
        str(paths["catalog"]),
        stdin=paths["messages"],
        env=env,
    )


def messages_of(stdout: bytes) -> list[dict]:
    """Every stdout line as a JSON object: free text on stdout fails here."""
    out = []
    for number, line in enumerate(stdout.decode().splitlines(), start=1):
        try:
            message = json.loads(line)
        except ValueError:
            raise AssertionError(f"stdout line {number} is not JSON: {line[:200]!r}") from None
        assert isinstance(message, dict) and "type" in message, line[:200]
        out.append(message)
    return out


def states_of(messages: list[dict]) -> list[dict]:
    return [m["state"] for m in messages if m["type"] == "STATE"]


def traces_of(messages: list[dict]) -> list[dict]:
    return [m["trace"] for m in messages if m["type"] == "TRACE"]


# -- in process --------------------------------------------------------------------------------
def write_in_process(config: dict, catalog_: dict, lines: Iterable[dict | str]) -> list[dict]:
    """DestinationCodatExpenses().write(...) with stdin parsed as the CLI parses it; returns the
    STATE messages exactly as the CLI would print them. A `str` line is read as it is (a line
    that is not JSON, say); a dict is serialised."""
    return list(iter_write(config, catalog_, lines))


def iter_write(config: dict, catalog_: dict, lines: Iterable[dict | str]) -> Iterator[dict]:
    """The same, yielding each STATE as the destination emits it."""
    from airbyte_cdk.models import ConfiguredAirbyteCatalogSerializer

    from destination_codat_expenses.destination import DestinationCodatExpenses

    raw_lines = (line if isinstance(line, str) else json.dumps(line) for line in lines)
    parsed = protocol.parse_lines(raw_lines, protocol.InputStats())
    configured = ConfiguredAirbyteCatalogSerializer.load(catalog_)
    yield from DestinationCodatExpenses().write(config, configured, parsed)


# -- the sandbox -------------------------------------------------------------------------------
def admin(base_url: str, method: str, path: str, body: dict | None = None) -> Any:
    with httpx.Client(base_url=base_url, headers=auth_header(), timeout=30) as client:
        answer = client.request(method, path, json=body)
        answer.raise_for_status()
        return answer.json()


@contextlib.contextmanager
def sandbox_process(log: Path, api_key: str = API_KEY, faults: dict | None = None):
    """`codat-expenses sandbox` as its own process on a free loopback port (so several can run
    in parallel without sharing this process's GIL), its output in `log` (never a pipe nobody
    reads: a full pipe would stall the server); yields its base URL."""
    port = free_port()
    command = [str(OPERATOR_CLI), "sandbox", "--port", str(port), "--api-key", api_key]
    if faults:
        command += ["--faults", json.dumps(faults)]
    base_url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: server.poll() is not None or healthy(base_url), timeout=60)
        if server.poll() is not None:
            raise AssertionError(f"the sandbox exited: {log.read_text()[-2000:]}")
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/_sandbox/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def ground_truth(base_url: str) -> dict[str, list[dict]]:
    return admin(base_url, "GET", "/_sandbox/ground-truth")


def books(base_url: str) -> dict[str, dict]:
    """transaction id -> its book entry (with company), over every company."""
    out: dict[str, dict] = {}
    for company_id, entries in ground_truth(base_url).items():
        for entry in entries:
            assert entry["transaction_id"] not in out, "one id in two companies' books"
            out[entry["transaction_id"]] = {**entry, "company_id": company_id}
    return out


def patch_company(base_url: str, company_id: str, changes: dict) -> None:
    admin(base_url, "PATCH", f"/_sandbox/companies/{company_id}", changes)


def sync_statuses(base_url: str, company_id: str) -> list[dict]:
    return admin(base_url, "GET", f"/companies/{company_id}/sync/expenses/syncs/list/status")


# -- the store ---------------------------------------------------------------------------------
@contextlib.contextmanager
def store_reader(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, closed after use. Through the store's own helper: in a process
    that also wrote the file (the in-process tests), it first gives up that process's lease."""
    with reading(str(path), read_only=True) as connection:
        yield connection


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with store_reader(path) as db:
        return db.execute(sql, params or []).fetchall()


def ledger(path: Path) -> dict[str, tuple]:
    """transaction id -> (company, state, codat_status, message, attempts, last_sync_id)."""
    rows = query(
        path,
        "SELECT transaction_id, company_id, state, codat_status, message, attempts, "
        "last_sync_id FROM transactions",
    )
    return {row[0]: row[1:] for row in rows}


def wait_until(check, timeout: float = 30.0, interval: float = 0.05):
    """Poll `check()` until it returns something truthy (30 s by default here)."""
    return wait_for(check, timeout, interval)
