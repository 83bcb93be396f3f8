"""What a verified Codat webhook body says about a sync, as plain values.

Codat sends one fact in two shapes: the current Svix events (`expenses.sync.successful`,
`expenses.sync.unsuccessful`, payload `referenceCompany.id`, `syncId`) and the legacy rules
("Sync Completed", "Sync Failed", `CompanyId`, `Data.syncId`). Both are read into one
`WebhookEvent` (models.py) here so the store applies a single shape: which sync, which company,
and whether the sender called it successful. The payload's per-transaction list is not read:
every item's status comes from Codat's API (the whole body is kept in `webhook_events`). Nothing
here does I/O or raises on a strange body: a body that is not a sync event becomes an event with
nothing to apply, and is kept.
"""

from __future__ import annotations

import json
from typing import Any

from destination_codat_expenses.models import MAX_ID_CHARS, WebhookEvent

SUCCESS_TYPES = frozenset({"expenses.sync.successful", "Sync Completed"})
FAILURE_TYPES = frozenset({"expenses.sync.unsuccessful", "Sync Failed"})


def interpret(body: bytes) -> WebhookEvent:
    """Read a verified body. Never raises: what cannot be read is simply not applicable."""
    try:
        payload_json = body.decode("utf-8")
        document = json.loads(payload_json, parse_constant=refuse_constant)
    except (ValueError, RecursionError):  # ValueError includes UnicodeDecodeError
        return not_json(body)
    if not isinstance(document, dict):
        return unapplicable(None, payload_json)
    if "RuleType" in document:
        return legacy_event(document, payload_json)
    return current_event(document, payload_json)


def current_event(document: dict, payload_json: str) -> WebhookEvent:
    event_type = text(document.get("eventType"))
    payload = document.get("payload")
    if not isinstance(payload, dict):
        return unapplicable(event_type, payload_json)
    company = payload.get("referenceCompany")
    company_id = text(company.get("id")) if isinstance(company, dict) else None
    return WebhookEvent(
        event_type=event_type,
        sync_id=text(payload.get("syncId")),
        company_id=company_id or text(payload.get("companyId")),
        succeeded=outcome_of(event_type),
        payload_json=payload_json,
    )


def legacy_event(document: dict, payload_json: str) -> WebhookEvent:
    event_type = text(document.get("RuleType"))
    data = document.get("Data")
    return WebhookEvent(
        event_type=event_type,
        sync_id=text(data.get("syncId")) if isinstance(data, dict) else None,
        company_id=text(document.get("CompanyId")),
        succeeded=outcome_of(event_type),
        payload_json=payload_json,
    )


def outcome_of(event_type: str | None) -> bool | None:
    if event_type in SUCCESS_TYPES:
        return True
    if event_type in FAILURE_TYPES:
        return False
    return None


def unapplicable(event_type: str | None, payload_json: str) -> WebhookEvent:
    return WebhookEvent(event_type, None, None, None, payload_json)


def refuse_constant(name: str) -> None:
    """NaN and Infinity are not JSON (the store's JSON column refuses them)."""
    raise ValueError(f"{name} is not JSON")


def not_json(body: bytes) -> WebhookEvent:
    """Signed, yet not JSON: kept as a JSON string so nothing Codat sent is thrown away."""
    return unapplicable(None, json.dumps(body.decode("utf-8", errors="replace")))


def text(value: Any) -> str | None:
    """A usable id: a non-empty string of sensible length, else None."""
    if isinstance(value, str) and 0 < len(value.strip()) <= MAX_ID_CHARS:
        return value.strip()
    return None
