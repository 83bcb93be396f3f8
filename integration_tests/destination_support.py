"""Shared by the destination's integration tests: input builders, the real CLI and the destination
in process. The sandbox's process, admin API and ground truth, and the read-only looks at the
DuckDB store live in `testing/` (shared with the benchmarks) and are re-exported here. No fakes:
the sandbox is served over loopback and the store is a real DuckDB file."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from destination_codat_expenses import protocol
from destination_codat_expenses.mapping import transaction_id_for
from testing.polling import wait_for

# The sandbox and store helpers live in testing/ (the benchmarks use them too); the tests import
# them from here, as they did before they moved.
from testing.sandbox import (  # noqa: F401
    API_KEY,
    BASE_CURRENCY,
    DYNAMICS,
    FREEAGENT,
    INTACCT_NO_CONFIG,
    NETSUITE,
    NO_TAX_RATES,
    OPERATOR_CLI,
    QBD,
    QBO,
    XERO,
    ZOHO_DEAUTHORIZED,
    admin,
    books,
    healthy,
    patch_company,
    sandbox_process,
    sync_statuses,
)
from testing.store import ledger, query, store_reader  # noqa: F401

CLI = Path(sys.executable).with_name("destination-codat-expenses")


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


def transfer(key: str, amount: str = "100.00", source: str = "090", target: str = "800") -> dict:
    """A valid `transfers` row (Codat's request shape): from the company card to equity."""
    return {
        "id": key,
        "date": "2024-05-02",
        "from": {"accountRef": {"id": source}, "amount": amount},
        "to": {"accountRef": {"id": target}, "amount": amount},
    }


def bill(key: str, net: str = "30.00", supplier: str = "SUP-CARD", currency: str = "USD") -> dict:
    """A valid `reimbursable_expense_transactions` row: one hotel line owed to `supplier`."""
    return {
        "id": key,
        "contactRef": {"id": supplier},
        "issueDate": "2024-05-04",
        "dueDate": "2024-05-30",
        "currency": currency,
        "lines": [{"description": "Hotel", "netAmount": net, "accountRef": {"id": "401"}}],
    }


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


def wait_until(check, timeout: float = 30.0, interval: float = 0.05):
    """Poll `check()` until it returns something truthy (30 s by default here)."""
    return wait_for(check, timeout, interval)
