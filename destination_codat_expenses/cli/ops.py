"""Operator commands: `status refresh`, `retry`, `syncs list`, `syncs show`.

Commands that call Codat take the key from $CODAT_API_KEY (never a flag: flags land in shell
history) and the address from --base-url or $CODAT_BASE_URL.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from datetime import date
from typing import Any

from destination_codat_expenses.cli.env import (
    DEFAULT_BASE_URL,
    ERROR_PREFIX,
    EXIT_NOT_ALL_DONE,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_STILL_RUNNING,
    KEY_ENV,
    URL_ENV,
)
from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.codat.http import http_client
from destination_codat_expenses.errors import CodatExpensesError
from destination_codat_expenses.refresh import refresh
from destination_codat_expenses.retry import plan_retry, run_retry
from destination_codat_expenses.store import queries
from destination_codat_expenses.store.status_store import StatusStore


def add_operator_commands(commands) -> None:
    status = commands.add_parser("status", help="Bring sync statuses up to date.")
    status_commands = status.add_subparsers(dest="status_command", required=True)
    refresh_parser = status_commands.add_parser(
        "refresh",
        help="Update every open sync from Codat and discover unrecorded syncs.",
        description="Update every open sync from Codat and discover unrecorded syncs. A sync "
        f"Codat does not know (404) is recorded as not found at Codat. Exit code {EXIT_OK}: "
        f"everything was refreshed; {EXIT_NOT_ALL_DONE}: some syncs or companies could not be "
        f"(each is named, with why); {EXIT_REFUSED}: nothing could be (no key, Codat not "
        "answering, no such sync in the store).",
    )
    with_store(with_codat(refresh_parser))
    refresh_parser.add_argument("--company", help="Only this company.")
    refresh_parser.add_argument("--sync", help="Only this sync.")
    refresh_parser.set_defaults(handler=run_refresh)

    retry = commands.add_parser("retry", help="Push a sync's failed items again (same ids).")
    with_store(with_codat(retry))
    retry.add_argument("--sync", required=True, help="The failed sync.")
    retry.add_argument(
        "--transaction", action="append", default=[], help="Only this transaction id (repeatable)."
    )
    retry.add_argument(
        "--dry-run", action="store_true", help="Show exactly what would be pushed; write nothing."
    )
    retry.set_defaults(handler=run_retry_command)

    syncs = commands.add_parser("syncs", help="Show the store's syncs.")
    syncs_commands = syncs.add_subparsers(dest="syncs_command", required=True)
    listing = with_store(syncs_commands.add_parser("list", help="Sync history, newest first."))
    listing.add_argument("--company", help="Only this company id.")
    listing.add_argument("--search", help="Part of a sync or company id.")
    listing.add_argument("--status-code", type=int, help="Only this sync status code.")
    listing.add_argument("--since", type=date.fromisoformat, help="Initiated on or after.")
    listing.add_argument("--until", type=date.fromisoformat, help="Initiated on or before.")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=run_syncs_list)
    show = with_store(syncs_commands.add_parser("show", help="One sync and its push items."))
    show.add_argument("sync_id")
    show.set_defaults(handler=run_syncs_show)


def with_store(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--store", required=True, help="The DuckDB status store file.")
    return parser


def with_codat(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--base-url",
        default=None,
        help=f"Codat's address (default ${URL_ENV}, else {DEFAULT_BASE_URL}).",
    )
    return parser


@contextlib.contextmanager
def codat_client(args: argparse.Namespace) -> Iterator[CodatClient]:
    """A client for Codat with the key from the environment; its connections close after."""
    key = os.environ.get(KEY_ENV)
    if not key:
        raise CodatExpensesError(f"Set ${KEY_ENV} to the Codat API key.")
    base = args.base_url or os.environ.get(URL_ENV) or DEFAULT_BASE_URL
    with http_client(base) as http:
        yield CodatClient(http, key)


def run_refresh(args: argparse.Namespace) -> int:
    """0 when every sync and company was refreshed (a sync Codat does not know is settled as
    not found: that is a refresh too); 1 when any could not be, each named on stderr."""
    with codat_client(args) as client:
        report = refresh(client, StatusStore(args.store), args.company, args.sync)
    for company, sync_id in report.not_found:
        print(
            f"sync {sync_id} (company {company}): Codat answered 404, it does not know this "
            "sync; recorded as not found at Codat and not asked about again"
        )
    for what, why in report.failures:
        print(f"{ERROR_PREFIX}could not refresh {what}: {why}", file=sys.stderr)
    print(
        f"checked {report.checked} open syncs, {report.finished} now final, "
        f"{report.discovered} discovered, {len(report.not_found)} not found at Codat, "
        f"{len(report.failures)} could not be refreshed"
    )
    return EXIT_NOT_ALL_DONE if report.failures else EXIT_OK


def run_retry_command(args: argparse.Namespace) -> int:
    store = StatusStore(args.store)
    plan = plan_retry(store, args.sync, args.transaction)
    print(
        f"Retry of sync {plan.sync_id} (company {plan.company_id}): "
        f"{len(plan.items)} failed item(s)"
    )
    print(
        table(
            [
                {
                    "transaction_id": i["transaction_id"],
                    "last status": i["status"],
                    "message": i["message"],
                }
                for i in plan.items
            ]
        )
    )
    if args.dry_run:
        print("dry run: nothing was pushed or written")
        return EXIT_OK
    with codat_client(args) as client:
        result = run_retry(client, store, plan)
    for sync_id in result.new_sync_ids:
        details = queries.sync_details(store.path, sync_id) or {}
        print(f"new sync {sync_id}: {details.get('status_code')} {details.get('status_text')}")
    return EXIT_OK if not result.still_open else EXIT_STILL_RUNNING


def run_syncs_list(args: argparse.Namespace) -> int:
    where = queries.SyncFilter(
        args.company, args.search, args.status_code, args.since, args.until, args.limit
    )
    rows = queries.list_syncs(args.store, where)
    print(table(rows, queries.SYNC_COLUMNS) if rows else "no syncs match")
    return EXIT_OK


def run_syncs_show(args: argparse.Namespace) -> int:
    details = queries.sync_details(args.store, args.sync_id)
    if details is None:
        print(f"Sync {args.sync_id} is not in the store.", file=sys.stderr)
        return EXIT_NOT_ALL_DONE
    width = max(len(k) for k in details)
    for name, value in details.items():
        print(f"{name.ljust(width)}  {'' if value is None else value}")
    print()
    print(table(queries.push_items(args.store, args.sync_id)) or "no push items recorded")
    return EXIT_OK


def table(rows: list[dict[str, Any]], columns=None) -> str:
    """A plain-text table a person can read in a terminal (long cells are cut at 60)."""
    if not rows:
        return ""
    columns = list(columns or rows[0].keys())
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def cell(value: Any) -> str:
    text = "" if value is None else str(value).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."
