"""Many companies at Codat's latency: what learning each company costs a run.

The destination learns each company once per run, when the company's first record is routed
(its connections and expense configuration: does it exist, which platforms), and records its
name for the report. The peers benchmark delays only the creates, and has four companies, so it
cannot see that cost; here every Codat call waits `--latency-ms` (200 by default), and the
records are spread over `--companies` companies (40 by default) added to a fresh sandbox.

Contenders, each on a fresh sandbox from the same command, on the same records: the destination
end to end (`destination-codat-expenses write`, every sync followed) and the plain httpx async
client (peer_plain_async.py: creates only, 10 in flight per company, no company reads). Prints
the commands, records/s and the ratio (reported, never asserted).

    python -m benchmarks.company_lookups [--companies 40] [--records 4000] [--latency-ms 200]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import uuid
from pathlib import Path

from benchmarks.destination_throughput import API_KEY, write_input
from benchmarks.measure import machine_load, print_footer
from benchmarks.peers import Result, booked, print_results, run_destination, run_peer
from codat_sandbox.server import free_port
from testing.sandbox import admin, running_sandbox, sandbox_command

EVERY_CALL = r"^/companies"  # the fault plan's paths: every Codat call, not the sandbox's admin


def company_ids(count: int) -> list[str]:
    """Stable ids run to run, so each contender meets the same companies."""
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-company-{n}")) for n in range(count)]


def add_companies(base_url: str, ids: list[str]) -> None:
    for n, company_id in enumerate(ids):
        company = {"id": company_id, "name": f"Bench Company {n}", "platform": "xero"}
        company |= {"baseCurrency": "GBP", "syncSeconds": 0.01}
        admin(base_url, "POST", "/_sandbox/companies", company, api_key=API_KEY)


def in_fresh_sandbox(workdir: Path, latency_ms: float, ids: list[str], contender) -> Result:
    port = free_port()
    faults = {"latency_ms": latency_ms, "paths": EVERY_CALL}
    command = sandbox_command(port, API_KEY, faults, options=["--per-minute", "100000000"])
    print("sandbox:", shlex.join(command))
    with running_sandbox(command, port, workdir / "sandbox.log") as base_url:
        add_companies(base_url, ids)
        result = contender(base_url)
        result.booked = booked(base_url)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--companies", type=int, default=40)
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--latency-ms", type=float, default=200)
    args = parser.parse_args()
    print("machine:", machine_load())
    ids = company_ids(args.companies)
    mode = f"{args.companies} companies"
    with tempfile.TemporaryDirectory(prefix="bench-companies-") as tmp:
        workdir = Path(tmp)
        write_input(workdir / "messages.jsonl", args.records, args.records, companies=ids)
        plain = "benchmarks.peer_plain_async"
        contenders = [
            lambda url: run_destination(mode, workdir, url, args.records),
            lambda url: run_peer(mode, Path(sys.executable), plain, workdir, url),
        ]
        results = [in_fresh_sandbox(workdir, args.latency_ms, ids, c) for c in contenders]
    print_results(results)
    print_footer("benchmarks.company_lookups")


if __name__ == "__main__":
    main()
