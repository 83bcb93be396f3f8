"""The sandbox runs the same in-process (ASGI transport) and as a real CLI process on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import API_KEY, AUTH, XERO, expense, expenses_path

from codat_sandbox.server import free_port

CLI = Path(sys.executable).with_name("codat-expenses")


@pytest.mark.anyio
async def test_in_process_asgi_transport_runs_a_whole_sync(sandbox_app):
    transport = httpx.ASGITransport(app=sandbox_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox", headers=AUTH
    ) as client:
        created = await client.post(f"{expenses_path(XERO)}/expense-transactions", json=[expense()])
        assert created.status_code == 200
        await client.post("/_sandbox/clock/advance", json={"seconds": 1})
        sync_id = created.json()["syncId"]
        status = await client.get(f"{expenses_path(XERO)}/syncs/{sync_id}/status")
    assert status.json()["syncStatusCode"] == 2000


def wait_for(url: str, headers: dict, deadline_s: float = 20) -> httpx.Response:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return httpx.get(url, headers=headers, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def cli_sandbox():
    port = free_port()
    env = {**os.environ, "CODAT_SANDBOX_API_KEY": API_KEY}
    process = subprocess.Popen(
        [str(CLI), "sandbox", "--host", "127.0.0.1", "--port", str(port), "--scenario", "demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_cli_serves_with_key_from_environment(cli_sandbox):
    assert wait_for(f"{cli_sandbox}/companies", AUTH).json()["totalResults"] == 8
    assert httpx.get(f"{cli_sandbox}/companies").status_code == 401


def test_cli_rejects_unknown_scenario_with_reason():
    result = subprocess.run(
        [str(CLI), "sandbox", "--scenario", "no-such-scenario"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no-such-scenario" in result.stderr and "demo" in result.stderr
