"""What the demo prints at the end: the store's counts (store/queries.py), once they agree with
the sandbox (agreement.py). Nothing in it depends on when the demo ran or on ids Codat made up
(sync ids, record ids), so one seed prints one summary."""

from __future__ import annotations

from collections import Counter

from destination_codat_expenses.demo.agreement import CodatSide
from destination_codat_expenses.models import (
    COMPLETED,
    FAILED,
    OWN_STATUS_MEANING,
    STATUS_MEANING,
)
from destination_codat_expenses.store.queries import StoreCounts

MEANINGS = {**STATUS_MEANING, **OWN_STATUS_MEANING}
OUTCOMES = ("succeeded", "failed", "in progress")  # v_syncs.outcome
SHOWN_REASONS = 5


def meaning(code: int | None) -> str:
    if code is None:
        return "no status from Codat yet"
    return MEANINGS.get(code, "not one of Codat's sync codes")


def summary_lines(counts: StoreCounts, codat: CodatSide) -> list[str]:
    lines = ["", "syncs by status"]
    lines += [f"  {code or '----'}  {meaning(code):34} {n:>6}" for code, n in counts.codes]
    total = sum(n for _, n in counts.codes)
    by_outcome = ", ".join(f"{counts.outcomes.get(o, 0)} {o}" for o in OUTCOMES)
    lines += [f"  {total} syncs: {by_outcome}", ""]
    lines += transaction_lines(counts, codat)
    lines += reject_lines(counts.rejects)
    lines += [
        "",
        f"checked          store and sandbox (Codat) agree: {len(codat.sync_codes)} sync codes, "
        f"{len(codat.item_statuses)} transaction statuses, {codat.receipts_attached} receipts",
    ]
    return lines


def transaction_lines(counts: StoreCounts, codat: CodatSide) -> list[str]:
    states, receipts = counts.states, counts.receipts
    others = sum(n for state, n in states.items() if state not in (COMPLETED, FAILED))
    return [
        f"transactions     {states.get(COMPLETED, 0)} completed, "
        f"{states.get(FAILED, 0)} failed in the accounting software, {others} other",
        f"sandbox books    {codat.written} written, {codat.written_twice} written more than once",
        f"receipts         {receipts['uploaded']} uploaded, {receipts['pending']} pending, "
        f"{receipts['refused']} refused",
        f"webhook events   {counts.webhooks} received and recorded",
    ]


def reject_lines(rejects: list[tuple[str, str]]) -> list[str]:
    """How many records were refused before any push, and the commonest reasons (ties in the
    order of the reason's text, so the lines do not depend on the order rows come back in)."""
    reasons = Counter(f"{field}: {reason}" for field, reason in rejects)
    commonest = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    lines = [f"bad records      {len(rejects)} rejected before any push"]
    return lines + [f"  {n} x {reason}" for reason, n in commonest[:SHOWN_REASONS]]
