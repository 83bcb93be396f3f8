"""The one place an `httpx.Client` is made: the destination, the operator commands and the
sandbox-admin client all get the same timeouts, pool and User-Agent from here.

Why no cap on connections: a run pushes on up to `concurrency` threads per company (40 in all)
while others follow syncs and upload receipts; a pool smaller than the threads would make them
queue for a connection inside httpx, with no log line to say why. The threads bound the
connections; CodatClient's per-company gates bound what reaches Codat.
"""

from __future__ import annotations

import contextlib

import httpx

USER_AGENT = "destination-codat-expenses"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
FOLLOW_WORKERS = 4  # SyncFollower's default: what an operator command runs at once


def http_client(base_url: str, concurrency: int = FOLLOW_WORKERS) -> httpx.Client:
    """A client for `base_url` that keeps alive enough connections for `concurrency` threads
    per company (more are opened when more threads ask)."""
    return httpx.Client(
        base_url=base_url,
        timeout=TIMEOUT,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=concurrency * 8 + 8),
        headers={"User-Agent": USER_AGENT},
    )


def answers(
    base_url: str, path: str, headers: dict[str, str] | None = None, timeout_s: float = 2.0
) -> bool:
    """True when `base_url` answers a GET of `path` below 500: a loopback service has started.
    Unreachable, refused or timed out is False, never an error."""
    with http_client(base_url) as http, contextlib.suppress(httpx.TransportError):
        return http.get(path, headers=headers, timeout=timeout_s).status_code < 500
    return False
