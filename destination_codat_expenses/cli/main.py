"""`codat-expenses`: the operator's command line (everything but the Airbyte protocol).

Each command lives in its own module (sandbox, ops, report, webhooks, demo); this one builds the
parser and turns the errors a person can act on into one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import os
import sys

from destination_codat_expenses.cli.demo import add_demo_command
from destination_codat_expenses.cli.env import ERROR_PREFIX, EXIT_REFUSED
from destination_codat_expenses.cli.logs import configure_logging
from destination_codat_expenses.cli.ops import add_operator_commands
from destination_codat_expenses.cli.report import add_report_command
from destination_codat_expenses.cli.sandbox import add_sandbox_command
from destination_codat_expenses.cli.webhooks import add_webhook_commands
from destination_codat_expenses.errors import CodatExpensesError
from destination_codat_expenses.store.dataframes import skip_dataframe_imports


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codat-expenses", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    add_sandbox_command(commands)
    add_operator_commands(commands)
    add_report_command(commands)
    add_webhook_commands(commands)
    add_demo_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))


def run_command(args: argparse.Namespace) -> int:
    try:
        configure_logging(os.environ)
        return args.handler(args)
    except (ValueError, LookupError, CodatExpensesError) as exc:
        print(f"{ERROR_PREFIX}{exc}", file=sys.stderr)
        return EXIT_REFUSED


def console() -> None:
    """The `codat-expenses` script. A command that only reads the store (the views: `syncs
    list`, `runs list`, ...) runs without pandas, which DuckDB would import at its first bound
    parameter (store/dataframes.py); the others keep it, since DuckDB binds long lists of
    parameters faster with it."""
    args = build_parser().parse_args()
    if getattr(args, "reads_only", False):
        skip_dataframe_imports()
    sys.exit(run_command(args))


if __name__ == "__main__":
    console()
