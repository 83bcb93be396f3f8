"""The product's vocabulary, defined once: ledger states, Codat's item statuses and sync codes,
and what each code means. Every module that needs one of these words imports it from here.

Sync codes come from Codat's "Monitor sync status" table (reference/codat-api.md §5). SQL uses
the same sets through `sql_list`, so a statement and the Python beside it cannot disagree.
A verified webhook is read into a `WebhookEvent` (webhooks/payloads.py) that the store applies
(store/webhook_events.py); both speak the shape defined here.
"""

from __future__ import annotations

from dataclasses import dataclass
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
# "Failed": the webhook payloads' word, in push items a store before version 4 took from webhooks
FAILED_ITEM = ("ValidationError", "PushError", "Failed")
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


# -- who has to act on a sync's code -----------------------------------------------------------
# Nobody (success), nobody yet (waiting), the customer (their connection, subscription,
# configuration or closed period), us (the data we sent), or Codat. The report colours and groups
# codes by these; every code above has one (a unit test checks). A code with no status yet waits;
# a code nobody documents is Codat's to explain.
WhoActs = Literal["Success", "Waiting", "Customer action", "Our data", "Codat"]
ACTS_NOBODY: WhoActs = "Success"
ACTS_LATER: WhoActs = "Waiting"
ACTS_CUSTOMER: WhoActs = "Customer action"
ACTS_OUR_DATA: WhoActs = "Our data"
ACTS_CODAT: WhoActs = "Codat"
WHO_ACTS_ORDER: tuple[WhoActs, ...] = (
    ACTS_NOBODY,
    ACTS_LATER,
    ACTS_CUSTOMER,
    ACTS_OUR_DATA,
    ACTS_CODAT,
)
WHO_ACTS: dict[int, WhoActs] = {
    2000: ACTS_NOBODY,
    2040: ACTS_NOBODY,
    **{code: ACTS_LATER for code in IN_PROGRESS},
    4000: ACTS_CUSTOMER,
    4040: ACTS_CUSTOMER,
    4220: ACTS_CUSTOMER,
    4260: ACTS_CUSTOMER,
    5130: ACTS_CUSTOMER,  # the accounting software refused (closed period, locked books)
    5080: ACTS_OUR_DATA,  # ids Codat had processed before
    5120: ACTS_OUR_DATA,
    5000: ACTS_CODAT,
    NOT_FOUND_AT_CODAT: ACTS_CODAT,
}


def who_acts(code: int | None) -> WhoActs:
    """Who acts on a sync's code: no status yet waits; an unknown code is Codat's."""
    if code is None:
        return ACTS_LATER
    return WHO_ACTS.get(code, ACTS_CODAT)


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


# -- where the store's word about a sync came from (syncs.status_source) ---------------------
FROM_CODAT = "codat"  # read from Codat's API
FROM_WEBHOOK = "webhook"  # a webhook reported the sync ended; not yet confirmed with Codat
FROM_PRODUCT = "product"  # this tool's own marker (NOT_FOUND_AT_CODAT)
UNCONFIRMED = "unconfirmed"  # v_syncs.outcome of a sync marked FROM_WEBHOOK


def is_final(code: int | None) -> bool:
    """A sync code after which Codat changes nothing (None: not known yet)."""
    return code is not None and code not in IN_PROGRESS


def sql_list(values: tuple) -> str:
    """A fixed set of this module's words as a SQL list: `(1000, 1010)`, `('a', 'b')`."""
    return "(" + ", ".join(repr(v) for v in values) + ")"


# -- what a verified webhook says about a sync --------------------------------------------------
# A webhook says a sync ended, successfully or not; never its status code or its items' fate.
# The store keeps that word apart (syncs.reported_outcome) and marks the sync to confirm: its
# status and items are then read from Codat's API (docs/webhooks.md).
@dataclass(frozen=True)
class WebhookEvent:
    event_type: str | None
    sync_id: str | None
    company_id: str | None
    succeeded: bool | None  # None: not a sync outcome (another event type, or no JSON)
    payload_json: str  # what the store keeps: the body's JSON, or the body as a JSON string

    @property
    def applicable(self) -> bool:
        return self.succeeded is not None and self.sync_id is not None
