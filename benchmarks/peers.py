"""Peer benchmarks in one run: the destination against two peers that do no bookkeeping, on the
same records and the same sandbox command, in two modes.

- (a) the destination end to end: the real `destination-codat-expenses write` CLI, the real
  sandbox over loopback, a DuckDB status store; every sync followed to its end;
- (b) Codat's official Python SDK (`codat-sync-for-expenses`, in its own venv: sdk_env.py), a
  plain sequential loop of 50-item creates;
- (c) a plain httpx async client, 10 creates in flight per company.

Modes: `loopback` (no added latency) and `latency` (the sandbox waits `--latency-ms`, 200 by
default, before answering each create: Codat's real latency class). Each contender gets a fresh
sandbox from the same command, so none meets the others' transactions. Records/s is records
accepted over the contender's process wall time, launch to exit (start-up included for all).
Prints every command, the records/s, and the ratios the issue sets targets for (reported, never
asserted). The SDK loop runs in the loopback mode only unless `--sdk-latency` (a sequential loop
at 200 ms takes records / 50 x 0.2 s).

    python -m benchmarks.peers [--records 20000] [--modes loopback,latency] [--latency-ms 200]
        [--state-every 5000] [--no-sdk] [--sdk-latency]

`--state-every 100` is a source that checkpoints often (the peers ignore STATEs; the destination
echoes each once the records before it are in its ledger).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.destination_throughput import (
    API_KEY,
    quick_syncs,
    run_writer,
    write_input,
)
from benchmarks.measure import machine_load, print_footer, ratio, verdict
from codat_sandbox.server import free_port
from testing.sandbox import admin, running_sandbox, sandbox_command

ROOT = Path(__file__).resolve().parents[1]
# the create calls only (not status reads): the sandbox's fault plan applies latency by path
CREATE_PATHS = r"^/companies/[^/]+/sync/expenses/(data/)?expense-transactions$"
PEER_TIMEOUT_S = 1800
TARGETS = {  # issue 12: (mode, peer) -> the destination's ratio to aim for
    ("latency", "plain-async"): 0.9,
    ("loopback", "sdk-loop"): 1.0,
}


@dataclass
class Result:
    mode: str
    peer: str
    records: int
    wall_s: float
    send_s: float = math.nan  # the peer's own send window (nan for the destination)
    errors: dict = field(default_factory=dict)
    command: str = ""
    booked: int = 0  # distinct ids in the sandbox's books right after the contender exits
    requests: int = 0  # Codat requests the sandbox let through while the contender ran

    @property
    def per_second(self) -> float:
        return self.records / self.wall_s if self.wall_s else math.nan


def spec_concurrency_maximum() -> int:
    """The destination runs at the most its spec allows, as the peers run at Codat's cap."""
    spec = json.loads((ROOT / "destination_codat_expenses" / "spec.json").read_text())
    return spec["connectionSpecification"]["properties"]["concurrency"]["maximum"]


def sandbox_faults(mode: str, latency_ms: float) -> dict | None:
    return {"latency_ms": latency_ms, "paths": CREATE_PATHS} if mode == "latency" else None


def run_destination(mode: str, workdir: Path, base_url: str, records: int) -> Result:
    seconds, _, _ = run_writer(workdir, base_url, concurrency=spec_concurrency_maximum())
    command = f"destination-codat-expenses write (concurrency {spec_concurrency_maximum()})"
    return Result(mode, "destination", records, seconds, command=command)


def run_peer(mode: str, python: Path, module: str, workdir: Path, base_url: str) -> Result:
    command = [str(python), "-m", module, "--base-url", base_url, "--api-key", API_KEY]
    command += ["--messages", str(workdir / "messages.jsonl")]
    print("peer:   ", shlex.join(command))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # benchmarks/ from the SDK's own env too
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=PEER_TIMEOUT_S
    )
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{module} failed:\n{done.stderr[-3000:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return Result(
        mode, answer["peer"], answer["records"], wall, answer["send_s"], answer["errors"],
        shlex.join(command),
    )  # fmt: skip


def in_fresh_sandbox(workdir: Path, faults: dict | None, contender) -> Result:
    port = free_port()
    command = sandbox_command(port, API_KEY, faults, options=["--per-minute", "100000000"])
    print("sandbox:", shlex.join(command))
    with running_sandbox(command, port, workdir / "sandbox.log") as base_url:
        quick_syncs(base_url)
        result = contender(base_url)
        result.booked = booked(base_url)
        result.requests = requests_served(base_url)
        return result


def booked(base_url: str) -> int:
    """The sandbox's own count: what it booked, however the contender counted its answers."""
    truth = admin(base_url, "GET", "/_sandbox/ground-truth", api_key=API_KEY)
    return len({entry["transaction_id"] for entries in truth.values() for entry in entries})


def requests_served(base_url: str) -> int:
    """The sandbox's own count of the Codat requests it let through (the admin calls of this
    benchmark, made after the contender exits, are not among them)."""
    limits = admin(base_url, "GET", "/_sandbox/limits", api_key=API_KEY)
    return sum(limits["admitted"].values())


def contenders(mode: str, args, workdir: Path, sdk_python: Path | None) -> list:
    out = [lambda url: run_destination(mode, workdir, url, args.records)]
    plain = "benchmarks.peer_plain_async"
    out.append(lambda url: run_peer(mode, Path(sys.executable), plain, workdir, url))
    if sdk_python and (mode == "loopback" or args.sdk_latency):
        sdk = "benchmarks.peer_sdk_loop"
        out.append(lambda url: run_peer(mode, sdk_python, sdk, workdir, url))
    return out


def print_results(results: list[Result]) -> None:
    print(
        f"\n{'mode':9} {'contender':12} {'records':>8} {'booked':>8} {'requests':>8} "
        f"{'wall s':>8} {'records/s':>10}  errors"
    )
    for r in results:
        errors = ", ".join(f"{k} x{v}" for k, v in r.errors.items()) or "none"
        print(
            f"{r.mode:9} {r.peer:12} {r.records:8} {r.booked:8} {r.requests:8} "
            f"{r.wall_s:8.1f} {r.per_second:10.0f}  {errors}"
        )
    print()
    for mode in dict.fromkeys(r.mode for r in results):
        ours = next((r for r in results if r.mode == mode and r.peer == "destination"), None)
        for peer in (r for r in results if r.mode == mode and r.peer != "destination"):
            value = ratio(ours.per_second, peer.per_second) if ours else math.nan
            target = TARGETS.get((mode, peer.peer))
            aim = f"  (target >= {target}x: {verdict(value, target)})" if target else ""
            print(f"ratio {mode:9} destination / {peer.peer:12} = {value:.2f}x{aim}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--modes", default="loopback,latency")
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--no-sdk", action="store_true", help="skip the official SDK's loop")
    parser.add_argument("--sdk-latency", action="store_true", help="run the SDK loop at latency")
    parser.add_argument(
        "--state-every", type=int, default=5000, help="a STATE after every N records"
    )
    args = parser.parse_args()
    print("machine:", machine_load())
    sdk_python = None
    if not args.no_sdk:
        from benchmarks.sdk_env import sdk_python as make_sdk_env

        sdk_python = make_sdk_env()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        workdir = Path(tmp)
        write_input(workdir / "messages.jsonl", args.records, args.state_every)
        for mode in args.modes.split(","):
            for contender in contenders(mode, args, workdir, sdk_python):
                faults = sandbox_faults(mode, args.latency_ms)
                results.append(in_fresh_sandbox(workdir, faults, contender))
                for store in workdir.glob("status.duckdb*"):  # the next run starts empty
                    store.unlink()
    print_results(results)
    print_footer("benchmarks.peers")


if __name__ == "__main__":
    main()
