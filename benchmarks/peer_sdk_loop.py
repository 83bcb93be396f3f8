"""Peer (b): Codat's official Python SDK for Sync for Expenses (`codat-sync-for-expenses`), a
plain sequential loop of 50-item `expenses.create` calls, no bookkeeping. Runs in the SDK's own
environment (sdk_env.py), never the project's: it imports only the standard library, the SDK
and the benchmarks' standard-library helpers. Prints one JSON line like peer_plain_async.

    SDK_PYTHON -m benchmarks.peer_sdk_loop --base-url URL --api-key KEY --messages FILE
"""

from __future__ import annotations

import argparse
import base64
import time
from collections import Counter
from itertools import zip_longest
from pathlib import Path

from benchmarks.peer_records import chunks, item, print_result, records_by_company


def round_robin(work: dict[str, list[list[dict]]]) -> list[tuple[str, list[dict]]]:
    """One company's batch, then the next company's: the order the records came in."""
    rounds = zip_longest(*([(c, b) for b in batches] for c, batches in work.items()))
    return [pair for one_round in rounds for pair in one_round if pair is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--messages", type=Path, required=True)
    args = parser.parse_args()
    started = time.monotonic()
    from codat_sync_for_expenses import CodatSyncExpenses  # the SDK's env only
    from codat_sync_for_expenses.models import shared

    work = {c: chunks(records) for c, records in records_by_company(args.messages).items()}
    auth = "Basic " + base64.b64encode(args.api_key.encode()).decode()
    tally: Counter = Counter()
    with CodatSyncExpenses(
        security=shared.Security(auth_header=auth), server_url=args.base_url, timeout_ms=120_000
    ) as sdk:
        sending = time.monotonic()
        for company_id, batch in round_robin(work):
            try:
                sdk.expenses.create(
                    request={"company_id": company_id, "request_body": [item(d) for d in batch]}
                )
                tally["records"] += len(batch)
            except Exception as error:  # counted by kind, as the plain client does
                tally[type(error).__name__] += 1
        done = time.monotonic()
    print_result("sdk-loop", tally, started, sending, done)


if __name__ == "__main__":
    main()
