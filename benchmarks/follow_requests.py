"""What following syncs costs in requests, at Codat's latency with syncs that take a while.

Codat runs a company's syncs one after another, so a run that pushes ten at a time for a company
has up to ten open, each polled (with backoff) until it ends, and every request counts against
the company's ten in flight and the API key's daily quota (1,000 x (1 + connected companies)).
The destination reads a company's several due syncs from one `list/status` request; the same
destination asking about each sync alone (how it followed before, `LIST_FROM_DUE` set out of
reach) is run beside it on the same records, each against a fresh sandbox from the same command.

The real `destination-codat-expenses write`, the real sandbox over loopback with `--latency-ms`
on every Codat call and `--sync-seconds` per sync; the requests are the sandbox's own count of
what it let through, by route (`GET /_sandbox/limits`). Reported, never asserted.

    python -m benchmarks.follow_requests [--records 4000] [--latency-ms 200] [--sync-seconds 0.5]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.destination_throughput import API_KEY, CATALOG, COMPANIES, write_input
from benchmarks.measure import machine_load, print_footer
from codat_sandbox.server import free_port
from testing.sandbox import admin, patch_company, running_sandbox, sandbox_command

CODAT_PATHS = r"^/companies/"
ONE_BY_ONE = (  # the destination with lists out of reach: each sync asked about alone
    "import destination_codat_expenses.follow as follow; follow.LIST_FROM_DUE = 10**9; "
    "from destination_codat_expenses.run import run; run()"
)


def run_destination(workdir: Path, base_url: str, one_by_one: bool) -> float:
    config = {
        "api_key": API_KEY,
        "base_url": base_url,
        "company_id_field": "company",
        "status_store_path": str(workdir / f"status-{one_by_one}.duckdb"),
        "concurrency": 10,
        "sync_wait_timeout_seconds": 900,
    }
    (workdir / "config.json").write_text(json.dumps(config))
    (workdir / "catalog.json").write_text(json.dumps(CATALOG))
    program = (
        [sys.executable, "-c", ONE_BY_ONE]
        if one_by_one
        else [str(Path(sys.executable).with_name("destination-codat-expenses"))]
    )
    command = [*program, "write", "--config", str(workdir / "config.json")]
    command += ["--catalog", str(workdir / "catalog.json")]
    print("writer: ", shlex.join(command), "<", workdir / "messages.jsonl")
    started = time.monotonic()
    with (workdir / "messages.jsonl").open() as stdin:
        done = subprocess.run(command, stdin=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit("the writer failed:\n" + done.stdout[-3000:] + done.stderr[-3000:])
    return time.monotonic() - started


def measure(workdir: Path, args, one_by_one: bool) -> dict:
    port = free_port()
    faults = {"latency_ms": args.latency_ms, "paths": CODAT_PATHS}
    command = sandbox_command(port, API_KEY, faults, options=["--per-minute", "100000000"])
    print("sandbox:", shlex.join(command))
    with running_sandbox(command, port, workdir / "sandbox.log") as base_url:
        for company in COMPANIES:
            patch_company(base_url, company, {"syncSeconds": args.sync_seconds}, api_key=API_KEY)
        seconds = run_destination(workdir, base_url, one_by_one)
        asked = admin(base_url, "GET", "/_sandbox/limits", api_key=API_KEY)["admitted"]
        truth = admin(base_url, "GET", "/_sandbox/ground-truth", api_key=API_KEY)
        booked = len({entry["transaction_id"] for entries in truth.values() for entry in entries})
    return {"seconds": seconds, "asked": asked, "booked": booked}


def print_result(label: str, result: dict, records: int) -> None:
    asked = result["asked"]
    total = sum(asked.values())
    print(f"\n{label}: {result['seconds']:.1f} s, {result['booked']} of {records} booked")
    for route, count in sorted(asked.items(), key=lambda item: -item[1]):
        print(f"  {count:6d}  {route}")
    print(f"  {total:6d}  in all: {total / (records / 50):.2f} requests per 50 records")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--sync-seconds", type=float, default=0.5)
    args = parser.parse_args()
    print("machine:", machine_load())
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-follow-") as tmp:
        workdir = Path(tmp)
        write_input(workdir / "messages.jsonl", args.records, args.records)
        for one_by_one in (False, True):
            results[one_by_one] = measure(workdir, args, one_by_one)
    print_result("destination (a company's due syncs from one list)", results[False], args.records)
    print_result("the same, each sync asked about alone", results[True], args.records)
    ours, alone = (sum(results[k]["asked"].values()) for k in (False, True))
    print(f"\nrequests: {ours / alone:.2f}x of asking about each sync alone")
    print(f"wall:     {results[False]['seconds'] / results[True]['seconds']:.2f}x")
    print_footer("benchmarks.follow_requests")


if __name__ == "__main__":
    main()
