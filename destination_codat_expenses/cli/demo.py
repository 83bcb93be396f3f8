"""`codat-expenses demo`: the whole loop on this machine, no account needed."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from destination_codat_expenses.cli.env import DEMO_SERVE_ENV
from destination_codat_expenses.cli.extras import require_extras


def add_demo_command(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="Run the whole loop against the local sandbox, then serve the report.",
        description="Starts the sandbox and the webhook receiver on loopback, pushes generated "
        "expenses through the real destination, checks the status store against the sandbox, "
        "prints a summary (exit 1 naming each disagreement instead), then serves the report "
        f"(not when ${DEMO_SERVE_ENV}=0 or without a terminal). The same seed gives the same "
        "summary. Ctrl-C or SIGTERM stops everything it started.",
    )
    demo.add_argument("--records", type=int, default=2000, help="Expense records (2000).")
    demo.add_argument("--companies", type=int, default=8, help="Demo companies, 1-8 (8).")
    demo.add_argument("--seed", type=int, default=7, help="Random seed (7).")
    demo.add_argument(
        "--dir", default="var/demo", help="Where the store and logs go; emptied first (var/demo)."
    )
    demo.add_argument("--port", type=int, default=8501, help="The report's port (8501).")
    demo.set_defaults(handler=run_demo_command)


def should_serve() -> bool:
    wanted = os.environ.get(DEMO_SERVE_ENV)
    if wanted is not None:
        return wanted not in ("0", "false", "no")
    return sys.stdin.isatty() and sys.stdout.isatty()


def run_demo_command(args: argparse.Namespace) -> int:
    require_extras("demo", "report", "sandbox")
    from destination_codat_expenses.demo.run import DemoSettings, run_demo

    if args.records < 1 or not 1 <= args.companies <= 8:
        raise ValueError("--records must be at least 1 and --companies from 1 to 8.")
    return run_demo(
        DemoSettings(
            args.records, args.companies, args.seed, Path(args.dir), should_serve(), args.port
        )
    )
