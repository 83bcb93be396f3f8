"""Fixtures that grow from the in-process sandbox to a real one on a loopback port."""

from __future__ import annotations

import uuid

import httpx
import pytest

from codat_sandbox.app import SandboxSettings, create_app
from codat_sandbox.server import ServerThread

# Shared with the benchmarks and scripts from testing/; the tests import them from here.
from testing.polling import wait_for  # noqa: F401
from testing.postgres import new_database, throwaway_cluster
from testing.sandbox import (  # noqa: F401
    API_KEY,
    DYNAMICS,
    FREEAGENT,
    INTACCT_NO_CONFIG,
    QBD,
    QBO,
    XERO,
    ZOHO_DEAUTHORIZED,
    auth_header,
)

# The Airbyte CDK's standard-test plugin: its options (--connector-image, ...), fixtures and the
# scenario parametrisation used by test_destination_protocol.py's standard suite.
pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]

AUTH = auth_header(API_KEY)


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


@pytest.fixture(scope="session")
def postgres_url():
    """One throwaway PostgreSQL cluster for the whole run (testing/postgres.py): the superuser's
    URL to its `postgres` database. Tests that need a clean slate take `postgres_database`."""
    with throwaway_cluster() as url:
        yield url


@pytest.fixture
def postgres_database(postgres_url):
    """A fresh, empty database on the session's cluster; its URL."""
    return new_database(postgres_url, f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def anyio_backend():
    return "asyncio"
