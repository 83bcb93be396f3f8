"""The Airbyte protocol edge: spec, check and write. The only module that imports airbyte_cdk
and the only place errors become Airbyte traces. stdin is read by protocol.py into plain values
(Record, State, Unreadable); each STATE goes out as protocol.echo's mapping, written as it is.
check and write parse their settings once."""

from __future__ import annotations

import argparse
import io
import logging
import signal
import sys
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from airbyte_cdk.destinations import Destination
from airbyte_cdk.exception_handler import init_uncaught_exception_handler
from airbyte_cdk.models import (
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteMessageSerializer,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteCatalogSerializer,
    DestinationSyncMode,
    FailureType,
    Status,
    Type,
)
from airbyte_cdk.sources.utils.schema_helpers import check_config_against_spec_or_exit
from airbyte_cdk.utils.airbyte_secrets_utils import get_secrets, update_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from destination_codat_expenses import protocol, stopping
from destination_codat_expenses.config import Config
from destination_codat_expenses.crashpoints import crash_point
from destination_codat_expenses.errors import (
    CodatExpensesError,
    ConfigError,
    FatalAPIError,
    QuotaExhausted,
    RecordError,
    RetriableAPIError,
    TooManyRejectsError,
)
from destination_codat_expenses.redaction import api_key_forms
from destination_codat_expenses.stopping import RunStopped

# `spec` needs none of the HTTP client, the store (DuckDB) or the pipeline: check and write
# import them when they run, so `spec` starts in the time the CDK itself takes
# (unit_tests/test_startup.py keeps it so)
if TYPE_CHECKING:
    from destination_codat_expenses.pipeline import Pipeline

logger = logging.getLogger("airbyte")
# check answers someone waiting on a setup form: a few quick tries, not a whole run's patience
# (the default policy backs off for up to a minute before calling a closed port unreachable)
CHECK_ATTEMPTS = dict(attempts=3, give_up_after_s=20.0, backoff_max_s=2.0, max_retry_after_s=5.0)
Output = AirbyteMessage | dict  # a dict: an echoed STATE, written exactly as protocol.echo made it


class DestinationCodatExpenses(Destination):
    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        try:
            settings = Config.from_mapping(dict(config))
        except ConfigError as error:
            return failed(str(error))
        return self.check_settings(settings)

    def check_settings(self, settings: Config) -> AirbyteConnectionStatus:
        from destination_codat_expenses.check import connection_problem
        from destination_codat_expenses.codat.client import AttemptPolicy, CodatClient
        from destination_codat_expenses.codat.http import http_client

        hide_key(settings.api_key)
        try:
            with http_client(settings.base_url, settings.concurrency) as http:
                client = CodatClient(http, settings.api_key, AttemptPolicy(**CHECK_ATTEMPTS))
                problem = connection_problem(settings, client)
        except Exception as error:  # check never raises: the user gets a sentence instead
            problem = f"The check could not finish: {type(error).__name__}."
        return failed(problem) if problem else AirbyteConnectionStatus(status=Status.SUCCEEDED)

    def write(
        self,
        config: Mapping[str, Any],
        configured_catalog: ConfiguredAirbyteCatalog,
        input_messages: Iterable[protocol.Message],
    ) -> Iterable[Output]:
        """`input_messages` are protocol.py's values, as `_parse_input_stream` reads them."""
        try:
            settings = Config.from_mapping(dict(config))
        except ConfigError as error:
            raise traced(error) from None
        yield from self.write_settings(settings, configured_catalog, input_messages)

    def write_settings(
        self,
        settings: Config,
        catalog: ConfiguredAirbyteCatalog,
        input_messages: Iterable[protocol.Message],
    ) -> Iterator[dict]:
        from destination_codat_expenses.codat.client import AttemptPolicy, CodatClient
        from destination_codat_expenses.codat.http import http_client
        from destination_codat_expenses.codat.quota import FOLLOW_REQUESTS, RequestQuota
        from destination_codat_expenses.pipeline import Pipeline
        from destination_codat_expenses.store.status_store import StatusStore

        hide_key(settings.api_key)
        streams = writable_streams(catalog)
        # quota is kept to follow each sync opened only when the run follows them
        quota = RequestQuota(
            reserve_per_sync=FOLLOW_REQUESTS if settings.wait_for_syncs else 0,
            max_wait_s=AttemptPolicy.max_retry_after_s,
        )
        with http_client(settings.base_url, settings.concurrency) as http:
            pipeline = Pipeline(
                settings,
                CodatClient(http, settings.api_key, quota=quota),
                StatusStore(settings.status_store_path),
            )
            yield from run_pipeline(pipeline, streams, input_messages)

    def run_cmd(self, parsed_args: argparse.Namespace) -> Iterable[Output]:
        """spec is the CDK's. check and write read their settings once, judged before the CDK's
        schema check, whose messages do not say which setting is wrong ("51 is greater than
        the maximum of 50"), and then run with them."""
        command = parsed_args.command
        if command not in ("check", "write"):
            yield from super().run_cmd(parsed_args)
            return
        settings, refusal = self.settings_of(parsed_args.config)
        if refusal is not None and command == "write":
            raise refusal
        if refusal is not None:
            yield refusal.as_connection_status_message()
        elif command == "check":
            yield AirbyteMessage(
                type=Type.CONNECTION_STATUS, connectionStatus=self.check_settings(settings)
            )
        else:
            catalog = ConfiguredAirbyteCatalogSerializer.load(
                orjson.loads(Path(parsed_args.catalog).read_bytes())
            )
            yield from self.write_settings(settings, catalog, self._parse_input_stream(sys.stdin))

    def settings_of(self, path: str) -> tuple[Config | None, AirbyteTracedException | None]:
        """The settings, or why they cannot be used. As in the CDK's own run_cmd, the config's
        secrets reach the log filter first: a schema error may quote config values."""
        config = self.read_config(path)
        spec = self.spec(logger)
        update_secrets(get_secrets(spec.connectionSpecification, config))
        try:
            settings = Config.from_mapping(dict(config))
            check_config_against_spec_or_exit(config, spec)
        except ConfigError as error:
            return None, traced(error)
        except AirbyteTracedException as error:
            return None, error
        return settings, None

    # -- stdin and stdout, kept exact -----------------------------------------------------------
    def _parse_input_stream(self, input_stream: io.TextIOWrapper) -> Iterable[protocol.Message]:
        # bytes, not the CDK's strict UTF-8 text: a line that is not UTF-8 is one reject
        lines = protocol.read_lines(getattr(input_stream, "buffer", input_stream))
        return protocol.parse_lines(lines, protocol.InputStats())

    def run(self, args: list[str]) -> None:
        init_uncaught_exception_handler(logger)
        # a cancelled run records `failed`, saying it was stopped (see stopping.py)
        signal.signal(signal.SIGTERM, stopping.request_stop)
        signal.signal(signal.SIGINT, stopping.request_stop)
        messages = self.run_cmd(self.parse_args(args))
        try:
            for message in messages:
                if isinstance(message, dict):
                    emit(protocol.to_json(message))
                else:
                    emit(orjson.dumps(AirbyteMessageSerializer.dump(message)).decode())
        except RunStopped as stop:
            messages.throw(stop)  # stopped while printing: the run, paused, records why it ended
            raise


def failed(problem: str) -> AirbyteConnectionStatus:
    return AirbyteConnectionStatus(status=Status.FAILED, message=problem)


def emit(line: str) -> None:
    """One message, one write: print() writes the text and its newline separately, and under
    PYTHONUNBUFFERED a log line from another thread, or a SIGTERM, can land in between."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def writable_streams(catalog: ConfiguredAirbyteCatalog) -> set[str]:
    """Stream names to write; overwrite is refused, since pushed expenses cannot be deleted."""
    for configured in catalog.streams:
        if configured.destination_sync_mode == DestinationSyncMode.overwrite:
            raise traced(
                ConfigError(
                    "destination_sync_mode",
                    f"stream '{configured.stream.name}' asks for overwrite, but expenses "
                    "already in the accounting software cannot be deleted. Set the stream's "
                    "sync mode to append or append_dedup (in Airbyte: Incremental | Append, or "
                    "Full Refresh | Append). PyAirbyte picks overwrite for a stream without a "
                    "primary key: call destination.write(source, "
                    'write_strategy="append").',
                )
            )
    return {configured.stream.name for configured in catalog.streams}


def run_pipeline(
    pipeline: Pipeline, streams: set[str], messages: Iterable[protocol.Message]
) -> Iterator[dict]:
    """Records go to the pipeline; each STATE is echoed, in order, once every record before it
    is in the ledger, while reading goes on. However the run ends (an error, an interrupt, the
    reader stopping early) its outcome is recorded."""
    since_state: dict[str, int] = defaultdict(int)  # records per stream since its last STATE
    waiting: deque[tuple[int, dict]] = deque()  # (ticket, STATE to echo), oldest first
    try:
        pipeline.start()
        for message in read_on(messages, pipeline.drain):
            stopping.check()
            if isinstance(message, protocol.State):
                echo = protocol.echo(message, records_covered(message, since_state))
                waiting.append((pipeline.mark(), echo))
            elif not isinstance(message, protocol.Quiet):  # quiet: only the STATEs may go
                take_input(pipeline, streams, message, since_state)
            yield from covered_states(pipeline, waiting)
        pipeline.drain()  # every STATE's pushes made: each can be echoed now
        yield from covered_states(pipeline, waiting)
        pipeline.finish()
    except InputBrokeOff as broken:  # what came before it still counts: its STATEs go out
        yield from covered_states(pipeline, waiting)
        close_quietly(pipeline, unexpected(broken.cause))
        raise broken.cause from None
    except QuotaExhausted as error:  # no more pushes; what was pushed is followed first
        follow_quietly(pipeline)
        close_quietly(pipeline, str(error))
        raise traced(error) from None
    except CodatExpensesError as error:
        close_quietly(pipeline, str(error))
        raise traced(error) from None
    except BaseException as error:
        close_quietly(pipeline, unexpected(error))
        if isinstance(error, RunStopped):  # a cancel: a sentence, not a traceback
            raise AirbyteTracedException(
                message=unexpected(error),
                internal_message=str(error),
                failure_type=FailureType.transient_error,
            ) from None
        raise


class InputBrokeOff(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def read_on(messages: Iterable[protocol.Message], settle: Callable[[], None]) -> Iterator:
    """The messages; if reading them fails (not a stop request), `settle` (the pushes of the
    records read so far are made) and then InputBrokeOff, carrying the reader's error."""
    source = iter(messages)
    while True:
        try:
            message = next(source)
        except StopIteration:
            return
        except RunStopped:
            raise
        except Exception as error:  # noqa: BLE001 - the reader's own error, raised again
            settle()
            raise InputBrokeOff(error) from error
        yield message


def covered_states(pipeline: Pipeline, waiting: deque[tuple[int, dict]]) -> Iterator[dict]:
    """The waiting STATEs whose records are all in the ledger, in the order they came."""
    while waiting and pipeline.covered(waiting[0][0]):
        _, echo = waiting.popleft()
        pipeline.checkpointed()
        crash_point("after_commit")
        yield echo


def take_input(
    pipeline: Pipeline,
    streams: set[str],
    message: protocol.Record | protocol.Unreadable,
    since_state: dict[str, int],
) -> None:
    """A record of a configured stream is accepted (or rejected with its reason); a line that
    could not be read and a record of a stream not in the catalog are rejects too, never
    dropped without a word, so max_rejected_share sees them."""
    if isinstance(message, protocol.Unreadable):
        key = f"line {message.line}"
        pipeline.refuse(message.stream, RecordError(key, "(line)", message.reason))
        if message.stream:
            since_state[message.stream] += 1
        return
    since_state[message.stream] += 1
    if message.stream in streams:
        pipeline.accept(message.stream, message.data)
        return
    reason = f"names '{message.stream[:100]}', a stream not in the configured catalog"
    pipeline.refuse(message.stream, RecordError(f"line {message.line}", "(stream)", reason))


def records_covered(state: protocol.State, since_state: dict[str, int]) -> int:
    """The records a STATE covers: its stream's since that stream's previous STATE; every
    stream's for a GLOBAL (or LEGACY) state."""
    if state.scope == "*":
        count = sum(since_state.values())
        since_state.clear()
        return count
    return since_state.pop(state.scope, 0)


def traced(error: CodatExpensesError) -> AirbyteTracedException:
    return AirbyteTracedException(
        message=str(error), internal_message=type(error).__name__, failure_type=failure_type(error)
    )


def failure_type(error: CodatExpensesError) -> FailureType:
    """config_error: the user must act; transient_error: retries ran out; else system_error."""
    refused_key = isinstance(error, FatalAPIError) and error.status in (401, 403)
    if isinstance(error, ConfigError | TooManyRejectsError) or refused_key:
        return FailureType.config_error
    if isinstance(error, RetriableAPIError):
        return FailureType.transient_error
    return FailureType.system_error


def follow_quietly(pipeline: Pipeline) -> None:
    """Follow the syncs the run opened before it ends on Codat's quota; what cannot be
    followed now (the quota kept for it ran out too) is followed by the next run."""
    try:
        pipeline.follow_opened()
    except CodatExpensesError as error:
        logger.warning("the syncs this run opened could not all be followed: %s", error)


def close_quietly(pipeline: Pipeline, error: str) -> None:
    """Record the run as failed with why; a store that cannot take that is logged, and the
    error that ended the run is the one raised."""
    try:
        pipeline.close("failed", error)
    except Exception:
        logger.warning("the run could not be marked failed in the status store")


def unexpected(error: BaseException) -> str:
    """What the store says about an error that is not ours: its kind only, since its message
    may quote anything (the traceback in the log is filtered for secrets; the store is not)."""
    if isinstance(error, KeyboardInterrupt | RunStopped):
        return "The run was stopped before it finished (interrupted or terminated)."
    if isinstance(error, GeneratorExit):
        return "The run was stopped before it finished: its output was no longer read."
    return (
        f"The run stopped on an unexpected error ({type(error).__name__}); "
        "the connector's log has the details."
    )


def hide_key(api_key: str) -> None:
    """Teach the CDK's log filter every form the key travels in (the client's errors are
    scrubbed of the same forms at their source; `Basic <base64>` contains one of them)."""
    update_secrets(list(api_key_forms(api_key)))
