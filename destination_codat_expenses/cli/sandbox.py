"""`codat-expenses sandbox`: the Codat-compatible sandbox (codat_sandbox/) served on loopback."""

from __future__ import annotations

import argparse
import json
import os
import sys

from destination_codat_expenses.cli.env import EXIT_OK, SANDBOX_KEY_ENV
from destination_codat_expenses.cli.extras import require_extras


def add_sandbox_command(commands) -> None:
    sandbox = commands.add_parser(
        "sandbox",
        help="Serve the Codat-compatible sandbox on loopback.",
        description="Serve a Codat Sync for Expenses compatible API for trials and tests. "
        f"The API key comes from --api-key or ${SANDBOX_KEY_ENV}.",
    )
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8765)
    sandbox.add_argument(
        "--api-key",
        default=None,
        help=f"API key clients must send (default: ${SANDBOX_KEY_ENV}, else 'sandbox-key').",
    )
    sandbox.add_argument(
        "--scenario",
        default="demo",
        help="Shipped scenario name or a YAML/JSON file (default: demo).",
    )
    sandbox.add_argument(
        "--faults",
        default=None,
        help='JSON object of fault knobs, e.g. \'{"rate_429": 0.1, "seed": 7}\'.',
    )
    sandbox.add_argument(
        "--per-minute",
        type=int,
        default=60_000,
        help="Requests allowed per minute before 429 (default 60000).",
    )
    sandbox.add_argument(
        "--concurrency",
        type=int,
        default=10,
        help="Concurrent requests allowed per company (default 10).",
    )
    sandbox.set_defaults(handler=run_sandbox)


def run_sandbox(args: argparse.Namespace) -> int:
    require_extras("sandbox", "sandbox")
    from codat_sandbox.app import SandboxSettings, create_app
    from codat_sandbox.faults import FaultPlan
    from codat_sandbox.server import serve

    api_key = args.api_key or os.environ.get(SANDBOX_KEY_ENV) or "sandbox-key"
    faults = FaultPlan.from_json(json.loads(args.faults)) if args.faults else FaultPlan()
    settings = SandboxSettings(
        api_key=api_key,
        scenario=args.scenario,
        faults=faults,
        per_minute=args.per_minute,
        concurrency=args.concurrency,
    )
    app = create_app(settings)
    print(
        f"Codat sandbox on http://{args.host}:{args.port} (scenario: {args.scenario})",
        file=sys.stderr,
    )
    serve(app, args.host, args.port)
    return EXIT_OK
