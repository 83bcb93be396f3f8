"""The receiver's numbers for Prometheus (GET /metrics, text exposition format).

Counted where the receiver answers, so each delivery counts once, by what it was told:
- `codat_webhook_events_total{outcome}`: `applied` (its sync marked to confirm), `stored` (kept,
  nothing to apply), `duplicate` (seen before), `held` (202: in the spool until the store is
  free), `refused` (4xx: unverifiable, malformed, too large), `unrecorded` (503: neither the store
  nor the spool took it; Codat retries);
- `codat_webhook_store_wait_seconds`: how long a verified event waited for the writer to commit
  it (capped by the answer budget: past it the event is held instead);
- `codat_webhook_spool_events` / `codat_webhook_spool_oldest_seconds`: what the spool holds now
  (read at each scrape).
One registry per receiver (never prometheus_client's global one), so two receivers in one
process, as in the tests, count apart.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from destination_codat_expenses.webhooks.spool import Spool

OUTCOMES = ("applied", "stored", "duplicate", "held", "refused", "unrecorded")
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.45, 0.6, 1.0)
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # the classic text format every Prometheus reads


class SpoolCollector:
    """The spool's depth, read when Prometheus scrapes."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool

    def collect(self):
        depth = self.spool.depth()
        yield GaugeMetricFamily(
            "codat_webhook_spool_events",
            "Verified events held in the spool, not yet in the status store.",
            value=depth.events,
        )
        yield GaugeMetricFamily(
            "codat_webhook_spool_oldest_seconds",
            "How long the oldest held event has waited for the store (0 when none is held).",
            value=depth.oldest_s if depth.files else 0.0,
        )


class ReceiverMetrics:
    def __init__(self, spool: Spool) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "codat_webhook_events",
            "Webhook deliveries, by the answer they got.",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:  # every series from the start, so a rate() has a zero
            self.events.labels(outcome=outcome)
        self.store_wait = Histogram(
            "codat_webhook_store_wait_seconds",
            "How long a verified event waited for the writer to commit it to the store.",
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(SpoolCollector(spool))

    def count(self, outcome: str) -> None:
        self.events.labels(outcome=outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
