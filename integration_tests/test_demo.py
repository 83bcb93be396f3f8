"""The demo, end to end: real sandbox, receiver, destination and report processes. Its summary
must match the store and the sandbox's books, one seed must give one summary, and whether it
ends on its own, on SIGTERM or on Ctrl-C, it must leave nothing running and no traceback."""

from __future__ import annotations

import json
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import pytest
from process_support import Watched

from codat_sandbox.server import free_port
from destination_codat_expenses.demo.records import COMPANIES
from testing.sandbox import auth_header

CLI = Path(sys.executable).with_name("codat-expenses")
SEED, RECORDS = 11, 400


@dataclass
class Finished:
    run: Watched
    returncode: int
    workdir: Path

    @property
    def stdout(self) -> str:
        return self.run.stdout()

    @property
    def stderr(self) -> str:
        return self.run.stderr()


def start_demo(base: Path, serve: bool, *extra: str, records: int = RECORDS) -> Watched:
    command = [str(CLI), "demo", "--records", str(records), "--companies", "8"]
    command += ["--seed", str(SEED), "--dir", str(base / "run"), *extra]
    return Watched(command, {"DEMO_SERVE": "1" if serve else "0"}, base / "output")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Finished:
    base = tmp_path_factory.mktemp("demo")
    run = start_demo(base, serve=False)
    return Finished(run, run.wait(600), base / "run")


@pytest.fixture(scope="module")
def served_then_terminated(tmp_path_factory) -> Finished:
    """The same seed again, this time serving the report, until a SIGTERM."""
    base = tmp_path_factory.mktemp("served")
    run = start_demo(base, True, "--port", str(free_port("127.0.0.1")))
    # the line on signing in to Retry follows the report's address
    run.until(lambda: "Retry failed items" in run.stdout(), 600, "the report served")
    assert any("streamlit" in seen.command for seen in run.seen.values())
    run.process.send_signal(signal.SIGTERM)
    return Finished(run, run.wait(120), base / "run")


def number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in:\n{text}"
    return int(match.group(1))


def summary_of(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = lines.index("syncs by status")
    end = next(i for i, line in enumerate(lines) if line.startswith("checked "))
    return lines[start : end + 1]


def tracebacks(finished: Finished) -> list[str]:
    texts = {path.name: path.read_text() for path in finished.workdir.glob("*.log")}
    texts |= {"stdout": finished.stdout, "stderr": finished.stderr}
    return [name for name, text in texts.items() if "Traceback" in text]


def query(workdir: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(workdir / "status.duckdb"), read_only=True) as db:
        return db.execute(sql).fetchall()


def test_demo_exits_zero_and_prints_every_part(demo):
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-2000:]
    for part in (
        "sandbox ",
        "webhook receiver",
        "destination ",
        "syncs by status",
        "sandbox books",
        "receipts ",
        "bad records",
        "checked ",
        "status store",
    ):
        assert part in demo.stdout
    assert "400/400" in demo.stderr


def test_demo_summary_matches_store_and_books(demo):
    [(completed,)] = query(
        demo.workdir, "SELECT count(*) FROM v_transactions WHERE state = 'completed'"
    )
    [(rejects,)] = query(demo.workdir, "SELECT count(*) FROM v_rejects")
    codes = dict(query(demo.workdir, "SELECT status_code, count(*) FROM v_syncs GROUP BY 1"))
    [(webhooks,)] = query(demo.workdir, "SELECT count(*) FROM v_webhook_events")
    [(uploaded,)] = query(
        demo.workdir, "SELECT count(*) FROM v_attachments WHERE status = 'uploaded'"
    )
    out = demo.stdout
    assert number(r"transactions\s+(\d+) completed", out) == completed
    assert number(r"sandbox books\s+(\d+) written", out) == completed
    assert number(r"(\d+) written more than once", out) == 0
    assert number(r"receipts\s+(\d+) uploaded", out) == uploaded > 0
    assert number(r"bad records\s+(\d+) rejected", out) == rejects > 0
    assert number(r"webhook events\s+(\d+) received", out) == webhooks > 0
    for code, count in codes.items():
        assert re.search(rf"^\s+{code}\s+.*\s{count}$", out, re.M), (code, count)
    assert {2000, 4000, 4040} <= set(codes), "the demo shows real successes and failures"
    assert number(r"agree: (\d+) sync codes", out) == sum(codes.values())


def test_demo_leaves_nothing_running_and_no_traceback(demo):
    assert demo.run.seen, "the demo's processes were not seen"
    assert demo.run.left_running() == []
    assert tracebacks(demo) == []


def sync_outcomes(workdir: Path) -> list[tuple]:
    """Each sync by what it carried (sync ids differ from run to run): company, transaction
    ids, status code, receipts uploaded for it."""
    return sorted(
        query(
            workdir,
            "SELECT s.company_id, list(p.transaction_id ORDER BY p.transaction_id), "
            "s.status_code, (SELECT count(*) FROM v_attachments a WHERE a.sync_id = s.sync_id "
            "AND a.status = 'uploaded') FROM v_syncs s JOIN v_push_items p USING (sync_id) "
            "GROUP BY s.sync_id, s.company_id, s.status_code",
        )
    )


def test_one_seed_gives_the_same_records_syncs_and_summary(demo, served_then_terminated):
    first, again = demo, served_then_terminated
    assert first.returncode == 0, first.stdout[-3000:]
    records = (first.workdir / "messages.jsonl").read_bytes()
    assert records == (again.workdir / "messages.jsonl").read_bytes()
    assert sync_outcomes(first.workdir) == sync_outcomes(again.workdir)
    assert summary_of(first.stdout) == summary_of(again.stdout)


def test_sigterm_while_serving_stops_everything_it_started(served_then_terminated):
    finished = served_then_terminated
    assert finished.returncode == 130, finished.stdout[-2000:]
    assert finished.run.left_running() == []
    assert tracebacks(finished) == []
    # no terminal to print a one-off token on: Retry stays off, and the demo says how to turn it on
    assert "Retry failed items is off" in finished.stdout
    assert "CODAT_EXPENSES_OPERATOR_TOKEN" in finished.stdout
    assert "operator token:" not in finished.stdout


def syncs_opened(workdir: Path) -> bool:
    """True once the destination's pushes reach the sandbox (its address and key are in the
    config the demo wrote)."""
    try:
        config = json.loads((workdir / "config.json").read_text())
        headers = auth_header(config["api_key"])
        with httpx.Client(base_url=config["base_url"], headers=headers) as http:
            for company in COMPANIES:
                path = f"/companies/{company.id}/sync/expenses/syncs/list/status"
                if http.get(path, timeout=2).json():
                    return True
    except (OSError, ValueError, KeyError, httpx.HTTPError):
        return False
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_mid_write_stops_everything_it_started(tmp_path, signum):
    run = start_demo(tmp_path, serve=False, records=3000)
    workdir = tmp_path / "run"
    run.until(lambda: syncs_opened(workdir), 300, "a sync opened by the destination")
    assert any("destination-codat-expenses write" in s.command for s in run.seen.values())
    run.process.send_signal(signum)
    finished = Finished(run, run.wait(120), workdir)
    assert finished.returncode == 130, finished.stdout[-2000:]
    assert run.left_running() == []
    assert tracebacks(finished) == []
    # the destination was stopped, not killed: it closed its run in the store, saying why
    assert query(workdir, "SELECT outcome, error FROM v_runs") == [
        ("failed", "The run was stopped before it finished (interrupted or terminated).")
    ]
