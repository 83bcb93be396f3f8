"""`codat-expenses webhooks serve`: the webhook receiver (webhooks/receiver.py) on uvicorn.

The signing secret comes from the environment only, and is checked before anything starts: a
missing or malformed one stops the command with the variable's name, never its value. With
$CODAT_API_KEY set (and --base-url or $CODAT_BASE_URL for another address), the receiver reads
each sync its webhooks mark to confirm from Codat; without it, the syncs stay marked for the
running destination or `codat-expenses status refresh`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import Iterator, Mapping

from destination_codat_expenses.cli.env import (
    DEFAULT_BASE_URL,
    EXIT_OK,
    KEY_ENV,
    URL_ENV,
    WEBHOOK_SECRET_ENV,
)
from destination_codat_expenses.cli.logs import uvicorn_log_options
from destination_codat_expenses.cli.views import add_store_argument
from destination_codat_expenses.webhooks import WEBHOOK_PATH
from destination_codat_expenses.webhooks.signing import signing_keys

logger = logging.getLogger(__name__)
DEFAULT_PORT = 8766


def add_webhook_commands(commands) -> None:
    webhooks = commands.add_parser("webhooks", help="Receive Codat's sync webhooks.")
    webhook_commands = webhooks.add_subparsers(dest="webhooks_command", required=True)
    serve = webhook_commands.add_parser(
        "serve",
        help="Serve the webhook receiver.",
        description=f"Receive Codat's signed sync webhooks on POST {WEBHOOK_PATH} and record "
        f"them in the status store. The signing secret comes from ${WEBHOOK_SECRET_ENV} "
        f"(never a flag). With ${KEY_ENV} set, each sync a webhook reports ended is read "
        "from Codat (status and items); without it, it is marked to confirm.",
    )
    add_store_argument(serve)
    serve.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="Port to listen on.")
    serve.add_argument(
        "--base-url",
        default=None,
        help=f"Codat's address (default ${URL_ENV}, else {DEFAULT_BASE_URL}).",
    )
    serve.set_defaults(handler=run_serve)


def webhook_secret(environ: Mapping[str, str]) -> str:
    """The signing secret from the environment, checked; ValueError naming the variable else."""
    secret = environ.get(WEBHOOK_SECRET_ENV, "")
    if not secret.strip():
        raise ValueError(f"Set ${WEBHOOK_SECRET_ENV} to the endpoint's signing secret (whsec_...).")
    signing_keys(secret, named=f"${WEBHOOK_SECRET_ENV}")
    return secret


@contextlib.contextmanager
def optional_codat(args: argparse.Namespace, environ: Mapping[str, str]) -> Iterator:
    """A Codat client when $CODAT_API_KEY is set (its connections close after), else None."""
    key = environ.get(KEY_ENV, "").strip()
    if not key:
        yield None
        return
    from destination_codat_expenses.codat.client import CodatClient
    from destination_codat_expenses.codat.http import http_client

    base = args.base_url or environ.get(URL_ENV) or DEFAULT_BASE_URL
    with http_client(base) as http:
        yield CodatClient(http, key)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from destination_codat_expenses.webhooks.receiver import create_receiver

    secret = webhook_secret(os.environ)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with optional_codat(args, os.environ) as codat:
        app = create_receiver(args.store, secret, codat=codat)
        logger.info("webhook receiver on http://%s:%d%s", args.host, args.port, WEBHOOK_PATH)
        if codat is None:
            logger.info(
                "no $%s: syncs the webhooks report ended stay to confirm "
                "(the running destination or `codat-expenses status refresh` reads them)",
                KEY_ENV,
            )
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level="info",
            lifespan="on",
            **uvicorn_log_options(os.environ),
        )
    return EXIT_OK
