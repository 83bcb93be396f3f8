"""Start-up: `destination-codat-expenses spec` (and `codat-expenses --help`) as a person or
the Airbyte platform runs them, a fresh process each time: wall time and peak RSS (the kernel's
ru_maxrss). Target (issue 12, reported, never asserted): spec under 1.5 s.
unit_tests/test_startup.py checks, structurally, that spec loads no heavy module it does not need.

    python -m benchmarks.startup [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.measure import machine_load, verdict

BIN = Path(sys.executable).parent
COMMANDS = {
    "spec": [str(BIN / "destination-codat-expenses"), "spec"],
    "cli --help": [str(BIN / "codat-expenses"), "--help"],
}
TARGET_S = {"spec": 1.5}


def one_run(command: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS KiB) of one fresh process."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{shlex.join(command)} failed")
    return wall, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("machine:", machine_load())
    for name, command in COMMANDS.items():
        one_run(command)  # warm the page cache and the bytecode cache first
        runs = [one_run(command) for _ in range(args.repeats)]
        wall = statistics.median(w for w, _ in runs)
        rss = max(r for _, r in runs) / 1024
        aim = ""
        if name in TARGET_S:
            met = verdict(wall, TARGET_S[name], higher_is_better=False)
            aim = f" (target < {TARGET_S[name]} s: {met})"
        print(
            f"{name:11} median {wall:.2f} s (min {min(w for w, _ in runs):.2f}, "
            f"max {max(w for w, _ in runs):.2f}) over {args.repeats}, "
            f"peak RSS {rss:.0f} MiB{aim}"
        )
        print("           ", shlex.join(command))
    print("machine:", machine_load())


if __name__ == "__main__":
    main()
