"""`codat-expenses report` as a person runs it: a real Streamlit server on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import httpx
import pytest
from conftest import wait_for

from testing import report_seed as seed

CLI = Path(sys.executable).with_name("codat-expenses")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def report_server(tmp_path):
    store = seed.seed_story(str(tmp_path / "status.duckdb"))
    as_an_older_version_left_it(store)
    port = free_port()
    process = subprocess.Popen(
        [str(CLI), "report", "--store", store, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,  # not the project folder: the installed package must be found
        start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        with contextlib.suppress(ProcessLookupError):  # a test may have stopped it already
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def as_an_older_version_left_it(store: str) -> None:
    """The store as a destination before schema v8 wrote it (no companies, no v_companies)."""
    with duckdb.connect(store) as db:
        db.execute("DROP VIEW v_companies; DROP TABLE companies")
        db.execute("DELETE FROM schema_migrations WHERE version = 8")


def healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/_stcore/health", timeout=2).text == "ok"
    except httpx.TransportError:
        return False


def test_report_serves_on_loopback(report_server):
    base_url, process = report_server
    wait_for(lambda: healthy(base_url) or process.poll() is not None, timeout=60)
    assert process.poll() is None, process.stdout.read()
    page = httpx.get(f"{base_url}/sync?sync={seed.S_CLOSED_GB}", timeout=10)
    assert page.status_code == 200 and "<noscript>" in page.text
    # the report brought the older store up to the views it reads
    store = Path(process.args[3])
    with duckdb.connect(str(store), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM v_companies").fetchone()[0] == 0


def test_sigterm_to_the_report_command_stops_the_server(report_server):
    """Only the command's own pid is signalled (not its process group, as the fixture does):
    the server it started must stop with it, not run on as an orphan."""
    base_url, process = report_server
    wait_for(lambda: healthy(base_url) or process.poll() is not None, timeout=60)
    assert process.poll() is None, process.stdout.read()
    os.kill(process.pid, signal.SIGTERM)
    process.wait(timeout=30)
    assert not healthy(base_url)


def test_report_refuses_a_missing_store(tmp_path):
    result = subprocess.run(
        [str(CLI), "report", "--store", str(tmp_path / "nope.duckdb")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "There is no status store at" in result.stderr
