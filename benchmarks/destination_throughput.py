"""Destination throughput: N flat records through the real `destination-codat-expenses write`
CLI against the real `codat-expenses sandbox` over loopback, faults off.

Reports records/s (wall clock of the write process, from first byte in to exit) and the
writer's peak RSS (ru_maxrss), and prints the exact commands used. Stops by itself.

    python -m benchmarks.destination_throughput [--records 100000] [--state-every 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from codat_sandbox.server import free_port
from testing.sandbox import (
    BASE_CURRENCY,
    DYNAMICS,
    NETSUITE,
    QBO,
    XERO,
    patch_company,
    running_sandbox,
    sandbox_command,
)

API_KEY = "bench-key"
COMPANIES = [XERO, QBO, NETSUITE, DYNAMICS]
CATALOG = {  # the one stream the benchmarks' records are on
    "streams": [
        {
            "stream": {
                "name": "card_spend",
                "json_schema": {},
                "supported_sync_modes": ["incremental"],
            },
            "sync_mode": "incremental",
            "destination_sync_mode": "append",
        }
    ]
}


def record_id(n: int) -> str:
    """A UUID, stable run to run: the destination sends a UUID id as it is, and the peers, which
    map nothing, send the very same ids (Codat takes only UUIDs)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-record-{n}"))


def write_input(
    path: Path, records: int, state_every: int, companies: list[str] = COMPANIES
) -> None:
    """Records dealt to `companies` in turn (each company's base currency: the four built-in
    companies' own, GBP for any other), a STATE every `state_every`."""
    with path.open("w") as out:
        for n in range(1, records + 1):
            company = companies[n % len(companies)]
            data = {
                "id": record_id(n),
                "company": company,
                "date": "2024-05-02",
                "amount": f"{10 + n % 90}.{n % 100:02d}",
                "tax_amount": "1.00",
                "currency": BASE_CURRENCY.get(company, "GBP"),
                "merchant": "Bench Cafe",
                "account_id": "402",
                "tax_rate_id": "STD",
            }
            out.write(
                json.dumps(
                    {
                        "type": "RECORD",
                        "record": {"stream": "card_spend", "data": data, "emitted_at": 1},
                    }
                )
                + "\n"
            )
            if n % state_every == 0 or n == records:
                out.write(
                    json.dumps(
                        {
                            "type": "STATE",
                            "state": {
                                "type": "STREAM",
                                "stream": {
                                    "stream_descriptor": {"name": "card_spend"},
                                    "stream_state": {"n": n},
                                },
                            },
                        }
                    )
                    + "\n"
                )


def quick_syncs(base_url: str) -> None:
    """Simulated syncs take 10 ms instead of 200 ms, so the figure measures the connector and
    not the sandbox's pretend accounting platform (each company runs its syncs one by one)."""
    for company in COMPANIES:
        patch_company(base_url, company, {"syncSeconds": 0.01}, api_key=API_KEY)


def run_writer(
    workdir: Path, base_url: str, concurrency: int = 8, store: Path | str | None = None
) -> tuple[float, int, list[str]]:
    config = {
        "api_key": API_KEY,
        "base_url": base_url,
        "company_id_field": "company",
        "status_store_path": str(store or workdir / "status.duckdb"),
        "concurrency": concurrency,
        "sync_wait_timeout_seconds": 600,
    }
    (workdir / "config.json").write_text(json.dumps(config))
    (workdir / "catalog.json").write_text(json.dumps(CATALOG))
    writer = [
        str(Path(sys.executable).with_name("destination-codat-expenses")),
        "write",
        "--config",
        str(workdir / "config.json"),
        "--catalog",
        str(workdir / "catalog.json"),
    ]
    print("writer: ", shlex.join(writer), "<", workdir / "messages.jsonl")
    started = time.monotonic()
    with (workdir / "messages.jsonl").open() as stdin:
        process = subprocess.Popen(writer, stdin=stdin, stdout=subprocess.PIPE, text=True)
        output = list(process.stdout)  # to its end: the writer has closed stdout
        peak = exit_and_peak_rss_kib(process)
    if process.returncode != 0:
        raise SystemExit("the writer failed:\n" + "".join(output[-5:]))
    return time.monotonic() - started, peak, output


def exit_and_peak_rss_kib(process: subprocess.Popen) -> int:
    """Reap the process and return its peak RSS from the kernel's own count (ru_maxrss, KiB),
    exact where sampling /proc would miss a peak between samples."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--state-every", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dest-") as tmp:
        workdir = Path(tmp)
        write_input(workdir / "messages.jsonl", args.records, args.state_every)
        port = free_port()
        command = sandbox_command(port, API_KEY, options=["--per-minute", "100000000"])
        print("sandbox:", shlex.join(command))
        with running_sandbox(command, port, workdir / "sandbox.log") as base_url:
            quick_syncs(base_url)
            seconds, peak_kib, output = run_writer(workdir, base_url)
    states = sum('"type": "STATE"' in line or '"type":"STATE"' in line for line in output)
    print(
        f"records:    {args.records} in {seconds:.1f} s -> {args.records / seconds:.0f} "
        f"records/s (push, follow every sync to its end, record every status)"
    )
    print(f"states:     {states} echoed")
    print(f"peak RSS:   {peak_kib / 1024:.0f} MiB (writer process, ru_maxrss)")


if __name__ == "__main__":
    main()
