"""The product's vocabulary, defined once: ledger states, Codat's item statuses and sync codes,
and what each code means. Every module that needs one of these words imports it from here.

Sync codes come from Codat's "Monitor sync status" table (reference/codat-api.md §5). SQL uses
the same sets through `sql_list`, so a statement and the Python beside it cannot disagree.
A verified webhook is read into a `WebhookEvent` (webhooks/payloads.py) that the store applies
(store/webhook_events.py); both speak the shape defined here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

# -- the ledger: one row per expense, moving sending -> sent -> completed | failed ------------
LedgerState = Literal["sending", "sent", "completed", "failed"]
SENDING: LedgerState = "sending"
SENT: LedgerState = "sent"
COMPLETED: LedgerState = "completed"
FAILED: LedgerState = "failed"
ON_ITS_WAY: tuple[LedgerState, ...] = (SENT, COMPLETED)  # never pushed again

# ids from outside (webhook-id headers, ids in webhook payloads) longer than this are refused
MAX_ID_CHARS = 255

# -- Codat's status of one transaction in one sync -------------------------------------------
COMPLETED_ITEM = "Completed"
FAILED_ITEM = ("ValidationError", "PushError", "Failed")  # "Failed": the webhook payloads' word
ITEM_LEDGER_STATE: dict[str, LedgerState] = {
    COMPLETED_ITEM: COMPLETED,
    **{status: FAILED for status in FAILED_ITEM},
}

# -- Codat's sync status codes ----------------------------------------------------------------
STATUS_MEANING = {
    1000: "In progress",
    1010: "In progress (long running)",
    2000: "Success (Data written)",
    2040: "Success (No data written)",
    4000: "Configuration error",
    4040: "Company deleted/de-authorized",
    4220: "Company deleted/de-authorized",
    4260: "Accounting software billing expiry",
    5000: "Generic server error",
    5080: "Duplication protection",
    5120: "Data processing error",
    5130: "Data write error",
}
IN_PROGRESS = (1000, 1010)

# This product's own marker, not one of Codat's sync codes (it is an HTTP status, three digits):
# Codat answered 404 for the sync (no such sync for that company), so `status refresh` recorded
# it as final and stops asking. The API's own status replaces it if Codat ever knows the sync.
NOT_FOUND_AT_CODAT = 404
NOT_FOUND_AT_CODAT_TEXT = "NotFoundAtCodat"
OWN_STATUS_MEANING = {NOT_FOUND_AT_CODAT: "Not found at Codat"}


def status_meaning(code: int | None) -> str:
    """What a sync code means, for a person: Codat's words, or this product's for its markers."""
    if code is None:
        return "No status yet"
    return STATUS_MEANING.get(code) or OWN_STATUS_MEANING.get(code) or "Unknown status code"


# -- a receipt's upload (one row of `attachments` per receipt) ---------------------------------
# uploaded: Codat holds it. refused: Codat refused it for good, with its reason. rejected: it
# could not be read here. pending: not uploaded yet (Codat could not take it now); the receipt
# stays in the ledger and is tried again. `failed`, from versions before pending existed, was a
# refusal or an error after which the receipt was dropped: it counts as refused.
UPLOADED, PENDING, REFUSED, REJECTED = "uploaded", "pending", "refused", "rejected"
NOT_UPLOADED_FOR_GOOD = (REFUSED, REJECTED, "failed")


def is_final(code: int | None) -> bool:
    """A sync code after which Codat changes nothing (None: not known yet)."""
    return code is not None and code not in IN_PROGRESS


def sql_list(values: tuple) -> str:
    """A fixed set of this module's words as a SQL list: `(1000, 1010)`, `('a', 'b')`."""
    return "(" + ", ".join(repr(v) for v in values) + ")"


# -- what a verified webhook says about a sync --------------------------------------------------
# A webhook says whether a sync succeeded, not its status code. These codes mirror how the API
# pairs codes with item outcomes (inferred, see docs/webhooks.md); the API's own status replaces
# them when a run or `codat-expenses status refresh` reads it.
WEBHOOK_ITEM_STATUSES = frozenset({COMPLETED_ITEM, "Failed", "PushError", "Unknown", "Pending"})
WEBHOOK_SUCCESS = (2000, "Complete")
WEBHOOK_FAILURES = {  # the most telling failed item decides; none at all: the generic failure
    "PushError": (5130, "PushError"),
    "Failed": (5120, "Failed"),
}
WEBHOOK_GENERIC_FAILURE = (5000, "Failed")


@dataclass(frozen=True)
class ItemOutcome:
    transaction_id: str
    status: str  # one of WEBHOOK_ITEM_STATUSES
    message: str | None


@dataclass(frozen=True)
class WebhookEvent:
    event_type: str | None
    sync_id: str | None
    company_id: str | None
    succeeded: bool | None  # None: not a sync outcome (another event type, or no JSON)
    items: tuple[ItemOutcome, ...]
    generated_at: datetime | None
    message: str | None  # the legacy shape's sentence, e.g. "... has failed at step Pushing."
    payload_json: str  # what the store keeps: the body's JSON, or the body as a JSON string

    @property
    def applicable(self) -> bool:
        return self.succeeded is not None and self.sync_id is not None

    def status(self) -> tuple[int, str]:
        """(status code, status text) to record until the API gives the precise one."""
        if self.succeeded:
            return WEBHOOK_SUCCESS
        statuses = {item.status for item in self.items}
        for status, code in WEBHOOK_FAILURES.items():
            if status in statuses:
                return code
        return WEBHOOK_GENERIC_FAILURE

    def error_message(self) -> str | None:
        """A reason a person can read, when the event carries one; else None (left unknown)."""
        if self.succeeded:
            return None
        failed = [i for i in self.items if i.status in WEBHOOK_FAILURES]
        if failed:
            first = failed[0].message or failed[0].status
            return f"{len(failed)} of {len(self.items)} transactions failed: {first}"
        return self.message
