"""Codat's error vocabulary: every non-2xx answer is an `ErrorMessage` body.

SandboxHTTPError(status, error, service, validation)   raised anywhere in a handler,
    -> rendered by `error_response` with a fresh correlationId, exactly like Codat's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from starlette.responses import JSONResponse

REASONS = {
    400: "Error processing request - not valid.",
    401: "Unauthorized",
    402: "You have exceeded the 50-company limit for your account.",
    403: "You are using an outdated API key or a key not associated with that resource.",
    404: "The requested resource was not found.",
    405: "Method not allowed.",
    409: "A request with this Idempotency-Key is still being processed.",
    413: "The request body is too large.",
    422: "The Idempotency-Key has already been used with a different request body.",
    429: "You have made too many requests in a given amount of time; please retry later.",
    500: "There is a problem with our server. Please try again later.",
    503: "The Codat API is temporarily offline for maintenance. Please try again later.",
}


@dataclass
class ValidationItem:
    item_id: str | None
    message: str
    validator_name: str = "ExpenseTransactionValidator"

    def as_json(self) -> dict:
        return {
            "itemId": self.item_id,
            "message": self.message,
            "validatorName": self.validator_name,
        }


@dataclass
class SandboxHTTPError(Exception):
    status: int
    error: str = ""
    service: str = "ExpenseSyncApi"
    validation: list[ValidationItem] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.error = self.error or REASONS.get(self.status, "Error.")


def error_body(status: int, error: str, service: str, validation=()) -> dict:
    body = {
        "statusCode": status,
        "service": service,
        "error": error,
        "correlationId": uuid.uuid4().hex,
        "canBeRetried": "True" if status in (429, 500, 503) else "False",
        "detailedErrorCode": 0,
    }
    if validation:
        body["validation"] = {"errors": [v.as_json() for v in validation], "warnings": []}
    return body


def error_response(exc: SandboxHTTPError) -> JSONResponse:
    body = error_body(exc.status, exc.error, exc.service, exc.validation)
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


def not_found(what: str, ident: str, service: str = "ExpenseSyncApi") -> SandboxHTTPError:
    return SandboxHTTPError(404, f"No {what} was found with ID {ident}", service)
