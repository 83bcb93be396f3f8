"""Plain words for Codat's sync status codes and the error messages the report knows.

Each note says what happened and what to do about it. Pure data and pure functions: no
Streamlit, no SQL, so pages, tests and the CLI can all use it.

A sync's notes never contradict its code: the code's note leads, and a message's note is added
only where it fits that code (an item problem such as a closed period in a sync whose items
failed, 5120 or 5130); a whole-sync problem named in a message (a 4040 in an item's "Not
written: ..." say) is the code's own note or a contradiction, so it is not added. A sync a
webhook reported but Codat has not confirmed gets only the "not yet confirmed" note: nothing is
inferred from the webhook. Text is labelled "from Codat" only when Codat's API gave it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from destination_codat_expenses.models import (
    ACTS_LATER,
    FROM_CODAT,
    FROM_PRODUCT,
    NOT_FOUND_AT_CODAT,
    STATUS_MEANING,  # noqa: F401  (the report's table of Codat's codes: a test compares it)
    UNCONFIRMED,
    WHO_ACTS_ORDER,
    is_final,
    who_acts,
)
from destination_codat_expenses.models import status_meaning as code_meaning

NO_STATUS = 0  # stands for "no status recorded yet" in filters (status_code IS NULL)
ITEM_FAILURE_CODES = (5120, 5130)  # the codes whose items failed one by one
UNCONFIRMED_LABEL = "Reported by webhook, not yet confirmed with Codat"

# Who acts on a code (models.WHO_ACTS): the charts colour and order codes by it.
SEVERITIES = WHO_ACTS_ORDER
WAITING = ACTS_LATER


@dataclass(frozen=True)
class Note:
    title: str
    happened: str
    to_do: str
    retry_helps: bool = False
    code: int | None = None  # the status code this problem usually comes with


CODE_NOTES = {
    1000: Note(
        "Sync in progress",
        "Codat accepted the expenses and is writing them to the accounting software.",
        "Nothing yet. The status updates when the sync ends (webhook or "
        "`codat-expenses status refresh`).",
    ),
    1010: Note(
        "Long-running sync",
        "The sync is taking longer than usual, often because the accounting software is slow "
        "or the batch is large.",
        "Give it time. If it stays in progress for hours, run `codat-expenses status refresh`; "
        "if it still does not finish, contact Codat support with the sync id.",
    ),
    2000: Note(
        "Written",
        "Every expense in the sync was written to the accounting software.",
        "Nothing to do.",
    ),
    2040: Note(
        "Nothing written",
        "The sync finished but there was nothing to write (for example, zero totals or "
        "expenses already in the books).",
        "Nothing to do unless expenses are missing from the books; then check their amounts.",
    ),
    4000: Note(
        "Configuration missing or invalid",
        "The company has no usable expense configuration (default bank account, supplier, "
        "customer), so Codat could not prepare the records.",
        "Set the company's expense configuration in Codat, then retry the failed items.",
        retry_helps=True,
    ),
    4040: Note(
        "Accounting software disconnected",
        "The company's connection to its accounting software was de-authorized or the "
        "company was deleted, so nothing could be written.",
        "Ask the customer to re-link their accounting software in Codat, then retry.",
        retry_helps=True,
    ),
    4220: Note(
        "Company deleted or de-authorized",
        "The company was deleted in Codat or its connection was de-authorized.",
        "Check the company still exists and is linked; re-link it, then retry.",
        retry_helps=True,
    ),
    4260: Note(
        "Accounting software subscription expired",
        "The customer's subscription to their accounting software has lapsed, so it refuses "
        "new entries.",
        "Ask the customer to renew the subscription, then retry the failed items.",
        retry_helps=True,
    ),
    5000: Note(
        "Codat server error",
        "Something went wrong inside Codat while processing the sync; the expenses themselves "
        "may be fine.",
        "Retry the failed items. If it happens again, contact Codat support with the sync id.",
        retry_helps=True,
    ),
    5080: Note(
        "Already processed (duplication protection)",
        "Codat had already processed these transaction ids in an earlier sync, so it did not "
        "write them again. The expenses are not duplicated.",
        "Nothing to do: the earlier sync wrote them. Do not push them again under a new id.",
    ),
    5120: Note(
        "Data could not be processed",
        "Codat or the accounting software rejected some expenses as invalid before writing "
        "(see each item's message).",
        "Fix the cause named in each item's message (usually a mapping at the source or in the "
        "accounting software), then retry the failed items or run the connector again.",
        retry_helps=True,
    ),
    5130: Note(
        "Data could not be written",
        "The accounting software refused to write some expenses (see each item's message), "
        "for example because their period is closed.",
        "Fix the cause in the accounting software, then retry the failed items.",
        retry_helps=True,
    ),
}


# the product's own markers (models.OWN_STATUS_MEANING), explained like Codat's codes
OWN_CODE_NOTES = {
    NOT_FOUND_AT_CODAT: Note(
        "Not found at Codat",
        "Codat answered 404 for this sync: it has no sync with this id for this company. The "
        "store knew of it from a webhook or an earlier record; `codat-expenses status refresh` "
        "settled it so that it is not asked about again. Codat has no status or items for it.",
        "If it has no items (a webhook named it), nothing waits on it: check who sent that "
        "webhook. If expenses were pushed in it, Codat has no outcome for them: check the "
        "company id and contact Codat support with the sync id. "
        "`codat-expenses status refresh --sync <id>` asks Codat once more.",
    ),
}


UNCONFIRMED_NOTE = Note(
    UNCONFIRMED_LABEL,
    "A webhook said this sync ended, but its status and items have not been read from Codat "
    "yet, so no status code is shown: a webhook says whether a sync succeeded, not how.",
    "Usually nothing: the webhook receiver (when it has an API key) or the run waiting for the "
    "sync reads it from Codat within seconds. If it stays unconfirmed, run "
    "`codat-expenses status refresh`.",
)


@dataclass(frozen=True)
class Pattern:
    regex: re.Pattern[str]
    note: Note


def pattern(
    regex: str, title: str, happened: str, to_do: str, retry: bool = True, code: int | None = None
) -> Pattern:
    return Pattern(re.compile(regex, re.IGNORECASE), Note(title, happened, to_do, retry, code))


MESSAGE_PATTERNS = [
    pattern(
        r"closed period|locked for entries|period is (closed|locked)",
        "Closed period",
        "The expense is dated in a period the accounting software has closed (locked) for "
        "new entries.",
        "Ask the customer to reopen the period or move its lock date, then retry the failed items.",
    ),
    pattern(
        r"(?<!bank )account ('[^']*' was not found|.* does not exist)|unknown account",
        "Unknown account",
        "The expense names an account that is not in the company's chart of accounts.",
        "Map the expense to an existing account (see the company's mapping options) or create "
        "the account in the accounting software, then retry.",
    ),
    pattern(
        r"cannot be used for .* transactions|not valid for (this )?(transaction )?type",
        "Account not valid for this type",
        "The account exists but the accounting software does not accept it for this kind of "
        "transaction (for example an income account on a card payment).",
        "Use an account meant for this transaction type, then run the connector again or retry.",
    ),
    pattern(
        r"tax rate '[^']*' was not found|unknown tax rate|does not accept taxRateRef",
        "Unknown or unsupported tax rate",
        "The tax rate on the expense is not one the accounting software knows or accepts.",
        "Map the expense to one of the company's tax rates (or leave the rate out where the "
        "software sets it itself), then retry.",
    ),
    pattern(
        r"currencyRate is required|currency ?rate (is )?missing",
        "Currency rate missing",
        "The expense is in a foreign currency and carries no exchange rate, which the "
        "accounting software needs.",
        "Send a currency rate with foreign-currency expenses (or record them in the base "
        "currency), then run the connector again.",
    ),
    pattern(
        r"bank account '[^']*' is in \w+ but the transaction is in",
        "Bank account currency mismatch",
        "The expense's currency differs from the currency of the bank account it is posted to.",
        "Post it to a bank account in the expense's currency (expense configuration or the "
        "record's bank account), then retry.",
    ),
    pattern(
        r"bank account '[^']*' was not found",
        "Unknown bank account",
        "The bank account the expense is posted to does not exist in the accounting software.",
        "Choose an existing bank account in the company's expense configuration, then retry.",
    ),
    pattern(
        r"supplier '[^']*' was not found",
        "Unknown supplier",
        "The supplier named on the expense does not exist in the accounting software.",
        "Use an existing supplier (or the configured default supplier), then retry.",
    ),
    pattern(
        r"more decimal places than",
        "Too many decimal places",
        "An amount has more decimal places than its currency allows.",
        "Round the amount at the source to the currency's minor unit and run the connector again.",
        retry=False,
    ),
    pattern(
        r"total is negative",
        "Negative payment",
        "A payment's total is negative; money coming back must be recorded as a refund.",
        "Send it as a refund at the source and run the connector again.",
        retry=False,
    ),
    pattern(
        r"previously (been )?processed|duplicat",
        "Already processed (5080)",
        "Codat had already processed this transaction id, so it was not written again; the "
        "books are not duplicated.",
        "Nothing to do: an earlier sync wrote it.",
        retry=False,
        code=5080,
    ),
    pattern(
        r"de-?authori[sz]ed|re-link|unlinked|has been deleted",
        "Accounting software disconnected (4040)",
        "The company's accounting connection is de-authorized or the company was deleted.",
        "Ask the customer to re-link their accounting software in Codat, then retry.",
        code=4040,
    ),
    pattern(
        r"no expense configuration|configuration error",
        "No expense configuration (4000)",
        "The company has no expense configuration (default bank account, supplier, customer).",
        "Set the company's expense configuration in Codat, then retry.",
        code=4000,
    ),
    pattern(
        r"subscription .*expired|billing",
        "Subscription expired (4260)",
        "The accounting software subscription has expired, so it refuses new entries.",
        "Ask the customer to renew it, then retry.",
        code=4260,
    ),
    pattern(
        r"generic server error|internal server error|unexpected error",
        "Codat server error (5000)",
        "Codat hit an internal error while processing the sync.",
        "Retry later; if it repeats, contact Codat support with the sync id.",
        code=5000,
    ),
]


def as_code(value) -> int | None:
    """A status code as an int; None for anything missing (None, NaN, pandas NA)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def meaning(code) -> str:
    """Codat's meaning for a status code ('No status yet' when none is recorded)."""
    code = as_code(code)
    return code_meaning(None if code == NO_STATUS else code)


def code_label(code) -> str:
    """'5130 · Data write error', for filters and legends."""
    code = as_code(code)
    if code is None or code == NO_STATUS:
        return "No status yet"
    return f"{code} · {meaning(code)}"


def status_label(code, outcome) -> str:
    """A sync's status in words: its code's label, or that a webhook reported it unconfirmed."""
    return UNCONFIRMED_LABEL if outcome == UNCONFIRMED else code_label(code)


def status_meaning(code, outcome) -> str:
    return UNCONFIRMED_LABEL if outcome == UNCONFIRMED else meaning(code)


def source_label(what: str, status_source) -> str:
    """'Error message (from Codat)' only when Codat's API gave the text."""
    if status_source == FROM_CODAT:
        return f"{what} (from Codat)"
    if status_source == FROM_PRODUCT:
        return f"{what} (recorded by codat-expenses, not by Codat)"
    return what


def note_for_code(code) -> Note | None:
    code = as_code(code)
    return None if code is None else CODE_NOTES.get(code) or OWN_CODE_NOTES.get(code)


def note_for_message(message: str | None) -> Note | None:
    """The first known pattern the message matches, or None."""
    if not isinstance(message, str) or not message:
        return None
    for known in MESSAGE_PATTERNS:
        if known.regex.search(message):
            return known.note
    return None


def short_reason(message: str | None) -> str:
    """A few plain words for one item's message ('' when it is not a known pattern)."""
    note = note_for_message(message)
    return note.title if note else ""


def notes_for_sync(code, messages: list, outcome: str | None = None) -> list[Note]:
    """The code's note first, then one note per known problem in the messages that fits the
    code; a sync still running or not yet confirmed gets its one note only."""
    if outcome == UNCONFIRMED:
        return [UNCONFIRMED_NOTE]
    code = as_code(code)
    first = note_for_code(code)
    notes = [first] if first else []
    if not is_final(code):
        return notes
    for message in messages:
        note = note_for_message(message)
        if note and note not in notes and fits(note, code):
            notes.append(note)
    return notes


def fits(note: Note, code: int) -> bool:
    """An item problem fits a sync whose items failed; a whole-sync problem (a note with its own
    code) is already the code's note when it fits, and contradicts it when it does not."""
    return note.code is None and code in ITEM_FAILURE_CODES


def severity(code) -> str:
    """Who acts on this code (no status yet, or an unknown code: waiting / Codat)."""
    code = as_code(code)
    return who_acts(None if code == NO_STATUS else code)
