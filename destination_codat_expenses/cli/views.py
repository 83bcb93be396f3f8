"""Read-only views of the status store: `syncs list`, `syncs show`, `runs list`, `rejects list`.

Every read goes through store/queries.py. A sync code is never printed without its meaning
(models.status_meaning), and a sync's receipts are counted uploaded / pending / refused.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from typing import Any

from destination_codat_expenses.cli.env import EXIT_NOT_ALL_DONE, EXIT_OK, STORE_ENV
from destination_codat_expenses.models import status_meaning
from destination_codat_expenses.store import queries

LIST_COLUMNS = (
    "sync_id",
    "company_id",
    "outcome",
    "status_code",
    "meaning",
    "status_text",
    "flow",
    "initiated_at",
    "completed_at",
    "item_count",
    "failed_count",
    "receipts",
    "target_platform",
    "retry_of",
)
RUN_OUTCOMES = ("running", "succeeded", "failed")


def add_sync_views(syncs_commands) -> None:
    listing = with_store(syncs_commands.add_parser("list", help="Sync history, newest first."))
    listing.add_argument("--company", help="Only this company id.")
    listing.add_argument("--search", help="Part of a sync or company id.")
    listing.add_argument("--status-code", type=int, help="Only this sync status code.")
    listing.add_argument("--since", type=date.fromisoformat, help="Initiated on or after.")
    listing.add_argument("--until", type=date.fromisoformat, help="Initiated on or before.")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=run_syncs_list, reads_only=True)
    show = with_store(
        syncs_commands.add_parser("show", help="One sync, its push items and its receipts.")
    )
    show.add_argument("sync_id")
    show.set_defaults(handler=run_syncs_show, reads_only=True)


def add_run_and_reject_views(commands) -> None:
    runs = commands.add_parser("runs", help="Show the store's runs.")
    runs_commands = runs.add_subparsers(dest="runs_command", required=True)
    listing = with_store(
        runs_commands.add_parser(
            "list", help="Runs, newest first: outcome, counts, duration and why a run failed."
        )
    )
    listing.add_argument("--outcome", choices=RUN_OUTCOMES, help="Only runs that ended so.")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=run_runs_list, reads_only=True)

    rejects = commands.add_parser("rejects", help="Show bad input records and why.")
    rejects_commands = rejects.add_subparsers(dest="rejects_command", required=True)
    found = with_store(
        rejects_commands.add_parser("list", help="Rejected records, newest first, with reasons.")
    )
    found.add_argument("--run", help="Only this run id.")
    found.add_argument("--stream", help="Only this stream.")
    found.add_argument("--field", help="Only this field (e.g. date, receipt.path).")
    found.add_argument("--search", help="Part of the record key or the reason.")
    found.add_argument("--limit", type=int, default=50)
    found.set_defaults(handler=run_rejects_list, reads_only=True)

    transactions = commands.add_parser("transactions", help="Show a transaction's versions.")
    transactions_commands = transactions.add_subparsers(dest="transactions_command", required=True)
    history = with_store(
        transactions_commands.add_parser(
            "history",
            help="Every version of one transaction (expense, transfer, reimbursable or "
            "adjustment), oldest first, with its state and Codat's word on it.",
        )
    )
    history.add_argument("--id", required=True, help="The transaction id (a UUID).")
    history.set_defaults(handler=run_transactions_history, reads_only=True)


STORE_HELP = (
    "The status store: a DuckDB file, or a postgresql://user:password@host:port/db URL "
    f"(default ${STORE_ENV}, which keeps the URL's password off the command line)."
)


def with_store(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    add_store_argument(parser)
    return parser


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    """`--store`, or $CODAT_EXPENSES_STORE when it is not given."""
    default = os.environ.get(STORE_ENV, "").strip() or None
    parser.add_argument("--store", required=default is None, default=default, help=STORE_HELP)


# -- syncs ----------------------------------------------------------------------------------------
def coded(code: int | None) -> str:
    """A sync code and what it means: `5130 Data write error`."""
    return status_meaning(None) if code is None else f"{code} {status_meaning(code)}"


def receipts_line(counts: dict[str, int] | None) -> str:
    """`2 uploaded, 1 pending`: the non-zero counts, or '' when the sync has no receipts."""
    counts = counts or {}
    return ", ".join(f"{n} {name}" for name, n in counts.items() if n)


def run_syncs_list(args: argparse.Namespace) -> int:
    where = queries.SyncFilter(
        args.company, args.search, args.status_code, args.since, args.until, args.limit
    )
    rows = queries.list_syncs(args.store, where)
    if not rows:
        print("no syncs match")
        return EXIT_OK
    receipts = queries.receipts_by_sync(args.store, [r["sync_id"] for r in rows])
    for row in rows:
        row["meaning"] = status_meaning(row["status_code"])
        row["receipts"] = receipts_line(receipts.get(row["sync_id"]))
    print(table(rows, LIST_COLUMNS))
    return EXIT_OK


def run_syncs_show(args: argparse.Namespace) -> int:
    details = queries.sync_details(args.store, args.sync_id)
    if details is None:
        print(f"Sync {args.sync_id} is not in the store.", file=sys.stderr)
        return EXIT_NOT_ALL_DONE
    details["status_code"] = coded(details["status_code"])
    counts = queries.receipt_counts(args.store, args.sync_id)
    details["receipts"] = ", ".join(f"{n} {name}" for name, n in counts.items())
    width = max(len(k) for k in details)
    for name, value in details.items():
        print(f"{name.ljust(width)}  {'' if value is None else value}")
    print()
    print(table(queries.push_items(args.store, args.sync_id)) or "no push items recorded")
    receipts = queries.sync_receipts(args.store, args.sync_id)
    if receipts:
        print()
        print(table(receipts))
    return EXIT_OK


# -- runs and rejects -----------------------------------------------------------------------------
def run_runs_list(args: argparse.Namespace) -> int:
    rows = queries.list_runs(args.store, args.outcome, args.limit)
    for row in rows:
        seconds = row["duration_s"]
        row["duration_s"] = "running" if seconds is None else f"{seconds:.1f} s"
    print(table(rows, queries.RUN_COLUMNS) if rows else "no runs match")
    return EXIT_OK


def run_rejects_list(args: argparse.Namespace) -> int:
    where = queries.RejectFilter(args.run, args.stream, args.field, args.search, args.limit)
    rows = queries.list_rejects(args.store, where)
    print(table(rows, queries.REJECT_COLUMNS) if rows else "no rejects match")
    return EXIT_OK


def run_transactions_history(args: argparse.Namespace) -> int:
    rows = queries.transaction_versions(args.store, args.id.strip().lower())
    print(table(rows, queries.VERSION_COLUMNS) if rows else "no such transaction in the store")
    return EXIT_OK if rows else EXIT_NOT_ALL_DONE


# -- plain-text tables ----------------------------------------------------------------------------
def table(rows: list[dict[str, Any]], columns=None) -> str:
    """A plain-text table a person can read in a terminal. Long cells are cut at 60, except in
    the last column (a reason or an error, read whole; nothing after it to misalign)."""
    if not rows:
        return ""
    columns = list(columns or rows[0].keys())
    last = len(columns) - 1
    cells = [[cell(row.get(c), whole=i == last) for i, c in enumerate(columns)] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    widths[last] = len(columns[last])  # the last column is not padded
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def cell(value: Any, whole: bool = False) -> str:
    text = "" if value is None else str(value).replace("\n", " ")
    return text if whole or len(text) <= 60 else text[:57] + "..."
