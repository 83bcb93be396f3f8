"""Logs as JSON lines for a log pipeline (Loki, Cloud Logging, ...), when
$CODAT_EXPENSES_LOG_FORMAT=json: one object per line on stderr, with `time` (UTC, ISO 8601),
`level`, `logger`, `message` and, for an error, `exception`.

The API key and the webhook signing secret the process was given ($CODAT_API_KEY,
$CODAT_WEBHOOK_SECRET) are scrubbed from every line, in every form the redaction module knows,
whatever logged them (uvicorn, httpx, a traceback). The default stays the plain text each command
already writes. The connector itself logs through the Airbyte protocol (JSON already), so only
the `codat-expenses` commands read this.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

from destination_codat_expenses.cli.env import KEY_ENV, LOG_FORMAT_ENV, WEBHOOK_SECRET_ENV
from destination_codat_expenses.redaction import api_key_forms, scrub, webhook_secret_forms

FORMATS = ("text", "json")


class JsonLines(logging.Formatter):
    def __init__(self, secret_forms: tuple[str, ...]) -> None:
        super().__init__()
        self.secret_forms = secret_forms

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage(), self.secret_forms),
        }
        if record.exc_info:
            line["exception"] = scrub(self.formatException(record.exc_info), self.secret_forms)
        return json.dumps(line, ensure_ascii=False)


def log_format(environ: Mapping[str, str]) -> str:
    chosen = environ.get(LOG_FORMAT_ENV, "text").strip().lower() or "text"
    if chosen not in FORMATS:
        raise ValueError(f"${LOG_FORMAT_ENV} must be one of {', '.join(FORMATS)}.")
    return chosen


def secret_forms(environ: Mapping[str, str]) -> tuple[str, ...]:
    key = environ.get(KEY_ENV, "").strip()
    secret = environ.get(WEBHOOK_SECRET_ENV, "").strip()
    return (*api_key_forms(key), *webhook_secret_forms(secret))


def configure_logging(environ: Mapping[str, str]) -> None:
    """With json, every log line of this process goes to stderr as one JSON object."""
    if log_format(environ) != "json":
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines(secret_forms(environ)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def uvicorn_log_options(environ: Mapping[str, str]) -> dict:
    """uvicorn's own handlers would print text: with json, its loggers go through the root's."""
    return {"log_config": None} if log_format(environ) == "json" else {}
