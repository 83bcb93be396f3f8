"""Peer (c): a plain httpx async client, `--in-flight` creates in flight per company, no
bookkeeping: no ledger, no store, no following of syncs, no retries. Reads the same Airbyte
messages file as the destination, sends 50-item creates, and prints one JSON line: records
accepted (200 answers), the send window in seconds, and errors by kind.

    python -m benchmarks.peer_plain_async --base-url URL --api-key KEY --messages FILE
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import time
from collections import Counter
from pathlib import Path

import httpx

from benchmarks.peer_records import chunks, item, print_result, records_by_company
from destination_codat_expenses import jsonwire


def create_path(company_id: str) -> str:
    return f"/companies/{company_id}/sync/expenses/expense-transactions"


async def send_company(client, company_id, bodies, in_flight, tally: Counter) -> None:
    """`in_flight` lanes share one iterator of bodies: each lane sends the next when its last
    answer is in, so the company never has more than `in_flight` requests open."""
    pending = iter(bodies)

    async def lane() -> None:
        for count, body in pending:
            try:
                answer = await client.post(create_path(company_id), content=body)
            except httpx.HTTPError as error:
                tally[type(error).__name__] += 1
                continue
            if answer.status_code == 200:
                tally["records"] += count
            else:
                tally[f"HTTP {answer.status_code}"] += 1

    await asyncio.gather(*(lane() for _ in range(in_flight)))


async def send_all(base_url: str, api_key: str, work: dict, in_flight: int) -> Counter:
    auth = "Basic " + base64.b64encode(api_key.encode()).decode()
    limits = httpx.Limits(max_connections=in_flight * len(work), max_keepalive_connections=None)
    tally: Counter = Counter()
    async with httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": auth, "Content-Type": "application/json"},
        limits=limits,
        timeout=120,
    ) as client:
        await asyncio.gather(
            *(send_company(client, c, bodies, in_flight, tally) for c, bodies in work.items())
        )
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--messages", type=Path, required=True)
    parser.add_argument("--in-flight", type=int, default=10, help="per company")
    args = parser.parse_args()
    started = time.monotonic()
    work = {
        company: [
            (len(batch), jsonwire.dumps([item(data) for data in batch]).encode())
            for batch in chunks(records)
        ]
        for company, records in records_by_company(args.messages).items()
    }
    sending = time.monotonic()
    tally = asyncio.run(send_all(args.base_url, args.api_key, work, args.in_flight))
    done = time.monotonic()
    print_result("plain-async", tally, started, sending, done)


if __name__ == "__main__":
    main()
