"""The webhook receiver: `codat-expenses webhooks serve`, so the store learns how syncs end
without polling.

Why it is built this way:
- Codat signs with Svix (the Standard Webhooks scheme): HMAC-SHA256 over
  `{webhook-id}.{webhook-timestamp}.{raw body}`, several `v1,<base64>` signatures allowed in one
  header (key rotation). The verifier is here rather than in `standardwebhooks` because the
  library reads the wall clock (tests need a fixed one), knows only the `webhook-*` header names
  (Codat may send `svix-*`), and raises ValueError / binascii.Error on malformed signatures.
- Whatever is wrong with a request is the sender's problem, never ours: unverifiable, malformed,
  stale or future requests get 401 with a reason; bodies over 256 KiB get 413 before they are
  read whole. Nothing a client sends produces a 500.
- An event is acknowledged (2xx) only once it is durable: committed to the store (200), or, when
  another process holds the DuckDB file past the answer budget, written and fsynced to a spool
  next to it (202 "queued") and applied as soon as the file is free (webhook_spool.py). One
  writer thread commits whatever has queued in one transaction (group commit, webhook_writer.py);
  a request that has waited WRITER_WAIT_S for it spools its event itself, so the answer comes
  within a second whatever the writer is doing. 503 (Codat retries; the retry is deduplicated)
  is left for when neither the store nor the spool took the event.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from destination_codat_expenses.errors import WebhookVerificationError
from destination_codat_expenses.models import MAX_ID_CHARS
from destination_codat_expenses.redaction import scrub, webhook_secret_forms
from destination_codat_expenses.store.status_store import StatusStore
from destination_codat_expenses.webhook_payloads import WebhookEvent, interpret
from destination_codat_expenses.webhook_spool import HeldEvent, Spool
from destination_codat_expenses.webhook_writer import QUEUED, EventWriter, WriterFull

logger = logging.getLogger(__name__)
SECRET_ENV = "CODAT_WEBHOOK_SECRET"  # noqa: S105 (the variable's name, not a secret)
WEBHOOK_PATH = "/webhooks/codat"
DEFAULT_PORT = 8766
MAX_BODY_BYTES = 256 * 1024
TOLERANCE_S = 5 * 60
WRITER_WAIT_S = 0.6  # a request waits this long for the writer, then spools its event itself
TIMESTAMP = re.compile(r"\d{1,12}")


# -- verification ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SignedHeaders:
    webhook_id: str
    timestamp: int
    signatures: str


def signing_keys(secret: str) -> tuple[bytes, ...]:
    """HMAC keys from `whsec_<base64>` secrets; several, space-separated, while one rotates."""
    keys = []
    for part in secret.split():
        try:
            key = base64.b64decode(part.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) < 16:
            raise ValueError(
                f"${SECRET_ENV} must hold the endpoint's signing secret (whsec_ and base64) "
                "from the Codat Portal; the value given is not one."
            )
        keys.append(key)
    if not keys:
        raise ValueError(f"${SECRET_ENV} is empty: set it to the endpoint's signing secret.")
    return tuple(keys)


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> bytes:
    content = f"{webhook_id}.{timestamp}.".encode() + body
    return hmac.new(key, content, hashlib.sha256).digest()


def verify(
    keys: tuple[bytes, ...], headers: Mapping[str, str], body: bytes, now: float
) -> SignedHeaders:
    """The request's signed headers if one signature holds; else WebhookVerificationError."""
    signed = signed_headers(headers)
    if now - signed.timestamp > TOLERANCE_S:
        raise WebhookVerificationError("The webhook timestamp is more than 5 minutes old.")
    if signed.timestamp - now > TOLERANCE_S:
        raise WebhookVerificationError("The webhook timestamp is more than 5 minutes ahead.")
    offered = offered_signatures(signed.signatures)
    expected = [sign(key, signed.webhook_id, signed.timestamp, body) for key in keys]
    # every pair is compared (no early exit), each in constant time
    matches = [hmac.compare_digest(e, o) for e in expected for o in offered]
    if not any(matches):
        raise WebhookVerificationError("No signature matches the body and the signing secret.")
    return signed


def signed_headers(headers: Mapping[str, str]) -> SignedHeaders:
    """`webhook-*` headers, or Svix's `svix-*` names when the first set is incomplete."""
    lowered = {name.lower(): value for name, value in headers.items()}
    for prefix in ("webhook", "svix"):
        values = [lowered.get(f"{prefix}-{part}") for part in ("id", "timestamp", "signature")]
        if all(values):
            return checked_headers(*values)
    raise WebhookVerificationError(
        "The webhook-id, webhook-timestamp and webhook-signature headers (or svix-*) are required."
    )


def checked_headers(webhook_id: str, timestamp: str, signatures: str) -> SignedHeaders:
    if len(webhook_id) > MAX_ID_CHARS or not webhook_id.isprintable():
        raise WebhookVerificationError("The webhook-id header is malformed.")
    if not TIMESTAMP.fullmatch(timestamp.strip()):
        raise WebhookVerificationError("The webhook-timestamp header is not Unix seconds.")
    return SignedHeaders(webhook_id, int(timestamp), signatures)


def offered_signatures(header: str) -> list[bytes]:
    """The `v1,<base64>` entries; other versions and malformed entries are skipped."""
    offered = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            offered.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not offered:
        raise WebhookVerificationError("The webhook-signature header holds no v1 signature.")
    return offered


# -- the receiver ------------------------------------------------------------------------------
class Receiver:
    def __init__(
        self, keys: tuple[bytes, ...], writer: EventWriter, clock, secret_forms: tuple[str, ...]
    ) -> None:
        self.keys, self.writer, self.clock = keys, writer, clock
        self.secret_forms = secret_forms  # what a reason built from an error must not carry

    async def receive(self, request: Request) -> JSONResponse:
        try:
            return await self.handle(request)
        except Exception:  # a bug must not become a 500; Codat retries any non-2xx
            logger.exception("webhook: unexpected error")
            return answer(400, "The request could not be processed.")

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
        done, _ = await asyncio.wait({waiting}, timeout=WRITER_WAIT_S)
        if not done:  # the writer may still commit it too: the store deduplicates
            waiting.add_done_callback(lambda late: late.cancelled() or late.exception())
            return await self.hold(held, event, "the writer is behind")
        if waiting.exception() is not None:
            failure = scrub(str(waiting.exception()), self.secret_forms)
            return await self.hold(held, event, f"the writer failed: {failure}")
        return acknowledged(held.webhook_id, event, waiting.result())

    async def hold(self, held: HeldEvent, event: WebhookEvent, why: str) -> JSONResponse:
        """Past the wait, the request puts its event in the spool itself: still a 2xx in time."""
        try:
            await run_in_threadpool(self.writer.spool.hold, [held])
        except OSError as error:
            refusal = scrub(str(error), self.secret_forms)
            return busy(held.webhook_id, f"{why}, and the spool refused the event: {refusal}")
        logger.warning("webhook %s held in the spool: %s", safe(held.webhook_id), why)
        return acknowledged(held.webhook_id, event, QUEUED)


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
) -> Starlette:
    """The receiver app: POST /webhooks/codat and GET /healthz. `clock` gives Unix seconds;
    events the store cannot take in time are held in `spool_dir` (default: next to the store)."""
    keys = signing_keys(secret)
    store = StatusStore(store_path)
    store.prepare()
    writer = EventWriter(store, Spool(spool_dir or f"{store_path}.webhook-spool"))
    receiver = Receiver(keys, writer, clock, webhook_secret_forms(secret))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        writer.start()  # applies what an earlier run left in the spool, even with no traffic
        yield
        writer.stop()

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH, receiver.receive, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


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


# -- the command line --------------------------------------------------------------------------
def add_webhook_commands(commands) -> None:
    webhooks = commands.add_parser("webhooks", help="Receive Codat's sync webhooks.")
    webhook_commands = webhooks.add_subparsers(dest="webhooks_command", required=True)
    serve = webhook_commands.add_parser(
        "serve",
        help="Serve the webhook receiver.",
        description=f"Receive Codat's signed sync webhooks on POST {WEBHOOK_PATH} and record "
        f"them in the status store. The signing secret comes from ${SECRET_ENV} (never a flag).",
    )
    serve.add_argument("--store", required=True, help="The status store (DuckDB file).")
    serve.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="Port to listen on.")
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    secret = os.environ.get(SECRET_ENV, "")
    if not secret.strip():
        raise ValueError(f"Set ${SECRET_ENV} to the endpoint's signing secret (whsec_...).")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = create_receiver(args.store, secret)
    logger.info("webhook receiver on http://%s:%d%s", args.host, args.port, WEBHOOK_PATH)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", lifespan="on")
    return 0
