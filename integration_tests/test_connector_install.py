"""The connector installed the way its image installs it (the Dockerfile runs
scripts/install-connector.sh: the built wheel and uv.lock's versions, no extras) into a fresh
venv, since no container engine runs here, then run from that venv against the sandbox (served
from the project env on loopback): spec, check and write do their work, the operator commands
run, and what needs an extra says so. The sandbox's ground truth is checked first, then that the
store agrees."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from destination_support import (
    API_KEY,
    DYNAMICS,
    QBO,
    XERO,
    books,
    catalog,
    flat,
    ledger,
    messages_of,
    record,
    routed,
    sandbox_process,
    stream_state,
    txn_id,
    write_files,
)

from destination_codat_expenses.cli.env import KEY_ENV, URL_ENV

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "scripts" / "install-connector.sh"
STREAM = "card_spend"
EXPECTED_DOCS = json.loads((ROOT / "destination_codat_expenses" / "spec.json").read_text())[
    "documentationUrl"
]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def connector_venv(tmp_path_factory) -> Path:
    """A fresh venv holding only the connector, as the image does."""
    root = tmp_path_factory.mktemp("connector-image")
    venv = root / "venv"
    uv = [shutil.which("uv")] if shutil.which("uv") else ["python3", "-m", "uv"]  # as make does
    subprocess.run([*uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    env = {**os.environ, "UV": " ".join(uv)}
    env.pop("VIRTUAL_ENV", None)  # the script targets the interpreter it is given, no other
    done = subprocess.run(
        [str(INSTALL), str(venv / "bin" / "python"), str(root / "dist")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return venv


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with sandbox_process(tmp_path_factory.mktemp("sandbox") / "sandbox.log") as base_url:
        yield base_url


def run(venv: Path, *command: str, stdin: Path | None = None, env: dict | None = None):
    with open(stdin or os.devnull, "rb") as feed:
        return subprocess.run(
            [str(venv / "bin" / command[0]), *command[1:]],
            stdin=feed,
            capture_output=True,
            env=env,
            timeout=300,
            check=False,
        )


def test_the_image_install_has_the_connector_and_neither_extra(connector_venv):
    python = str(connector_venv / "bin" / "python")
    for module in ("streamlit", "standardwebhooks", "python_multipart"):
        found = subprocess.run([python, "-c", f"import {module}"], capture_output=True)
        assert found.returncode != 0, f"{module} is installed in the connector's venv"
    here = subprocess.run(
        [python, "-c", "import destination_codat_expenses, sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(here.stdout.strip()) == connector_venv  # the wheel, not this checkout


def write_args(paths: dict) -> list[str]:
    return ["write", "--config", str(paths["config"]), "--catalog", str(paths["catalog"])]


def test_spec_check_and_write_from_the_image_install(connector_venv, sandbox, tmp_path):
    store = tmp_path / "status.duckdb"
    rows = [flat(f"img-{i}", (XERO, QBO)[i % 2]) for i in range(12)]
    lines = [record(STREAM, row) for row in rows] + [stream_state(STREAM, 1)]
    paths = write_files(tmp_path / "run", routed(sandbox, store), catalog(STREAM), lines)

    spec = run(connector_venv, "destination-codat-expenses", "spec")
    check = run(
        connector_venv, "destination-codat-expenses", "check", "--config", str(paths["config"])
    )
    write = run(
        connector_venv, "destination-codat-expenses", *write_args(paths), stdin=paths["messages"]
    )

    assert messages_of(spec.stdout)[0]["spec"]["documentationUrl"] == EXPECTED_DOCS
    statuses = [m for m in messages_of(check.stdout) if m["type"] == "CONNECTION_STATUS"]
    assert [s["connectionStatus"]["status"] for s in statuses] == ["SUCCEEDED"], check.stdout
    assert write.returncode == 0, write.stderr.decode()[-3000:]
    assert [m["state"]["id"] for m in messages_of(write.stdout) if m["type"] == "STATE"] == [1]
    expected = {txn_id(STREAM, row["id"]): row["company"] for row in rows}
    written = {t: e for t, e in books(sandbox).items() if e["company_id"] in (XERO, QBO)}
    assert {t: e["company_id"] for t, e in written.items()} == expected
    assert all(entry["writes"] == 1 for entry in written.values())
    assert {t: row[:2] for t, row in ledger(store).items()} == {
        t: (company, "completed") for t, company in expected.items()
    }


def test_operator_commands_run_and_the_report_names_its_extra(connector_venv, sandbox, tmp_path):
    store = tmp_path / "status.duckdb"
    lines = [record(STREAM, flat("ops-1", DYNAMICS)), stream_state(STREAM, 1)]
    paths = write_files(tmp_path / "run", routed(sandbox, store), catalog(STREAM), lines)
    env = {**os.environ, KEY_ENV: API_KEY, URL_ENV: sandbox}
    cli = "codat-expenses"

    wrote = run(
        connector_venv, "destination-codat-expenses", *write_args(paths), stdin=paths["messages"]
    )
    refreshed = run(connector_venv, cli, "status", "refresh", "--store", str(store), env=env)
    listed = run(connector_venv, cli, "syncs", "list", "--store", str(store))
    report = run(connector_venv, cli, "report", "--store", str(store))
    sandbox_command = run(connector_venv, cli, "sandbox")

    assert wrote.returncode == 0, wrote.stderr.decode()[-3000:]
    assert txn_id(STREAM, "ops-1") in books(sandbox)
    assert refreshed.returncode == 0, refreshed.stderr.decode()[-3000:]
    assert listed.returncode == 0 and DYNAMICS in listed.stdout.decode()
    for done, extra in ((report, "[report]"), (sandbox_command, "[sandbox]")):
        error = done.stderr.decode()
        assert done.returncode == 2 and "Traceback" not in error, error
        assert f"needs the {extra} extra" in error
        assert f"pip install 'destination-codat-expenses{extra}'" in error
