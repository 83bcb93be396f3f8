"""The peers' side of the records: the same Airbyte RECORD lines the destination reads, turned
into Codat expense transactions with no bookkeeping at all. Standard library only, because the
official SDK's loop runs in its own environment (see sdk_env.py).

Records are the flat card-spend records of `destination_throughput.write_input`: `id`,
`company`, `date`, `amount` (tax included), `tax_amount`, `currency`, `merchant`, `account_id`,
`tax_rate_id`. Amounts stay Decimal (the plain client writes them with the product's jsonwire,
the SDK with its own models)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

ITEMS_PER_CREATE = 50  # Codat's maximum per create call


def item(data: dict) -> dict:
    """One record -> one expense transaction, the shape the destination sends."""
    gross, tax = Decimal(data["amount"]), Decimal(data["tax_amount"])
    return {
        "id": data["id"],
        "type": "Payment",
        "issueDate": data["date"],
        "currency": data["currency"],
        "merchantName": data["merchant"],
        "lines": [
            {
                "netAmount": gross - tax,
                "taxAmount": tax,
                "accountRef": {"id": data["account_id"]},
                "taxRateRef": {"id": data["tax_rate_id"]},
            }
        ],
    }


def records_by_company(messages: Path) -> dict[str, list[dict]]:
    """company id -> its records' data, in input order (STATE and other messages skipped)."""
    out: dict[str, list[dict]] = defaultdict(list)
    with messages.open() as lines:
        for line in lines:
            message = json.loads(line)
            if message.get("type") == "RECORD":
                data = message["record"]["data"]
                out[data["company"]].append(data)
    return dict(out)


def chunks(values: list, size: int = ITEMS_PER_CREATE) -> list[list]:
    return [values[start : start + size] for start in range(0, len(values), size)]


def print_result(peer: str, tally: Counter, started: float, sending: float, done: float) -> None:
    """The peer's one line of JSON for peers.py: records written, time preparing and sending,
    and failed calls counted by kind."""
    records = tally.pop("records", 0)
    timings = {"prepare_s": sending - started, "send_s": done - sending}
    print(json.dumps({"peer": peer, "records": records, **timings, "errors": dict(tally)}))
