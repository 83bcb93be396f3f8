"""What the demo prints at the end: the store's counts (store/queries.py), the sandbox's books."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from destination_codat_expenses.codat.sandbox_admin import SandboxAdmin
from destination_codat_expenses.models import COMPLETED, FAILED, STATUS_MEANING
from destination_codat_expenses.store.queries import outcome_counts

logger = logging.getLogger("codat_expenses.demo")


def summary_lines(counts: dict, ground_truth: dict[str, list[dict]], store: Path) -> list[str]:
    written = [e for entries in ground_truth.values() for e in entries]
    twice = sum(1 for e in written if e["writes"] != 1)
    lines = ["", "syncs by status"]
    lines += [
        f"  {code or '----'}  {STATUS_MEANING.get(code, 'no status yet'):34} {n:>6}"
        for code, n in counts["syncs"]
    ]
    states = counts["states"]
    lines += [
        "",
        f"transactions     {states.get(COMPLETED, 0)} completed, "
        f"{states.get(FAILED, 0)} failed in the accounting software, "
        f"{sum(v for k, v in states.items() if k not in (COMPLETED, FAILED))} "
        "other",
        f"sandbox books    {len(written)} written, {twice} written more than once",
        f"receipts         {counts['receipts'] or 'none'}",
        f"webhook events   {counts['webhooks']} received and recorded",
        f"bad records      {len(counts['rejects'])} rejected before any push",
    ]
    reasons = Counter(f"{field}: {reason}" for field, reason in counts["rejects"])
    lines += [f"  {n} x {reason}" for reason, n in reasons.most_common(5)]
    lines += ["", f"status store     {store}"]
    return lines


def print_summary(store: Path, sandbox: SandboxAdmin, workdir: Path) -> dict:
    counts = outcome_counts(str(store))
    for line in summary_lines(counts, sandbox.ground_truth(), store):
        logger.info(line)
    logger.info("logs             %s/*.log", workdir)
    return counts
