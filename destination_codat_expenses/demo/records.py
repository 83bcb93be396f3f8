"""Realistic, reproducible expense records for the demo, as an Airbyte source emits them.

Several customer companies on different platforms, several currencies, card spend, refunds,
rewards and chargebacks, some receipts, and a few records that are bad input or that the
accounting platform will refuse, each for a reason the report then explains.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from destination_codat_expenses.jsonwire import dumps

STREAM = "card_transactions"
RECEIPT_PDF = base64.b64encode(b"%PDF-1.4\n% demo receipt\n1 0 obj <<>> endobj\n%%EOF\n").decode()


@dataclass(frozen=True)
class DemoCompany:
    id: str
    name: str
    platform: str
    currency: str
    taxes: bool = True


COMPANIES = [  # the sandbox's demo scenario (codat_sandbox/scenarios/demo.yaml)
    DemoCompany("11111111-1111-4111-8111-111111111111", "Acme Coffee Ltd", "Xero", "GBP"),
    DemoCompany(
        "22222222-2222-4222-8222-222222222222", "Bluebird Logistics Inc", "QuickBooks Online", "USD"
    ),
    DemoCompany("33333333-3333-4333-8333-333333333333", "Copperleaf Studios", "NetSuite", "USD"),
    DemoCompany(
        "44444444-4444-4444-8444-444444444444",
        "Dunmore Engineering GmbH",
        "Dynamics 365 Business Central",
        "EUR",
    ),
    DemoCompany(
        "55555555-5555-4555-8555-555555555555", "Elmtree Design", "FreeAgent", "GBP", taxes=False
    ),
    DemoCompany(
        "66666666-6666-4666-8666-666666666666", "Foxglove Catering LLC", "QuickBooks Desktop", "USD"
    ),
    DemoCompany("77777777-7777-4777-8777-777777777777", "Granite Outdoor Co", "Zoho Books", "USD"),
    DemoCompany(
        "88888888-8888-4888-8888-888888888888", "Harbour Health Partners", "Sage Intacct", "USD"
    ),
]
MERCHANTS = {
    "401": ["Northline Rail", "SkyHop Airways", "City Cabs", "Harbour Hotel"],
    "402": ["Coffee Corner", "The Green Fork", "Bao Bar", "Market Deli"],
    "403": ["PaperWorks", "Officely", "Inkwell Supplies"],
    "404": ["CloudDesk", "Figment Design", "CodeHost", "MailRocket"],
}
KINDS = [("Payment", 80), ("Refund", 9), ("Reward", 5), ("Chargeback", 6)]
FOREIGN = {"GBP": ("USD", "1.2713"), "USD": ("EUR", "0.9214"), "EUR": ("GBP", "0.8567")}


def generate(records: int, companies: int, seed: int, state_every: int = 100) -> Iterator[str]:
    """Airbyte message lines: RECORDs, with a STATE after every `state_every` of them."""
    rng = random.Random(seed)
    chosen = COMPANIES[: max(1, min(companies, len(COMPANIES)))]
    for number in range(1, records + 1):
        data = expense(rng, number, chosen[rng.randrange(len(chosen))])
        yield dumps(
            {
                "type": "RECORD",
                "record": {"stream": STREAM, "data": data, "emitted_at": 1_700_000_000_000},
            }
        )
        if number % state_every == 0 or number == records:
            yield dumps(
                {
                    "type": "STATE",
                    "state": {
                        "type": "STREAM",
                        "stream": {
                            "stream_descriptor": {"name": STREAM},
                            "stream_state": {"cursor": number},
                        },
                    },
                }
            )


def expense(rng: random.Random, number: int, company: DemoCompany) -> dict:
    kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
    account = "260" if kind == "Reward" else rng.choice(list(MERCHANTS))
    currency, rate = company.currency, None
    if kind == "Payment" and rng.random() < 0.08:
        currency, rate = FOREIGN[company.currency]
    net = rng.randint(350, 48_000)
    tax = net // 5 if company.taxes and kind != "Reward" else 0
    record = {
        "id": f"txn-{number:06d}",
        "company_id": company.id,
        "type": kind.lower(),
        "date": (date(2024, 1, 2) + timedelta(days=rng.randrange(300))).isoformat(),
        "amount": cents(net + tax),
        "tax_amount": cents(tax) if tax else None,
        "currency": currency,
        "currency_rate": Decimal(rate) if rate else None,
        "merchant": rng.choice(MERCHANTS.get(account, ["Card cashback"])),
        "account_id": account,
        "tax_rate_id": ("STD" if tax else None) if company.taxes else None,
    }
    if kind == "Payment" and rng.random() < 0.1:
        record["receipt"] = {"fileName": f"receipt-{number}.pdf", "content": RECEIPT_PDF}
    return {k: v for k, v in spoil(rng, record, company).items() if v is not None}


def spoil(rng: random.Random, record: dict, company: DemoCompany) -> dict:
    """About 1 record in 25 is wrong in a way a real feed is wrong."""
    roll = rng.random()
    if roll < 0.01:
        return {**record, "date": "2024-02-30"}  # bad input: rejected before any push
    if roll < 0.015:
        return {**record, "amount": record["amount"] + Decimal("0.005")}  # too many places
    if roll < 0.025:
        return {**record, "account_id": "405"}  # the platform has no such account
    if roll < 0.035 and company.platform == "Xero":
        return {**record, "date": "2023-12-15"}  # Xero's books are closed to 2023-12-31
    if roll < 0.04 and record["type"] == "payment":
        return {**record, "account_id": "260"}  # an income account is not for spend
    return record


def cents(amount: int) -> Decimal:
    return Decimal(amount).scaleb(-2)
