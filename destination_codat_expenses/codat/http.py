"""The one place an `httpx.Client` for Codat is made (the client takes any httpx.Client, so a
test can hand it the sandbox in process instead)."""

from __future__ import annotations

import httpx

USER_AGENT = "destination-codat-expenses"


def codat_http(base_url: str, connections: int = 10) -> httpx.Client:
    """A client for Codat at `base_url`: a 30 s timeout per read (10 s to connect; the
    CodatClient adds an overall deadline per attempt) and at most `connections` at once."""
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(30.0, connect=10.0),
        limits=httpx.Limits(max_connections=connections),
        headers={"User-Agent": USER_AGENT},
    )
