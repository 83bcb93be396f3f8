"""What Codat's error answers mean, recognised once.

Codat refuses a push containing an id it has already completed with
`400 {"error": "One or more transactions have previously been processed: {id}, ..."}`, and
gives the same sentence as the message of the items of a 5080 ("duplication protection")
sync. The sentence names the repeated ids: for every other item of such a sync it is the reason
that item was NOT written, not a sign that it was. So the ids are read out of the sentence, and
only those ids are ever checked against Codat for a completion of their own.
"""

from __future__ import annotations

import re

PREVIOUSLY_PROCESSED = "previously been processed"
UUID_TEXT = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE | re.ASCII
)


def already_processed_ids(text: str | None) -> set[str]:
    """The transaction ids a "previously been processed" sentence names (lower case)."""
    if not text or PREVIOUSLY_PROCESSED not in text:
        return set()
    named = text.split(PREVIOUSLY_PROCESSED, 1)[1]
    return {match.lower() for match in UUID_TEXT.findall(named)}


def names_itself(transaction_id: str, message: str | None) -> bool:
    """Whether an item's message says that this very id was processed before."""
    return transaction_id.lower() in already_processed_ids(message)
