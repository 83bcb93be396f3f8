"""Readers during a write: while the real destination writes at full speed (loopback sandbox,
no latency), read the status store again and again the two ways people do, and count how many
reads succeed and how long each waited.

- report: the Sync Health dashboard's queries (report_app.queries: fetch_dashboard,
  fetch_history, fetch_date_bounds), uncached, in this process, as a render does;
- cli: `codat-expenses syncs list --store PATH`, a fresh process each time (its wall time, so
  interpreter start-up is in it: the same command on the idle store after the write is printed
  as the floor).

Target (issue 12, reported, never asserted): every read succeeds, p95 wait under 1 s.

    python -m benchmarks.readers_during_write [--records 20000] [--pause 0.2]
"""

from __future__ import annotations

import argparse
import logging
import shlex
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.destination_throughput import API_KEY, quick_syncs, run_writer, write_input
from benchmarks.measure import machine_load, percentile, print_footer
from codat_sandbox.server import free_port
from testing.sandbox import OPERATOR_CLI, running_sandbox, sandbox_command

FIRST_READ_TIMEOUT_S = 60
CLI_TIMEOUT_S = 120


@dataclass
class Reads:
    name: str
    waits: list[float] = field(default_factory=list)  # every attempt, failed ones too
    failures: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        if not self.waits:
            return f"{self.name:7} no reads"
        ok = len(self.waits) - sum(self.failures.values())
        p50, p95 = percentile(self.waits, 50), percentile(self.waits, 95)
        line = (
            f"{self.name:7} {ok}/{len(self.waits)} succeeded; wait p50 {p50:.2f} s, "
            f"p95 {p95:.2f} s, max {max(self.waits):.2f} s"
        )
        verdict = "meets" if not self.failures and p95 < 1.0 else "misses"
        failures = "".join(f"\n        {n} x {why}" for why, n in self.failures.items())
        return f"{line} (target all succeed, p95 < 1 s: {verdict}){failures}"


def report_read(store: Path) -> None:
    from report_app import queries  # pandas: only this benchmark's reader needs it

    # outside `streamlit run` its caches warn once per cached function that there is no runtime
    logging.getLogger("streamlit.runtime.caching").setLevel(logging.ERROR)

    everything = queries.SyncFilter()
    queries.fetch_dashboard(str(store), everything)
    queries.fetch_history(str(store), everything)
    queries.fetch_date_bounds(str(store))


def cli_command(store: Path) -> list[str]:
    return [str(OPERATOR_CLI), "syncs", "list", "--store", str(store), "--limit", "20"]


def cli_read(store: Path) -> None:
    done = subprocess.run(cli_command(store), capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError((done.stderr.strip().splitlines() or ["exit code"])[-1][:160])


def timed(read, store: Path, reads: Reads) -> None:
    started = time.monotonic()
    try:
        read(store)
    except Exception as error:  # a failed read is the figure: counted by its message
        reads.failures[f"{type(error).__name__}: {str(error)[:160]}"] += 1
    reads.waits.append(time.monotonic() - started)


def keep_reading(read, store: Path, reads: Reads, writing: threading.Event, pause: float):
    while writing.is_set():
        timed(read, store, reads)
        time.sleep(pause)


def wait_for_first_read(store: Path, writing: threading.Event) -> None:
    """Reads count from the first moment the store can answer at all (the writer has created
    and migrated it): before that a read fails for want of a store, not for the writer."""
    deadline = time.monotonic() + FIRST_READ_TIMEOUT_S
    while writing.is_set() and time.monotonic() < deadline:
        try:
            report_read(store)
            return
        except Exception:
            time.sleep(0.05)
    raise SystemExit("the store never answered a first read")


def write_while_reading(workdir: Path, base_url: str, pause: float) -> tuple[float, list[Reads]]:
    store, writing, outcome = workdir / "status.duckdb", threading.Event(), {}
    writing.set()

    def write() -> None:
        try:
            outcome["seconds"] = run_writer(workdir, base_url, concurrency=10)[0]
        finally:
            writing.clear()

    writer = threading.Thread(target=write)
    writer.start()
    wait_for_first_read(store, writing)
    reads = [Reads("report"), Reads("cli")]
    readers = [
        threading.Thread(target=keep_reading, args=(fn, store, r, writing, pause))
        for fn, r in zip((report_read, cli_read), reads, strict=True)
    ]
    for thread in readers:
        thread.start()
    for thread in (writer, *readers):
        thread.join()
    if "seconds" not in outcome:
        raise SystemExit("the writer failed")
    return outcome["seconds"], reads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between one's reads")
    args = parser.parse_args()
    print("machine:", machine_load())
    with tempfile.TemporaryDirectory(prefix="bench-readers-") as tmp:
        workdir = Path(tmp)
        write_input(workdir / "messages.jsonl", args.records, 5000)
        port = free_port()
        command = sandbox_command(port, API_KEY, options=["--per-minute", "100000000"])
        print("sandbox:", shlex.join(command))
        with running_sandbox(command, port, workdir / "sandbox.log") as base_url:
            quick_syncs(base_url)
            seconds, reads = write_while_reading(workdir, base_url, args.pause)
        idle = Reads("idle cli")
        for _ in range(3):
            timed(cli_read, workdir / "status.duckdb", idle)
        print("cli:    ", shlex.join(cli_command(workdir / "status.duckdb")))
    print(f"\nwrite:   {args.records} records in {seconds:.1f} s ({args.records / seconds:.0f}/s)")
    for r in reads:
        print(r.summary())
    print(f"floor:   the cli read on the idle store after the write: {min(idle.waits):.2f} s")
    print_footer("benchmarks.readers_during_write")


if __name__ == "__main__":
    main()
