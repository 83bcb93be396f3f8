"""SyncFollower's wait between polls ends early when a webhook marks a sync to confirm (or
another process settles it), once per sync: a mark already seen does not wake it again. A round
reads a company's several due syncs from one list, and asks about each alone when the list is
long for them, lacks one, or cannot be read; with little quota left, only each company's
oldest."""

from __future__ import annotations

import pytest

from destination_codat_expenses import follow
from destination_codat_expenses.codat.quota import RequestQuota
from destination_codat_expenses.errors import QuotaExhausted, RetriableAPIError
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


class StatusesOnly:
    """A client whose syncs are all still running, with a quota as the answers left it; its
    status lists hold `history` older syncs besides the company's open ones, less `missing`."""

    def __init__(self, remaining: int, history: int = 0, missing=(), list_fails=None) -> None:
        self.quota = RequestQuota()
        self.quota.observe(
            {"x-rate-limit-remaining": str(remaining), "x-rate-limit-reset": "2999-01-01T00:00:00Z"}
        )
        self.history, self.missing, self.list_fails = history, set(missing), list_fails
        self.asked: list[str] = []  # sync ids asked about one by one
        self.lists: list[str] = []  # companies whose status list was read

    def get_sync_status(self, company_id: str, sync_id: str) -> dict:
        self.asked.append(sync_id)
        return running(sync_id)

    def list_sync_statuses(self, company_id: str) -> list[dict]:
        self.lists.append(company_id)
        if self.list_fails:
            raise self.list_fails
        mine = [s for co, s in SYNCS if co == company_id and s not in self.missing]
        old = [{"syncId": f"old-{n}", "syncStatusCode": 2000} for n in range(self.history)]
        odd = {"syncStatusCode": 2000}  # an entry without an id: of no sync followed
        return [running(sync_id) for sync_id in mine] + old + [odd]


def running(sync_id: str) -> dict:
    return {"syncId": sync_id, "syncStatusCode": 1000}


class NothingSettled:
    """A store with nothing settled, that knows `syncs` of each company."""

    def __init__(self, syncs: int = 5) -> None:
        self.syncs = syncs

    def settled(self, sync_ids: list[str]) -> set[str]:
        return set()

    def company_sync_count(self, company_id: str) -> int:
        return self.syncs

    def record_sync_status(self, status: dict) -> None:
        pass


SYNCS = [("co-a", "a1"), ("co-b", "b1"), ("co-a", "a2"), ("co-b", "b2"), ("co-a", "a3")]


def settle_round(client: StatusesOnly, syncs=SYNCS) -> list:
    return SyncFollower(client, NothingSettled(), upload_receipts=False).settle_round(syncs)


def test_a_company_s_several_open_syncs_are_read_from_one_list_not_one_request_each():
    client = StatusesOnly(remaining=1000)
    still_open = settle_round(client)
    assert sorted(client.lists) == ["co-a", "co-b"] and client.asked == []
    assert sorted(still_open) == sorted(SYNCS)


def test_a_company_with_one_sync_due_is_asked_about_that_sync():
    client = StatusesOnly(remaining=1000)
    settle_round(client, [("co-a", "a1"), ("co-b", "b1"), ("co-b", "b2")])
    assert client.lists == ["co-b"] and client.asked == ["a1"]


def test_a_sync_the_list_does_not_hold_yet_is_asked_about_alone():
    client = StatusesOnly(remaining=1000, missing={"a3"})
    still_open = settle_round(client)
    assert client.asked == ["a3"]
    assert sorted(still_open) == sorted(SYNCS)


def test_a_company_whose_list_is_long_for_the_syncs_due_is_asked_sync_by_sync():
    client = StatusesOnly(remaining=1000, history=1000)
    follower = SyncFollower(client, NothingSettled(), upload_receipts=False)
    follower.settle_round(SYNCS)  # the first round learns how long the lists are
    client.lists, client.asked = [], []
    follower.settle_round(SYNCS)
    assert client.lists == [] and sorted(client.asked) == ["a1", "a2", "a3", "b1", "b2"]


def test_a_list_codat_cannot_give_now_leaves_each_sync_asked_about_alone():
    client = StatusesOnly(remaining=1000, list_fails=RetriableAPIError("Codat: ReadTimeout."))
    still_open = settle_round(client)
    assert sorted(client.asked) == ["a1", "a2", "a3", "b1", "b2"]
    assert sorted(still_open) == sorted(SYNCS)


def test_a_quota_used_up_while_reading_a_list_ends_the_round_asking_nothing_more():
    client = StatusesOnly(remaining=1000, list_fails=QuotaExhausted("The quota is used up."))
    with pytest.raises(QuotaExhausted):
        settle_round(client, [("co-a", "a1"), ("co-a", "a2")])
    assert client.asked == []


def test_with_little_quota_left_a_company_s_open_syncs_are_still_read_from_its_one_list():
    client = StatusesOnly(remaining=5)  # fewer than 3 for each of the five
    still_open = settle_round(client)
    assert sorted(client.lists) == ["co-a", "co-b"] and client.asked == []
    assert sorted(still_open) == sorted(SYNCS)


def test_a_company_whose_store_knows_a_long_history_is_asked_sync_by_sync_from_the_start():
    client = StatusesOnly(remaining=1000)
    follower = SyncFollower(client, NothingSettled(syncs=5000), upload_receipts=False)
    follower.settle_round(SYNCS)
    assert client.lists == [] and sorted(client.asked) == ["a1", "a2", "a3", "b1", "b2"]


def test_with_little_quota_left_only_each_company_s_oldest_open_sync_is_asked_about():
    """Where a list would not do (a long history), one request per company all the same."""
    client = StatusesOnly(remaining=5, history=1000)
    follower = SyncFollower(client, NothingSettled(), upload_receipts=False)
    follower.list_lengths = {"co-a": 1004, "co-b": 1004}  # as the lists read before held
    still_open = follower.settle_round(SYNCS)
    assert sorted(client.asked) == ["a1", "b1"] and client.lists == []
    assert sorted(still_open) == sorted(SYNCS)  # the others wait their turn, not dropped


def test_syncs_opened_within_a_moment_of_each_other_are_asked_about_in_one_round(monkeypatch):
    """Ten pushes of a company end within milliseconds of each other: their syncs are due in
    one round (one list), not in rounds a few milliseconds apart."""
    clock = [0.0]
    monkeypatch.setattr(follow.time, "monotonic", lambda: clock[0])
    waiter = SyncFollower(None, StoreWithWebhook(marked_after_checks=10**6), upload_receipts=False)
    waiter.add("co-a", "a1")
    clock[0] = 0.05
    waiter.add("co-a", "a2")
    clock[0] = follow.FIRST_PAUSE_S  # the first is due, the second nearly
    waiter.add("co-a", "later")  # due a whole pause from now
    assert waiter.next_due() == [("co-a", "a1"), ("co-a", "a2")]
