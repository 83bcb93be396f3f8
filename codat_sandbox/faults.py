"""Seeded fault injection: the ways a real API misbehaves, one knob each.

Every probability is per request, drawn from one `random.Random(seed)`, so a seed replays the
same sequence of faults for the same sequence of requests.

| knob                 | effect                                                                 |
|----------------------|------------------------------------------------------------------------|
| `rate_429`           | answer 429 with `Retry-After` before doing anything                    |
| `rate_500`           | answer 500 before doing anything                                       |
| `rate_503`           | answer 503 before doing anything                                       |
| `rate_reset`         | drop the connection before doing anything                              |
| `rate_lost_response` | do the work (it commits), then drop the connection: the answer is lost |
| `rate_slow`          | add `slow_ms` before answering                                         |
| `rate_drip`          | send the answer a few bytes at a time, `drip_delay_ms` apart           |
| `latency_ms`         | fixed delay added to every request                                     |
| `latency_jitter_ms`  | plus an exponentially distributed delay with this mean                 |
| `retry_after_s`      | the `Retry-After` a faulted 429 carries                                |
| `paths`              | regular expression: only matching paths get faults (default: the API) |
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import asdict, dataclass, fields

PRE_FAULTS = ("rate_429", "rate_500", "rate_503", "rate_reset")


@dataclass
class FaultPlan:
    seed: int = 0
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_reset: float = 0.0
    rate_lost_response: float = 0.0
    rate_slow: float = 0.0
    slow_ms: float = 2000.0
    rate_drip: float = 0.0
    drip_delay_ms: float = 50.0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    retry_after_s: int = 1
    paths: str = r"^/companies"

    @classmethod
    def from_json(cls, data: dict) -> FaultPlan:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"Unknown fault knob(s) {sorted(unknown)}; known: {sorted(names)}.")
        plan = cls(**data)
        for name in names - {"seed", "paths"}:
            value = getattr(plan, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"Fault knob {name} must be a non-negative number.")
        if not isinstance(plan.retry_after_s, int):
            raise ValueError("Fault knob retry_after_s must be a whole number of seconds.")
        if isinstance(plan.seed, bool) or not isinstance(plan.seed, int):
            raise ValueError("Fault knob seed must be an integer.")
        if sum(getattr(plan, name) for name in PRE_FAULTS) + plan.rate_lost_response > 1:
            raise ValueError("The fault rates add up to more than 1.")
        try:
            re.compile(plan.paths)
        except (re.error, TypeError) as exc:  # re.error is not a ValueError
            raise ValueError(f"Fault knob paths is not a regular expression: {exc}") from None
        return plan

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class FaultDraw:
    before: str | None = None  # one of PRE_FAULTS
    lose_response: bool = False
    delay_s: float = 0.0
    drip: bool = False
    drip_delay_s: float = 0.05


class FaultInjector:
    def __init__(self, plan: FaultPlan | None = None) -> None:
        self.lock = threading.Lock()
        self.set_plan(plan or FaultPlan())

    def set_plan(self, plan: FaultPlan) -> None:
        with self.lock:
            self.plan = plan
            self.random = random.Random(plan.seed)
            self.paths = re.compile(plan.paths)
            self.counts: dict[str, int] = {}

    def draw(self, path: str) -> FaultDraw:
        plan = self.plan
        if not self.paths.search(path):
            return FaultDraw()
        with self.lock:
            roll, slow_roll, drip_roll = (self.random.random() for _ in range(3))
            jitter = (
                self.random.expovariate(1 / plan.latency_jitter_ms)
                if plan.latency_jitter_ms
                else 0.0
            )
        draw = FaultDraw(
            delay_s=(plan.latency_ms + jitter) / 1000, drip_delay_s=plan.drip_delay_ms / 1000
        )
        if slow_roll < plan.rate_slow:
            draw.delay_s += plan.slow_ms / 1000
        draw.drip = drip_roll < plan.rate_drip
        for name in (*PRE_FAULTS, "rate_lost_response"):
            roll -= getattr(plan, name)
            if roll < 0:
                if name == "rate_lost_response":
                    draw.lose_response = True
                else:
                    draw.before = name
                self.count(name)
                break
        return draw

    def count(self, name: str) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1
