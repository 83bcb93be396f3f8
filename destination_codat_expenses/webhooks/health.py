"""Is the receiver fit to take events? GET /healthz says, for a load balancer or a Kubernetes
probe: 200 when an event sent now would be acknowledged and reach the store, 503 with the
reasons when not.

Unhealthy when:
- the status store cannot be opened for a reason other than another process holding it (a
  missing file, a broken one, no permission): a store that is merely busy is fine, that is what
  the spool is for;
- the spool cannot be written (an event could then be neither stored nor held);
- the spool holds more than `max_held_events`, or has held an event longer than `max_held_s`:
  the store has stopped taking them, and events wait unconfirmed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from destination_codat_expenses.errors import StoreError
from destination_codat_expenses.redaction import is_postgres, shown
from destination_codat_expenses.store.db import ping, reading
from destination_codat_expenses.webhooks.spool import Spool

PROBE_WAIT_S = 0.3
MAX_HELD_EVENTS = 1000
MAX_HELD_S = 600.0
OK, BUSY, FAILING = "ok", "busy", "failing"


@dataclass(frozen=True)
class Limits:
    max_held_events: int = MAX_HELD_EVENTS
    max_held_s: float = MAX_HELD_S


StoreProbe = Callable[[], tuple[str, str | None]]  # (OK | BUSY | FAILING, why)


def duckdb_probe(path: str, wait_s: float = PROBE_WAIT_S) -> StoreProbe:
    """Open the DuckDB file as the writer does (no query): held by another process is BUSY."""

    def probe() -> tuple[str, str | None]:
        if not Path(path).is_file():
            return FAILING, f"the status store {path} is missing"
        try:
            with reading(path, wait_s):
                return OK, None
        except StoreError as error:
            if "lock" in str(error).lower():
                return BUSY, "another process holds the store; events are held in the spool"
            return FAILING, str(error)

    return probe


def postgres_probe(url: str) -> StoreProbe:
    """Open the PostgreSQL store and read its schema version: there is no lock to be busy on,
    so anything but an answer is FAILING (the reason with the URL's password masked)."""

    def probe() -> tuple[str, str | None]:
        try:
            ping(url)
        except StoreError as error:
            return FAILING, str(error)
        except Exception as error:  # noqa: BLE001 - a probe answers, it does not raise
            return FAILING, f"the status store {shown(url)} cannot be read ({type(error).__name__})"
        return OK, None

    return probe


def default_probe(location: str) -> StoreProbe:
    return postgres_probe(location) if is_postgres(location) else duckdb_probe(location)


def health(store_probe: StoreProbe, spool: Spool, limits: Limits) -> tuple[bool, dict]:
    """(healthy, the answer's body)."""
    reasons = []
    store_state, store_why = store_probe()
    if store_state == FAILING:
        reasons.append(f"the status store cannot be opened: {store_why}")
    spool_why = spool.probe()
    if spool_why:
        reasons.append(spool_why)
    depth = spool.depth()
    if depth.events > limits.max_held_events:
        reasons.append(
            f"{depth.events} events are held in the spool (more than {limits.max_held_events})"
        )
    if depth.files and depth.oldest_s > limits.max_held_s:
        reasons.append(
            f"an event has been held in the spool for {depth.oldest_s:.0f} s "
            f"(more than {limits.max_held_s:.0f} s): the store is not taking them"
        )
    body = {
        "ok": not reasons,
        "store": store_state if not store_why else f"{store_state}: {store_why}",
        "spool": {"events": depth.events, "oldest_seconds": round(depth.oldest_s, 1)},
    }
    if reasons:
        body["reasons"] = reasons
    return not reasons, body
