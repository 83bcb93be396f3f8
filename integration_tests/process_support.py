"""A command run as a subprocess with every process it starts noted while it runs, so a test can
say afterwards that none of them is left (read from /proc: psutil is not a dependency)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Seen:
    pid: int
    started: int  # clock ticks after boot: the same pid later is another process
    command: str


def stat_of(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, start time, state) of a running process, or None when it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[1]), int(fields[19]), fields[0]


def command_of(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def descendants(root: int) -> list[Seen]:
    parents: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := stat_of(int(entry.name))) is not None:
            parents.setdefault(stat[0], []).append(int(entry.name))
    found, todo = [], list(parents.get(root, []))
    while todo:
        pid = todo.pop()
        stat = stat_of(pid)
        if stat is not None:
            found.append(Seen(pid, stat[1], command_of(pid)))
            todo += parents.get(pid, [])
    return found


def still_running(seen: Seen) -> bool:
    stat = stat_of(seen.pid)
    return stat is not None and stat[1] == seen.started and stat[2] != "Z"


class Watched:
    """The command's output goes to files (no pipe to fill); `seen` grows at every poll."""

    def __init__(self, command: list[str], env: dict, output: Path) -> None:
        output.mkdir(parents=True, exist_ok=True)
        self.stdout_path, self.stderr_path = output / "stdout.txt", output / "stderr.txt"
        with self.stdout_path.open("w") as out, self.stderr_path.open("w") as err:
            self.process = subprocess.Popen(  # noqa: S603 - the product's own command
                command, stdout=out, stderr=err, env={**os.environ, **env}
            )
        self.seen: dict[tuple[int, int], Seen] = {}

    def note(self) -> None:
        for seen in descendants(self.process.pid):
            self.seen.setdefault((seen.pid, seen.started), seen)

    def until(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            self.note()
            if self.process.poll() is not None:
                raise AssertionError(f"ended before {what}:\n{self.stdout()}\n{self.stderr()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout_s} s:\n{self.stdout()}")
            time.sleep(0.1)
        self.note()

    def wait(self, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None:
            self.note()
            if time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"still running after {timeout_s} s")
            time.sleep(0.1)
        return self.process.returncode

    def left_running(self) -> list[str]:
        return [f"{s.pid} {s.command}" for s in self.seen.values() if still_running(s)]

    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def stderr(self) -> str:
        return self.stderr_path.read_text()
