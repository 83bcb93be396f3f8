"""What the demo prints at the end: read back from the store (views) and the sandbox's books."""

from __future__ import annotations

import base64
import logging
from collections import Counter
from pathlib import Path

import httpx

from destination_codat_expenses.models import STATUS_MEANING
from destination_codat_expenses.store.db import reading

logger = logging.getLogger("codat_expenses.demo")


def store_counts(store: Path) -> dict:
    with reading(str(store), read_only=True) as db:
        return {
            "syncs": db.execute(
                "SELECT status_code, count(*) FROM v_syncs GROUP BY 1 ORDER BY 1"
            ).fetchall(),
            "states": dict(
                db.execute("SELECT state, count(*) FROM v_transactions GROUP BY 1").fetchall()
            ),
            "rejects": db.execute("SELECT field, reason FROM v_rejects").fetchall(),
            "receipts": dict(
                db.execute("SELECT status, count(*) FROM v_attachments GROUP BY 1").fetchall()
            ),
            "webhooks": db.execute("SELECT count(*) FROM v_webhook_events").fetchone()[0],
        }


def books(sandbox_url: str, api_key: str) -> dict[str, list[dict]]:
    token = base64.b64encode(api_key.encode()).decode()
    return httpx.get(
        f"{sandbox_url}/_sandbox/ground-truth",
        timeout=30,
        headers={"Authorization": f"Basic {token}"},
    ).json()


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
        f"transactions     {states.get('completed', 0)} completed, "
        f"{states.get('failed', 0)} failed in the accounting software, "
        f"{sum(v for k, v in states.items() if k not in ('completed', 'failed'))} "
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


def print_summary(store: Path, sandbox_url: str, api_key: str, workdir: Path) -> dict:
    counts = store_counts(store)
    for line in summary_lines(counts, books(sandbox_url, api_key), store):
        logger.info(line)
    logger.info("logs             %s/*.log", workdir)
    return counts
