"""Records/s of 1 and of N destination processes sharing one PostgreSQL status store, latency-bound:
the sandbox answers each create after `--latency-ms`, so a process's pace is set by its pushes
in flight, and N processes (each with its own contiguous share of the records, for every
company, as separate connections have; all on one store and one sandbox) should go about N
times as fast. Target: 4 processes >= 3x one.

Each count of processes runs on a fresh database of a throwaway cluster (testing/postgres.py) and
a fresh sandbox; the wall time runs from starting the processes to the last one's exit (each
waits for its syncs). The sandbox's books are checked to hold every record once.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.destination_throughput import API_KEY, CATALOG, quick_syncs, write_input
from benchmarks.measure import machine_load, print_footer
from benchmarks.peers import CREATE_PATHS, booked
from codat_sandbox.server import free_port
from testing.postgres import new_database, throwaway_cluster
from testing.sandbox import running_sandbox, sandbox_command

WRITER = str(Path(sys.executable).with_name("destination-codat-expenses"))


def split_input(workdir: Path, processes: int) -> list[Path]:
    """The records of messages.jsonl cut into `processes` files, each ending with a STATE."""
    records = [
        line for line in (workdir / "messages.jsonl").read_text().splitlines() if '"RECORD"' in line
    ]
    state = json.dumps(
        {
            "type": "STATE",
            "state": {
                "type": "STREAM",
                "stream": {"stream_descriptor": {"name": "card_spend"}, "stream_state": {"n": 1}},
            },
        }
    )
    # Contiguous shares, not every Nth record: records cycle through the companies, so dealing
    # them round-robin to 4 processes would give each process one company, and per-company
    # limits would then serialise exactly what the fleet is meant to run side by side.
    share = -(-len(records) // processes)
    files = []
    for n in range(processes):
        path = workdir / f"share-{processes}-{n}.jsonl"
        path.write_text("\n".join([*records[n * share : (n + 1) * share], state]) + "\n")
        files.append(path)
    return files


def run_fleet(workdir: Path, store: str, base_url: str, shares: list[Path], args) -> float:
    config = {
        "api_key": API_KEY,
        "base_url": base_url,
        "company_id_field": "company",
        "status_store": store,
        "concurrency": args.concurrency,
        "batch_size": args.batch_size,
        "sync_wait_timeout_seconds": 600,
    }
    (workdir / "config.json").write_text(json.dumps(config))
    (workdir / "catalog.json").write_text(json.dumps(CATALOG))
    command = [
        WRITER,
        "write",
        "--config",
        str(workdir / "config.json"),
        "--catalog",
        str(workdir / "catalog.json"),
    ]
    print(f"writers ({len(shares)}):", shlex.join(command), "< share-N.jsonl")
    started = time.monotonic()
    running = []
    for share in shares:
        with share.open() as stdin:
            running.append(subprocess.Popen(command, stdin=stdin, stdout=subprocess.DEVNULL))
    failed = [p.wait() for p in running]
    if any(failed):
        raise SystemExit(f"a writer failed: exit codes {failed}")
    return time.monotonic() - started


def measure(workdir: Path, admin_url: str, processes: int, args) -> float:
    store = new_database(admin_url, f"bench_{uuid.uuid4().hex[:10]}")
    faults = {"latency_ms": args.latency_ms, "paths": CREATE_PATHS}
    port = free_port()
    sandbox = sandbox_command(port, API_KEY, faults, options=["--per-minute", "100000000"])
    with running_sandbox(sandbox, port, workdir / f"sandbox-{processes}.log") as base_url:
        quick_syncs(base_url)
        seconds = run_fleet(workdir, store, base_url, split_input(workdir, processes), args)
        count = booked(base_url)
    if count != args.records:
        raise SystemExit(f"the books hold {count} of {args.records} records")
    rate = args.records / seconds
    print(f"{processes} process(es): {args.records} records in {seconds:.1f} s = {rate:.0f}/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    # defaults: latency-bound, as the target asks: one process keeps 1 create of 50 in flight
    # per company, each answered after 1 s, so its bound is 4 x 50 / 1 s = 200 records/s
    parser.add_argument("--records", type=int, default=16000)
    parser.add_argument("--processes", default="1,4")
    parser.add_argument("--latency-ms", type=float, default=1000)
    parser.add_argument(
        "--concurrency", type=int, default=1, help="pushes in flight per company per process"
    )
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    print("machine:", machine_load())
    counts = [int(n) for n in args.processes.split(",")]
    rates = {}
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp, throwaway_cluster() as admin:
        workdir = Path(tmp)
        write_input(workdir / "messages.jsonl", args.records, args.records)
        for processes in counts:
            rates[processes] = measure(workdir, admin, processes, args)
    if len(counts) > 1:
        most = max(counts)
        ratio = rates[most] / rates[min(counts)]
        print(f"{most} processes / {min(counts)}: {ratio:.2f}x (target >= 3x for 4 vs 1)")
    print_footer("benchmarks.fleet_postgres")


if __name__ == "__main__":
    main()
