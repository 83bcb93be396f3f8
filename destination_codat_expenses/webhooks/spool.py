"""A durable holding area for verified events the status store could not take in time.

Why: DuckDB lets one process hold the file at a time, and a destination run or a report page may
hold it for a while. Codat wants an answer within 15 s (we aim for 1 s) and retries a failed
delivery only minutes later. So when the store stays busy past the answer budget, the receiver
writes the events here, fsyncs, and acknowledges them; the writer applies them as soon as the
file is free, and only then deletes them. An event is acknowledged only once it is on disk,
in the store or here.

Each hold is one file (`<time>-<random>.jsonl`, written to a temporary name, fsynced, renamed),
one verified event per line with its raw body in base64, so a crash never leaves half a file
behind. Applying a file twice is harmless: the store deduplicates on webhook-id.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Depth:
    """What the spool holds: events not yet in the store, and how long the oldest has waited."""

    files: int
    events: int
    oldest_s: float


@dataclass(frozen=True)
class HeldEvent:
    webhook_id: str
    body: bytes
    received_at: datetime


class Spool:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.read: dict[Path, list[HeldEvent]] = {}

    def hold(self, events: list[HeldEvent]) -> Path:
        """Write the events durably; raises OSError if the disk will not take them."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.jsonl"
        final, partial = self.folder / name, self.folder / f".{name}.partial"
        with partial.open("w", encoding="utf-8") as out:
            out.writelines(json.dumps(as_line(event)) + "\n" for event in events)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(final)
        sync_folder(self.folder)
        return final

    def files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("*.jsonl"))

    def load(self) -> list[tuple[Path, list[HeldEvent]]]:
        """Every held file with its events. Files are read once and remembered (the writer
        looks here before every batch); an unreadable file is set aside, not retried."""
        held = []
        for path in self.files():
            if path not in self.read:
                try:
                    self.read[path] = read_file(path)
                except (OSError, ValueError, KeyError) as error:
                    logger.error(
                        "webhook spool: %s is unreadable (%s); set aside", path.name, error
                    )
                    with contextlib.suppress(OSError):
                        path.replace(path.with_suffix(".unreadable"))
                    continue
            held.append((path, self.read[path]))
        return held

    def depth(self, now: float | None = None) -> Depth:
        """Count what is held (for /healthz and /metrics); reads, never moves, a file."""
        now = time.time() if now is None else now
        files = events = 0
        oldest = now
        for path in self.files():
            try:
                events += path.read_bytes().count(b"\n")
                oldest = min(oldest, path.stat().st_mtime)
            except FileNotFoundError:  # applied and released meanwhile
                continue
            files += 1
        return Depth(files, events, max(0.0, now - oldest))

    def probe(self) -> str | None:
        """None when an event could be held here now, else why not (a real write, so a
        read-only mount, a full disk or a file in the folder's place all show)."""
        trial = self.folder / f".probe-{uuid.uuid4().hex[:8]}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            trial.write_bytes(b"probe")
            trial.unlink()
        except OSError as error:
            return f"the spool folder {self.folder} is not writable ({error.strerror or error})"
        return None

    def release(self, paths: list[Path]) -> None:
        """The events are in the store: forget them."""
        for path in paths:
            self.read.pop(path, None)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def as_line(event: HeldEvent) -> dict:
    return {
        "webhook_id": event.webhook_id,
        "received_at": event.received_at.isoformat(),
        "body": base64.b64encode(event.body).decode("ascii"),
    }


def read_file(path: Path) -> list[HeldEvent]:
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        events.append(
            HeldEvent(
                entry["webhook_id"],
                base64.b64decode(entry["body"]),
                datetime.fromisoformat(entry["received_at"]),
            )
        )
    return events


def sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
