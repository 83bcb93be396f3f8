"""Operator commands that speak to Codat: `status refresh`, `retry`, `syncs latest`,
`syncs last-successful`; the store's own views (`syncs list` / `show`, `runs list`,
`rejects list`) are in views.py.

Commands that call Codat take the key from $CODAT_API_KEY (never a flag: flags land in shell
history) and the address from --base-url or $CODAT_BASE_URL.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from destination_codat_expenses.cli.env import (
    DEFAULT_BASE_URL,
    ERROR_PREFIX,
    EXIT_NO_SYNC,
    EXIT_NOT_ALL_DONE,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_STILL_RUNNING,
    KEY_ENV,
    URL_ENV,
)
from destination_codat_expenses.cli.views import (
    add_run_and_reject_views,
    add_sync_views,
    coded,
    receipts_line,
    table,
    with_store,
)
from destination_codat_expenses.errors import CodatExpensesError, FatalAPIError
from destination_codat_expenses.store import queries
from destination_codat_expenses.values import canonical_uuid

# the commands that call Codat or push import the client and the push path when they run: the
# read-only commands (syncs list, runs list, ...) start without them
if TYPE_CHECKING:
    from destination_codat_expenses.codat.client import CodatClient
    from destination_codat_expenses.retry import RetryResult


def add_operator_commands(commands) -> None:
    status = commands.add_parser("status", help="Bring sync statuses up to date.")
    status_commands = status.add_subparsers(dest="status_command", required=True)
    refresh_parser = status_commands.add_parser(
        "refresh",
        help="Update every open sync from Codat, discover unrecorded syncs, upload receipts "
        "still pending.",
        description="Update every open sync from Codat and discover unrecorded syncs. A sync "
        "Codat does not know (404) is recorded as not found at Codat. Receipts of completed "
        "transactions still pending are uploaded (a receipt path only with --receipts-root). "
        f"Exit code {EXIT_OK}: everything was refreshed; {EXIT_NOT_ALL_DONE}: some syncs or "
        f"companies could not be (each is named, with why); {EXIT_REFUSED}: nothing could be "
        "(no key, Codat not answering, no such sync in the store).",
    )
    with_store(with_codat(refresh_parser))
    refresh_parser.add_argument("--company", help="Only this company.")
    refresh_parser.add_argument("--sync", help="Only this sync.")
    refresh_parser.add_argument(
        "--receipts-root",
        help="The destination's receipts_root: lets receipts given as a path be uploaded.",
    )
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

    syncs = commands.add_parser("syncs", help="Show syncs: the store's, or Codat's latest.")
    syncs_commands = syncs.add_subparsers(dest="syncs_command", required=True)
    add_sync_views(syncs_commands)
    for name, what in (("latest", "last initiated"), ("last-successful", "last successful")):
        latest = with_codat(
            syncs_commands.add_parser(
                name,
                help=f"Codat's status of a company's {what} sync.",
                description=f"Ask Codat for the company's {what} sync: its code and what it "
                f"means, and its time. Exit code {EXIT_NO_SYNC} when Codat has none yet.",
            )
        )
        latest.add_argument("--company", required=True, help="The Codat company id.")
        latest.add_argument("--store", help="Also show the store's times for that sync.")
        latest.set_defaults(handler=run_syncs_latest, which=name)
    add_run_and_reject_views(commands)


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
    from destination_codat_expenses.codat.client import CodatClient
    from destination_codat_expenses.codat.http import http_client

    key = os.environ.get(KEY_ENV)
    if not key:
        raise CodatExpensesError(f"Set ${KEY_ENV} to the Codat API key.")
    base = args.base_url or os.environ.get(URL_ENV) or DEFAULT_BASE_URL
    with http_client(base) as http:
        yield CodatClient(http, key)


def run_refresh(args: argparse.Namespace) -> int:
    """0 when every sync and company was refreshed (a sync Codat does not know is settled as
    not found: that is a refresh too); 1 when any could not be, each named on stderr."""
    from destination_codat_expenses.config import checked_receipts_root
    from destination_codat_expenses.refresh import refresh
    from destination_codat_expenses.store.status_store import StatusStore

    root = checked_receipts_root(args.receipts_root)
    with codat_client(args) as client:
        report = refresh(client, StatusStore(args.store), args.company, args.sync, root)
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
    print(f"receipts: {receipts_line(queries.receipt_counts(args.store)) or 'none'}")
    return EXIT_NOT_ALL_DONE if report.failures else EXIT_OK


def run_retry_command(args: argparse.Namespace) -> int:
    from destination_codat_expenses.retry import plan_retry, run_retry
    from destination_codat_expenses.store.status_store import StatusStore

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
    return retry_verdict(store.path, result)


def retry_verdict(path: str, result: RetryResult) -> int:
    """Print each new sync's code and meaning; 0 only when every new sync succeeded and every
    item is now completed. Otherwise say why on stderr: 1 when a sync failed or an item is
    still not completed, 3 when a sync had not ended (and nothing failed)."""
    failed = []
    for sync_id in result.new_sync_ids:
        details = queries.sync_details(path, sync_id) or {}
        print(f"new sync {sync_id}: {coded(details.get('status_code'))}", end="")
        print(f" ({details['status_text']})" if details.get("status_text") else "")
        if details.get("outcome") == "failed":
            failed.append(f"sync {sync_id} ended {coded(details.get('status_code'))}")
    if not result.still_open:
        plan = result.plan
        ids = [i["transaction_id"] for i in plan.items]
        states = queries.ledger_states(path, plan.company_id, ids)
        left = [tid for tid in ids if states.get(tid) != "completed"]
        if left and not failed:
            failed.append(f"{len(left)} of {len(ids)} items are still not completed")
    for why in failed:
        print(f"{ERROR_PREFIX}the retry did not succeed: {why}", file=sys.stderr)
    if failed:
        print(
            f"{ERROR_PREFIX}`codat-expenses syncs show <sync>` lists each item's reason",
            file=sys.stderr,
        )
        return EXIT_NOT_ALL_DONE
    if result.still_open:
        print(
            f"{ERROR_PREFIX}{len(result.still_open)} new sync(s) had not ended when the wait ran "
            "out; `codat-expenses status refresh` records how they end",
            file=sys.stderr,
        )
        return EXIT_STILL_RUNNING
    return EXIT_OK


# -- a company's latest and last successful sync, as Codat tells it ------------------------------
def run_syncs_latest(args: argparse.Namespace) -> int:
    company = canonical_uuid(args.company)
    if company is None:
        raise ValueError(f"--company must be a Codat company id (a UUID), not {args.company!r}.")
    what = "successful sync" if args.which == "last-successful" else "sync"
    with codat_client(args) as client:
        ask: Callable[[str], dict] = (
            client.get_last_successful_sync_status
            if args.which == "last-successful"
            else client.get_latest_sync_status
        )
        try:
            status = ask(company)
        except FatalAPIError as error:
            if error.status != 404:
                raise
            from destination_codat_expenses.companies import learn_company

            if not learn_company(client, company).exists:
                raise CodatExpensesError(f"Codat has no company {company}.") from None
            print(f"company {company} has no {what} yet (Codat answered 404: {error.detail})")
            return EXIT_NO_SYNC
    print_codat_status(company, status, args.store)
    return EXIT_OK


def print_codat_status(company: str, status: dict, store: str | None) -> None:
    sync_id = status.get("syncId")
    lines = {
        "company": company,
        "sync": sync_id,
        "status": coded(status.get("syncStatusCode")),
        "status text": status.get("syncStatus"),
        "sync time": status.get("syncUtc"),
        "data pushed": status.get("dataPushed"),
        "error": status.get("errorMessage") or None,
        "exception": status.get("syncExceptionMessage") or None,
    }
    if store:
        stored = queries.sync_details(store, sync_id) if sync_id else None
        if stored is None:
            lines["in the store"] = "not recorded (`codat-expenses status refresh` records it)"
        else:
            lines["initiated (store)"] = stored["initiated_at"]
            lines["completed (store)"] = stored["completed_at"]
    width = max(len(name) for name in lines)
    for name, value in lines.items():
        print(f"{name.ljust(width)}  {'' if value is None else value}")
