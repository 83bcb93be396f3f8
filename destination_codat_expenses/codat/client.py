"""The only module that speaks HTTP: Codat's Sync for Expenses endpoints as plain methods.

`CodatClient(http)` takes any `httpx.Client`: a real one for api.codat.io (codat/http.py makes
it), a loopback one for the sandbox, or `starlette.testclient.TestClient(sandbox_app)` in
process. Every call goes through `_send`: auth, one INFO line per exchange in the Airbyte log
(method, path template, status, time, attempt: never a header, a query or a body), an overall
deadline per attempt, and more attempts after 429 (as long as Retry-After says), 5xx and
transport errors (jittered exponential backoff), within a per-run budget of extra attempts.
A POST is attempted again only when it carries an Idempotency-Key, so it can never write twice.
A PUT (an update, a transfer) names its transaction in the path and carries the whole new
content, so sending it again applies the same content to the same record: it is attempted again
like a GET (Codat allows no Idempotency-Key on PUT).
("retry" is the operator's command that pushes failed items again; it is not this.)

Codat allows 10 concurrent requests per company and answers 429 with Retry-After beyond its
limits. `CompanyGates` keeps each company's requests in flight (pushes, follows, uploads alike)
under a limit that starts at Codat's 10: a 429 halves it (the request that met it waits its
Retry-After, then goes again); every answer without one earns it back, one more request in
flight per `limit` answers. Codat's request quota, as every answer's X-Rate-Limit-* headers tell
it, is kept by `RequestQuota` (codat/quota.py): a request waits for a reset that is near, and
none is sent once the quota is used up until a far one (QuotaExhausted).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_random_exponential

from destination_codat_expenses import jsonwire, stopping
from destination_codat_expenses.codat.errors import already_processed_ids
from destination_codat_expenses.codat.quota import RequestQuota
from destination_codat_expenses.crashpoints import crash_point
from destination_codat_expenses.errors import (
    AlreadyProcessed,
    CodatAPIError,
    FatalAPIError,
    QuotaExhausted,
    RetriableAPIError,
)
from destination_codat_expenses.models import is_final
from destination_codat_expenses.redaction import api_key_forms, scrub

logger = logging.getLogger("airbyte")  # the CDK forwards it to the Airbyte log
EXPENSES = "/companies/{companyId}/sync/expenses"
RETRIABLE_STATUS = {408, 429, 500, 502, 503, 504}


@dataclass
class AttemptPolicy:
    attempts: int = 12  # at a 30% fault rate, 12 failures in a row is a 1-in-2-million call
    give_up_after_s: float = 300.0  # all attempts of one call, sleeps included
    attempt_deadline_s: float = 60.0  # one attempt, however slowly the bytes drip
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 120.0
    budget: int = 1000  # extra attempts always allowed in a run, on top of budget_ratio
    budget_ratio: float = 0.5  # plus this many extra attempts per request sent


@dataclass
class AttemptBudget:
    """Extra attempts in proportion to traffic: a flaky API is ridden out, a dead one is not
    hammered (once extra attempts pass floor + ratio x requests, calls fail at their first
    error)."""

    floor: int
    ratio: float = 0.5
    requests: int = 0
    spent: int = field(default=0)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self) -> None:
        with self.lock:
            self.requests += 1

    def take(self) -> bool:
        with self.lock:
            if self.spent >= self.floor + self.ratio * self.requests:
                return False
            self.spent += 1
            return True


CODAT_CONCURRENCY = 10  # Codat's cap: requests in flight per company


class CompanyGates:
    """Each company's share of requests in flight, steered by Codat's 429s (AIMD): at most
    `ceiling`; a 429 halves the company's limit; each answer without one adds 1/limit back,
    up to the ceiling. A thread over its company's limit waits for a request to end."""

    def __init__(self, ceiling: int = CODAT_CONCURRENCY) -> None:
        self.ceiling = ceiling
        self.changed = threading.Condition()
        self.limits: dict[str, int] = {}
        self.in_flight: dict[str, int] = {}
        self.earned: dict[str, int] = {}  # answers since the limit last grew

    def limit(self, company_id: str) -> int:
        with self.changed:
            return self.limits.get(company_id, self.ceiling)

    @contextmanager
    def slot(self, company_id: str | None) -> Iterator[None]:
        if company_id is None:
            yield
            return
        self.enter(company_id)
        try:
            yield
        finally:
            self.leave(company_id)

    def enter(self, company_id: str) -> None:
        with self.changed:
            limit = self.limits.get(company_id, self.ceiling)
            while self.in_flight.get(company_id, 0) >= limit:
                if threading.current_thread() is threading.main_thread():
                    stopping.check()
                self.changed.wait(stopping.POLL_S)
                limit = self.limits.get(company_id, self.ceiling)
            self.in_flight[company_id] = self.in_flight.get(company_id, 0) + 1

    def leave(self, company_id: str) -> None:
        with self.changed:
            self.in_flight[company_id] -= 1
            self.changed.notify_all()

    def throttled(self, company_id: str | None) -> None:
        """Codat answered 429: half as many of the company's requests in flight."""
        if company_id is None:
            return
        with self.changed:
            narrowed = max(1, self.limits.get(company_id, self.ceiling) // 2)
            self.limits[company_id], self.earned[company_id] = narrowed, 0
        logger.info("codat answered 429: at most %d requests in flight for the company", narrowed)

    def answered(self, company_id: str | None) -> None:
        """An answer without a 429: one step towards one more request in flight."""
        if company_id is None:
            return
        with self.changed:
            limit = self.limits.get(company_id, self.ceiling)
            if limit >= self.ceiling:
                return
            self.earned[company_id] = self.earned.get(company_id, 0) + 1
            if self.earned[company_id] >= limit:
                self.limits[company_id], self.earned[company_id] = limit + 1, 0
                self.changed.notify_all()


def basic_auth(api_key: str) -> str:
    return "Basic " + base64.b64encode(api_key.encode()).decode()


class CodatClient:
    def __init__(
        self,
        http: httpx.Client,
        api_key: str,
        policy: AttemptPolicy | None = None,
        sleep=stopping.pause,
        quota: RequestQuota | None = None,
    ) -> None:
        self.http = http
        self.auth_header = basic_auth(api_key)
        self.secret_forms = api_key_forms(api_key)  # what an error body must not pass on
        self.policy = policy or AttemptPolicy()
        self.budget = AttemptBudget(self.policy.budget, self.policy.budget_ratio)
        self.sleep = sleep
        self.gates = CompanyGates()
        self.quota = quota or RequestQuota(max_wait_s=self.policy.max_retry_after_s)

    # -- companies and settings ---------------------------------------------------------------
    def list_companies(self, page_size: int = 100) -> dict:
        """One page of companies (check uses it to prove the key and the address work)."""
        return self._send("GET", "/companies", query={"page": 1, "pageSize": page_size})

    def get_company(self, company_id: str) -> dict:
        """The company as Codat describes it (its name, among others)."""
        return self._send("GET", "/companies/{companyId}", companyId=company_id)

    def list_connections(self, company_id: str) -> list[dict]:
        return list(self._pages("/companies/{companyId}/connections", companyId=company_id))

    def get_config(self, company_id: str) -> dict:
        return self._send("GET", f"{EXPENSES}/config", companyId=company_id)

    def get_mapping_options(self, company_id: str) -> dict:
        """The accounts (bank accounts among them), tax rates and tracking categories."""
        return self._send("GET", f"{EXPENSES}/mappingOptions", companyId=company_id)

    def supplier_exists(self, company_id: str, supplier_id: str) -> bool:
        """Whether the company's books hold this supplier (mappingOptions lists none)."""
        try:
            self._send(
                "GET",
                "/companies/{companyId}/data/suppliers/{supplierId}",
                companyId=company_id,
                supplierId=quote(supplier_id, safe=""),
            )
        except FatalAPIError as error:
            if error.status == 404:
                return False
            raise
        return True

    # -- pushes ---------------------------------------------------------------------------------
    def create_expense_transactions(self, company_id: str, items: list[dict], key: str) -> str:
        return self._create_batch("expense-transactions", company_id, items, key)

    def create_expense_dataset(self, company_id: str, items: list[dict], key: str) -> str:
        answer = self._send(
            "POST",
            f"{EXPENSES}/data/expense-transactions",
            body={"items": items},
            idempotency_key=key,
            companyId=company_id,
        )
        return answer["datasetId"]

    def initiate_sync(self, company_id: str, dataset_ids: list[str], key: str) -> str:
        return self._open_sync(
            "POST",
            f"{EXPENSES}/syncs",
            body={"datasetIds": dataset_ids},
            idempotency_key=key,
            companyId=company_id,
        )

    def upload_attachment(
        self,
        company_id: str,
        sync_id: str,
        transaction_id: str,
        file_name: str,
        content: bytes,
        content_type: str,
        key: str,
    ) -> dict:
        return self._send(
            "POST",
            f"{EXPENSES}/syncs/{{syncId}}/transactions/{{transactionId}}/attachments",
            files={"file": (file_name, content, content_type)},
            idempotency_key=key,
            companyId=company_id,
            syncId=sync_id,
            transactionId=transaction_id,
        )

    # -- status ---------------------------------------------------------------------------------
    def get_sync_status(self, company_id: str, sync_id: str) -> dict:
        status = self._send(
            "GET", f"{EXPENSES}/syncs/{{syncId}}/status", companyId=company_id, syncId=sync_id
        )
        self.note_if_final(status)
        return status

    def get_latest_sync_status(self, company_id: str) -> dict:
        """The company's last initiated sync (FatalAPIError 404 when it has none)."""
        return self._send("GET", f"{EXPENSES}/syncs/latest/status", companyId=company_id)

    def get_last_successful_sync_status(self, company_id: str) -> dict:
        """The company's newest sync that succeeded (FatalAPIError 404 when none has)."""
        return self._send("GET", f"{EXPENSES}/syncs/lastSuccessful/status", companyId=company_id)

    def list_sync_statuses(self, company_id: str) -> list[dict]:
        """Every sync of the company, newest first (Codat does not page this list)."""
        answer = self._send("GET", f"{EXPENSES}/syncs/list/status", companyId=company_id)
        statuses = [s for s in answer if isinstance(s, dict)] if isinstance(answer, list) else []
        for status in statuses:
            self.note_if_final(status)
        return statuses

    def note_if_final(self, status: dict) -> None:
        if is_final(status.get("syncStatusCode")):  # its follow-up reads need no quota kept
            self.quota.settled(status.get("syncId"))

    def iter_sync_transactions(
        self, company_id: str, sync_id: str, page_size: int = 500
    ) -> Iterator[dict]:
        return self._pages(
            f"{EXPENSES}/syncs/{{syncId}}/transactions",
            page_size,
            companyId=company_id,
            syncId=sync_id,
        )

    def get_sync_transaction(
        self, company_id: str, sync_id: str, transaction_id: str
    ) -> dict | None:
        """One transaction's status in one sync (Codat answers a one-item array), or None."""
        try:
            answer = self._send(
                "GET",
                f"{EXPENSES}/syncs/{{syncId}}/transactions/{{transactionId}}",
                companyId=company_id,
                syncId=sync_id,
                transactionId=transaction_id,
            )
        except FatalAPIError as error:
            if error.status == 404:
                return None
            raise
        return answer[0] if isinstance(answer, list) and answer else None

    # -- plumbing -------------------------------------------------------------------------------
    def _pages(self, template: str, page_size: int = 100, **params: str) -> Iterator[dict]:
        """Follow `_links.next` until the last page."""
        page = 1
        while True:
            answer = self._send(
                "GET", template, query={"page": page, "pageSize": page_size}, **params
            )
            yield from answer.get("results", [])
            if not answer.get("_links", {}).get("next"):
                return
            page += 1

    def _send(
        self,
        method: str,
        template: str,
        *,
        body: Any = None,
        files=None,
        query: dict | None = None,
        idempotency_key: str | None = None,
        opens_sync: bool = False,
        **params: str,
    ) -> Any:
        path = template.format(**params)
        retrying = Retrying(
            retry=retry_if_exception(lambda exc: self._may_try_again(exc, method, idempotency_key)),
            wait=self._wait,
            sleep=self.sleep,
            reraise=True,
            stop=stop_after_attempt(self.policy.attempts)
            | stop_after_delay(self.policy.give_up_after_s),
        )
        company_id = params.get("companyId")
        for attempt in retrying:
            with attempt, self.quota.request(opens_sync), self.gates.slot(company_id):
                try:
                    answer = self._exchange(
                        method,
                        template,
                        path,
                        body,
                        files,
                        query,
                        idempotency_key,
                        attempt.retry_state.attempt_number,
                    )
                except CodatAPIError as error:
                    if error.status == 429:
                        self.gates.throttled(company_id)
                    raise
                self.gates.answered(company_id)
                return answer
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _may_try_again(self, exc: BaseException, method: str, key: str | None) -> bool:
        if not isinstance(exc, RetriableAPIError) or isinstance(exc, QuotaExhausted):
            return False
        if method == "POST" and not key:
            return False
        return self.budget.take()

    def _wait(self, retry_state) -> float:
        backoff = wait_random_exponential(
            multiplier=self.policy.backoff_base_s, max=self.policy.backoff_max_s
        )(retry_state)
        error = retry_state.outcome.exception()
        asked = getattr(error, "retry_after_s", None)
        if asked is not None:
            return min(max(asked, 0.0), self.policy.max_retry_after_s)
        return backoff

    def _exchange(self, method, template, path, body, files, query, key, attempt) -> Any:
        headers = {"Authorization": self.auth_header, "Accept": "application/json"}
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = jsonwire.dumps(body).encode()
        if key:
            headers["Idempotency-Key"] = key
        if files is not None and key:
            # httpx draws a random boundary: derived from the key instead, one upload is the
            # same bytes every time it is sent, so a second sender (the receiver and a run, or
            # an attempt after a lost answer) gets Codat's first answer, not a 422 for a used key
            headers["Content-Type"] = f"multipart/form-data; boundary={key.replace('-', '')}"
        started = time.monotonic()
        self.budget.sent()
        try:
            request = self.http.build_request(
                method, path, content=content, files=files, params=query, headers=headers
            )
            status, raw, response = self._read(request, started)
            self.quota.observe(response.headers)
        except httpx.TransportError as exc:
            logger.info(
                "codat %s %s transport error %s (attempt %d)",
                method,
                template,
                type(exc).__name__,
                attempt,
            )
            raise RetriableAPIError(
                f"Codat could not be reached ({type(exc).__name__}).",
                method=method,
                path=template,
                detail=type(exc).__name__,
            ) from None
        logger.info(
            "codat %s %s %d %.0fms (attempt %d)",
            method,
            template,
            status,
            (time.monotonic() - started) * 1000,
            attempt,
        )
        if status == 429 and (used_up := self.quota.used_up()):
            raise used_up
        if status >= 400:
            raise api_error(method, template, status, raw, response.headers, self.secret_forms)
        return jsonwire.loads(raw) if raw else None

    def _read(self, request: httpx.Request, started: float):
        """Read the whole answer within the attempt deadline, even if it trickles in."""
        deadline = started + self.policy.attempt_deadline_s
        response = self.http.send(request, stream=True)
        if request.method == "POST":
            crash_point("after_send")  # Codat has the request; its answer is not read yet
        try:
            chunks = []
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(
                        "the answer took longer than the attempt deadline", request=request
                    )
            return response.status_code, b"".join(chunks), response
        finally:
            response.close()

    # -- the rest of the family: updates, transfers, reimbursables, adjustments -------------------
    def update_expense_transaction(self, company_id: str, transaction_id: str, update: dict) -> str:
        """Queue an update of a written expense (an UpdateExpenseRequest: no `id`); the syncId.
        Where Codat does not update (the platform, a non-Payment type) it answers 422, raised
        as FatalAPIError with Codat's reason; an id Codat does not know is a 404."""
        return self._put_transaction("expense-transactions", company_id, transaction_id, update)

    def put_transfer_transaction(self, company_id: str, transaction_id: str, transfer: dict) -> str:
        """Create the transfer, or update it if Codat has it (one PUT does both); the syncId."""
        return self._put_transaction("transfer-transactions", company_id, transaction_id, transfer)

    def create_reimbursable_expense_transactions(
        self, company_id: str, items: list[dict], key: str
    ) -> str:
        return self._create_batch("reimbursable-expense-transactions", company_id, items, key)

    def update_reimbursable_expense_transaction(
        self, company_id: str, transaction_id: str, update: dict
    ) -> str:
        """Queue an update of a written reimbursable expense (its body without `id`)."""
        return self._put_transaction(
            "reimbursable-expense-transactions", company_id, transaction_id, update
        )

    def create_adjustment_transactions(self, company_id: str, items: list[dict], key: str) -> str:
        return self._create_batch("adjustment-transactions", company_id, items, key)

    def _create_batch(self, collection: str, company_id: str, items: list[dict], key: str) -> str:
        return self._open_sync(
            "POST",
            f"{EXPENSES}/{collection}",
            body=items,
            idempotency_key=key,
            companyId=company_id,
        )

    def _open_sync(self, method: str, template: str, **arguments: Any) -> str:
        """A request whose answer is a new sync: it goes only with quota kept to follow it."""
        sync_id = self._send(method, template, opens_sync=True, **arguments)["syncId"]
        self.quota.opened(sync_id)
        return sync_id

    def _put_transaction(
        self, collection: str, company_id: str, transaction_id: str, body: dict
    ) -> str:
        if not is_canonical_uuid(transaction_id):  # it goes into the path: never a free string
            raise ValueError("A transaction id in a path must be a canonical UUID.")
        return self._open_sync(
            "PUT",
            f"{EXPENSES}/{collection}/{{transactionId}}",
            body=body,
            companyId=company_id,
            transactionId=transaction_id,
        )


def is_canonical_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except (ValueError, TypeError, AttributeError):
        return False


def api_error(
    method: str, template: str, status: int, raw: bytes, headers, secret_forms: tuple[str, ...]
) -> CodatAPIError:
    """The error for a non-2xx answer. Every text taken from the body is scrubbed of the key
    first: an upstream that echoes the Authorization header must not put it in an exception,
    whoever catches it (check's message, a trace, a store row, a page)."""
    try:
        body = jsonwire.loads(raw) if raw else {}
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    detail = scrub(str(body.get("error") or f"HTTP {status}"), secret_forms)
    correlation_id = body.get("correlationId")
    kwargs = {
        "status": status,
        "method": method,
        "path": template,
        "correlation_id": scrub(str(correlation_id), secret_forms) if correlation_id else None,
        "detail": detail,
        "validation": scrubbed_validation(body, secret_forms),
    }
    message = f"Codat answered {status} to {method} {template}: {detail}"
    if status in RETRIABLE_STATUS:
        return RetriableAPIError(message, retry_after_s=retry_after(headers), **kwargs)
    named = already_processed_ids(detail) if status == 400 else set()
    if named:
        return AlreadyProcessed(message, ids=named, **kwargs)
    return FatalAPIError(message, **kwargs)


def scrubbed_validation(body: dict, secret_forms: tuple[str, ...]) -> list[dict]:
    """Codat's per-item validation errors with their text fields scrubbed (what is not an
    object of texts carries nothing the product reads, and is left out)."""
    validation = body.get("validation")
    errors = validation.get("errors") if isinstance(validation, dict) else None
    if not isinstance(errors, list):
        return []
    return [
        {
            name: scrub(value, secret_forms)
            for name, value in entry.items()
            if isinstance(value, str)
        }
        for entry in errors
        if isinstance(entry, dict)
    ]


def retry_after(headers) -> float | None:
    """Retry-After as seconds, from either of its two forms (delta-seconds or an HTTP date)."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
