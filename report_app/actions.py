"""The report's one write: "Retry failed items", through the retry service.

The retry runs in a child process (`codat-expenses retry`, the same command the page offers when
it has no key), so the report process only ever opens the store read-only: it never holds the
destination's lock and never meets DuckDB's "one configuration per file per process" rule. The
child's output is streamed to the page as progress; the new sync is then read from the store.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from destination_codat_expenses.cli.env import (
    ERROR_PREFIX,
    EXIT_NOT_ALL_DONE,
    EXIT_OK,
    EXIT_STILL_RUNNING,
    KEY_ENV,
    STORE_ENV,
    URL_ENV,  # noqa: F401 (the retry child reads it; tests set it through this module)
)
from destination_codat_expenses.redaction import shown
from report_app.access import OPERATOR_TOKEN_ENV


@dataclass
class RetryOutcome:
    done: bool
    message: str
    still_running: bool = False
    succeeded: bool = True  # False: pushed, but a new sync failed or an item is not completed
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    output: list[str] = field(default_factory=list)  # what the retry command printed


def has_credentials() -> bool:
    return bool(os.environ.get(KEY_ENV, "").strip())


def retry_command(store_path: str, sync_id: str) -> str:
    """The operator command that does the same retry from a shell with the API key set."""
    shown_store = shlex.quote(shown(store_path))  # a PostgreSQL URL's password masked
    return f"codat-expenses retry --store {shown_store} --sync {shlex.quote(sync_id)}"


def retry_argv(sync_id: str) -> list[str]:
    """The store goes by $CODAT_EXPENSES_STORE (retry_env), never on the command line, where
    any process list would show a PostgreSQL URL's password."""
    return [sys.executable, "-m", "destination_codat_expenses.cli", "retry", "--sync", sync_id]


def retry_env(store_path: str) -> dict[str, str]:
    """The child needs the Codat key and the store, never the report's operator token."""
    env = {k: v for k, v in os.environ.items() if k != OPERATOR_TOKEN_ENV}
    env.update({STORE_ENV: store_path, "PYTHONUNBUFFERED": "1"})
    return env


def retry_failed_items(
    store_path: str, sync_id: str, progress: Callable[[str], object]
) -> RetryOutcome:
    """Plan, push the failed items again (same ids) and follow the new sync to its end."""
    started_at = datetime.now(UTC) - timedelta(seconds=5)  # clock skew between processes
    lines: list[str] = []
    with subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        retry_argv(sync_id),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=retry_env(store_path),
    ) as child:
        for line in child.stdout:
            lines.append(line.rstrip())
            progress(lines[-1])
        exit_code = child.wait()
    result = outcome(exit_code, lines)
    result.started_at, result.output = started_at, lines
    return result


def outcome(exit_code: int, lines: list[str]) -> RetryOutcome:
    """What the retry command's exit code and last words mean for the page."""
    if exit_code in (EXIT_OK, EXIT_STILL_RUNNING):
        return RetryOutcome(True, "done", still_running=exit_code == EXIT_STILL_RUNNING)
    said = [line.removeprefix(ERROR_PREFIX) for line in lines if line.startswith(ERROR_PREFIX)]
    if exit_code == EXIT_NOT_ALL_DONE and said:  # it ran; its new sync did not succeed
        return RetryOutcome(True, said[0][:1].upper() + said[0][1:], succeeded=False)
    if said:
        return RetryOutcome(False, said[-1])
    return RetryOutcome(False, f"The retry stopped unexpectedly (exit code {exit_code}).")
