"""Destination edges that need no server: refused sync modes, failure types."""

from __future__ import annotations

import sys

import pytest
from airbyte_cdk.models import ConfiguredAirbyteCatalogSerializer, FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from destination_codat_expenses.destination import emit, failure_type, writable_streams
from destination_codat_expenses.errors import (
    ConfigError,
    FatalAPIError,
    RetriableAPIError,
    TooManyRejectsError,
)


def catalog(mode: str):
    return ConfiguredAirbyteCatalogSerializer.load(
        {
            "streams": [
                {
                    "stream": {
                        "name": "s",
                        "json_schema": {},
                        "supported_sync_modes": ["full_refresh"],
                    },
                    "sync_mode": "full_refresh",
                    "destination_sync_mode": mode,
                }
            ]
        }
    )


def test_overwrite_is_refused_as_config_error():
    with pytest.raises(AirbyteTracedException) as raised:
        writable_streams(catalog("overwrite"))
    assert raised.value.failure_type == FailureType.config_error
    assert "cannot be deleted" in raised.value.message


def test_append_modes_are_written():
    assert writable_streams(catalog("append")) == {"s"}
    assert writable_streams(catalog("append_dedup")) == {"s"}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConfigError("x", "bad"), FailureType.config_error),
        (FatalAPIError("refused", status=401), FailureType.config_error),
        (FatalAPIError("gone", status=404), FailureType.system_error),
        (RetriableAPIError("down", status=503), FailureType.transient_error),
        (TooManyRejectsError("too many"), FailureType.config_error),
    ],
)
def test_errors_map_to_failure_types(error, expected):
    assert failure_type(error) == expected


def test_each_message_reaches_stdout_in_one_write(monkeypatch):
    """A log line from another thread, or a SIGTERM, cannot land between a message and its
    newline (print() writes them separately, and PYTHONUNBUFFERED sends each write at once)."""
    writes = []

    class Stdout:
        def write(self, text):
            writes.append(text)

        def flush(self):
            writes.append("<flush>")

    monkeypatch.setattr(sys, "stdout", Stdout())
    emit('{"type": "STATE"}')
    assert writes == ['{"type": "STATE"}\n', "<flush>"]
