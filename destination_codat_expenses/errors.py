"""Every error this product raises, one tree; messages are fixed sentences, context is in fields.

    CodatExpensesError
    ├── ConfigError                 the user must change a setting        -> config_error
    ├── RecordError                 one input record rejected; the run goes on
    ├── TooManyRejectsError         more records rejected than max_rejected_share -> config_error
    ├── NothingToRetry              `retry` found no failed item it may push again
    ├── CodatAPIError               Codat answered badly or not at all
    │   ├── RetriableAPIError       429, 5xx, transport: worth another try -> transient_error
    │   │   └── QuotaExhausted      the API key's quota is used up until a reset far away
    │   └── FatalAPIError           any other 4xx: trying again won't help -> system_error
    │       └── AlreadyProcessed    Codat already completed some of the pushed ids (named)
    ├── StoreError                  the status store could not be used
    │   └── WriterFull              the webhook writer's queue is full: the event goes to the spool
    └── WebhookVerificationError    a webhook whose signature does not hold

Only `destination.py` turns these into Airbyte traces. No message ever carries a secret.
"""

from __future__ import annotations


class CodatExpensesError(Exception):
    """Base class: `str(error)` is a sentence a person can act on."""


class ConfigError(CodatExpensesError):
    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"Setting '{setting}': {reason}")
        self.setting = setting
        self.reason = reason


class RecordError(CodatExpensesError):
    def __init__(self, record_key: str, field: str, reason: str) -> None:
        super().__init__(f"Record {record_key}: field '{field}' {reason}")
        self.record_key = record_key
        self.field = field
        self.reason = reason


class TooManyRejectsError(CodatExpensesError):
    """The run rejected a larger share of its records than `max_rejected_share` allows."""


class NothingToRetry(CodatExpensesError):
    """The sync has no failed item that may be pushed again; the message says why."""


class CodatAPIError(CodatExpensesError):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str = "",
        path: str = "",
        correlation_id: str | None = None,
        detail: str | None = None,
        validation: list[dict] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.path = path
        self.correlation_id = correlation_id
        self.detail = detail
        self.validation = validation or []


class RetriableAPIError(CodatAPIError):
    def __init__(self, *args, retry_after_s: float | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after_s = retry_after_s


class QuotaExhausted(RetriableAPIError):
    """Codat's request quota for the API key is used up until a reset too far away to wait
    for (codat/quota.py); nothing was sent. Transient: a run after the reset goes on."""


class FatalAPIError(CodatAPIError):
    pass


class AlreadyProcessed(FatalAPIError):
    """A push refused because Codat says it already processed `ids` (a claim to check against
    Codat's transaction statuses, never to record as completed on its own)."""

    def __init__(self, *args, ids: set[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ids = ids


class StoreError(CodatExpensesError):
    pass


class WebhookVerificationError(CodatExpensesError):
    pass


class WriterFull(StoreError):
    """More webhook events are waiting than the receiver's writer holds in memory: the request
    puts its event in the spool itself (or answers 503 when the spool refuses it too)."""
