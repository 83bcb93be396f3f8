"""`codat-expenses demo` and `make demo`: the whole loop on one machine.

Starts the sandbox (demo scenario) and the webhook receiver on loopback, registers the receiver
with the sandbox, feeds generated expense records through the real
`destination-codat-expenses write` over a pipe with a progress bar, checks that the store agrees
with the sandbox (which plays Codat), prints a summary from the store, then serves the report
until Ctrl-C. Everything it starts, it stops: on Ctrl-C, on SIGTERM and on any error, each child
gets SIGTERM (its own clean way out), newest first, and a child that has not ended within
STOP_WAIT_S is killed with everything in its process group.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from codat_sandbox.server import free_port
from destination_codat_expenses.cli.env import (
    EXIT_INTERRUPTED,
    EXIT_NOT_ALL_DONE,
    EXIT_OK,
    KEY_ENV,
    OPERATOR_TOKEN_ENV,
    SANDBOX_KEY_ENV,
    STORE_ENV,
    URL_ENV,
    WEBHOOK_SECRET_ENV,
)
from destination_codat_expenses.cli.report import streamlit_command
from destination_codat_expenses.codat.http import answers
from destination_codat_expenses.codat.sandbox_admin import SandboxAdmin
from destination_codat_expenses.demo.agreement import agreed_counts, ask_codat, report_disagreements
from destination_codat_expenses.demo.records import COMPANIES, generate
from destination_codat_expenses.demo.summary import summary_lines
from destination_codat_expenses.webhooks.receiver import WEBHOOK_PATH

HOST = "127.0.0.1"
logger = logging.getLogger("codat_expenses.demo")
BIN = Path(sys.executable).parent
STOP_WAIT_S = 20.0  # per child: the destination closes its run in the store first


@dataclass
class DemoSettings:
    records: int = 2000
    companies: int = 8
    seed: int = 7
    workdir: Path = Path("var/demo")
    serve: bool = True
    report_port: int = 8501


class Processes:
    """Child processes, each in a session (and process group) of its own, so a Ctrl-C in the
    terminal reaches the demo only, and the demo stops each child its own way."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []

    def start(self, command: list[str], env: dict, log: Path) -> subprocess.Popen:
        with log.open("w") as out:
            return self.spawn(command, env, stdout=out, stderr=subprocess.STDOUT)

    def spawn(self, command: list[str], env: dict, **streams) -> subprocess.Popen:
        child = subprocess.Popen(  # noqa: S603 - our own executables
            command, env={**os.environ, **env}, start_new_session=True, **streams
        )
        self.children.append(child)
        return child

    def stop(self) -> None:
        """Newest first, so the destination ends while the sandbox still answers it."""
        for child in reversed(self.children):
            if child.poll() is None:
                signal_group(child, signal.SIGTERM)
            try:
                child.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                what = " ".join(Path(str(arg)).name for arg in child.args[:3])
                logger.warning("%s did not stop within %.0f s; killed", what, STOP_WAIT_S)
                signal_group(child, signal.SIGKILL)
                child.wait()


def signal_group(child: subprocess.Popen, signum: int) -> None:
    """The child leads its own process group (start_new_session): signal all of it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signum)


def interrupt(signum: int, frame: object) -> None:
    """SIGTERM stops the demo the way Ctrl-C does."""
    raise KeyboardInterrupt


@contextlib.contextmanager
def stopping_on_sigterm() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def deaf_to_signals() -> Iterator[None]:
    """While the children are being stopped, a second Ctrl-C or SIGTERM must not cut it short
    and leave some running."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def show_progress_to_person() -> None:
    """The demo talks to a person: plain lines on stdout, through logging like the rest."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def run_demo(settings: DemoSettings) -> int:
    show_progress_to_person()
    processes = Processes()
    with stopping_on_sigterm():
        try:
            return run_loop(settings, processes)
        except KeyboardInterrupt:
            logger.warning("interrupted: stopping everything the demo started")
            return EXIT_INTERRUPTED
        finally:
            with deaf_to_signals():
                processes.stop()


def run_loop(settings: DemoSettings, processes: Processes) -> int:
    workdir = fresh(settings.workdir)
    api_key, secret = f"demo-{secrets.token_hex(8)}", make_secret()
    store = workdir / "status.duckdb"
    sandbox = start_sandbox(processes, workdir, api_key)
    receiver_url = start_receiver(processes, workdir, store, secret, api_key, sandbox.base_url)
    sandbox.register_webhook(f"{receiver_url}{WEBHOOK_PATH}", secret)
    messages = write_messages(workdir, settings)
    config = write_config(workdir, api_key, sandbox.base_url, store)
    run_destination(processes, workdir, config, messages, settings.records)
    wait_for_webhooks(sandbox)
    if not summary_checked(store, sandbox, api_key, settings.companies):
        logger.info("logs             %s/*.log", workdir)
        return EXIT_NOT_ALL_DONE
    logger.info("\nstatus store     %s\nlogs             %s/*.log", store, workdir)
    if settings.serve:
        serve_report(processes, workdir, store, api_key, sandbox.base_url, settings.report_port)
    return EXIT_OK


def summary_checked(store: Path, sandbox: SandboxAdmin, api_key: str, companies: int) -> bool:
    """The summary, printed only once the store agrees with what the sandbox (Codat) says;
    False, with each disagreement, when it does not."""
    chosen = [company.id for company in COMPANIES[:companies]]
    codat = ask_codat(sandbox, api_key, chosen)
    counts, problems = agreed_counts(str(store), codat)
    if problems:
        report_disagreements(problems)
        return False
    for line in summary_lines(counts, codat):
        logger.info(line)
    return True


def fresh(workdir: Path) -> Path:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    return workdir.resolve()


def make_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def wait_until_up(is_up: Callable[[], bool], what: str, child: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"The {what} stopped at start; see its log in the demo folder.")
        if is_up():
            return
        time.sleep(0.2)
    raise SystemExit(f"The {what} did not start within 60 s.")


def start_sandbox(processes: Processes, workdir: Path, api_key: str) -> SandboxAdmin:
    port = free_port(HOST)
    child = processes.start(
        [
            str(BIN / "codat-expenses"),
            "sandbox",
            "--host",
            HOST,
            "--port",
            str(port),
            "--scenario",
            "demo",
        ],
        {SANDBOX_KEY_ENV: api_key},
        workdir / "sandbox.log",
    )
    sandbox = SandboxAdmin(f"http://{HOST}:{port}", api_key)
    wait_until_up(sandbox.is_up, "sandbox", child)
    logger.info(
        "sandbox          %s (demo scenario: %d companies)", sandbox.base_url, len(COMPANIES)
    )
    return sandbox


def start_receiver(
    processes: Processes, workdir: Path, store: Path, secret: str, api_key: str, sandbox_url: str
) -> str:
    """The receiver, given the sandbox's key and address as an operator would give Codat's, so
    that it can read a sync's outcome from the API when a webhook names it."""
    port = free_port(HOST)
    child = processes.start(
        [
            str(BIN / "codat-expenses"),
            "webhooks",
            "serve",
            "--store",
            str(store),
            "--host",
            HOST,
            "--port",
            str(port),
        ],
        {WEBHOOK_SECRET_ENV: secret, KEY_ENV: api_key, URL_ENV: sandbox_url},
        workdir / "webhooks.log",
    )
    url = f"http://{HOST}:{port}"
    wait_until_up(lambda: answers(url, "/healthz"), "webhook receiver", child)
    logger.info("webhook receiver %s%s", url, WEBHOOK_PATH)
    return url


def write_messages(workdir: Path, settings: DemoSettings) -> Path:
    path = workdir / "messages.jsonl"
    with path.open("w") as out:
        for line in generate(settings.records, settings.companies, settings.seed):
            out.write(line + "\n")
    return path


def write_config(workdir: Path, api_key: str, sandbox_url: str, store: Path) -> Path:
    config = {
        "api_key": api_key,
        "base_url": sandbox_url,
        "company_id_field": "company_id",
        "status_store_path": str(store),
        "push_flow": "direct",
        "sync_wait_timeout_seconds": 300,
    }
    catalog = {
        "streams": [
            {
                "stream": {
                    "name": "card_transactions",
                    "json_schema": {},
                    "supported_sync_modes": ["incremental"],
                },
                "sync_mode": "incremental",
                "destination_sync_mode": "append_dedup",
                "primary_key": [["id"]],
            }
        ]
    }
    (workdir / "catalog.json").write_text(json.dumps(catalog, indent=2))
    path = workdir / "config.json"
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)
    return path


def run_destination(
    processes: Processes, workdir: Path, config: Path, messages: Path, records: int
) -> None:
    """The real connector, fed through a pipe; STATE echoes drive the progress bar."""
    command = [
        str(BIN / "destination-codat-expenses"),
        "write",
        "--config",
        str(config),
        "--catalog",
        str(workdir / "catalog.json"),
    ]
    logger.info("destination      %s < %s", " ".join(command), messages.name)
    with (workdir / "destination.log").open("w") as log:
        writer = processes.spawn(
            command, {}, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
        )
        feeder = threading.Thread(target=feed, args=(messages, writer.stdin), daemon=True)
        feeder.start()
        confirmed = follow_output(writer.stdout, log, records)
        writer.wait()
    progress(records if writer.returncode == 0 else confirmed, records, final=True)
    if writer.returncode != 0:
        raise SystemExit(
            f"The destination failed (exit {writer.returncode}); see {workdir / 'destination.log'}."
        )


def feed(messages: Path, stdin) -> None:
    with messages.open() as source, contextlib.suppress(BrokenPipeError):
        shutil.copyfileobj(source, stdin)
    with contextlib.suppress(BrokenPipeError):
        stdin.close()


def follow_output(stdout, log, records: int) -> int:
    confirmed = 0
    for line in stdout:
        log.write(line)
        log.flush()  # the destination's stderr goes to the same file, unbuffered
        message = json.loads(line) if line.startswith("{") else {}
        if message.get("type") == "STATE":
            confirmed = message["state"]["stream"]["stream_state"]["cursor"]
            progress(confirmed, records)
    return confirmed


def progress(confirmed: int, total: int, final: bool = False) -> None:
    """One line redrawn in place: records whose STATE came back (committed and accepted)."""
    if not final and not sys.stderr.isatty():
        return  # a log file gets the last line only
    width = 40
    filled = int(width * confirmed / max(total, 1))
    bar = f"[{'#' * filled}{'.' * (width - filled)}] {confirmed}/{total}"
    sys.stderr.write(f"\rrecords          {bar}{chr(10) if final else ''}")
    sys.stderr.flush()


def wait_for_webhooks(sandbox: SandboxAdmin, timeout_s: float = 20) -> None:
    """Give the sandbox's webhooks time to reach the receiver before the summary."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(d["delivered"] for d in sandbox.webhook_deliveries()):
            return
        time.sleep(0.25)


def serve_report(
    processes: Processes, workdir: Path, store: Path, api_key: str, sandbox_url: str, port: int
) -> None:
    """Streamlit itself, as `codat-expenses report` runs it, as the demo's own child: SIGTERM
    stops it cleanly, with no wrapper process in between to outlive."""
    token, how_to_sign_in = operator_access()
    child = processes.start(
        streamlit_command(HOST, port),
        {STORE_ENV: str(store), KEY_ENV: api_key, URL_ENV: sandbox_url, **token},
        workdir / "report.log",
    )
    url = f"http://{HOST}:{port}"
    wait_until_up(lambda: answers(url, "/_stcore/health"), "report", child)
    logger.info("\nSync Health report: %s   (Ctrl-C stops the report, receiver and sandbox)", url)
    # straight to the terminal, never through logging: the line may hold the one-off token
    print(how_to_sign_in, flush=True)
    child.wait()


def operator_access() -> tuple[dict[str, str], str]:
    """The report's operator token (the env to add) and how the person signs in to retry.
    A token the person set is passed on and never printed. Otherwise, on a terminal, a one-off
    token is made for this demo and printed there only (not logged, not in the store); with no
    terminal to print it on, retrying stays off and the line says how to turn it on."""
    if os.environ.get(OPERATOR_TOKEN_ENV, "").strip():
        return {}, f"Retry failed items: sign in (sidebar) with your ${OPERATOR_TOKEN_ENV}."
    if not sys.stdout.isatty():
        return {}, (
            f"Retry failed items is off: run the demo with ${OPERATOR_TOKEN_ENV} set to a "
            "token of your choice, then sign in with it in the report's sidebar."
        )
    token = secrets.token_urlsafe(18)
    return {OPERATOR_TOKEN_ENV: token}, (
        f"Retry failed items: sign in (sidebar) with this one-off operator token: {token}"
    )
