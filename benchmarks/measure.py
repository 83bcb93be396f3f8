"""Small measuring helpers shared by the benchmarks: percentiles, ratios, peak RSS, machine load,
the lines a benchmark ends with.
Standard library only: `peer_sdk_loop` imports it from the SDK's own environment."""

from __future__ import annotations

import math
import os
import shlex
import sys
from pathlib import Path


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's
    default), so p50 of [1, 2, 3, 4] is 2.5 and p95 of 20 values lies between the top two."""
    if not values:
        raise ValueError("no values to take a percentile of")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(ours: float, theirs: float) -> float:
    """ours / theirs; NaN when there is nothing to compare against (a peer that did not run)."""
    if not theirs or math.isnan(theirs) or math.isnan(ours):
        return math.nan
    return ours / theirs


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    """'meets' or 'misses' the target, for a figure printed next to it (never an assertion)."""
    if math.isnan(value):
        return "not measured"
    met = value >= target if higher_is_better else value <= target
    return "meets" if met else "misses"


def peak_rss_kib(pid: int) -> int:
    """VmHWM of a running process (its peak resident set so far), 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def machine_load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def print_footer(module: str) -> None:
    """The two lines every benchmark ends with: the machine's load now, and the exact command
    that ran it (`python -m <module>` with this run's arguments)."""
    print("machine:", machine_load())
    print("command:", shlex.join([sys.executable, "-m", module, *sys.argv[1:]]))
