"""Request bodies as Codat's OpenAPI describes them, and 400 answers that name the bad item.

Bodies are parsed with every JSON number as `Decimal` (no float ever touches money), then checked
strictly: a string where the spec says number is a 400, as it is at Codat.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from codat_sandbox.errors import SandboxHTTPError, ValidationItem

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
Uuid = Annotated[str, Field(pattern=UUID_PATTERN)]
TransactionType = Literal["Payment", "Refund", "Reward", "Chargeback"]
DECIMAL_MAX = Decimal("79228162514264337593543950335")  # `format: decimal` is .NET's System.Decimal
Money = Annotated[Decimal, Field(ge=DECIMAL_MAX.copy_negate(), le=DECIMAL_MAX)]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class RecordRef(Strict):
    id: str = None


class TrackingRef(Strict):
    id: str = None
    dataType: Literal["trackingCategories", "customers"] = "trackingCategories"


class InvoiceTo(Strict):
    id: str = None
    type: Literal["customer", "Customer"] = None  # the docs' example writes "Customer"


class ContactRef(Strict):
    id: str
    type: Literal["Supplier"] = "Supplier"


class ExpenseLine(Strict):
    netAmount: Money
    taxAmount: Money = None
    taxRateRef: RecordRef = None
    accountRef: RecordRef = None
    itemRef: RecordRef | None = None
    trackingRefs: Annotated[list[TrackingRef], Field(min_length=1, max_length=10)] | None = None
    invoiceTo: InvoiceTo | None = None


class ExpenseTransaction(Strict):
    id: Uuid
    type: TransactionType
    issueDate: str
    currency: str
    currencyRate: Money | None = None
    contactRef: ContactRef = None
    bankAccountRef: RecordRef = None
    reference: str | None = None
    merchantName: str = None
    lines: Annotated[list[ExpenseLine], Field(min_length=1, max_length=100)] = None
    notes: str = None
    postAsDraft: bool | None = None


class ExpenseBatch(Strict):
    items: Annotated[list[ExpenseTransaction], Field(min_length=1, max_length=50)]


class ExpenseUpdate(Strict):
    """UpdateExpenseRequest: an expense without id, reference or postAsDraft (the id is in the
    path); `lines` has no size limits in the spec."""

    type: TransactionType
    issueDate: str
    currency: str
    currencyRate: Money | None = None
    contactRef: ContactRef = None
    bankAccountRef: RecordRef = None
    merchantName: str = None
    lines: list[ExpenseLine] = None
    notes: str = None


class AccountRef(Strict):
    id: str


class TransferLeg(Strict):
    accountRef: AccountRef
    amount: Money


class Transfer(Strict):
    """TransferTransactionRequest: one object, its id in the path."""

    description: str = None
    date: str
    from_: TransferLeg = Field(alias="from")
    to: TransferLeg


class AdjustmentTrackingRef(Strict):
    id: str = None
    dataType: Literal["trackingCategories", "customers", "suppliers"] = "trackingCategories"


class AdjustmentLine(Strict):
    amount: Money
    accountRef: RecordRef
    description: str = None
    trackingRefs: (
        Annotated[list[AdjustmentTrackingRef], Field(min_length=1, max_length=10)] | None
    ) = None
    invoiceTo: InvoiceTo | None = None


class Adjustment(Strict):
    id: Uuid
    date: str
    currency: str
    currencyRate: Money | None = None
    reference: str | None = None
    lines: Annotated[list[AdjustmentLine], Field(min_length=1, max_length=100)]


class AdjustmentBatch(Strict):
    items: Annotated[list[Adjustment], Field(min_length=1, max_length=50)]


class ReimbursableLine(ExpenseLine):
    """A reimbursable expense's line: an expense line with a description of its own."""

    description: str = None


class ReimbursableUpdate(Strict):
    """UpdateReimbursableExpenseTransactionRequest: a reimbursable expense without its id."""

    reference: str | None = None
    contactRef: AccountRef
    apAccountRef: RecordRef | None = None
    issueDate: str
    dueDate: str
    currency: str
    currencyRate: Money | None = None
    notes: str = None
    lines: Annotated[list[ReimbursableLine], Field(min_length=1, max_length=100)] = None


class Reimbursable(ReimbursableUpdate):
    id: Uuid


class ReimbursableBatch(Strict):
    items: Annotated[list[Reimbursable], Field(min_length=1, max_length=50)]


class CreateDataset(Strict):
    items: Annotated[list[ExpenseTransaction], Field(min_length=1, max_length=50)]


class InitiateSync(Strict):
    model_config = ConfigDict(strict=True, extra="forbid")
    datasetIds: Annotated[list[Uuid], Field(min_length=1)] | None = None


class IdRef(Strict):
    id: str = None


class CompanyConfiguration(Strict):
    bankAccount: IdRef
    supplier: IdRef
    customer: IdRef


TagName = Annotated[str, Field(pattern="^[^\n\r\u2028\u2029]{1,27}$")]  # spec: ^.{1,27}$
TagValue = Annotated[str, Field(max_length=100)]


class CompanyRequest(Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9\s\-',&@.,?!\s]+$")]
    description: str = None
    tags: Annotated[dict[TagName, TagValue], Field(max_length=10)] = None


def parse_json(raw: bytes) -> Any:
    """Parse a request body with Decimal numbers; malformed JSON is Codat's generic 400."""
    try:
        return json.loads(
            raw, parse_float=Decimal, parse_int=Decimal, parse_constant=reject_constant
        )
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: deep nesting
        raise SandboxHTTPError(
            400,
            "Error processing request - the body is not valid JSON.",
            validation=[ValidationItem(None, str(exc), "JsonParser")],
        ) from exc


def reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def validate(
    model: type[BaseModel], data: Any, item_ids: list[Any] | None = None, items_label="items"
) -> BaseModel:
    """Validate a body; `items_label` names the item list in messages ("body" for bare arrays)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        items = [validation_item(err, item_ids or [], items_label) for err in exc.errors()[:50]]
        raise SandboxHTTPError(
            400, "Error processing request - not valid.", validation=items
        ) from None


def validation_item(err: dict, item_ids: list[Any], items_label: str) -> ValidationItem:
    """Name the transaction (by its id when it has one) and the field path inside it."""
    loc = list(err["loc"])
    item_id = None
    if len(loc) >= 2 and loc[0] == "items" and isinstance(loc[1], int):
        index = loc[1]
        raw_id = item_ids[index] if index < len(item_ids) else None
        item_id = raw_id if isinstance(raw_id, str) and raw_id else f"items[{index}]"
        loc = loc[2:]
    if loc == ["items"]:
        loc = [items_label]
    field_path = ".".join(str(part) for part in loc) or "body"
    return ValidationItem(item_id, f"{field_path}: {err['msg']}")


def ids_of(items: Any) -> list[Any]:
    if not isinstance(items, list):
        return []
    return [item.get("id") if isinstance(item, dict) else None for item in items]
