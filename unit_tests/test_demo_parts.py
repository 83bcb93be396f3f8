"""The demo's summary and its check against the sandbox, on plain values: every disagreement is
named, codes are printed with Codat's meanings, and nothing in the summary depends on the order
rows come back in or on ids made up at run time."""

from __future__ import annotations

import random
import re

from destination_codat_expenses.demo.agreement import CodatSide, disagreements
from destination_codat_expenses.demo.records import COMPANIES
from destination_codat_expenses.demo.summary import summary_lines
from destination_codat_expenses.models import STATUS_MEANING
from destination_codat_expenses.store.queries import StoreCounts

GRANITE = COMPANIES[6]  # de-authorized: every sync 4040
ACME = COMPANIES[0]


def codat_side(**changes) -> CodatSide:
    values = {
        "sync_codes": {"s-ok": 2000, "s-4040": 4040},
        "sync_companies": {"s-ok": ACME.id, "s-4040": GRANITE.id},
        "item_statuses": {
            ("s-ok", "t1"): "Completed",
            ("s-ok", "t2"): "Completed",
            ("s-4040", "t3"): "PushError",
        },
        "written": 2,
        "written_twice": 0,
        "receipts_attached": 1,
        "webhooks_delivered": 2,
    }
    return CodatSide(**{**values, **changes})


def store_counts(**changes) -> StoreCounts:
    values = {
        "codes": [(2000, 1), (4040, 1)],
        "outcomes": {"succeeded": 1, "failed": 1},
        "sync_codes": {"s-ok": 2000, "s-4040": 4040},
        "item_statuses": {
            ("s-ok", "t1"): "Completed",
            ("s-ok", "t2"): "Completed",
            ("s-4040", "t3"): "PushError",
        },
        "states": {"completed": 2, "failed": 1},
        "rejects": [("date", "'2024-02-30' is not a valid ISO 8601 date")],
        "receipts": {"uploaded": 1, "pending": 0, "refused": 0},
        "webhooks": 2,
    }
    return StoreCounts(**{**values, **changes})


def test_a_store_that_agrees_has_no_disagreements():
    assert disagreements(store_counts(), codat_side()) == []


def test_a_guessed_code_is_named_with_the_company_and_both_codes():
    store = store_counts(sync_codes={"s-ok": 2000, "s-4040": 5130})
    [problem] = disagreements(store, codat_side())
    assert "s-4040" in problem and GRANITE.name in problem
    assert "the store has 5130, Codat has 4040" in problem


def test_item_statuses_missing_syncs_and_counts_are_each_a_disagreement():
    store = store_counts(
        sync_codes={"s-ok": 2000, "s-4040": 4040, "s-extra": 2000},
        item_statuses={("s-ok", "t1"): "Completed", ("s-4040", "t3"): "Failed"},
        states={"completed": 1, "failed": 2},
        receipts={"uploaded": 0, "pending": 1, "refused": 0},
        webhooks=1,
    )
    problems = disagreements(store, codat_side())
    assert "sync s-extra: in the store, not at Codat" in problems
    assert "1 transaction status(es): the store has Failed, Codat has PushError" in problems
    assert "1 transaction status(es): the store has nothing, Codat has Completed" in problems
    assert "completed transactions: the store has 1, Codat has 2" in problems
    assert "receipts uploaded: the store has 0, Codat has 1" in problems
    assert "webhook events: the store has 1, Codat has 2" in problems


def test_a_sync_the_store_does_not_have_is_a_disagreement():
    store = store_counts(sync_codes={"s-ok": 2000})
    assert any(
        "the store has no such sync, Codat has 4040" in p
        for p in disagreements(store, codat_side())
    )


def test_summary_prints_codes_with_their_meanings_and_counts_per_outcome():
    lines = summary_lines(store_counts(), codat_side())
    text = "\n".join(lines)
    for code in (2000, 4040):
        assert re.search(rf"^  {code}  {re.escape(STATUS_MEANING[code])}\s+1$", text, re.M)
    assert "2 syncs: 1 succeeded, 1 failed, 0 in progress" in text
    assert "receipts         1 uploaded, 0 pending, 0 refused" in text
    assert "{" not in text and "}" not in text, "no raw Python dict"


def test_a_sync_without_a_code_is_not_shown_as_one():
    store = store_counts(codes=[(None, 1), (2000, 1)])
    text = "\n".join(summary_lines(store, codat_side()))
    assert re.search(r"^  ----  no status from Codat yet\s+1$", text, re.M)


def test_summary_is_the_same_whatever_order_the_rows_come_in():
    rejects = [("date", "bad date")] * 2 + [("amount", f"reason {n}") for n in range(7)]
    shuffled = random.Random(3).sample(rejects, len(rejects))
    first = summary_lines(store_counts(rejects=rejects), codat_side())
    again = summary_lines(store_counts(rejects=shuffled), codat_side())
    assert first == again
    assert "  2 x date: bad date" in first
    assert "  1 x amount: reason 0" in first and "  1 x amount: reason 4" not in first


def test_summary_names_no_sync_id():
    text = "\n".join(summary_lines(store_counts(), codat_side()))
    assert "s-ok" not in text and "s-4040" not in text


# -- signing in to retry in the demo's report ------------------------------------------------------
def test_the_demo_makes_a_one_off_operator_token_for_a_terminal(monkeypatch):
    from destination_codat_expenses.demo import run

    monkeypatch.delenv(run.OPERATOR_TOKEN_ENV, raising=False)
    monkeypatch.setattr(run.sys.stdout, "isatty", lambda: True)
    env, line = run.operator_access()
    token = env[run.OPERATOR_TOKEN_ENV]
    assert len(token) >= 24 and line.endswith(f"operator token: {token}")
    assert run.operator_access()[0][run.OPERATOR_TOKEN_ENV] != token  # one-off: new each time


def test_the_demo_passes_a_token_the_person_set_on_and_never_prints_it(monkeypatch):
    from destination_codat_expenses.demo import run

    monkeypatch.setenv(run.OPERATOR_TOKEN_ENV, "my-own-token-3f9a")
    monkeypatch.setattr(run.sys.stdout, "isatty", lambda: True)
    env, line = run.operator_access()
    assert env == {} and "my-own-token-3f9a" not in line  # the child inherits the person's env
    assert f"${run.OPERATOR_TOKEN_ENV}" in line


def test_without_a_terminal_the_demo_prints_no_token_and_says_how_to_enable_retry(monkeypatch):
    from destination_codat_expenses.demo import run

    monkeypatch.delenv(run.OPERATOR_TOKEN_ENV, raising=False)
    monkeypatch.setattr(run.sys.stdout, "isatty", lambda: False)
    env, line = run.operator_access()
    assert env == {} and "is off" in line and run.OPERATOR_TOKEN_ENV in line
