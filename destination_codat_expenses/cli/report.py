"""`codat-expenses report`: the Sync Health report (Streamlit) on one status store.

It wraps `streamlit run report_app/app.py` with safe defaults: loopback only, no error details
sent to the browser, XSRF protection on, headless, no usage statistics. The store reaches the app
through $CODAT_EXPENSES_STORE, never through a page widget.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from destination_codat_expenses.cli.env import STORE_ENV
from destination_codat_expenses.cli.extras import require_extras
from destination_codat_expenses.cli.views import add_store_argument
from destination_codat_expenses.errors import CodatExpensesError
from destination_codat_expenses.redaction import is_postgres, shown
from destination_codat_expenses.store.db import migrate, release


def add_report_command(commands) -> None:
    report = commands.add_parser(
        "report",
        help="Open the Sync Health report on a status store (Streamlit, loopback by default).",
    )
    add_store_argument(report)
    report.add_argument(
        "--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1)."
    )
    report.add_argument("--port", type=int, default=8501, help="Port (default 8501).")
    report.set_defaults(handler=run_report)


def app_path() -> Path:
    spec = importlib.util.find_spec("report_app")
    if spec is None or not spec.submodule_search_locations:
        raise CodatExpensesError("The report_app package is not installed next to this tool.")
    return Path(next(iter(spec.submodule_search_locations))) / "app.py"


def streamlit_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        f"--server.address={host}",
        f"--server.port={port}",
        "--server.headless=true",
        "--server.enableXsrfProtection=true",
        "--server.fileWatcherType=none",
        "--client.showErrorDetails=false",
        "--client.toolbarMode=viewer",
        "--browser.gatherUsageStats=false",
    ]


def run_report(args: argparse.Namespace) -> int:
    require_extras("report", "report")
    store = args.store if is_postgres(args.store) else Path(args.store).expanduser().resolve()
    if not is_postgres(args.store) and not store.is_file():
        raise CodatExpensesError(
            f"There is no status store at {store}: run the destination (or the demo) first."
        )
    # the report reads the views of the newest schema: a store an older version wrote is
    # brought up to it first (a short write; the running destination's lock is waited for)
    migrate(str(store))
    release(str(store))
    env = {**os.environ, STORE_ENV: str(store)}
    print(
        f"Sync Health report for {shown(str(store))} on http://{args.host}:{args.port}",
        file=sys.stderr,
    )
    sys.stderr.flush()
    # this process becomes Streamlit: a SIGTERM or Ctrl-C reaches the server itself, and no
    # wrapper is left waiting on (or orphaning) a child
    command = streamlit_command(args.host, args.port)
    os.execve(command[0], command, env)  # noqa: S606
    return 0  # not reached
