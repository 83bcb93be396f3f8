"""Codat's public surface, as far as Sync for Expenses uses it: companies, connections, pushes
(expense transactions and their updates, transfers, reimbursable expenses, adjustments), sync
status, transactions, attachments, configuration and mapping options."""

from __future__ import annotations

import mimetypes
import re
import uuid
from collections import Counter
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from codat_sandbox.errors import SandboxHTTPError, ValidationItem, not_found
from codat_sandbox.family import ADJUSTMENT, EXPENSE, REIMBURSABLE, TRANSFER, Pending
from codat_sandbox.idempotency import idempotent
from codat_sandbox.ledger import Company, company_from_spec
from codat_sandbox.platforms import (
    CREATE_ADJUSTMENT,
    CREATE_REIMBURSABLE,
    CREATE_TRANSFER,
    UPDATE_EXPENSE,
    UPDATE_REIMBURSABLE,
)
from codat_sandbox.schemas import (
    UUID_PATTERN,
    AdjustmentBatch,
    CompanyConfiguration,
    CompanyRequest,
    CreateDataset,
    ExpenseBatch,
    ExpenseUpdate,
    InitiateSync,
    ReimbursableBatch,
    ReimbursableUpdate,
    Transfer,
    ids_of,
    parse_json,
    validate,
)
from codat_sandbox.state import SandboxState, Sync

SYNC_PATH = "/companies/{companyId}/sync/expenses"
MAX_FORM_PARTS = 50


def state_of(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    state.advance()
    return state


def company_of(request: Request, allow_deleted: bool = True) -> Company:
    company_id = request.path_params["companyId"]
    company = state_of(request).companies.get(company_id)
    if company is None or (company.deleted and not allow_deleted):
        raise not_found("company", company_id, "ClientsApi")
    return company


def sync_of(request: Request) -> Sync:
    company = company_of(request)
    sync = state_of(request).syncs.get(request.path_params["syncId"])
    if sync is None or sync.company_id != company.id:
        raise not_found("sync", request.path_params["syncId"])
    return sync


# -- companies and connections ---------------------------------------------------------------
def company_json(company: Company) -> dict:
    return {
        "id": company.id,
        "name": company.name,
        "description": company.description,
        "platform": company.platform.name,
        "redirect": f"https://link.codat.io/company/{company.id}",
        "created": company.created,
        "tags": company.tags,
        "products": ["expenses"],
        "dataConnections": connections_json(company),
    }


def connections_json(company: Company) -> list[dict]:
    accounting = {
        "id": company.connection_id,
        "integrationId": str(uuid.uuid5(uuid.NAMESPACE_URL, company.platform.key)),
        "integrationKey": company.platform.key,
        "sourceId": str(uuid.uuid5(uuid.NAMESPACE_URL, company.platform.name)),
        "sourceType": "Accounting",
        "platformName": company.platform.name,
        "linkUrl": f"https://link-api.codat.io/companies/{company.id}/connections/"
        f"{company.connection_id}/start",
        "status": company.connection_status,
        "created": company.created,
    }
    found = [accounting]
    if company.partner_connection_id:
        found.append(partner_connection_json(company))
    return found


def partner_connection_json(company: Company) -> dict:
    return {
        "id": company.partner_connection_id,
        "integrationId": str(uuid.uuid5(uuid.NAMESPACE_URL, "partner-expense")),
        "integrationKey": "sfex",
        "sourceId": str(uuid.uuid5(uuid.NAMESPACE_URL, "Partner Expense")),
        "sourceType": "Expense",
        "platformName": "Partner Expense",
        "linkUrl": f"https://link-api.codat.io/companies/{company.id}/connections/"
        f"{company.partner_connection_id}/start",
        "status": "Linked",
        "created": company.created,
    }


def paged(request: Request, rows: list[Any]) -> dict:
    page = int_param(request, "page", 1, 1, 2**31 - 1)
    size = int_param(request, "pageSize", 100, 1, 5000)
    path = request.url.path
    links = {"self": {"href": path}, "current": {"href": f"{path}?page={page}&pageSize={size}"}}
    if page * size < len(rows):
        links["next"] = {"href": f"{path}?page={page + 1}&pageSize={size}"}
    if page > 1:
        links["previous"] = {"href": f"{path}?page={page - 1}&pageSize={size}"}
    window = rows[(page - 1) * size : page * size]
    return {
        "results": window,
        "pageNumber": page,
        "pageSize": size,
        "totalResults": len(rows),
        "_links": links,
    }


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    given = request.query_params.getlist(name)
    if not given:
        return default
    try:
        value = int(given[0]) if len(given) == 1 else low - 1  # twice: not one integer
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise SandboxHTTPError(
            400,
            f"Error parsing query - {name} must be one integer from {low} to {high}.",
            "PublicApi",
        )
    return value


async def list_companies(request: Request) -> Response:
    companies = [company_json(c) for c in state_of(request).companies.values() if not c.deleted]
    return JSONResponse(paged(request, companies))


@idempotent
async def create_company(request: Request) -> Response:
    body = validate(CompanyRequest, parse_json(await request.body()))
    company = company_from_spec(
        {"name": body.name, "description": body.description or "", "tags": body.tags or {}}
    )
    company.config = None  # a new company has no expense configuration until one is set
    return JSONResponse(company_json(state_of(request).add_company(company)))


async def get_company(request: Request) -> Response:
    return JSONResponse(company_json(company_of(request, allow_deleted=False)))


async def list_connections(request: Request) -> Response:
    return JSONResponse(paged(request, connections_json(company_of(request))))


# -- pushes ----------------------------------------------------------------------------------
async def parse_items(request: Request, model, wrap: bool) -> list:
    data = parse_json(await request.body())
    items = data if wrap else (data.get("items") if isinstance(data, dict) else None)
    label = "body" if wrap else "items"
    body = validate(model, {"items": data} if wrap else data, ids_of(items), label)
    return body.items


@idempotent
async def create_expense_transactions(request: Request) -> Response:
    company = company_of(request, allow_deleted=False)
    items = await parse_items(request, ExpenseBatch, wrap=True)
    return queue_creates(request, company, [Pending(t.id, EXPENSE, t) for t in items])


def queue_creates(request: Request, company: Company, items: list[Pending]) -> Response:
    """Queue a batch of new transactions; an id a sync has completed is refused, as at Codat."""
    reject_repeated_ids(items)
    state = state_of(request)
    with state.lock:
        done = state.previously_processed(company.id, items)
        if done:
            raise SandboxHTTPError(
                400,
                f"One or more transactions have previously been processed: {', '.join(done)}",
                validation=[ValidationItem(i, "previously processed") for i in done],
            )
        sync = state.queue_sync(company, items, "direct")
    return JSONResponse({"syncId": sync.id})


@idempotent
async def create_expense_dataset(request: Request) -> Response:
    company = company_of(request, allow_deleted=False)
    items = await parse_items(request, CreateDataset, wrap=False)
    reject_repeated_ids(items)
    dataset = state_of(request).create_dataset(company, items)
    return JSONResponse({"datasetId": dataset.id})


@idempotent
async def initiate_sync(request: Request) -> Response:
    company = company_of(request, allow_deleted=False)
    body = validate(InitiateSync, parse_json(await request.body()))
    state = state_of(request)
    with state.lock:
        dataset_ids = list(dict.fromkeys(body.datasetIds or []))
        if not dataset_ids:
            raise SandboxHTTPError(422, "At least one datasetId is required to initiate a sync.")
        for dataset_id in dataset_ids:
            dataset = state.datasets.get(dataset_id)
            if dataset is None or dataset.company_id != company.id:
                raise not_found("dataset", dataset_id)
        items = [Pending(t.id, EXPENSE, t) for d in dataset_ids for t in state.datasets[d].items]
        sync = state.queue_sync(company, items, "datasets", dataset_ids)
    return JSONResponse({"syncId": sync.id}, status_code=202)


def reject_repeated_ids(items: list) -> None:
    counts = Counter(item.id for item in items)
    repeated = sorted(ident for ident, count in counts.items() if count > 1)
    if repeated:
        raise SandboxHTTPError(
            400,
            "Error processing request - not valid.",
            validation=[
                ValidationItem(i, "The same transaction id appears more than once in the request.")
                for i in repeated
            ],
        )


# -- the rest of the family: updates, transfers, reimbursables, adjustments ---------------------
async def update_expense_transaction(request: Request) -> Response:
    company = company_of(request, allow_deleted=False)
    if not company.platform.supports(UPDATE_EXPENSE):
        raise SandboxHTTPError(
            422, f"Expense transaction updates are not supported for {company.platform.name}."
        )
    body = validate(ExpenseUpdate, parse_json(await request.body()))
    if body.type != "Payment":
        raise SandboxHTTPError(
            422, f"Expense transaction updates are supported for Payment only, not {body.type}."
        )
    sync = queue_update(request, company, EXPENSE, body)
    return JSONResponse({"syncId": sync.id}, status_code=202)


async def put_transfer_transaction(request: Request) -> Response:
    """Creates the transfer, or updates it when the books hold it already (decided at sync)."""
    company = company_of(request, allow_deleted=False)
    require_operation(company, CREATE_TRANSFER, "transfers")
    body = validate(Transfer, parse_json(await request.body()))
    item = Pending(path_transaction_id(request), TRANSFER, body, mode="upsert")
    return JSONResponse({"syncId": state_of(request).queue_sync(company, [item], "direct").id})


@idempotent
async def create_adjustment_transactions(request: Request) -> Response:
    company = company_of(request, allow_deleted=False)
    require_operation(company, CREATE_ADJUSTMENT, "adjustments")
    items = await parse_items(request, AdjustmentBatch, wrap=True)
    return queue_creates(request, company, [Pending(t.id, ADJUSTMENT, t) for t in items])


@idempotent
async def create_reimbursable_expense_transactions(request: Request) -> Response:
    company = company_of(request, allow_deleted=False)
    require_operation(company, CREATE_REIMBURSABLE, "reimbursable expenses")
    items = await parse_items(request, ReimbursableBatch, wrap=True)
    return queue_creates(request, company, [Pending(t.id, REIMBURSABLE, t) for t in items])


async def update_reimbursable_expense_transaction(request: Request) -> Response:
    company = company_of(request, allow_deleted=False)
    require_operation(company, UPDATE_REIMBURSABLE, "updates to reimbursable expenses")
    body = validate(ReimbursableUpdate, parse_json(await request.body()))
    sync = queue_update(request, company, REIMBURSABLE, body)
    return JSONResponse({"syncId": sync.id})


def require_operation(company: Company, operation: str, what: str) -> None:
    if not company.platform.supports(operation):
        raise SandboxHTTPError(
            400,
            f"{company.platform.name} does not support {what}.",
            validation=[ValidationItem(None, f"{operation} is not supported by this platform.")],
        )


def path_transaction_id(request: Request) -> str:
    transaction_id = request.path_params["transactionId"]
    if not re.fullmatch(UUID_PATTERN, transaction_id):
        raise SandboxHTTPError(400, f"transactionId '{transaction_id}' is not a UUID.")
    return transaction_id


def queue_update(request: Request, company: Company, kind: str, body) -> Sync:
    """An update aims at a transaction Codat has (completed, or queued ahead of it)."""
    transaction_id = path_transaction_id(request)
    state = state_of(request)
    with state.lock:
        if not state.knows(company.id, transaction_id):
            raise not_found("transaction", transaction_id)
        return state.queue_sync(company, [Pending(transaction_id, kind, body, "update")], "direct")


# -- sync status and transactions --------------------------------------------------------------
async def sync_status(request: Request) -> Response:
    return JSONResponse(state_of(request).status_of(sync_of(request)))


async def latest_sync_status(request: Request) -> Response:
    company = company_of(request)
    syncs = state_of(request).syncs_of(company.id)
    if not syncs:
        raise SandboxHTTPError(404, f"No syncs were found for company {company.id}")
    return JSONResponse(state_of(request).status_of(syncs[-1]))


async def last_successful_sync_status(request: Request) -> Response:
    company = company_of(request)
    state = state_of(request)
    good = [s for s in state.syncs_of(company.id) if s.code in (2000, 2040)]
    if not good:
        raise SandboxHTTPError(404, f"No successful sync was found for company {company.id}")
    return JSONResponse(state.status_of(good[-1]))


async def list_sync_statuses(request: Request) -> Response:
    company = company_of(request)
    state = state_of(request)
    newest_first = reversed(state.syncs_of(company.id))
    return JSONResponse([state.status_of(s) for s in newest_first])


def transaction_json(result) -> dict:
    return {
        "transactionId": result.transaction_id,
        "status": result.status,
        "message": result.message,
        "integrationType": "expenses",
    }


async def list_sync_transactions(request: Request) -> Response:
    sync = sync_of(request)
    rows = [transaction_json(r) for r in sync.results.values()]
    return JSONResponse(paged(request, rows))


async def get_sync_transaction(request: Request) -> Response:
    sync = sync_of(request)
    result = sync.results.get(request.path_params["transactionId"])
    if result is None:
        raise not_found("transaction", request.path_params["transactionId"])
    return JSONResponse([transaction_json(result)])


@idempotent
async def upload_attachment(request: Request) -> Response:
    sync = sync_of(request)
    company = company_of(request, allow_deleted=False)
    transaction_id = request.path_params["transactionId"]
    entry = state_of(request).books[company.id].get(transaction_id)
    if sync.results.get(transaction_id) is None or entry is None or entry.sync_id != sync.id:
        raise SandboxHTTPError(
            400,
            f"Transaction {transaction_id} was not written by sync "
            f"{sync.id}; attachments can only be added to completed "
            "transactions.",
        )
    name, content_type, size = await read_upload(request)
    check_attachment(company, entry.type, name, content_type, size)
    attachment = {"companyId": company.id, "id": str(uuid.uuid4()), "transactionId": transaction_id}
    entry.attachments.append(
        {**attachment, "fileName": name, "size": size, "contentType": content_type}
    )
    return JSONResponse(attachment)


async def read_upload(request: Request) -> tuple[str, str, int]:
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        raise SandboxHTTPError(
            400, "Attachments must be sent as multipart/form-data with a 'file' part."
        )
    form = await read_form(request)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise SandboxHTTPError(400, "The multipart body has no 'file' part.")
    data = await upload.read()
    name = upload.filename or "attachment"
    guessed = mimetypes.guess_type(name)[0]
    return name, (upload.content_type or guessed or "application/octet-stream"), len(data)


async def read_form(request: Request):
    """Parse the multipart body; parts besides 'file' are ignored (the form schema allows them)."""
    try:
        return await request.form(max_files=MAX_FORM_PARTS, max_fields=MAX_FORM_PARTS)
    except HTTPException as exc:
        raise SandboxHTTPError(400, f"The multipart body could not be read: {exc.detail}") from None


def check_attachment(
    company: Company, txn_type: str, name: str, content_type: str, size: int
) -> None:
    platform = company.platform
    if platform.attachment_max_bytes == 0:
        raise SandboxHTTPError(400, f"{platform.name} does not accept attachments.")
    if txn_type not in platform.attachment_transaction_types:
        raise SandboxHTTPError(
            400, f"{platform.name} does not accept attachments on {txn_type} transactions."
        )
    if size > platform.attachment_max_bytes:
        limit_mb = platform.attachment_max_bytes // (1024 * 1024)
        raise SandboxHTTPError(
            400,
            f"The file '{name}' is {size} bytes; {platform.name} "
            f"accepts attachments up to {limit_mb} MB.",
        )
    if size == 0:
        raise SandboxHTTPError(400, f"The file '{name}' is empty.")
    if platform.attachment_types is not None and content_type not in platform.attachment_types:
        allowed = ", ".join(sorted(platform.attachment_types))
        raise SandboxHTTPError(
            400, f"{platform.name} does not accept {content_type} files; allowed types: {allowed}."
        )


# -- configuration and mapping options ----------------------------------------------------------
async def get_supplier(request: Request) -> Response:
    """One supplier of the company's books (check looks up the supplier ids a config names)."""
    company = company_of(request)
    supplier_id = request.path_params["supplierId"]
    if supplier_id not in company.suppliers:
        raise not_found("supplier", supplier_id, "AccountingApi")
    currency = company.suppliers[supplier_id]
    return JSONResponse(
        {
            "id": supplier_id,
            "supplierName": supplier_id,
            "status": "Active",
            "defaultCurrency": currency,
            "addresses": [],
            "metadata": {"isDeleted": False},
        }
    )


async def get_config(request: Request) -> Response:
    company = company_of(request)
    if company.config is None:
        raise SandboxHTTPError(404, f"No expense configuration was found for company {company.id}")
    return JSONResponse(company.config)


@idempotent
async def set_config(request: Request) -> Response:
    company = company_of(request, allow_deleted=False)
    body = validate(CompanyConfiguration, parse_json(await request.body()))
    problems = config_problems(company, body)
    if problems:
        raise SandboxHTTPError(400, "Error processing request - not valid.", validation=problems)
    company.config = body.model_dump()
    return JSONResponse(company.config)


def config_problems(company: Company, body: CompanyConfiguration) -> list[ValidationItem]:
    problems = []
    bank = company.accounts.get(body.bankAccount.id or "")
    if bank is None or not bank.is_bank_account:
        problems.append(
            ValidationItem(
                "bankAccount",
                f"Bank account '{body.bankAccount.id}' was not found.",
                "CompanyConfigurationValidator",
            )
        )
    if body.supplier.id not in company.suppliers:
        problems.append(
            ValidationItem(
                "supplier",
                f"Supplier '{body.supplier.id}' was not found.",
                "CompanyConfigurationValidator",
            )
        )
    if body.customer.id not in company.customers:
        problems.append(
            ValidationItem(
                "customer",
                f"Customer '{body.customer.id}' was not found.",
                "CompanyConfigurationValidator",
            )
        )
    return problems


async def mapping_options(request: Request) -> Response:
    company = company_of(request)
    accounts = [
        {
            "id": a.id,
            "nominalCode": a.id,
            "name": a.name,
            "currency": a.currency or company.base_currency,
            "accountType": a.account_type,
            "fullyQualifiedCategory": a.category,
            "isBankAccount": a.is_bank_account,
            "validTransactionTypes": a.valid_types,
            "validFor": a.valid_for,
        }
        for a in company.accounts.values()
    ]
    taxes = [
        {
            "id": t.id,
            "name": t.name,
            "code": t.id,
            "effectiveTaxRate": float(t.rate),
            "totalTaxRate": float(t.rate),
            "validTransactionTypes": t.valid_types,
        }
        for t in company.tax_rates.values()
    ]
    tracking = [
        {"id": c.id, "name": c.name, "hasChildren": c.has_children, "parentId": c.parent_id}
        for c in company.tracking.values()
    ]
    provider = "Partner Expense" if company.partner_connection_id else None
    return JSONResponse(
        {
            "expenseProvider": provider,
            "accounts": accounts,
            "trackingCategories": tracking,
            "taxRates": taxes,
        }
    )


@idempotent
async def create_partner_expense_connection(request: Request) -> Response:
    company = company_of(request, allow_deleted=False)
    with state_of(request).lock:
        company.partner_connection_id = company.partner_connection_id or str(uuid.uuid4())
    return JSONResponse(partner_connection_json(company))


ROUTES = [
    Route("/companies", list_companies, methods=["GET"]),
    Route("/companies", create_company, methods=["POST"]),
    Route("/companies/{companyId}", get_company, methods=["GET"]),
    Route("/companies/{companyId}/connections", list_connections, methods=["GET"]),
    Route(f"{SYNC_PATH}/expense-transactions", create_expense_transactions, methods=["POST"]),
    Route(
        f"{SYNC_PATH}/expense-transactions/{{transactionId}}",
        update_expense_transaction,
        methods=["PUT"],
    ),
    Route(
        f"{SYNC_PATH}/transfer-transactions/{{transactionId}}",
        put_transfer_transaction,
        methods=["PUT"],
    ),
    Route(f"{SYNC_PATH}/adjustment-transactions", create_adjustment_transactions, methods=["POST"]),
    Route(
        f"{SYNC_PATH}/reimbursable-expense-transactions",
        create_reimbursable_expense_transactions,
        methods=["POST"],
    ),
    Route(
        f"{SYNC_PATH}/reimbursable-expense-transactions/{{transactionId}}",
        update_reimbursable_expense_transaction,
        methods=["PUT"],
    ),
    Route(f"{SYNC_PATH}/data/expense-transactions", create_expense_dataset, methods=["POST"]),
    Route(f"{SYNC_PATH}/syncs", initiate_sync, methods=["POST"]),
    Route(f"{SYNC_PATH}/syncs/latest/status", latest_sync_status, methods=["GET"]),
    Route(f"{SYNC_PATH}/syncs/lastSuccessful/status", last_successful_sync_status, methods=["GET"]),
    Route(f"{SYNC_PATH}/syncs/list/status", list_sync_statuses, methods=["GET"]),
    Route(f"{SYNC_PATH}/syncs/{{syncId}}/status", sync_status, methods=["GET"]),
    Route(f"{SYNC_PATH}/syncs/{{syncId}}/transactions", list_sync_transactions, methods=["GET"]),
    Route(
        f"{SYNC_PATH}/syncs/{{syncId}}/transactions/{{transactionId}}",
        get_sync_transaction,
        methods=["GET"],
    ),
    Route(
        f"{SYNC_PATH}/syncs/{{syncId}}/transactions/{{transactionId}}/attachments",
        upload_attachment,
        methods=["POST"],
    ),
    Route(f"{SYNC_PATH}/mappingOptions", mapping_options, methods=["GET"]),
    Route("/companies/{companyId}/data/suppliers/{supplierId}", get_supplier, methods=["GET"]),
    Route(f"{SYNC_PATH}/config", get_config, methods=["GET"]),
    Route(f"{SYNC_PATH}/config", set_config, methods=["POST"]),
    Route(
        f"{SYNC_PATH}/connections/partnerExpense",
        create_partner_expense_connection,
        methods=["POST"],
    ),
]
