"""Fixtures that grow from the in-process sandbox to a real one on a loopback port."""

from __future__ import annotations

import base64
import time
import uuid

import httpx
import pytest

from codat_sandbox.app import SandboxSettings, create_app
from codat_sandbox.server import ServerThread

# The Airbyte CDK's standard-test plugin: its options (--connector-image, ...), fixtures and the
# scenario parametrisation used by test_destination_protocol.py's standard suite.
pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]

API_KEY = "sandbox-test-key"
AUTH = {"Authorization": "Basic " + base64.b64encode(API_KEY.encode()).decode()}
XERO = "11111111-1111-4111-8111-111111111111"
QBO = "22222222-2222-4222-8222-222222222222"
QBD = "66666666-6666-4666-8666-666666666666"
FREEAGENT = "55555555-5555-4555-8555-555555555555"
DYNAMICS = "44444444-4444-4444-8444-444444444444"
ZOHO_DEAUTHORIZED = "77777777-7777-4777-8777-777777777777"
INTACCT_NO_CONFIG = "88888888-8888-4888-8888-888888888888"


@pytest.fixture
def sandbox_app():
    return create_app(SandboxSettings(api_key=API_KEY, scenario="demo"))


@pytest.fixture
def sandbox_url(sandbox_app):
    with ServerThread(sandbox_app) as base_url:
        yield base_url


@pytest.fixture
def api(sandbox_url):
    """A real HTTP client on loopback, authenticated."""
    with httpx.Client(base_url=sandbox_url, headers=AUTH, timeout=10) as client:
        yield client


def expense(**overrides) -> dict:
    """A valid Xero-ready card payment; override any field."""
    body = {
        "id": str(uuid.uuid4()),
        "type": "Payment",
        "issueDate": "2024-05-01",
        "currency": "GBP",
        "merchantName": "Coffee Corner",
        "lines": [
            {
                "netAmount": 10.00,
                "taxAmount": 2.00,
                "accountRef": {"id": "402"},
                "taxRateRef": {"id": "STD"},
            }
        ],
    }
    body.update(overrides)
    return body


def expenses_path(company_id: str) -> str:
    return f"/companies/{company_id}/sync/expenses"


def wait_for(check, timeout: float = 10.0, interval: float = 0.05):
    """Poll `check()` until it returns something truthy, and return that; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"Gave up after {timeout} s waiting for {check}.")
        time.sleep(interval)


@pytest.fixture
def anyio_backend():
    return "asyncio"
