"""Standard Webhooks (Svix) signatures: sign and verify side by side, nothing else.

Codat signs with Svix, the Standard Webhooks scheme: HMAC-SHA256 over
`{webhook-id}.{webhook-timestamp}.{raw body}`, base64, sent as `v1,<base64>`; several signatures
may share one header while a key rotates. The verifier is written here rather than taken from
`standardwebhooks` because the library reads the wall clock (here the caller passes `now`, so a
test or a replay decides the time), knows only the `webhook-*` header names (Codat may send
`svix-*`), and raises ValueError / binascii.Error on malformed signatures. Every expected
signature is compared with every offered one, each in constant time, with no early exit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from destination_codat_expenses.errors import WebhookVerificationError
from destination_codat_expenses.models import MAX_ID_CHARS

TOLERANCE_S = 5 * 60
TIMESTAMP = re.compile(r"\d{1,12}")


@dataclass(frozen=True)
class SignedHeaders:
    webhook_id: str
    timestamp: int
    signatures: str


def signing_keys(secret: str, named: str = "The signing secret") -> tuple[bytes, ...]:
    """HMAC keys from `whsec_<base64>` secrets; several, space-separated, while one rotates.
    A bad secret is refused with `named` (where it came from), never with its value."""
    keys = []
    for part in secret.split():
        try:
            key = base64.b64decode(part.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) < 16:
            raise ValueError(
                f"{named} must hold the endpoint's signing secret (whsec_ and base64) "
                "from the Codat Portal; the value given is not one."
            )
        keys.append(key)
    if not keys:
        raise ValueError(f"{named} is empty: set it to the endpoint's signing secret.")
    return tuple(keys)


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> bytes:
    """The raw `v1` signature of one delivery (base64 of it goes in the header)."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    return hmac.new(key, content, hashlib.sha256).digest()


def verify(
    keys: tuple[bytes, ...], headers: Mapping[str, str], body: bytes, now: float
) -> SignedHeaders:
    """The request's signed headers if one signature holds at `now` (Unix seconds, from the
    caller's clock); else WebhookVerificationError."""
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
