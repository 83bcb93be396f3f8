"""Flatness: does the destination keep its pace and its memory as a run grows? The real
`destination-codat-expenses write` against the real sandbox (loopback, faults off), once with
`--small` records and once with `--large`, each on a fresh sandbox and an empty store.
Targets (issue 12, reported, never asserted): records/s at the large size within 15% of the
small one; peak RSS within 10%. The per-batch store cost is store_batch_cost.py's.

The large run takes records / (records/s): at main's pace, 300k records is 10 minutes or more,
so `make bench` runs it only with BENCH_FLAT=1. `--store postgres` runs both on a fresh
database of a throwaway PostgreSQL cluster instead of a DuckDB file: a DuckDB writer's memory
grows with the ids its store holds (its indexes, docs/status-store.md), a PostgreSQL one's not.

    python -m benchmarks.flatness [--small 20000] [--large 300000] [--store duckdb|postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import tempfile
from pathlib import Path

from benchmarks.destination_throughput import API_KEY, quick_syncs, run_writer, write_input
from benchmarks.measure import machine_load, print_footer, ratio, verdict
from codat_sandbox.server import free_port
from testing.postgres import new_database, throwaway_cluster
from testing.sandbox import running_sandbox, sandbox_command


def one_size(records: int, concurrency: int, store: str | None = None) -> tuple[float, int]:
    """(records/s, writer's peak RSS KiB) for one run of `records` records, on `store` (a
    PostgreSQL URL) or a fresh DuckDB file."""
    with tempfile.TemporaryDirectory(prefix="bench-flat-") as tmp:
        workdir = Path(tmp)
        write_input(workdir / "messages.jsonl", records, 5000)
        port = free_port()
        command = sandbox_command(port, API_KEY, options=["--per-minute", "100000000"])
        print("sandbox:", shlex.join(command))
        with running_sandbox(command, port, workdir / "sandbox.log") as base_url:
            quick_syncs(base_url)
            seconds, peak_kib, _ = run_writer(workdir, base_url, concurrency, store)
    print(f"{records:>8} records in {seconds:.1f} s: {records / seconds:.0f}/s, "
          f"peak RSS {peak_kib / 1024:.0f} MiB")  # fmt: skip
    return records / seconds, peak_kib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=300_000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--store", choices=["duckdb", "postgres"], default="duckdb")
    args = parser.parse_args()
    print("machine:", machine_load())
    with contextlib.ExitStack() as stack:
        admin = stack.enter_context(throwaway_cluster()) if args.store == "postgres" else None
        stores = [new_database(admin, f"flat_{n}") if admin else None for n in (1, 2)]
        small_rate, small_rss = one_size(args.small, args.concurrency, stores[0])
        large_rate, large_rss = one_size(args.large, args.concurrency, stores[1])
    pace, memory = ratio(large_rate, small_rate), ratio(large_rss, small_rss)
    print(f"\nrecords/s at {args.large} / at {args.small} = {pace:.2f}x "
          f"(target >= 0.85x: {verdict(pace, 0.85)})")  # fmt: skip
    print(f"peak RSS  at {args.large} / at {args.small} = {memory:.2f}x "
          f"(target <= 1.10x: {verdict(memory, 1.10, higher_is_better=False)})")  # fmt: skip
    print_footer("benchmarks.flatness")


if __name__ == "__main__":
    main()
