"""Secrets out of every text built from what an upstream sent back.

An upstream may repeat what it was sent: an error body (Codat's, or a proxy's in front of it) can
echo the `Authorization` header, and any exception, store row or page built from that body would
carry the key. `scrub` replaces every form a secret travels in, whatever its letter case, so the
places that build such texts (the Codat client's errors, the webhook receiver's reasons) hand on
nothing a log, a trace, the store or the report could leak.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

REDACTED = "[redacted]"


def api_key_forms(api_key: str) -> tuple[str, ...]:
    """The key itself and its base64, which `Authorization: Basic <base64>` carries (the header
    line in any letter case is covered: the match ignores case)."""
    encoded = base64.b64encode(api_key.encode()).decode()
    return tuple(form for form in (api_key, encoded) if form)


def webhook_secret_forms(secret: str) -> tuple[str, ...]:
    """Each `whsec_<base64>` secret (several while one rotates), with and without its prefix."""
    parts = secret.split()
    return tuple(sorted({*parts, *(p.removeprefix("whsec_") for p in parts)} - {""}))


def scrub(text: str, forms: Iterable[str]) -> str:
    """`text` with every occurrence of every form replaced by [redacted], ignoring case."""
    pattern = secrets_pattern(tuple(forms))
    if pattern is None or not text:
        return text
    return pattern.sub(REDACTED, text)


@functools.lru_cache(maxsize=16)
def secrets_pattern(forms: tuple[str, ...]) -> re.Pattern[str] | None:
    # longest first, so a form that contains another is replaced whole
    wanted = sorted({f for f in forms if f}, key=len, reverse=True)
    if not wanted:
        return None
    return re.compile("|".join(re.escape(form) for form in wanted), re.IGNORECASE)


# -- a status store's location ---------------------------------------------------------------------
# `status_store` (and `--store`) is a DuckDB file path or a PostgreSQL URL,
# `postgresql://user:password@host:port/db`, whose password is a secret: every message, log line,
# stored setting and page shows the location through `shown`, which masks it, and any text that
# may carry it (a driver's error) goes through `scrubbed`.

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
MASK = "********"


def is_postgres(location: str) -> bool:
    return location.strip().lower().startswith(POSTGRES_SCHEMES)


def password_of(location: str) -> str | None:
    if not is_postgres(location):
        return None
    try:
        password = urlsplit(location.strip()).password
    except ValueError:
        return None
    return unquote(password) if password else None


def shown(location: str) -> str:
    """The location as it may be shown anywhere: a URL's password masked."""
    if not is_postgres(location):
        return location
    try:
        parts = urlsplit(location.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "postgresql://(a URL that could not be read)"
    user = parts.username or ""
    credentials = f"{user}:{MASK}@" if parts.password else (f"{user}@" if user else "")
    return urlunsplit((parts.scheme, f"{credentials}{host}{port}", parts.path, "", ""))


def scrubbed(text: str, location: str) -> str:
    """`text` with the location's password (raw or URL-encoded) and the URL itself masked."""
    password = password_of(location)
    text = text.replace(location.strip(), shown(location))
    if password:
        raw = urlsplit(location.strip()).password or ""
        for secret in {password, raw}:
            if secret:
                text = text.replace(secret, MASK)
    return text
