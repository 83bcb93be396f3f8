"""Codat's rate limits: a per-minute quota per API key and a cap on concurrent requests per
company, answered with 429 + `Retry-After`; `X-Rate-Limit-*` headers on every response."""

from __future__ import annotations

import threading
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
    def __init__(self, now, per_minute: int = 60_000, concurrency: int = 10) -> None:
        self.now = now
        self.per_minute = per_minute
        self.concurrency = concurrency
        self.lock = threading.Lock()
        self.window_start: datetime | None = None
        self.used = 0
        self.in_flight: dict[str, int] = {}

    def admit(self, company_id: str | None) -> LimitVerdict:
        with self.lock:
            now = self.now()
            window = now.replace(second=0, microsecond=0)
            if window != self.window_start:
                self.window_start, self.used = window, 0
            reset = window + timedelta(minutes=1)
            if self.used >= self.per_minute:
                wait = max(1, int((reset - now).total_seconds()) + 1)
                return LimitVerdict(False, self.per_minute, 0, reset, wait)
            if company_id and self.in_flight.get(company_id, 0) >= self.concurrency:
                return LimitVerdict(False, self.per_minute, self.per_minute - self.used, reset, 1)
            self.used += 1
            if company_id:
                self.in_flight[company_id] = self.in_flight.get(company_id, 0) + 1
            return LimitVerdict(True, self.per_minute, self.per_minute - self.used, reset)

    def release(self, company_id: str | None) -> None:
        if not company_id:
            return
        with self.lock:
            self.in_flight[company_id] -= 1

    def configure(self, per_minute: int | None = None, concurrency: int | None = None) -> None:
        with self.lock:
            if per_minute is not None:
                self.per_minute = per_minute
            if concurrency is not None:
                self.concurrency = concurrency
