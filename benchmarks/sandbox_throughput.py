"""Sandbox throughput: 50-item expense-transaction creates against the real `codat-expenses`.

Starts `codat-expenses sandbox` (faults off, no per-minute throttling) on a free loopback port,
then worker processes, each an asyncio loop with one keep-alive `httpx.AsyncClient`, POST
`/companies/{id}/sync/expenses/expense-transactions` with fresh 50-item bodies spread over the
eight demo companies (never more than the per-company cap in flight). After a warm-up, a measured
phase bounded by a request count and a time limit counts only 200 answers and reports requests/s,
items/s, latency percentiles, errors, CPU (server, load generator, anything else on the machine)
and the server's peak RSS. Measured bodies are built before the phase starts, so the load
generator only sends. Everything is bounded in time; the server is stopped with SIGINT at the end.

    python -m benchmarks.sandbox_throughput [--requests 3000] [--seconds 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

from codat_sandbox.server import free_port
from testing.sandbox import BASE_CURRENCY, NO_TAX_RATES, auth_header, sandbox_command

HOST = "127.0.0.1"
API_KEY = "bench-key"
AUTH = auth_header(API_KEY)
PER_COMPANY_CAP = 10  # the sandbox's default concurrency per company
COMPANIES = BASE_CURRENCY  # the eight demo companies -> base currency
STARTUP_TIMEOUT_S = 30
SHUTDOWN_TIMEOUT_S = 10
REQUEST_TIMEOUT_S = 30
BARRIER_TIMEOUT_S = 120


# -- request bodies ------------------------------------------------------------------------------
def item_template(company_id: str) -> tuple[str, str]:
    """The JSON text of one item, split around its id so a fresh id is one concatenation."""
    line = {"netAmount": 10.00, "taxAmount": 2.00, "accountRef": {"id": "402"}}
    if company_id not in NO_TAX_RATES:
        line["taxRateRef"] = {"id": "STD"}
    rest = {
        "type": "Payment",
        "issueDate": "2024-05-01",
        "currency": COMPANIES[company_id],
        "merchantName": "Coffee Corner",
        "lines": [line],
    }
    return '{"id": "', '", ' + json.dumps(rest)[1:]


def fresh_body(template: tuple[str, str], items: int) -> bytes:
    prefix, suffix = template
    items_json = ", ".join(prefix + str(uuid.uuid4()) + suffix for _ in range(items))
    return f"[{items_json}]".encode()


def create_path(company_id: str) -> str:
    return f"/companies/{company_id}/sync/expenses/expense-transactions"


# -- the load generator (one per worker process) -------------------------------------------------
@dataclass
class Job:
    base_url: str
    lanes: list[str]  # one company id per concurrent request slot
    items: int
    warmup_requests: int  # this worker's share of the warm-up
    warmup_s: float
    requests: int  # this worker's share of the measured phase
    seconds: float


@dataclass
class PhaseResult:
    latencies: list[float] = field(default_factory=list)  # seconds, 200 answers only
    errors: Counter = field(default_factory=Counter)
    started: float = 0.0
    ended: float = 0.0
    cpu_s: float = 0.0


async def send(client: httpx.AsyncClient, company_id: str, body: bytes, result: PhaseResult):
    began = time.perf_counter()
    try:
        response = await client.post(create_path(company_id), content=body)
    except httpx.HTTPError as exc:
        result.errors[type(exc).__name__] += 1
        return
    if response.status_code == 200:
        result.latencies.append(time.perf_counter() - began)
    else:
        result.errors[f"HTTP {response.status_code}"] += 1


async def run_phase(client, job: Job, next_body, seconds: float) -> PhaseResult:
    """Every lane sends `next_body(company)` until it gives None or time is up."""
    result = PhaseResult(started=time.monotonic(), cpu_s=time.process_time())
    deadline = result.started + seconds

    async def lane(company_id: str) -> None:
        while time.monotonic() < deadline and (body := next_body(company_id)) is not None:
            await send(client, company_id, body, result)

    await asyncio.gather(*(lane(company_id) for company_id in job.lanes))
    result.ended = time.monotonic()
    result.cpu_s = time.process_time() - result.cpu_s
    return result


def warmup_bodies(job: Job, templates: dict[str, tuple[str, str]]):
    """This worker's warm-up share, each body built when it is sent."""
    left = job.warmup_requests

    def next_body(company_id: str) -> bytes | None:
        nonlocal left
        if left <= 0:
            return None
        left -= 1
        return fresh_body(templates[company_id], job.items)

    return next_body


def prebuilt_bodies(job: Job, templates: dict[str, tuple[str, str]]):
    """This worker's measured share, built up front and dealt out round-robin over its lanes."""
    stock: dict[str, list[bytes]] = {c: [] for c in templates}
    for n in range(job.requests):
        company_id = job.lanes[n % len(job.lanes)]
        stock[company_id].append(fresh_body(templates[company_id], job.items))
    return lambda company_id: stock[company_id].pop() if stock[company_id] else None


async def drive(job: Job, barrier) -> PhaseResult:
    templates = {c: item_template(c) for c in job.lanes}
    lanes = len(job.lanes)
    limits = httpx.Limits(max_connections=lanes, max_keepalive_connections=lanes)
    async with httpx.AsyncClient(
        base_url=job.base_url, headers=AUTH, limits=limits, timeout=REQUEST_TIMEOUT_S
    ) as client:
        await run_phase(client, job, warmup_bodies(job, templates), job.warmup_s)
        next_body = prebuilt_bodies(job, templates)
        barrier.wait(timeout=BARRIER_TIMEOUT_S)
        return await run_phase(client, job, next_body, job.seconds)


def worker(job: Job, barrier, results) -> None:
    try:
        results.put(asyncio.run(drive(job, barrier)))
    except BaseException as exc:  # the parent must hear about it rather than wait
        barrier.abort()
        results.put(RuntimeError(repr(exc)))  # picklable whatever the original was
        raise


# -- the server under test ---------------------------------------------------------------------
def server_command(port: int, per_minute: int) -> list[str]:
    options = ["--host", HOST, "--scenario", "demo", "--per-minute", str(per_minute)]
    return sandbox_command(port, API_KEY, options=options)


def start_server(command: list[str], log) -> subprocess.Popen:
    # no --faults: the fault plan is all zeros
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)


def wait_until_healthy(server: subprocess.Popen, base_url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the sandbox exited with code {server.returncode}")
        try:
            if httpx.get(f"{base_url}/_sandbox/healthz", headers=AUTH, timeout=1).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the sandbox did not answer on {base_url} within {STARTUP_TIMEOUT_S}s")


def stop_server(server: subprocess.Popen) -> int:
    if server.poll() is None:
        server.send_signal(signal.SIGINT)  # uvicorn shuts down gracefully on SIGINT
        try:
            server.wait(SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(SHUTDOWN_TIMEOUT_S)
    return server.returncode


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc/<pid>/stat (0 where /proc is missing)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies over all cores, from /proc/stat ((0, 0) where /proc is missing)."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(n) for n in stat.readline().split()[1:9]]  # guest time is in user
    except OSError:
        return 0, 0
    idle = ticks[3] + ticks[4]  # idle + iowait
    return sum(ticks) - idle, sum(ticks)


def peak_rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# -- orchestration and report ----------------------------------------------------------------------
def plan_jobs(args: argparse.Namespace, base_url: str) -> list[Job]:
    """Deal `--concurrency` lanes over the companies round-robin, then over the workers."""
    companies = list(COMPANIES)
    lanes = [companies[n % len(companies)] for n in range(args.concurrency)]
    return [
        Job(
            base_url,
            lanes[w :: args.workers],
            args.items,
            share(args.warmup_requests, w, args.workers),
            args.warmup,
            share(args.requests, w, args.workers),
            args.seconds,
        )
        for w in range(args.workers)
    ]


def share(total: int, index: int, parts: int) -> int:
    return total // parts + (index < total % parts)


@dataclass
class Usage:
    server_cpu_s: float
    wall_s: float
    machine_busy: float  # share of all cores busy, 0..1

    @staticmethod
    def between(before: tuple, after: tuple) -> Usage:
        (cpu0, wall0, (busy0, total0)), (cpu1, wall1, (busy1, total1)) = before, after
        return Usage(cpu1 - cpu0, wall1 - wall0, (busy1 - busy0) / max(1, total1 - total0))


def usage_now(pid: int) -> tuple:
    return cpu_seconds(pid), time.monotonic(), machine_cpu()


def run_load(jobs: list[Job], server_pid: int) -> tuple[list[PhaseResult], Usage]:
    """Run the workers; return their measured results and what the measured phase cost."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(jobs) + 1)
    results = context.Queue()
    workers = [context.Process(target=worker, args=(job, barrier, results)) for job in jobs]
    for process in workers:
        process.start()
    try:
        barrier.wait(timeout=BARRIER_TIMEOUT_S)
        before = usage_now(server_pid)
        collected = [results.get(timeout=jobs[0].seconds + 2 * REQUEST_TIMEOUT_S) for _ in jobs]
        usage = Usage.between(before, usage_now(server_pid))
    finally:
        for process in workers:
            process.join(timeout=SHUTDOWN_TIMEOUT_S)
            if process.is_alive():
                process.terminate()
    failures = [r for r in collected if isinstance(r, BaseException)]
    if failures:
        raise RuntimeError(f"a load worker failed: {failures[0]!r}")
    return collected, usage


def percentile_ms(latencies: list[float], cut: int) -> float:
    return statistics.quantiles(latencies, n=100, method="inclusive")[cut - 1] * 1000


def report(args, command: list[str], results: list[PhaseResult], usage: Usage, rss) -> None:
    latencies = [x for r in results for x in r.latencies]
    errors = sum((r.errors for r in results), Counter())
    elapsed = max(r.ended for r in results) - min(r.started for r in results)
    ok = len(latencies)
    print(f"benchmark:  {args.invocation}")
    print(f"server:     {shlex.join(command)}")
    print(
        f"load:       {args.workers} worker processes x httpx.AsyncClient (keep-alive), "
        f"{args.concurrency} requests in flight over {len(COMPANIES)} companies, "
        f"{args.items} items/request; warm-up {args.warmup_requests} requests or "
        f"{args.warmup:g}s, measured: {args.requests} requests or {args.seconds:g}s"
    )
    print(f"measured:   {ok} x 200 in {elapsed:.2f}s")
    print(f"throughput: {ok / elapsed:.1f} requests/s, {ok * args.items / elapsed:.0f} items/s")
    if len(latencies) >= 2:
        p50, p95, p99 = (percentile_ms(latencies, p) for p in (50, 95, 99))
        print(f"latency:    p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms")
    print(f"errors:     {sum(errors.values())} {dict(errors) if errors else ''}".rstrip())
    report_cpu(usage, sum(r.cpu_s for r in results) / elapsed, ok)
    print(f"server RSS: peak {rss:.0f} MiB" if rss is not None else "server RSS: unknown")


def report_cpu(usage: Usage, generator_cores: float, ok: int) -> None:
    """Server and load generator in cores; `other` is whatever else kept this machine busy."""
    cores = os.cpu_count() or 1
    server_cores = usage.server_cpu_s / usage.wall_s
    other_cores = max(0.0, usage.machine_busy * cores - server_cores - generator_cores)
    per_request = f", {1000 * usage.server_cpu_s / ok:.2f} ms per 200" if ok else ""
    print(
        f"cpu:        server {100 * server_cores:.0f}% of one core{per_request}; "
        f"load generator {100 * generator_cores:.0f}%; other processes {100 * other_cores:.0f}%; "
        f"machine {100 * usage.machine_busy:.0f}% busy over {cores} cores"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sandbox_throughput")
    parser.add_argument("--requests", type=int, default=3000, help="measured requests (cap)")
    parser.add_argument("--seconds", type=float, default=20, help="measured phase time limit")
    parser.add_argument("--warmup-requests", type=int, default=1000, help="warm-up requests")
    parser.add_argument("--warmup", type=float, default=5, help="warm-up time limit, seconds")
    parser.add_argument("--workers", type=int, default=2, help="load generator processes")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--items", type=int, default=50, help="transactions per request")
    args = parser.parse_args(argv)
    args.invocation = shlex.join([*parser.prog.split(), *(sys.argv[1:] if argv is None else argv)])
    cap = PER_COMPANY_CAP * len(COMPANIES)
    if not 1 <= args.workers <= args.concurrency <= cap:
        parser.error(f"need 1 <= --workers <= --concurrency <= {cap} (10 per company)")
    if not 1 <= args.items <= 50:
        parser.error("--items must be 1..50 (Codat's batch limit)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    port = free_port(HOST)
    base_url = f"http://{HOST}:{port}"
    command = server_command(port, per_minute=100_000_000)
    with tempfile.TemporaryFile("w+") as log:
        server = start_server(command, log)
        try:
            wait_until_healthy(server, base_url)
            results, usage = run_load(plan_jobs(args, base_url), server.pid)
            rss = peak_rss_mib(server.pid)
        except BaseException:
            stop_server(server)
            log.seek(0)
            sys.stderr.write(log.read()[-4000:])
            raise
        code = stop_server(server)
    report(args, command, results, usage, rss)
    clean = code in (0, -signal.SIGINT)  # uvicorn re-raises the SIGINT once it has shut down
    print(f"server:     stopped {'cleanly' if clean else 'badly'} (exit code {code})")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
