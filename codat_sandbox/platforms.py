"""The accounting platforms the sandbox can simulate, and what each one accepts.

Facts come from Codat's Sync for Expenses docs (integration keys, attachment limits, which
transaction types take attachments, the "no tax" rate id, QBD's itemRef, Dynamics' postAsDraft)
and from the "Supported integrations" table of each operation in the current OpenAPI spec
(which platforms update expenses, create and update transfers, take reimbursables, adjustments).
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024
IMAGES_AND_PDF = frozenset(
    {
        "image/png",
        "image/x-png",
        "image/jpeg",
        "image/pjpeg",
        "image/gif",
        "application/pdf",
        "application/x-pdf",
    }
)

UPDATE_EXPENSE = "update-expense-transaction"
CREATE_TRANSFER = "create-transfer-transaction"
UPDATE_TRANSFER = "update-transfer-transaction"  # the same PUT, on a transfer already written
CREATE_ADJUSTMENT = "create-adjustment-transaction"
CREATE_REIMBURSABLE = "create-reimbursable-expense-transaction"
UPDATE_REIMBURSABLE = "update-reimbursable-expense-transaction"
ALL_OPERATIONS = frozenset(
    {
        UPDATE_EXPENSE,
        CREATE_TRANSFER,
        UPDATE_TRANSFER,
        CREATE_ADJUSTMENT,
        CREATE_REIMBURSABLE,
        UPDATE_REIMBURSABLE,
    }
)


@dataclass(frozen=True)
class Platform:
    key: str  # Codat's integration key, e.g. "gbol" for Xero
    name: str
    default_currency: str
    no_tax_rate_id: str | None
    record_prefix: str
    attachment_max_bytes: int = 0  # 0: the platform takes no attachments
    attachment_types: frozenset[str] | None = None  # None: any content type
    attachment_transaction_types: frozenset[str] = frozenset(
        {"Payment", "Refund", "Reward", "Chargeback"}
    )
    supports_tax_rate_ref: bool = True
    requires_account_ref: bool = True  # QBD alone takes itemRef instead
    supports_item_ref: bool = False
    supports_post_as_draft: bool = False
    supports_invoice_to: bool = False
    operations: frozenset[str] = frozenset()  # the ALL_OPERATIONS it supports
    supports_ap_account_ref: bool = False  # a reimbursable's apAccountRef: QBD only

    def supports(self, operation: str) -> bool:
        return operation in self.operations


PLATFORMS: dict[str, Platform] = {
    p.key: p
    for p in (
        Platform(
            "gbol",
            "Xero",
            "GBP",
            "NONE",
            "XERO",
            attachment_max_bytes=10 * MB,
            operations=frozenset({UPDATE_EXPENSE, CREATE_TRANSFER}),
        ),
        Platform(
            "qhyg",
            "QuickBooks Online",
            "USD",
            "NON",
            "QBO",
            attachment_max_bytes=100 * MB,
            attachment_transaction_types=frozenset({"Payment", "Refund", "Reimbursable"}),
            supports_invoice_to=True,
            operations=ALL_OPERATIONS - {CREATE_ADJUSTMENT},
        ),
        Platform(
            "akxx",
            "NetSuite",
            "USD",
            "-7",
            "NS",
            attachment_max_bytes=100 * MB,
            attachment_transaction_types=frozenset({"Payment", "Refund"}),
            operations=frozenset({UPDATE_EXPENSE, CREATE_REIMBURSABLE, UPDATE_REIMBURSABLE}),
        ),
        Platform(
            "trji",
            "Dynamics 365 Business Central",
            "EUR",
            "ZERO",
            "D365",
            attachment_max_bytes=350 * MB,
            supports_post_as_draft=True,
        ),
        Platform(
            "fbrh",
            "FreeAgent",
            "GBP",
            None,
            "FA",
            attachment_max_bytes=5 * MB,
            attachment_types=IMAGES_AND_PDF,
            attachment_transaction_types=frozenset({"Payment", "Reimbursable"}),
            supports_tax_rate_ref=False,
            operations=ALL_OPERATIONS - {CREATE_ADJUSTMENT},
        ),
        Platform(
            "pqsw",
            "QuickBooks Desktop",
            "USD",
            None,
            "QBD",
            requires_account_ref=False,
            supports_item_ref=True,
            supports_invoice_to=True,
            operations=frozenset(
                {UPDATE_EXPENSE, CREATE_TRANSFER, CREATE_ADJUSTMENT, CREATE_REIMBURSABLE}
            ),
            supports_ap_account_ref=True,
        ),
        Platform(
            "rwuv",
            "Zoho Books",
            "USD",
            None,
            "ZOHO",
            attachment_max_bytes=5 * MB,
            attachment_types=frozenset(
                {
                    "image/gif",
                    "image/png",
                    "image/jpeg",
                    "image/jpg",
                    "image/bmp",
                    "application/pdf",
                }
            ),
            attachment_transaction_types=frozenset({"Payment", "Reimbursable"}),
            operations=frozenset({UPDATE_EXPENSE, CREATE_REIMBURSABLE, UPDATE_REIMBURSABLE}),
        ),
        Platform(
            "knfz",
            "Sage Intacct",
            "USD",
            None,
            "SI",
            attachment_max_bytes=0,
            operations=frozenset({UPDATE_EXPENSE, CREATE_REIMBURSABLE}),
        ),
    )
}

ALIASES = {
    "xero": "gbol",
    "quickbooksonline": "qhyg",
    "qbo": "qhyg",
    "netsuite": "akxx",
    "dynamics": "trji",
    "dynamics365businesscentral": "trji",
    "freeagent": "fbrh",
    "quickbooksdesktop": "pqsw",
    "qbd": "pqsw",
    "zohobooks": "rwuv",
    "zoho": "rwuv",
    "sageintacct": "knfz",
    "intacct": "knfz",
}


def find_platform(name_or_key: str) -> Platform:
    """Look a platform up by integration key ("gbol") or by a loose name ("Xero", "qbo")."""
    wanted = name_or_key.strip()
    normalized = "".join(ch for ch in wanted.lower() if ch.isalnum())
    key = wanted if wanted in PLATFORMS else ALIASES.get(normalized)
    if key is None:
        known = ", ".join(sorted(p.name for p in PLATFORMS.values()))
        raise ValueError(f"Unknown platform {name_or_key!r}; known platforms: {known}.")
    return PLATFORMS[key]
