"""examples/pyairbyte_faker.py, run as a user would: PyAirbyte and the destination's wheel each
in a virtual environment of its own, built with uv (their DuckDB pins differ), source-faker
(airbyte-source-faker) in a third, the sandbox served over loopback. Downloads from PyPI, so
it runs only when asked for: `make example` (pytest -m example)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from integration_tests.destination_support import API_KEY, XERO, books, ledger, sandbox_process

pytestmark = [pytest.mark.example, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


def uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def run(*command: str, cwd: Path, env: dict | None = None) -> None:
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=1800, check=False, env=env
    )
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def venv_with(folder: Path, *packages: str) -> Path:
    run(*uv(), "venv", "-q", "--python", "3.11", str(folder), cwd=folder.parent)
    python = folder / "bin" / "python"
    run(*uv(), "pip", "install", "-q", "--python", str(python), *packages, cwd=folder.parent)
    return folder / "bin"


def test_the_pyairbyte_example_writes_faker_products_with_defaults_and_rules(tmp_path):
    run(*uv(), "build", "-q", "--wheel", "--out-dir", str(tmp_path / "dist"), cwd=ROOT)
    wheel = next((tmp_path / "dist").glob("*.whl"))
    destination = venv_with(tmp_path / "dest", str(wheel)) / "destination-codat-expenses"
    pyairbyte = venv_with(tmp_path / "pyairbyte", "airbyte") / "python"
    faker = venv_with(tmp_path / "faker", "airbyte-source-faker") / "source-faker"
    store = tmp_path / "status.duckdb"
    with sandbox_process(tmp_path / "sandbox.log") as base_url:
        # offline: no registry look-ups (source and destination are given as executables)
        env = {**os.environ, "DO_NOT_TRACK": "1", "AIRBYTE_OFFLINE_MODE": "1"}
        run(
            str(pyairbyte),
            str(ROOT / "examples" / "pyairbyte_faker.py"),
            "--destination",
            str(destination),
            "--source",
            str(faker),
            "--base-url",
            base_url,
            "--api-key",
            API_KEY,
            "--store",
            str(store),
            cwd=tmp_path,
            env=env,
        )
        written = [e for e in books(base_url).values() if e["company_id"] == XERO]
    assert len(written) == 10  # the example asks source-faker for count=10: ten products
    for entry in written:
        total = Decimal(entry["total"])
        assert (entry["currency"], entry["bank_account"], entry["contact"]) == (
            "GBP",
            "090",
            "SUP-CARD",
        )
        assert entry["lines"][0]["account"] == ("401" if total >= 50000 else "403"), entry
    held = ledger(store)
    assert {entry["transaction_id"] for entry in written} <= set(held)
    assert all(held[e["transaction_id"]][1] == "completed" for e in written)
