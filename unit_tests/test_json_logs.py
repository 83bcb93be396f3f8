"""$CODAT_EXPENSES_LOG_FORMAT=json: one JSON object per log line, the key and the webhook secret
scrubbed whoever logged them (cli/logs.py)."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from destination_codat_expenses.cli import logs
from destination_codat_expenses.cli.env import KEY_ENV, LOG_FORMAT_ENV, WEBHOOK_SECRET_ENV

KEY = "Canary-KEY-4242-do-not-show"
SECRET = "whsec_" + base64.b64encode(b"canary webhook secret 4242!").decode()
ENV = {KEY_ENV: KEY, WEBHOOK_SECRET_ENV: SECRET, LOG_FORMAT_ENV: "json"}


def formatted(record: logging.LogRecord) -> dict:
    line = logs.JsonLines(logs.secret_forms(ENV)).format(record)
    assert "\n" not in line  # one line, whatever the traceback
    return json.loads(line)


def record_of(message: str, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("httpx", logging.WARNING, __file__, 1, message, args, exc_info)


def test_a_line_is_one_object_with_time_level_logger_and_message():
    line = formatted(record_of("sync %s ended", "s-1"))
    assert line["level"] == "WARNING" and line["logger"] == "httpx"
    assert line["message"] == "sync s-1 ended"
    assert line["time"].endswith("+00:00")


def test_the_key_and_the_secret_are_scrubbed_from_message_and_traceback():
    basic = "Basic " + base64.b64encode(KEY.encode()).decode()
    try:
        raise RuntimeError(f"upstream said {basic} and {SECRET.removeprefix('whsec_')}")
    except RuntimeError as error:
        line = formatted(
            record_of(
                "key %s, secret %s",
                KEY.lower(),
                SECRET,
                exc_info=(type(error), error, error.__traceback__),
            )
        )
    text = json.dumps(line)
    assert "[redacted]" in line["message"] and "[redacted]" in line["exception"]
    for form in (KEY, base64.b64encode(KEY.encode()).decode(), SECRET.removeprefix("whsec_")):
        assert form.lower() not in text.lower()


def test_json_takes_over_the_root_logger_and_text_leaves_it(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    logs.configure_logging({LOG_FORMAT_ENV: "text"})
    assert not any(isinstance(h.formatter, logs.JsonLines) for h in root.handlers)
    logs.configure_logging(ENV)
    assert [type(h.formatter) for h in root.handlers] == [logs.JsonLines]
    assert logs.uvicorn_log_options(ENV) == {"log_config": None}
    assert logs.uvicorn_log_options({}) == {}


def test_an_unknown_format_is_refused_naming_the_variable():
    with pytest.raises(ValueError, match=r"\$CODAT_EXPENSES_LOG_FORMAT must be one of text, json"):
        logs.log_format({LOG_FORMAT_ENV: "xml"})
