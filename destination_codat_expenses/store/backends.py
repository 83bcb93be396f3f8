"""Which backend a store location names, and how to show it without its secret.

`status_store` (and `--store`) is either a DuckDB file path (the embedded default) or a
PostgreSQL URL, `postgresql://user:password@host:port/db`. The URL's password is a secret: every
message, log line, stored setting and page shows the location through `shown`, which masks it,
and any text that may carry it (a driver's error) goes through `scrubbed`.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

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
