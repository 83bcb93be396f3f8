"""The sandbox as tests and benchmarks meet it: the demo scenario's companies, the real
`codat-expenses sandbox` command as its own process on a loopback port, and its admin API (ground
truth, the books, company settings). No fakes: everything goes over HTTP to a real server."""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from codat_sandbox.server import free_port
from testing.polling import wait_for

API_KEY = "sandbox-test-key"
# the demo scenario's companies (codat_sandbox/scenarios/demo.yaml), one per platform
XERO = "11111111-1111-4111-8111-111111111111"
QBO = "22222222-2222-4222-8222-222222222222"  # QuickBooks Online
NETSUITE = "33333333-3333-4333-8333-333333333333"
DYNAMICS = "44444444-4444-4444-8444-444444444444"  # Dynamics 365 Business Central
FREEAGENT = "55555555-5555-4555-8555-555555555555"
QBD = "66666666-6666-4666-8666-666666666666"  # QuickBooks Desktop
ZOHO_DEAUTHORIZED = "77777777-7777-4777-8777-777777777777"  # Zoho Books, de-authorized
INTACCT_NO_CONFIG = "88888888-8888-4888-8888-888888888888"  # Sage Intacct, no configuration
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
NO_TAX_RATES = {FREEAGENT}  # FreeAgent takes no tax rate reference
OPERATOR_CLI = Path(sys.executable).with_name("codat-expenses")
START_TIMEOUT_S = 60


def auth_header(api_key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(api_key.encode()).decode()}


# -- the process -------------------------------------------------------------------------------
def sandbox_command(
    port: int, api_key: str = API_KEY, faults: dict | None = None, options: Sequence[str] = ()
) -> list[str]:
    """`codat-expenses sandbox` on 127.0.0.1:`port`, the console script next to this
    interpreter; `options` are more of its flags (`--per-minute`, `--scenario`, ...)."""
    command = [str(OPERATOR_CLI), "sandbox", "--port", str(port), "--api-key", api_key]
    if faults:
        command += ["--faults", json.dumps(faults)]
    return [*command, *options]


@contextlib.contextmanager
def sandbox_process(
    log: Path, api_key: str = API_KEY, faults: dict | None = None, options: Sequence[str] = ()
) -> Iterator[str]:
    """`codat-expenses sandbox` as its own process on a free loopback port (so several can run
    in parallel without sharing this process's GIL); yields its base URL."""
    port = free_port()
    with running_sandbox(sandbox_command(port, api_key, faults, options), port, log) as base_url:
        yield base_url


@contextlib.contextmanager
def running_sandbox(command: list[str], port: int, log: Path) -> Iterator[str]:
    """Run a sandbox `command` that listens on 127.0.0.1:`port`, its output in `log` (never a
    pipe nobody reads: a full pipe would stall the server); yields its base URL once healthy,
    and stops it on the way out."""
    base_url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: server.poll() is not None or healthy(base_url), START_TIMEOUT_S)
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


# -- the admin API -----------------------------------------------------------------------------
def admin(
    base_url: str, method: str, path: str, body: dict | None = None, api_key: str = API_KEY
) -> Any:
    with httpx.Client(base_url=base_url, headers=auth_header(api_key), timeout=30) as client:
        answer = client.request(method, path, json=body)
        answer.raise_for_status()
        return answer.json()


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


def patch_company(base_url: str, company_id: str, changes: dict, api_key: str = API_KEY) -> None:
    admin(base_url, "PATCH", f"/_sandbox/companies/{company_id}", changes, api_key)


def sync_statuses(base_url: str, company_id: str) -> list[dict]:
    return admin(base_url, "GET", f"/companies/{company_id}/sync/expenses/syncs/list/status")
