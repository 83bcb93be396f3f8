"""The webhook receiver (the Starlette app behind `codat-expenses webhooks serve`), so the store
learns without polling that a sync ended, and (given an API key) reads how from Codat.

Why it is built this way:
- Each request is verified first (signing.py: Standard Webhooks / Svix signatures, the time from
  the clock the receiver was given).
- Whatever is wrong with a request is the sender's problem, never ours: unverifiable, malformed,
  stale or future requests get 401 with a reason; bodies over 256 KiB get 413 before they are
  read whole. Nothing a client sends produces a 500.
- An event is acknowledged (2xx) only once it is durable: committed to the store (200), or, when
  another process holds the DuckDB file past the answer budget, written and fsynced to a spool
  next to it (202 "queued") and applied as soon as the file is free (spool.py). One writer
  thread commits whatever has queued in one transaction (group commit, writer.py); a request
  that has waited WRITER_WAIT_S for it spools its event itself, so the answer comes within a
  second whatever the writer is doing. 503 (Codat retries; the retry is deduplicated) is left
  for when neither the store nor the spool took the event.
- Operable as a service: GET /healthz answers 503 with reasons when the store cannot be opened
  or the spool cannot take or is piling up events (health.py); GET /metrics counts each answer,
  the store wait and the spool's depth for Prometheus (metrics.py).
- A webhook triggers, the API decides: an event marks its sync "to confirm" and never sets its
  status (store/webhook_events.py). With a Codat client, the confirmer (confirmer.py) then reads
  the sync's status and items from Codat in the background; without one, the running
  destination or `codat-expenses status refresh` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.errors import WebhookVerificationError, WriterFull
from destination_codat_expenses.follow import SyncFollower
from destination_codat_expenses.models import WebhookEvent
from destination_codat_expenses.redaction import is_postgres, scrub, webhook_secret_forms
from destination_codat_expenses.store.status_store import StatusStore
from destination_codat_expenses.webhooks import WEBHOOK_PATH
from destination_codat_expenses.webhooks.confirmer import Confirmer
from destination_codat_expenses.webhooks.health import Limits, StoreProbe, default_probe, health
from destination_codat_expenses.webhooks.metrics import CONTENT_TYPE, ReceiverMetrics
from destination_codat_expenses.webhooks.payloads import interpret
from destination_codat_expenses.webhooks.signing import signed_headers, signing_keys, verify
from destination_codat_expenses.webhooks.spool import HeldEvent, Spool
from destination_codat_expenses.webhooks.writer import QUEUED, EventWriter

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 256 * 1024
WRITER_WAIT_S = 0.6  # a request waits this long for the writer, then spools its event itself


# -- the receiver ------------------------------------------------------------------------------
class Receiver:
    def __init__(
        self,
        keys: tuple[bytes, ...],
        writer: EventWriter,
        clock: Callable[[], float],
        secret_forms: tuple[str, ...],
        metrics: ReceiverMetrics,
    ) -> None:
        self.keys, self.writer, self.clock = keys, writer, clock
        self.secret_forms = secret_forms  # what a reason built from an error must not carry
        self.metrics = metrics

    async def receive(self, request: Request) -> JSONResponse:
        try:
            response = await self.handle(request)
        except Exception:  # a bug must not become a 500; Codat retries any non-2xx
            logger.exception("webhook: unexpected error")
            response = answer(400, "The request could not be processed.")
        if response.status_code >= 400:  # acknowledgements are counted by their outcome
            self.metrics.count("unrecorded" if response.status_code == 503 else "refused")
        return response

    async def handle(self, request: Request) -> JSONResponse:
        if declared_length(request) > MAX_BODY_BYTES:
            return refused(request, 413, f"The body is larger than {MAX_BODY_BYTES} bytes.")
        try:
            signed_headers(request.headers)  # missing or malformed: refuse before reading
            body = await read_capped(request, MAX_BODY_BYTES)
            if body is None:
                return refused(request, 413, f"The body is larger than {MAX_BODY_BYTES} bytes.")
            signed = verify(self.keys, request.headers, body, self.clock())
        except WebhookVerificationError as error:
            return refused(request, 401, str(error))
        return await self.store(signed.webhook_id, body)

    async def store(self, webhook_id: str, body: bytes) -> JSONResponse:
        event = interpret(body)
        held = HeldEvent(webhook_id, body, datetime.now(UTC))
        try:
            future = self.writer.submit(held, event)
        except WriterFull:
            return await self.hold(held, event, "the write queue is full")
        waiting = asyncio.wrap_future(future)
        started = time.monotonic()
        done, _ = await asyncio.wait({waiting}, timeout=WRITER_WAIT_S)
        self.metrics.store_wait.observe(time.monotonic() - started)
        if not done:  # the writer may still commit it too: the store deduplicates
            waiting.add_done_callback(lambda late: late.cancelled() or late.exception())
            return await self.hold(held, event, "the writer is behind")
        if waiting.exception() is not None:
            failure = scrub(str(waiting.exception()), self.secret_forms)
            return await self.hold(held, event, f"the writer failed: {failure}")
        return self.acknowledged(held.webhook_id, event, waiting.result())

    async def hold(self, held: HeldEvent, event: WebhookEvent, why: str) -> JSONResponse:
        """Past the wait, the request puts its event in the spool itself: still a 2xx in time."""
        try:
            await run_in_threadpool(self.writer.spool.hold, [held])
        except OSError as error:
            refusal = scrub(str(error), self.secret_forms)
            return busy(held.webhook_id, f"{why}, and the spool refused the event: {refusal}")
        logger.warning("webhook %s held in the spool: %s", safe(held.webhook_id), why)
        return self.acknowledged(held.webhook_id, event, QUEUED)

    def acknowledged(self, webhook_id: str, event: WebhookEvent, outcome: str) -> JSONResponse:
        self.metrics.count("held" if outcome == QUEUED else outcome)
        return acknowledged(webhook_id, event, outcome)


def acknowledged(webhook_id: str, event: WebhookEvent, outcome: str) -> JSONResponse:
    logger.info(
        "webhook %s %s: %s (sync %s)", safe(webhook_id), event.event_type, outcome, event.sync_id
    )
    status = 202 if outcome == QUEUED else 200
    return JSONResponse({"ok": True, "outcome": outcome}, status_code=status)


def create_receiver(
    store_path: str,
    secret: str,
    clock: Callable[[], float] = time.time,
    spool_dir: str | None = None,
    codat: CodatClient | None = None,
    limits: Limits = Limits(),  # noqa: B008 (frozen)
    store_probe: StoreProbe | None = None,
) -> Starlette:
    """The receiver app: POST /webhooks/codat, GET /healthz and GET /metrics. `clock` gives Unix
    seconds; events the store cannot take in time are held in `spool_dir` (default: next to a
    DuckDB store; `codat-expenses-webhook-spool` in the working folder for a PostgreSQL one);
    /healthz fails past `limits` of held events. With `codat`, the syncs its webhooks mark to
    confirm are read from Codat in the background (receipts of inline content too; a
    receipt path is the destination's to read)."""
    keys = signing_keys(secret)
    store = StatusStore(store_path)
    store.prepare()
    confirmer = None
    if codat is not None:
        confirmer = Confirmer(SyncFollower(codat, store, upload_receipts=True, workers=1), store)
    spool = Spool(spool_dir or default_spool(store_path))
    writer = EventWriter(
        store,
        spool,
        on_applied=confirmer.request if confirmer else lambda company_id, sync_id: None,
    )
    metrics = ReceiverMetrics(spool)
    receiver = Receiver(keys, writer, clock, webhook_secret_forms(secret), metrics)
    probe = store_probe or default_probe(store_path)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if confirmer:
            confirmer.start()  # and queues what is still to confirm from before
        writer.start()  # applies what an earlier run left in the spool, even with no traffic
        yield
        writer.stop()
        if confirmer:
            confirmer.stop()

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH, receiver.receive, methods=["POST"]),
            Route("/healthz", healthz(probe, spool, limits), methods=["GET"]),
            Route("/metrics", metrics_page(metrics), methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def healthz(probe: StoreProbe, spool: Spool, limits: Limits):
    async def page(request: Request) -> JSONResponse:
        healthy, body = await run_in_threadpool(health, probe, spool, limits)
        if not healthy:
            logger.warning("healthz: unhealthy: %s", "; ".join(body["reasons"]))
        return JSONResponse(body, status_code=200 if healthy else 503)

    return page


def metrics_page(metrics: ReceiverMetrics):
    async def page(request: Request) -> Response:
        body = await run_in_threadpool(metrics.render)
        return Response(body, media_type=CONTENT_TYPE)

    return page


def declared_length(request: Request) -> int:
    try:
        return int(request.headers.get("content-length", "0"))
    except ValueError:
        return 0  # the streaming cap still holds


async def read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it passes `limit` (a chunked body has no Content-Length)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def refused(request: Request, status: int, reason: str) -> JSONResponse:
    client = request.client.host if request.client else "?"
    webhook_id = request.headers.get("webhook-id") or request.headers.get("svix-id") or ""
    logger.warning(
        "webhook refused with %d: %s (webhook-id %s, from %s)",
        status,
        reason,
        safe(webhook_id),
        client,
    )
    return answer(status, reason)


def busy(webhook_id: str, why: str) -> JSONResponse:
    logger.warning("webhook %s answered 503: %s", safe(webhook_id), why)
    response = answer(503, "The event could not be recorded now; retry shortly.")
    response.headers["Retry-After"] = "5"
    return response


def answer(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"ok": False, "reason": reason}, status_code=status)


def safe(text: str) -> str:
    """An id fit for one log line: printable, bounded."""
    return ascii(text[:80])


def default_spool(store: str) -> str:
    """Next to a DuckDB file; for a PostgreSQL store (a URL, never a folder name: it carries a
    password) a folder in the working directory."""
    return "codat-expenses-webhook-spool" if is_postgres(store) else f"{store}.webhook-spool"
