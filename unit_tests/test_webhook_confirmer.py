"""The receiver's confirmer on its own: each marked sync read once however many webhooks name
it, none read that another process settled, a failure or a full queue leaves the sync marked
(never an exception into the writer), and what was left to confirm is picked up at start."""

from __future__ import annotations

import logging

from destination_codat_expenses.errors import RetriableAPIError
from destination_codat_expenses.webhooks import confirmer as confirmer_module
from destination_codat_expenses.webhooks.confirmer import STOP, Confirmer


class Store:
    path = "unused.duckdb"

    def __init__(self, settled=(), left=()) -> None:
        self.done, self.left = set(settled), list(left)

    def settled(self, sync_ids: list[str]) -> set[str]:
        return self.done & set(sync_ids)

    def syncs_to_confirm(self) -> list[tuple[str, str]]:
        return self.left


class Follower:
    def __init__(self, failing=()) -> None:
        self.read: list[tuple[str, str]] = []
        self.failing = set(failing)

    def settle(self, company_id: str, sync_id: str) -> bool:
        self.read.append((company_id, sync_id))
        if sync_id in self.failing:
            raise RetriableAPIError("Codat answered 503 (try again later).", status=503)
        return True


def drained(confirmer: Confirmer) -> None:
    """Work through what is queued on this thread, as one worker would."""
    confirmer.queue.put(STOP)
    confirmer.run()


def test_a_sync_named_by_many_webhooks_is_read_once():
    follower = Follower()
    confirmer = Confirmer(follower, Store())
    for _ in range(3):  # three endpoints, or Codat's retries
        confirmer.request("c1", "s1")
    confirmer.request("c1", "s2")
    drained(confirmer)
    assert follower.read == [("c1", "s1"), ("c1", "s2")]
    confirmer.request("c1", "s1")  # a later webhook asks again once the first read is done
    drained(confirmer)
    assert follower.read[-1] == ("c1", "s1")


def test_a_sync_another_process_settled_is_not_read_again():
    follower = Follower()
    confirmer = Confirmer(follower, Store(settled={"s1"}))
    confirmer.request("c1", "s1")
    drained(confirmer)
    assert follower.read == []


def test_a_failure_leaves_the_sync_marked_and_the_confirmer_going(caplog):
    follower = Follower(failing={"s1"})
    confirmer = Confirmer(follower, Store())
    confirmer.request("c1", "s1")
    confirmer.request("c1", "s2")
    with caplog.at_level(logging.WARNING):
        drained(confirmer)
    assert follower.read == [("c1", "s1"), ("c1", "s2")]
    assert "sync s1 stays to confirm: Codat answered 503" in caplog.text


def test_a_full_queue_never_blocks_and_says_the_sync_stays_marked(monkeypatch, caplog):
    monkeypatch.setattr(confirmer_module, "MAX_QUEUE", 2)
    confirmer = Confirmer(Follower(), Store())
    with caplog.at_level(logging.WARNING):
        for n in range(3):
            confirmer.request("c1", f"s{n}")
    assert confirmer.queue.qsize() == 2
    assert "confirm queue full: sync s2 stays to confirm" in caplog.text


def test_what_was_left_to_confirm_is_read_at_start():
    follower = Follower()
    confirmer = Confirmer(follower, Store(left=[("c1", "old-1"), ("c2", "old-2")]), workers=0)
    confirmer.start()  # no worker threads here: this test works the queue itself
    drained(confirmer)
    assert follower.read == [("c1", "old-1"), ("c2", "old-2")]
