"""Store memory: what a DuckDB writer needs in memory to take one batch, against the number of
ids its store holds. DuckDB's ART indexes must be in memory whole to take a new key, so the
figure grows with the store, not with the run (docs/status-store.md, "Memory"). For each size:
a fresh file seeded by SQL (testing/report_seed.seed_bulk), then one 50-record batch through the
store's API (store_batch_cost.one_batch), `--batches` of them, as a run's first minutes would;
printed: DuckDB's index memory after them (random ids touch more and more of each index, until
all of it is in memory), the writer's memory limit (grown from 256 MiB if the indexes needed
more) and the median batch time.

    python -m benchmarks.store_memory [--rows 0,300000,600000,1200000] [--batches 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.measure import machine_load, print_footer
from benchmarks.store_batch_cost import ITEMS, mapped_batch, one_batch, seeded_store
from destination_codat_expenses.mapping import MappingSettings
from destination_codat_expenses.store.db import INDEX_MEMORY, lease_for, release


def one_size(rows: int, batches: int) -> tuple[float, float, float]:
    """(index MiB, writer limit MiB, median batch seconds) on a store of `rows` ids."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        path = Path(tmp) / "status.duckdb"
        store = seeded_store(path, rows)
        settings, times = MappingSettings(), []
        for n in range(batches):
            started = time.perf_counter()
            one_batch(store, mapped_batch(1 + n * ITEMS, settings))
            times.append(time.perf_counter() - started)
        index = store.read(lambda db: db.execute(INDEX_MEMORY).fetchone()[0])
        limit = lease_for(str(path)).memory_bytes
        release(str(path))
    return index / 2**20, limit / 2**20, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default="0,300000,600000,1200000", help="store sizes (ids)")
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args()
    print("machine:", machine_load())
    print(f"{'ids':>9} {'index MiB':>10} {'KiB per id':>11} {'limit MiB':>10} {'batch ms':>9}")
    for rows in (int(n) for n in args.rows.split(",")):
        index, limit, seconds = one_size(rows, args.batches)
        per_id = f"{index * 1024 / rows:11.2f}" if rows else f"{'-':>11}"
        print(f"{rows:9} {index:10.1f} {per_id} {limit:10.0f} {seconds * 1000:9.1f}", flush=True)
    print_footer("benchmarks.store_memory")


if __name__ == "__main__":
    main()
