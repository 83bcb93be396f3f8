"""The non-interactive demo, end to end: real sandbox, receiver and destination processes; its
summary must match the store and the sandbox's books, and it must leave nothing running."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

CLI = Path(sys.executable).with_name("codat-expenses")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo") / "run"
    env = {**os.environ, "DEMO_SERVE": "0"}
    result = subprocess.run(
        [
            str(CLI),
            "demo",
            "--records",
            "400",
            "--companies",
            "8",
            "--seed",
            "11",
            "--dir",
            str(workdir),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    return result, workdir


def number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in:\n{text}"
    return int(match.group(1))


def test_demo_exits_zero_and_prints_every_part(demo):
    result, workdir = demo
    assert result.returncode == 0, result.stderr[-2000:]
    for part in (
        "sandbox ",
        "webhook receiver",
        "destination ",
        "syncs by status",
        "sandbox books",
        "bad records",
        "status store",
    ):
        assert part in result.stdout
    assert "400/400" in result.stderr


def test_demo_summary_matches_store_and_books(demo):
    result, workdir = demo
    with duckdb.connect(str(workdir / "status.duckdb"), read_only=True) as db:
        completed = db.execute(
            "SELECT count(*) FROM v_transactions WHERE state = 'completed'"
        ).fetchone()[0]
        rejects = db.execute("SELECT count(*) FROM v_rejects").fetchone()[0]
        codes = dict(db.execute("SELECT status_code, count(*) FROM v_syncs GROUP BY 1").fetchall())
        webhooks = db.execute("SELECT count(*) FROM v_webhook_events").fetchone()[0]
    out = result.stdout
    assert number(r"transactions\s+(\d+) completed", out) == completed
    assert number(r"sandbox books\s+(\d+) written", out) == completed
    assert number(r"(\d+) written more than once", out) == 0
    assert number(r"bad records\s+(\d+) rejected", out) == rejects > 0
    assert number(r"webhook events\s+(\d+) received", out) == webhooks > 0
    for code, count in codes.items():
        assert re.search(rf"^\s+{code}\s+.*\s{count}$", out, re.M), (code, count)
    assert {2000, 4000, 4040} <= set(codes), "the demo shows real successes and failures"


def test_demo_leaves_nothing_running(demo):
    _, workdir = demo
    leftovers = subprocess.run(["pgrep", "-f", str(workdir)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""
