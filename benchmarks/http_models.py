"""HTTP models: what one request costs the client's CPU, sent from a pool of threads (how the
destination sends) or from one asyncio loop (the redesign issue 12 proposed), at the same number
in flight, against the real `codat-expenses sandbox` over loopback.

Each round sends the same GETs (`/companies/{id}`, the demo companies in turn) through one
keep-alive httpx client: `httpx.Client` shared by `--in-flight` threads, then `httpx.AsyncClient`
with `--in-flight` tasks. Printed per model: CPU microseconds per request (this process's user +
system time, so the sandbox's is not in it) and the wall time. Figures as measured, never
asserted.

    python -m benchmarks.http_models [--requests 1200] [--in-flight 8,40] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import resource
import shlex
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from benchmarks.destination_throughput import API_KEY, COMPANIES
from benchmarks.measure import print_footer
from codat_sandbox.server import free_port
from destination_codat_expenses.codat.http import http_client
from testing.sandbox import running_sandbox, sandbox_command


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def with_threads(base_url: str, paths: list[str], headers: dict, in_flight: int) -> float:
    with http_client(base_url, in_flight) as http:
        http.get(paths[0], headers=headers)  # the connection is open before the clock starts
        with ThreadPoolExecutor(in_flight) as pool:
            started = time.monotonic()
            list(pool.map(lambda path: http.get(path, headers=headers).json(), paths))
    return time.monotonic() - started


async def with_one_loop(base_url: str, paths: list[str], headers: dict, in_flight: int) -> float:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=in_flight * 8 + 8)
    async with httpx.AsyncClient(base_url=base_url, limits=limits) as http:
        await http.get(paths[0], headers=headers)
        gate = asyncio.Semaphore(in_flight)

        async def one(path: str) -> None:
            async with gate:
                (await http.get(path, headers=headers)).json()

        started = time.monotonic()
        await asyncio.gather(*(one(path) for path in paths))
    return time.monotonic() - started


def models(base_url: str, paths: list[str], headers: dict, in_flight: int) -> dict:
    return {
        "threads": lambda: with_threads(base_url, paths, headers, in_flight),
        "asyncio": lambda: asyncio.run(with_one_loop(base_url, paths, headers, in_flight)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1200)
    parser.add_argument("--in-flight", default="8,40")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    paths = [f"/companies/{COMPANIES[n % len(COMPANIES)]}" for n in range(args.requests)]
    headers = {"Authorization": "Basic " + base64.b64encode(API_KEY.encode()).decode()}
    port = free_port()
    command = sandbox_command(port, API_KEY, options=["--per-minute", "100000000"])
    print("sandbox:", shlex.join(command))
    print(f"\n{'model':8s} {'in flight':>9s} {'requests':>8s} {'cpu us/req':>10s} {'wall s':>7s}")
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_sandbox(command, port, Path(tmp) / "sandbox.log") as base_url,
    ):
        for _ in range(args.rounds):
            for in_flight in [int(n) for n in args.in_flight.split(",")]:
                for name, send in models(base_url, paths, headers, in_flight).items():
                    before = cpu_seconds()
                    wall = send()
                    per_request = (cpu_seconds() - before) / len(paths) * 1e6
                    print(
                        f"{name:8s} {in_flight:9d} {len(paths):8d} {per_request:10.0f} {wall:7.2f}"
                    )
    print_footer("benchmarks.http_models")


if __name__ == "__main__":
    main()
