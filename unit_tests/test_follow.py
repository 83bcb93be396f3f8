"""SyncFollower's wait between polls ends early when a webhook already settled a sync."""

from __future__ import annotations

from destination_codat_expenses import follow
from destination_codat_expenses.follow import SyncFollower


class StoreWithWebhook:
    def __init__(self, final_after_checks: int) -> None:
        self.checks = 0
        self.final_after = final_after_checks

    def any_final(self, sync_ids: list[str]) -> bool:
        self.checks += 1
        return self.checks > self.final_after


def follower(store, monkeypatch) -> tuple[SyncFollower, list[float]]:
    slept: list[float] = []
    clock = [0.0]

    def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(follow.time, "sleep", fake_sleep)
    monkeypatch.setattr(follow.time, "monotonic", lambda: clock[0])
    return SyncFollower(client=None, store=store, upload_receipts=False), slept


def test_wait_ends_when_the_store_shows_a_final_status(monkeypatch):
    store = StoreWithWebhook(final_after_checks=2)
    waiter, slept = follower(store, monkeypatch)
    waiter.wait([("company", "sync")], pause=5.0)
    assert len(slept) == 3 and sum(slept) < 5.0


def test_wait_runs_its_full_pause_without_a_webhook(monkeypatch):
    store = StoreWithWebhook(final_after_checks=10_000)
    waiter, slept = follower(store, monkeypatch)
    waiter.wait([("company", "sync")], pause=1.0)
    assert abs(sum(slept) - 1.0) < 1e-9
