"""The connector's install carries no report and no sandbox: the base dependencies leave out
Streamlit and the sandbox's packages, nothing the connector, the operator commands or the receiver
import reaches them, and a command that needs an extra says which one instead of a traceback."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from destination_codat_expenses.cli import extras
from destination_codat_expenses.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# what only the report or the sandbox needs, as import names
EXTRA_ONLY_MODULES = ("streamlit", "altair", "report_app", "codat_sandbox", "standardwebhooks")

# the connector (spec, check, write), the operator commands and the receiver, loaded and run as
# far as they go without Codat: spec, and the CLI's parser for every command
CONNECTOR_PATH = """
import logging, sys
from destination_codat_expenses.run import run
from destination_codat_expenses.destination import DestinationCodatExpenses
from destination_codat_expenses import check, pipeline, retry, refresh, reconcile
from destination_codat_expenses.cli.main import build_parser
from destination_codat_expenses.cli import ops, webhooks
from destination_codat_expenses.webhooks import receiver
DestinationCodatExpenses().spec(logging.getLogger("spec"))
build_parser().parse_args(["status", "refresh", "--store", "s.duckdb"])
build_parser().parse_args(["retry", "--store", "s.duckdb", "--sync", "x"])
print(",".join(sorted(name for name in sys.modules if name.split(".")[0] in {names})))
"""


def package_names(requirements: list[str]) -> set[str]:
    return {r.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip() for r in requirements}


def test_the_base_install_has_no_streamlit_and_no_sandbox_packages():
    base = package_names(PYPROJECT["project"]["dependencies"])
    assert not base & {"streamlit", "standardwebhooks", "python-multipart"}, base
    optional = PYPROJECT["project"]["optional-dependencies"]
    assert "streamlit" in package_names(optional["report"])
    assert {"standardwebhooks", "python-multipart"} <= package_names(optional["sandbox"])


def test_the_connector_the_operator_commands_and_the_receiver_never_import_an_extra():
    script = CONNECTOR_PATH.replace("{names}", repr(set(EXTRA_ONLY_MODULES)))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "", f"imported: {done.stdout.strip()}"


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["report", "--store", "s.duckdb"], "[report]"),
        (["sandbox"], "[sandbox]"),
        (["demo"], "[report,sandbox]"),
    ],
)
def test_a_command_without_its_extra_names_the_extra_to_install(monkeypatch, capsys, argv, wanted):
    real = importlib.util.find_spec
    absent = {"streamlit", "python_multipart", "standardwebhooks"}
    monkeypatch.setattr(
        extras.importlib.util, "find_spec", lambda name: None if name in absent else real(name)
    )
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert f"needs the {wanted} extra" in error
    assert f"pip install 'destination-codat-expenses{wanted}'" in error
    assert "Traceback" not in error
