"""Outgoing webhooks, signed the way Codat's (Svix / Standard Webhooks) are.

When a sync settles, every registered endpoint gets `expenses.sync.successful` or
`expenses.sync.unsuccessful` (or the legacy "Sync Completed" / "Sync Failed" shape), signed with
its `whsec_` secret over `{webhook-id}.{webhook-timestamp}.{body}`. A non-2xx answer or a network
error is retried on a schedule; every attempt is kept for the admin API to show.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from codat_sandbox.state import SandboxState, Sync, format_utc

logger = logging.getLogger(__name__)
DEFAULT_RETRY_SCHEDULE = (0.0, 0.5, 2.0, 5.0, 10.0)
WEBHOOK_STATUS = {
    "Completed": "Completed",
    "ValidationError": "Failed",
    "PushError": "PushError",
    "Pending": "Pending",
}


@dataclass
class Endpoint:
    id: str
    url: str
    secret: str
    legacy: bool = False
    header_style: str = "webhook"  # "webhook" (webhook-*) or "svix" (svix-*)


@dataclass
class Delivery:
    message_id: str
    endpoint_id: str
    event_type: str
    sync_id: str
    body: str
    attempts: list[dict] = field(default_factory=list)
    delivered: bool = False
    due: float = 0.0
    sending: bool = False  # an attempt is in flight (the ticker and /_sandbox/tick may overlap)


class WebhookDispatcher:
    def __init__(self, state: SandboxState, retry_schedule=DEFAULT_RETRY_SCHEDULE) -> None:
        self.state = state
        self.retry_schedule = tuple(retry_schedule)
        self.endpoints: dict[str, Endpoint] = {}
        self.deliveries: list[Delivery] = []
        state.on_sync_final.append(self.on_sync_final)

    def register(
        self, url: str, secret: str, legacy: bool = False, header_style: str = "webhook"
    ) -> Endpoint:
        try:
            Webhook(secret)  # refuse a malformed secret now, not at the first delivery
        except (EmptyWebhookSecretError, RuntimeError) as exc:  # neither is a ValueError
            raise ValueError(f"The secret is not a whsec_ signing key: {exc}") from None
        if header_style not in ("webhook", "svix"):
            raise ValueError(f"headerStyle must be 'webhook' or 'svix', not {header_style!r}.")
        endpoint = Endpoint(f"ep_{uuid.uuid4().hex[:16]}", url, secret, legacy, header_style)
        self.endpoints[endpoint.id] = endpoint
        return endpoint

    def on_sync_final(self, state: SandboxState, sync: Sync) -> None:
        for endpoint in self.endpoints.values():
            event_type, body = event_for(state, sync, endpoint.legacy)
            message_id = f"msg_{uuid.uuid4().hex}"
            self.deliveries.append(Delivery(message_id, endpoint.id, event_type, sync.id, body))

    async def deliver_due(self, client: httpx.AsyncClient, now: float) -> int:
        """Attempt every delivery whose time has come; returns how many were attempted."""
        due = [
            d
            for d in self.deliveries
            if not d.delivered
            and not d.sending
            and d.due <= now
            and len(d.attempts) < len(self.retry_schedule)
        ]
        for delivery in due:
            delivery.sending = True
        await asyncio.gather(*(self.attempt(client, d, now) for d in due))
        return len(due)

    async def attempt(self, client: httpx.AsyncClient, delivery: Delivery, now: float) -> None:
        endpoint = self.endpoints.get(delivery.endpoint_id)
        if endpoint is None:
            delivery.sending = False
            return
        headers = signed_headers(endpoint, delivery.message_id, delivery.body)
        try:
            response = await client.post(endpoint.url, content=delivery.body, headers=headers)
            outcome = {"status": response.status_code}
            delivery.delivered = 200 <= response.status_code < 300
        except httpx.HTTPError as exc:
            outcome = {"error": type(exc).__name__}
        finally:
            delivery.sending = False
        delivery.attempts.append({"at": now, **outcome})
        tries = len(delivery.attempts)
        if not delivery.delivered and tries < len(self.retry_schedule):
            delivery.due = now + self.retry_schedule[tries]
        logger.info("webhook %s to %s: %s", delivery.event_type, endpoint.url, outcome)


def signed_headers(
    endpoint: Endpoint, message_id: str, body: str, timestamp: datetime | None = None
) -> dict[str, str]:
    # in UTC: Webhook.sign() reads the wall time as UTC (replace, not astimezone), so a local
    # time would sign a different timestamp from the one in the header
    timestamp = (timestamp or datetime.now(UTC)).astimezone(UTC)
    signature = Webhook(endpoint.secret).sign(message_id, timestamp, body)
    prefix = "svix" if endpoint.header_style == "svix" else "webhook"
    return {
        f"{prefix}-id": message_id,
        f"{prefix}-timestamp": str(int(timestamp.timestamp())),
        f"{prefix}-signature": signature,
        "content-type": "application/json",
    }


def event_for(state: SandboxState, sync: Sync, legacy: bool) -> tuple[str, str]:
    company = state.companies[sync.company_id]
    successful = sync.code in (2000, 2040)
    if legacy:
        rule = "Sync Completed" if successful else "Sync Failed"
        data = {"syncId": sync.id, "syncType": "Expense"}
        if not successful:
            data["FailureStage"] = "Pushing"
        verb = "completed" if successful else "has failed at step Pushing"
        body = {
            "AlertId": str(uuid.uuid4()),
            "RuleType": rule,
            "RuleId": str(uuid.uuid4()),
            "ClientId": str(uuid.uuid5(uuid.NAMESPACE_URL, state.api_key)),
            "ClientName": "Sandbox client",
            "CompanyId": company.id,
            "Message": f"Sync {sync.id} for company {company.id} of type Expense {verb}.",
            "Data": data,
        }
        return rule, json.dumps(body)
    event_type = "expenses.sync.successful" if successful else "expenses.sync.unsuccessful"
    transactions = [
        {
            "id": r.transaction_id,
            "status": WEBHOOK_STATUS[r.status],
            "errorMessage": None if r.status == "Completed" else r.message,
        }
        for r in sync.results.values()
    ]
    body = {
        "id": str(uuid.uuid4()),
        "eventType": event_type,
        "generatedDate": format_utc(state.clock.now()),
        "payload": {
            "referenceCompany": {
                "id": company.id,
                "name": company.name,
                "description": company.description,
                "links": {"portal": f"https://app.codat.io/companies/{company.id}/summary"},
                "tags": company.tags,
            },
            "syncId": sync.id,
            "transactions": transactions,
        },
    }
    return event_type, json.dumps(body)
