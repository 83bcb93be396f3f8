"""Which stream is which kind of Sync for Expenses transaction, and how each kind is mapped,
created and updated. The one table the pipeline (mapping) and the pusher (sending) route by.

    transfers                          -> transfer      PUT (creates, or updates what Codat has)
    reimbursable_expense_transactions  -> reimbursable  POST to create, PUT to update
    adjustments                        -> adjustment    POST to create; Codat has no update
    any other stream                   -> expense       POST to create, PUT to update (Payment)

The three family streams take records in Codat's request shape (family_mapping.py): `defaults`,
`mapping_rules` and `field_mapping` apply to expense streams only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.family_mapping import (
    ADJUSTMENT,
    REIMBURSABLE,
    TRANSFER,
    DateRules,
    MappedPush,
    map_adjustment,
    map_reimbursable,
    map_transfer,
)
from destination_codat_expenses.mapping import MappedTransaction, MappingSettings

EXPENSE = "expense"
STREAM_KINDS = {
    "transfers": TRANSFER,
    "reimbursable_expense_transactions": REIMBURSABLE,
    "adjustments": ADJUSTMENT,
}
NO_ADJUSTMENT_UPDATE = (
    "changes an adjustment Codat already wrote; Codat has no update for adjustments: "
    "post a reversing adjustment (a new id) instead"
)

Create = Callable[[CodatClient, str, list[dict], str], str]  # (client, company, items, key)
Put = Callable[[CodatClient, str, str, dict], str]  # (client, company, transaction id, body)


@dataclass(frozen=True)
class Kind:
    name: str
    mapper: Callable[[dict, str, DateRules], MappedPush] | None  # None: mapping.map_record
    create: Create | None  # a batch POST (None: every push is a PUT)
    put: Put | None  # an update, or a transfer's create-or-update (None: no update)
    not_updatable: str | None = None  # why changed content of a written one is refused here
    update_drops: tuple[str, ...] = ("id",)  # what a PUT body leaves out of the create body

    @property
    def put_creates(self) -> bool:
        return self.create is None

    def update_body(self, body: dict) -> dict:
        return {k: v for k, v in body.items() if k not in self.update_drops}


KINDS = {
    EXPENSE: Kind(
        EXPENSE,
        None,
        lambda c, co, items, key: c.create_expense_transactions(co, items, key),
        lambda c, co, tid, body: c.update_expense_transaction(co, tid, body),
        # an UpdateExpenseRequest has no id, reference or postAsDraft
        update_drops=("id", "reference", "postAsDraft"),
    ),
    TRANSFER: Kind(
        TRANSFER,
        map_transfer,
        None,
        lambda c, co, tid, body: c.put_transfer_transaction(co, tid, body),
    ),
    REIMBURSABLE: Kind(
        REIMBURSABLE,
        map_reimbursable,
        lambda c, co, items, key: c.create_reimbursable_expense_transactions(co, items, key),
        lambda c, co, tid, body: c.update_reimbursable_expense_transaction(co, tid, body),
    ),
    ADJUSTMENT: Kind(
        ADJUSTMENT,
        map_adjustment,
        lambda c, co, items, key: c.create_adjustment_transactions(co, items, key),
        None,
        not_updatable=NO_ADJUSTMENT_UPDATE,
    ),
}


def kind_of(stream: str) -> Kind:
    return KINDS[STREAM_KINDS.get(stream, EXPENSE)]


def map_family(kind: Kind, record: dict, stream: str, settings: MappingSettings):
    """A family record mapped by its kind's mapper, as the pipeline carries every record."""
    dates = DateRules(settings.zone, settings.max_days_ahead, settings.today)
    pushed = kind.mapper(record, stream, dates)
    return MappedTransaction(
        pushed.transaction_id,
        pushed.source_key,
        pushed.body,
        pushed.day,
        pushed.currency,
        pushed.total,
        pushed.payload_hash,
    )
