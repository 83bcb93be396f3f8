"""SyncFollower's wait between polls ends early when a webhook marks a sync to confirm (or
another process settles it), once per sync: a mark already seen does not wake it again."""

from __future__ import annotations

from destination_codat_expenses import follow
from destination_codat_expenses.follow import SyncFollower


class StoreWithWebhook:
    """The store's answer to "which of these are marked to confirm or settled?"."""

    def __init__(self, marked_after_checks: int) -> None:
        self.checks = 0
        self.marked_after = marked_after_checks

    def reported_or_settled(self, sync_ids: list[str]) -> set[str]:
        self.checks += 1
        return set(sync_ids) if self.checks > self.marked_after else set()


def follower(store, monkeypatch) -> tuple[SyncFollower, list[float]]:
    slept: list[float] = []
    clock = [0.0]

    def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(follow.time, "sleep", fake_sleep)
    monkeypatch.setattr(follow.time, "monotonic", lambda: clock[0])
    return SyncFollower(client=None, store=store, upload_receipts=False), slept


def test_wait_ends_when_a_webhook_marks_a_sync_to_confirm(monkeypatch):
    store = StoreWithWebhook(marked_after_checks=2)
    waiter, slept = follower(store, monkeypatch)
    waiter.wait([("company", "sync")], pause=5.0)
    assert len(slept) == 3 and sum(slept) < 5.0


def test_wait_runs_its_full_pause_without_a_webhook(monkeypatch):
    store = StoreWithWebhook(marked_after_checks=10_000)
    waiter, slept = follower(store, monkeypatch)
    waiter.wait([("company", "sync")], pause=1.0)
    assert abs(sum(slept) - 1.0) < 1e-9


def test_a_mark_already_seen_does_not_cut_the_next_wait_short(monkeypatch):
    """Codat may still call a reported sync running: the follower must not spin on its mark."""
    store = StoreWithWebhook(marked_after_checks=0)
    waiter, slept = follower(store, monkeypatch)
    waiter.wait([("company", "sync")], pause=1.0)
    first = sum(slept)
    waiter.wait([("company", "sync")], pause=1.0)
    assert first < 1.0 and abs(sum(slept) - first - 1.0) < 1e-9
