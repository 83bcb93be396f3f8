"""Codat's rate limits: a quota of requests per window (a minute unless told) per API key and a
cap on concurrent requests per company, answered with 429 + `Retry-After`; `X-Rate-Limit-*`
headers on every response. Refusals are counted, for a test to see what a client ran into, and
so are the requests let through, by route, for a test to see what a client asked."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class LimitVerdict:
    allowed: bool
    limit: int
    remaining: int
    reset: datetime
    retry_after_s: int = 0


class RateLimiter:
    def __init__(
        self, now, per_minute: int = 60_000, concurrency: int = 10, window_s: int = 60
    ) -> None:
        self.now = now
        self.per_minute = per_minute  # the quota of one window (a minute unless told)
        self.concurrency = concurrency
        self.window_s = window_s
        self.lock = threading.Lock()
        self.window_start: datetime | None = None
        self.used = 0
        self.in_flight: dict[str, int] = {}
        self.refused = {"quota": 0, "concurrency": 0}  # 429s answered, by reason
        self.admitted: Counter[str] = Counter()  # requests let through, by route

    def admit(self, company_id: str | None, route: str = "") -> LimitVerdict:
        with self.lock:
            now = self.now()
            window = window_of(now, self.window_s)
            if window != self.window_start:
                self.window_start, self.used = window, 0
            reset = window + timedelta(seconds=self.window_s)
            if self.used >= self.per_minute:
                self.refused["quota"] += 1
                wait = max(1, int((reset - now).total_seconds()) + 1)
                return LimitVerdict(False, self.per_minute, 0, reset, wait)
            if company_id and self.in_flight.get(company_id, 0) >= self.concurrency:
                self.refused["concurrency"] += 1
                return LimitVerdict(False, self.per_minute, self.per_minute - self.used, reset, 1)
            self.used += 1
            self.admitted[route] += 1
            if company_id:
                self.in_flight[company_id] = self.in_flight.get(company_id, 0) + 1
            return LimitVerdict(True, self.per_minute, self.per_minute - self.used, reset)

    def release(self, company_id: str | None) -> None:
        if not company_id:
            return
        with self.lock:
            self.in_flight[company_id] -= 1

    def configure(
        self,
        per_minute: int | None = None,
        concurrency: int | None = None,
        window_s: int | None = None,
    ) -> None:
        with self.lock:
            if per_minute is not None:
                self.per_minute = per_minute
            if concurrency is not None:
                self.concurrency = concurrency
            if window_s is not None:
                self.window_s = window_s

    def as_json(self) -> dict:
        with self.lock:
            return {
                "perMinute": self.per_minute,
                "windowSeconds": self.window_s,
                "concurrency": self.concurrency,
                "refused": dict(self.refused),
                "admitted": dict(self.admitted),
            }


def window_of(now: datetime, window_s: int) -> datetime:
    """The start of the window `now` is in: windows of `window_s` seconds from the epoch, so
    a minute's windows are whole minutes of the clock."""
    epoch = datetime(1970, 1, 1, tzinfo=now.tzinfo)
    elapsed = (now - epoch) // timedelta(seconds=window_s)
    return epoch + timedelta(seconds=elapsed * window_s)
