"""Destination edges that need no server: refused sync modes, failure types."""

from __future__ import annotations

import io
import json
import sys

import pytest
from airbyte_cdk.models import ConfiguredAirbyteCatalogSerializer, FailureType, Status
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from destination_codat_expenses import run as entry_point
from destination_codat_expenses.config import Config
from destination_codat_expenses.destination import (
    DestinationCodatExpenses,
    emit,
    failure_type,
    writable_streams,
)
from destination_codat_expenses.errors import (
    ConfigError,
    FatalAPIError,
    RetriableAPIError,
    TooManyRejectsError,
)
from destination_codat_expenses.store.db import release

COMPANY = "11111111-1111-4111-8111-111111111111"


def catalog_of(mode: str) -> dict:
    return {
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


CATALOG = catalog_of("append")


def catalog(mode: str):
    return ConfiguredAirbyteCatalogSerializer.load(catalog_of(mode))


def test_overwrite_is_refused_as_config_error():
    with pytest.raises(AirbyteTracedException) as raised:
        writable_streams(catalog("overwrite"))
    assert raised.value.failure_type == FailureType.config_error
    assert "cannot be deleted" in raised.value.message
    # says what to do, for Airbyte and for PyAirbyte (whose default is overwrite without a key)
    assert "append or append_dedup" in raised.value.message
    assert 'write_strategy="append"' in raised.value.message


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


# -- settings parsed once; STATE echoed as plain values -------------------------------------------
def command_files(tmp_path, **config) -> list[str]:
    settings = {
        "api_key": "k",
        "company_id": COMPANY,
        "base_url": "http://127.0.0.1:9",  # nothing here is asked: no record, no open sync
        "status_store_path": str(tmp_path / "status.duckdb"),
        **config,
    }
    (tmp_path / "config.json").write_text(json.dumps(settings))
    (tmp_path / "catalog.json").write_text(json.dumps(CATALOG))
    return ["--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")]


@pytest.fixture
def parses(monkeypatch) -> list[dict]:
    """Every Config.from_mapping call, counted."""
    seen: list[dict] = []
    original = Config.from_mapping.__func__

    def counting(cls, raw):
        seen.append(raw)
        return original(cls, raw)

    monkeypatch.setattr(Config, "from_mapping", classmethod(counting))
    return seen


def test_write_parses_its_settings_once_and_echoes_a_state_as_it_came(
    tmp_path, monkeypatch, parses
):
    state = {"type": "STREAM", "stream": {"stream_descriptor": {"name": "s"}}, "id": 7}
    monkeypatch.setattr(
        sys, "stdin", io.BytesIO(json.dumps({"type": "STATE", "state": state}).encode())
    )
    destination = DestinationCodatExpenses()
    args = destination.parse_args(["write", *command_files(tmp_path)])
    (echoed,) = list(destination.run_cmd(args))
    assert echoed == {"type": "STATE", "state": {**state, "destinationStats": {"recordCount": 0}}}
    assert len(parses) == 1
    release(str(tmp_path / "status.duckdb"))


def test_check_refuses_a_bad_setting_by_name_after_one_parse(tmp_path, parses):
    destination = DestinationCodatExpenses()
    args = destination.parse_args(["check", *command_files(tmp_path, batch_size=51)][:3])
    (message,) = list(destination.run_cmd(args))
    assert message.connectionStatus.status == Status.FAILED
    assert message.connectionStatus.message.startswith("Setting 'batch_size':")
    assert len(parses) == 1


def test_write_refuses_a_bad_setting_with_a_config_error_trace(tmp_path, parses):
    destination = DestinationCodatExpenses()
    args = destination.parse_args(["write", *command_files(tmp_path, push_flow="batch")])
    with pytest.raises(AirbyteTracedException) as raised:
        list(destination.run_cmd(args))
    assert raised.value.failure_type == FailureType.config_error
    assert raised.value.message.startswith("Setting 'push_flow':") and len(parses) == 1


class Flushes(io.StringIO):
    def __init__(self, events: list) -> None:
        super().__init__()
        self.events = events

    def flush(self) -> None:
        self.events.append("output flushed")


def test_a_finished_command_ends_the_process_after_its_exit_handlers_and_output(monkeypatch):
    """Tearing the interpreter down after a write takes ~0.3 s for nothing: the process ends
    at once, but only after the exit handlers (the store's close) and with its output out."""
    events: list = []
    monkeypatch.setattr(sys, "argv", ["destination-codat-expenses", "spec"])
    monkeypatch.setattr(
        entry_point.DestinationCodatExpenses, "run", lambda self, args: events.append(args)
    )
    monkeypatch.setattr(entry_point.atexit, "_run_exitfuncs", lambda: events.append("handlers"))
    monkeypatch.setattr(sys, "stdout", Flushes(events))
    monkeypatch.setattr(sys, "stderr", Flushes(events))
    monkeypatch.setattr(entry_point.os, "_exit", lambda code: events.append(("ended", code)))
    entry_point.run()
    assert events == [["spec"], "handlers", "output flushed", "output flushed", ("ended", 0)]
