"""Codat's request quota, as its answers tell it, steering what the client sends.

Codat allows an API key 1,000 x (1 + connected companies) requests a day; past that every
request is answered 429 until the quota resets (codat-api.md §2.2). Every answer carries
`X-Rate-Limit-Limit`, `X-Rate-Limit-Remaining` and `X-Rate-Limit-Reset` (when the window
ends). The client asks here before each request:

- enough is left: it goes (requests still in flight count as spent: their answers will say so);
- not enough, and the reset is near (within the longest Retry-After the client would wait): it
  waits for the reset instead of sending into a 429;
- not enough, and the reset is far (a day's quota used up): QuotaExhausted at once, where the
  429 path would try again for minutes into the same answer.

A request that opens a sync needs more than itself: FOLLOW_REQUESTS for every sync opened and
not yet seen final and for its own, so a run that stops for want of quota can still record how
its syncs ended; when little is left, a follower asks about a company's oldest open sync only
(follow.py), as Codat runs them one after another. A sync still running when the quota is gone
stays open in the store, and the next run follows it. Answers without the headers, or with
values that do not read, steer nothing: the 429 path (Retry-After, a narrower share of
concurrency) is then all there is.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from destination_codat_expenses import stopping
from destination_codat_expenses.errors import QuotaExhausted

FOLLOW_REQUESTS = 3  # to settle a sync: its status (asked again if it still ran), its transactions
RESET_MARGIN_S = 0.25  # after the reset, so a clock a little behind Codat's is not early
WAIT_FOR_ANSWERS_S = 0.25  # a request short of quota while others are in flight looks again


class RequestQuota:
    def __init__(
        self,
        reserve_per_sync: int = FOLLOW_REQUESTS,
        max_wait_s: float = 120.0,
        clock: Callable[[], float] = time.time,
        pause: Callable[[float], None] | None = None,
    ) -> None:
        self.reserve_per_sync = reserve_per_sync  # 0: nobody follows the syncs (no reserve)
        self.max_wait_s = max_wait_s
        self.clock, self.pause = clock, pause or self.sleep
        self.changed = threading.Condition()
        self.limit: int | None = None  # requests per window, as the last answer said
        self.remaining: int | None = None  # None: unknown (no answer said, or a new window)
        self.reset: float | None = None  # when the window ends (epoch seconds)
        self.in_flight = 0
        self.opening = 0  # requests in flight that open a sync
        self.open_syncs: set[str] = set()  # opened, not yet seen final

    # -- what the answers say -------------------------------------------------------------------
    def observe(self, headers: Mapping[str, str]) -> None:
        """Take an answer's rate-limit headers (any that do not read are left out). Answers
        arrive out of order: one from an older window is ignored, and within a window the
        least remaining is the latest word."""
        remaining = count(headers.get("x-rate-limit-remaining"))
        if remaining is None:
            return
        limit, reset = count(headers.get("x-rate-limit-limit")), moment(headers)
        with self.changed:
            if reset is not None and self.reset is not None and reset < self.reset:
                return
            same_window = reset is None or reset == self.reset
            if same_window and self.remaining is not None:
                remaining = min(remaining, self.remaining)
            self.remaining, self.limit = remaining, limit if limit is not None else self.limit
            self.reset = reset if reset is not None else self.reset
            self.changed.notify_all()

    def opened(self, sync_id: str) -> None:
        with self.changed:
            self.open_syncs.add(sync_id)

    def settled(self, sync_id: str) -> None:
        with self.changed:
            self.open_syncs.discard(sync_id)

    def said(self) -> str:
        """What the last answers said of the quota, for a progress line ("" when nothing)."""
        with self.changed:
            if self.remaining is None or self.reset is None:
                return ""
            reset = when(self.reset)
            return f", Codat quota {self.remaining} of {self.limit} left until {reset}"

    # -- what may be sent -----------------------------------------------------------------------
    @contextmanager
    def request(self, opens: bool = False) -> Iterator[None]:
        """One request: admitted (after waiting for the reset, if that is near), counted in
        flight until its answer is in."""
        self.admit(opens)
        try:
            yield
        finally:
            with self.changed:
                self.in_flight -= 1
                self.opening -= 1 if opens else 0
                self.changed.notify_all()

    def admit(self, opens: bool) -> None:
        while True:
            with self.changed:
                wait = self.shortfall(opens, self.clock())
                if wait is None:
                    self.in_flight += 1
                    self.opening += 1 if opens else 0
                    return
                if wait > self.max_wait_s and self.in_flight:
                    # their answers may say more is left than counting them as spent does
                    self.changed.wait(WAIT_FOR_ANSWERS_S)
                    continue
                if wait > self.max_wait_s:
                    raise self.exhausted(opens)
            self.pause(wait + RESET_MARGIN_S)

    def sleep(self, seconds: float) -> None:
        """Wait for the reset, a stop request cutting it short (on any thread)."""
        until = self.clock() + seconds
        while (left := until - self.clock()) > 0:
            stopping.check()
            stopping.pause(min(left, stopping.POLL_S))

    def check_open(self) -> None:
        """Raise QuotaExhausted now if a sync could not be opened and followed (waits for a
        near reset, like a request); nothing is counted. A push asks before it claims its ids,
        so a refusal leaves none of them `sending`."""
        with self.request(opens=True):
            pass

    def used_up(self) -> QuotaExhausted | None:
        """After a 429: the error to end with, when the answer says the quota is gone until a
        reset too far away to wait for (a Retry-After would only be cut short and met again)."""
        with self.changed:
            now = self.clock()
            if self.remaining != 0 or self.reset is None or self.reset - now <= self.max_wait_s:
                return None
            return self.exhausted(False)

    def tight(self, syncs: int) -> bool:
        """Whether fewer requests are left than asking about `syncs` open syncs once each,
        with their transactions, would take (a follower then asks about fewer at a time)."""
        with self.changed:
            self.roll_window(self.clock())
            if self.remaining is None or self.reset is None:
                return False
            return self.remaining - self.in_flight < FOLLOW_REQUESTS * syncs

    def roll_window(self, now: float) -> None:
        if self.reset is not None and now >= self.reset:  # a new window: the whole quota again
            self.remaining, self.reset = self.limit, None

    def shortfall(self, opens: bool, now: float) -> float | None:
        """None: the request may go now. Else the seconds until the window resets."""
        self.roll_window(now)
        if self.remaining is None or self.reset is None:
            return None  # nothing to steer by: the 429 path decides
        if self.remaining - self.in_flight >= self.needed(opens):
            return None
        return max(self.reset - now, 0.0)

    def needed(self, opens: bool) -> int:
        if not opens:
            return 1
        syncs = len(self.open_syncs) + self.opening + 1
        return 1 + self.reserve_per_sync * syncs

    def exhausted(self, opens: bool) -> QuotaExhausted:
        reset = when(self.reset or 0)
        kept = (
            f", {self.reserve_per_sync} kept for each of the {len(self.open_syncs)} syncs still "
            "open, to record how they end"
            if opens and self.open_syncs and self.reserve_per_sync
            else ""
        )
        return QuotaExhausted(
            f"Codat's request quota for this API key is used up until {reset} "
            f"({self.remaining} of {self.limit} requests left{kept}). Nothing more is sent "
            "before then: the next run after the reset goes on from here, and nothing already "
            "pushed is lost or sent twice.",
            status=429,
            detail="quota used up",
        )


def when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def count(text: str | None) -> int | None:
    """A header's whole non-negative number, or None."""
    if text is None or not text.strip().isdigit():
        return None
    return int(text.strip())


def moment(headers: Mapping[str, str]) -> float | None:
    """X-Rate-Limit-Reset as epoch seconds: an ISO 8601 time (naive means UTC) or an HTTP date."""
    text = (headers.get("x-rate-limit-reset") or "").strip()
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = when.timestamp()
    return seconds if math.isfinite(seconds) else None
