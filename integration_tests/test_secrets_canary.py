"""A canary API key and a canary webhook signing secret go through everything the product does,
and must come out nowhere: not in `spec`, `check` or `write` output, not in any operator
command's output, not in any table or column of the status store, not in the receiver's spool,
not on any page of the report. Every form is looked for (raw, base64, `Basic <base64>`, the
secret with and without `whsec_`), in any letter case.

The world is real: the sandbox (`codat-expenses sandbox`, taking the canary key) and the webhook
receiver (`codat-expenses webhooks serve`, with the canary secret) as processes on loopback, one
DuckDB file, and an echoing gateway in front of the sandbox (echo_upstream.py) whose error
bodies repeat the Authorization header, so the paths where an upstream hands the key back are
walked too. The world is built once for the module; each test looks at one part of it. (The
destination's own canary tests, a refused key and a plain run, are in
test_destination_protocol.py.)
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import wait_for
from destination_support import (
    XERO,
    catalog,
    flat,
    healthy,
    messages_of,
    query,
    record,
    run_cli,
    run_write,
    sandbox_process,
    settings,
    stream_state,
    txn_id,
    write_files,
)
from echo_upstream import Echo, echo_upstream
from streamlit.testing.v1 import AppTest
from webhook_support import signed, sync_event

from codat_sandbox.server import free_port
from destination_codat_expenses.cli.env import LOG_FORMAT_ENV
from destination_codat_expenses.cli.env import WEBHOOK_SECRET_ENV as SECRET_ENV
from destination_codat_expenses.webhooks.receiver import WEBHOOK_PATH
from report_app import access, actions, ui

CANARY_KEY = "Canary-KEY-4242-do-not-show"
CANARY_KEY_B64 = base64.b64encode(CANARY_KEY.encode()).decode()
CANARY_SECRET = "whsec_" + base64.b64encode(b"canary webhook secret 4242!").decode()
OPERATOR_TOKEN = "Canary-operator-token-4242"  # noqa: S105 - the report's sign-in secret
FORMS = [
    CANARY_KEY,
    CANARY_KEY_B64,
    f"Basic {CANARY_KEY_B64}",
    CANARY_SECRET,
    CANARY_SECRET.removeprefix("whsec_"),
    OPERATOR_TOKEN,
]
OPERATOR_CLI = Path(sys.executable).with_name("codat-expenses")
APP = Path(__file__).resolve().parents[1] / "report_app" / "app.py"
CARDS = "card_spend"
ECHOED, ECHOED_ITEM = "Request refused. You sent", "Refused; headers were"  # echo_upstream's words
UNKNOWN_SYNC = "c0ffee00-0000-4000-8000-000000000404"
SPOOLED_SYNC = "c0ffee00-0000-4000-8000-000000000202"
pytestmark = pytest.mark.timeout(600)


def leaks(blob: bytes | str) -> list[str]:
    """The canary forms found in `blob`, whatever their letter case."""
    text = (blob.decode(errors="replace") if isinstance(blob, bytes) else blob).lower()
    return [form for form in FORMS if form.lower() in text]


def assert_nowhere(found: dict[str, bytes | str]) -> None:
    leaked = {where: forms for where, blob in found.items() if (forms := leaks(blob))}
    assert not leaked, f"a secret leaked: {leaked}"


@dataclass
class World:
    root: Path
    store: Path
    outputs: dict[str, bytes | str] = field(default_factory=dict)  # what each command printed
    spooled: dict[str, bytes] = field(default_factory=dict)  # spool files, bodies decoded
    pages: dict[str, str] = field(default_factory=dict)  # the report's rendered text
    syncs: dict[str, str] = field(default_factory=dict)  # role -> sync id

    def keep(self, name: str, done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
        out, err = done.stdout, done.stderr
        self.outputs[f"{name} (stdout)"], self.outputs[f"{name} (stderr)"] = out, err
        return done


# -- the world -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("canary")
    seen = World(root, root / "status.duckdb")
    rules: list[Echo] = []
    with contextlib.ExitStack() as stack:
        sandbox = stack.enter_context(sandbox_process(root / "sandbox.log", api_key=CANARY_KEY))
        gateway = stack.enter_context(echo_upstream(sandbox, rules))
        with receiver_process(root, seen.store) as receiver:
            register_webhook(sandbox, receiver)
            protocol_commands(seen, sandbox, gateway, rules)
            webhook_deliveries(seen, receiver)
            operator_commands(seen, sandbox, gateway, rules)
        report_pages(seen, gateway, rules)
    seen.outputs["webhooks serve (log)"] = (root / "receiver.log").read_bytes()
    seen.outputs["sandbox (log)"] = (root / "sandbox.log").read_bytes()
    return seen


@contextlib.contextmanager
def receiver_process(
    root: Path, store: Path, codat_url: str | None = None, log_format: str = "text"
) -> Iterator[str]:
    """`codat-expenses webhooks serve` with the canary secret (and, given `codat_url`, the canary
    key, to confirm reported syncs from that address); yields its base URL."""
    port = free_port()
    env = {**os.environ, SECRET_ENV: CANARY_SECRET, LOG_FORMAT_ENV: log_format}
    env.pop(actions.KEY_ENV, None)
    if codat_url is not None:
        env.update({actions.KEY_ENV: CANARY_KEY, actions.URL_ENV: codat_url})
    command = [str(OPERATOR_CLI), "webhooks", "serve", "--store", str(store), "--port", str(port)]
    with (root / "receiver.log").open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: server.poll() is not None or receiver_up(base_url), timeout=60)
        assert server.poll() is None, (root / "receiver.log").read_text()[-2000:]
        yield base_url
    finally:
        server.terminate()
        server.wait(timeout=30)


def receiver_up(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def sandbox_admin(sandbox: str, path: str, body: dict) -> None:
    auth = {"Authorization": f"Basic {CANARY_KEY_B64}"}
    httpx.post(f"{sandbox}{path}", json=body, headers=auth, timeout=30).raise_for_status()


def register_webhook(sandbox: str, receiver: str) -> None:
    assert healthy(sandbox)
    sandbox_admin(
        sandbox, "/_sandbox/webhooks", {"url": receiver + WEBHOOK_PATH, "secret": CANARY_SECRET}
    )


def config_files(seen: World, name: str, base_url: str, **overrides) -> dict:
    config = settings(base_url, seen.store, api_key=CANARY_KEY, **overrides)
    lines = [
        record(CARDS, flat("ok-1")),
        record(CARDS, flat("ok-2")),
        record(CARDS, flat("closed-1", date="2023-06-01")),  # Xero's closed period: 5130
        record(CARDS, flat("echo-1")),  # refused by the gateway, the key in every reason
        record(CARDS, flat("bad-1", amount="12.345")),
        stream_state(CARDS, 1),
    ]
    if name == "open":
        lines = [record(CARDS, flat("open-1")), stream_state(CARDS, 2)]
    return write_files(seen.root / name, config, catalog(CARDS), lines)


def connection_status(done: subprocess.CompletedProcess) -> dict:
    statuses = [m for m in messages_of(done.stdout) if m["type"] == "CONNECTION_STATUS"]
    return statuses[0]["connectionStatus"]


def protocol_commands(seen: World, sandbox: str, gateway: str, rules: list[Echo]) -> None:
    seen.keep("spec", run_cli("spec"))
    plain = config_files(seen, "plain", sandbox)
    checked = seen.keep("check", run_cli("check", "--config", str(plain["config"])))
    assert connection_status(checked)["status"] == "SUCCEEDED"
    echoed = config_files(seen, "echoed", gateway, max_rejected_share=1.0)
    for status in (400, 503):
        rules[:] = [Echo("GET", "^/companies$", status)]
        done = seen.keep(f"check {status}", run_cli("check", "--config", str(echoed["config"])))
        answer = connection_status(done)
        assert answer["status"] == "FAILED" and ECHOED in answer["message"], answer
    rules[:] = [Echo("POST", "/expense-transactions$", 400, frozenset({txn_id(CARDS, "echo-1")}))]
    written = seen.keep("write", run_write(echoed))
    assert written.returncode == 0, written.stderr.decode()[-2000:]
    rules.clear()
    opened = config_files(seen, "open", sandbox, wait_for_syncs=False)
    assert seen.keep("write (open)", run_write(opened)).returncode == 0
    carried = dict(query(seen.store, "SELECT source_key, last_sync_id FROM transactions"))
    seen.syncs["closed"], seen.syncs["open"] = carried["closed-1"], carried["open-1"]


def webhook_deliveries(seen: World, receiver: str) -> None:
    """A signed event for a sync Codat does not know, and one held in the spool while another
    process has the store."""
    url = receiver + WEBHOOK_PATH
    body = sync_event(True, UNKNOWN_SYNC, company_id=XERO)
    assert httpx.post(url, content=body, headers=signed(body, secret=CANARY_SECRET)).is_success
    spool = Path(f"{seen.store}.webhook-spool")
    body = sync_event(False, SPOOLED_SYNC, [("t-1", "PushError", "Closed")], company_id=XERO)
    with store_held(seen.store):
        answer = httpx.post(url, content=body, headers=signed(body, secret=CANARY_SECRET))
        assert answer.status_code == 202, answer.text
        for path in spool.iterdir():
            seen.spooled[path.name] = spool_file_with_bodies(path)
    assert seen.spooled, "nothing was spooled"
    wait_for(lambda: not list(spool.glob("*.jsonl")), timeout=30)
    seen.syncs["unknown"], seen.syncs["spooled"] = UNKNOWN_SYNC, SPOOLED_SYNC


@contextlib.contextmanager
def store_held(store: Path, seconds: float = 3.0) -> Iterator[None]:
    """Another process holds the store's lock for `seconds`."""
    code = textwrap.dedent(f"""
        import duckdb, time
        while True:
            try:
                connection = duckdb.connect({str(store)!r})
                break
            except duckdb.IOException:
                time.sleep(0.01)
        print("locked", flush=True)
        time.sleep({seconds})
        connection.close()
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.wait(timeout=60)


def spool_file_with_bodies(path: Path) -> bytes:
    """The file as it is on disk, and each held body decoded from its base64."""
    raw = path.read_bytes()
    bodies = [base64.b64decode(json.loads(line)["body"]) for line in raw.splitlines() if line]
    return b"\n".join([raw, *bodies])


def operator_commands(seen: World, sandbox: str, gateway: str, rules: list[Echo]) -> None:
    store = str(seen.store)
    closed, opened = seen.syncs["closed"], seen.syncs["open"]
    rules[:] = [Echo("GET", f"/syncs/{opened}/status$", 400)]
    refused = operate(gateway, "status", "refresh", "--store", store)
    seen.keep("status refresh (echoed)", refused)
    assert refused.returncode == 1 and ECHOED in refused.stderr, refused.stderr
    sandbox_admin(sandbox, "/_sandbox/clock/advance", {"seconds": 30})
    seen.keep("status refresh", operate(sandbox, "status", "refresh", "--store", store))
    dry_run = operate(sandbox, "retry", "--store", store, "--sync", closed, "--dry-run")
    seen.keep("retry --dry-run", dry_run)
    rules[:] = [Echo("POST", "/expense-transactions$", 400)]
    retried = operate(gateway, "retry", "--store", store, "--sync", closed)
    seen.keep("retry (echoed)", retried)
    assert retried.returncode == 2 and ECHOED in retried.stderr, retried.stderr
    seen.keep("syncs list", operate(sandbox, "syncs", "list", "--store", store))
    for sync_id in [row[0] for row in query(seen.store, "SELECT sync_id FROM syncs")]:
        shown = operate(sandbox, "syncs", "show", sync_id, "--store", store)
        seen.keep(f"syncs show {sync_id}", shown)


def operate(base_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, actions.KEY_ENV: CANARY_KEY, actions.URL_ENV: base_url}
    command = [str(OPERATOR_CLI), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def report_pages(seen: World, gateway: str, rules: list[Echo]) -> None:
    """Every page on the store, and a retry pressed against the echoing gateway."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ui.STORE_ENV, str(seen.store))
        patch.setenv(actions.KEY_ENV, CANARY_KEY)
        patch.setenv(actions.URL_ENV, gateway)
        patch.setenv(access.OPERATOR_TOKEN_ENV, OPERATOR_TOKEN)
        seen.pages["dashboard"] = page_text(open_report())
        for sync_id in [row[0] for row in query(seen.store, "SELECT sync_id FROM syncs")]:
            seen.pages[f"sync {sync_id}"] = page_text(open_report(sync=sync_id))
        for key in ("echo-1", "closed-1", "ok-1"):
            at = open_report(transaction=txn_id(CARDS, key))
            seen.pages[f"transaction {key}"] = page_text(at)
        rules[:] = [Echo("POST", "/expense-transactions$", 400)]
        at = open_report(sync=seen.syncs["closed"])
        at.sidebar.text_input(key="operator_token_input").input(OPERATOR_TOKEN)
        next(b for b in at.sidebar.button if b.label == "Sign in").click().run()
        next(b for b in at.button if b.label == "Retry failed items").click().run()
        seen.pages["retry refused"] = page_text(at)
        assert ECHOED in "\n".join(w.value for w in at.warning), "no refusal shown"


def open_report(**query_params: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    for name, value in query_params.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def page_text(at: AppTest) -> str:
    """Every element's content (its protobuf as text, tables included) and every table as
    CSV: what a person could read on the page."""
    parts: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    parts += [frame.value.to_csv() for frame in at.dataframe]
    return "\n".join(parts)


# -- the tests -----------------------------------------------------------------------------------
def test_spec_check_and_write_output_hold_no_secret(world):
    shown = {k: v for k, v in world.outputs.items() if k.split()[0] in ("spec", "check", "write")}
    assert len(shown) == 2 * 6
    assert_nowhere(shown)


def test_every_operator_command_prints_no_secret(world):
    commands = {" ".join(name.split()[:2]) for name in world.outputs}
    assert {"status refresh", "retry --dry-run", "retry (echoed)", "syncs list"} <= commands
    assert any(name.startswith("syncs show") for name in world.outputs)
    assert {"webhooks serve (log)", "sandbox (log)"} <= set(world.outputs)
    assert_nowhere(world.outputs)


def store_contents(store: Path) -> dict[str, str]:
    """Every table, every row and column as text; and the file's bytes (with its WAL)."""
    tables = [row[0] for row in query(store, "SELECT table_name FROM duckdb_tables()")]
    cells: dict[str, str] = {}
    for table in tables:
        rows = query(store, f'SELECT * FROM "{table}"')  # noqa: S608 - names from the catalog
        cells[table] = "\n".join("\t".join(map(str, row)) for row in rows)
    files = [store, store.with_name(store.name + ".wal")]
    cells["(the file)"] = b"".join(f.read_bytes() for f in files if f.exists()).decode("latin-1")
    return cells


def test_no_table_or_column_of_the_store_holds_a_secret(world):
    cells = store_contents(world.store)
    assert {"runs", "syncs", "transactions", "rejects", "webhook_events"} <= set(cells)
    # the echoed refusals really reached the store
    assert ECHOED_ITEM in cells["rejects"] and ECHOED_ITEM in cells["transactions"]
    assert "NotFoundAtCodat" in cells["syncs"] and SPOOLED_SYNC in cells["webhook_events"]
    assert_nowhere(cells)


def test_the_webhook_spool_holds_no_secret(world):
    assert any(SPOOLED_SYNC.encode() in blob for blob in world.spooled.values())
    assert_nowhere(world.spooled)


def test_no_report_page_shows_a_secret(world):
    assert {"dashboard", "retry refused", "transaction echo-1"} <= set(world.pages)
    assert ECHOED_ITEM in world.pages["transaction echo-1"]
    assert "Not found at Codat" in world.pages[f"sync {UNKNOWN_SYNC}"]
    assert_nowhere(world.pages)


def test_the_demo_prints_and_keeps_no_key(tmp_path):
    """The demo makes its own key; it may be in the operator's config file (mode 0600) and
    nowhere else: not in what the demo prints, its logs, the messages or the store."""
    folder = tmp_path / "demo"
    env = {**os.environ, "DEMO_SERVE": "0"}
    command = [str(OPERATOR_CLI), "demo", "--records", "30", "--companies", "2"]
    done = subprocess.run(
        [*command, "--dir", str(folder)], capture_output=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    key = json.loads((folder / "config.json").read_text())["api_key"]
    forms = [key.lower(), base64.b64encode(key.encode()).decode().lower()]
    found = {"stdout": done.stdout.decode(), "stderr": done.stderr.decode()}
    found |= {p.name: p.read_bytes().decode("latin-1") for p in folder.iterdir() if p.is_file()}
    found |= store_contents(folder / "status.duckdb")
    del found["config.json"]  # the operator's own settings (mode 0600) hold the key
    leaked = {
        where: form for where, text in found.items() for form in forms if form in text.lower()
    }
    assert "transactions" in found and not leaked, leaked


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_receiver_confirming_with_a_key_never_shows_it(tmp_path, log_format):
    """With the canary key, the receiver reads a reported sync from an upstream that echoes the
    key back in its refusal: its log (plain or JSON lines), its /healthz and /metrics and the
    store name the failure, never the key."""
    store = tmp_path / "status.duckdb"
    rules = [Echo("GET", "/status$", 400)]
    with (
        sandbox_process(tmp_path / "sandbox.log", api_key=CANARY_KEY) as sandbox,
        echo_upstream(sandbox, rules) as gateway,
        receiver_process(tmp_path, store, codat_url=gateway, log_format=log_format) as receiver,
    ):
        body = sync_event(False, SPOOLED_SYNC, company_id=XERO)
        headers = signed(body, secret=CANARY_SECRET)
        assert httpx.post(receiver + WEBHOOK_PATH, content=body, headers=headers).is_success
        log = tmp_path / "receiver.log"
        wait_for(lambda: b"stays to confirm" in log.read_bytes(), timeout=30)
        pages = {path: httpx.get(receiver + path).text for path in ("/healthz", "/metrics")}
    text = log.read_bytes()
    assert b"Codat answered 400" in text and b"[redacted]" in text
    if log_format == "json":  # every line is one object, the uvicorn's ones too
        lines = [json.loads(line) for line in text.decode().splitlines() if line.strip()]
        assert any(line["logger"].startswith("uvicorn") for line in lines)
        assert any("Codat answered 400" in line["message"] for line in lines)
    assert query(store, "SELECT status_source FROM syncs") == [("webhook",)]
    assert_nowhere({"webhooks serve (log)": text, **pages, **store_contents(store)})
