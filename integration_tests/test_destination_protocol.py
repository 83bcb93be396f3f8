"""The destination as Airbyte runs it: the CDK's standard tests, then the real console script
(`destination-codat-expenses spec | check | write`) against the sandbox over loopback, with its
stdout, exit code, DuckDB store and the sandbox's books checked. And a canary API key that must
never show up anywhere the destination writes.

Run the standard tests alone with `pytest integration_tests/test_destination_protocol.py -k
"not docker"`; the image tests need a docker engine and skip themselves without one.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from airbyte_cdk.test.standard_tests import DestinationTestSuiteBase
from airbyte_cdk.test.standard_tests._job_runner import run_test_job
from airbyte_cdk.test.standard_tests._spec_lint import assert_spec_is_valid, get_single_spec

from codat_sandbox.app import SandboxSettings, create_app
from codat_sandbox.server import ServerThread, free_port
from destination_codat_expenses.destination import DestinationCodatExpenses
from integration_tests.destination_support import (
    API_KEY,
    INTACCT_NO_CONFIG,
    XERO,
    ZOHO_DEAUTHORIZED,
    books,
    catalog,
    flat,
    global_state,
    messages_of,
    query,
    record,
    run_cli,
    run_write,
    settings,
    states_of,
    stream_state,
    traces_of,
    txn_id,
    write_files,
)

STANDARD_KEY = json.loads(Path(__file__).with_name("valid_config.json").read_text())["api_key"]


# -- the CDK's standard tests ------------------------------------------------------------------
@functools.cache
def docker_engine_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="class")
def standard_sandbox():
    """A sandbox that knows the key of integration_tests/valid_config.json."""
    with ServerThread(create_app(SandboxSettings(api_key=STANDARD_KEY))) as base_url:
        yield base_url


class TestStandardDestinationSuite(DestinationTestSuiteBase):
    """Scenarios come from acceptance-test-config.yml: `spec` validates valid_config.json against
    the spec; `connection` runs `check` on valid_config.json (must succeed) and
    invalid_config.json (wrong key: must report FAILED, not raise). Every `check` also runs the
    CDK's secret-leak check over the output.

    The suite's docker tests (`test_docker_*`) build and run the connector image. They cannot
    apply yet: there is no image build (metadata.yaml has no connectorBuildOptions.baseImage),
    and `check` inside a container could not reach a sandbox on the host's loopback. Without a
    docker engine they skip themselves, and `-k "not docker"` deselects them."""

    connector = DestinationCodatExpenses
    connector_name = "destination-codat-expenses"  # the repository folder is not named for it

    @pytest.fixture(autouse=True)
    def image_tests_need_a_docker_engine(self, request):
        """The CDK skips its image tests only when the docker CLI is missing; here the CLI may
        be installed with no engine behind it, which would fail the build rather than skip."""
        if request.node.get_closest_marker("image_tests") and not docker_engine_answers():
            pytest.skip("no docker engine answers `docker info`; the image tests need one")

    def test_check(self, scenario, standard_sandbox, tmp_path) -> None:
        """The standard `check` test, unchanged, against a live sandbox. The config files name
        the sandbox's documented address (127.0.0.1:8765) so they validate against the spec and
        work by hand; here the sandbox is on a free port, so only `base_url` and the store path
        are pointed at it before the standard test body runs."""
        config = scenario.get_config_dict(
            connector_root=self.get_connector_root_dir(), empty_if_missing=False
        )
        live = {
            **config,
            "base_url": standard_sandbox,
            "status_store_path": str(tmp_path / "status.duckdb"),
        }
        super().test_check(scenario.model_copy(update={"config_dict": live}))

    def test_spec(self) -> None:
        """`DestinationTestSuiteBase` has no in-process spec test (only the docker one); this is
        `SourceTestSuiteBase.test_spec`: one SPEC message that passes the CDK's spec lint."""
        result = run_test_job(
            self.create_connector(scenario=None),
            "spec",
            connector_root=self.get_connector_root_dir(),
        )
        spec = get_single_spec(result, connector_name=self.connector_name)
        assert_spec_is_valid(spec, connector_name=self.connector_name)


# -- spec through the console script -------------------------------------------------------------
def test_spec_marks_the_api_key_and_the_store_url_secret():
    done = run_cli("spec")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    messages = messages_of(done.stdout)
    specs = [m["spec"] for m in messages if m["type"] == "SPEC"]
    assert len(specs) == 1
    properties = specs[0]["connectionSpecification"]["properties"]
    assert properties["api_key"]["airbyte_secret"] is True
    secret = [name for name, prop in properties.items() if prop.get("airbyte_secret")]
    # a PostgreSQL store's URL carries its password (either name of the setting)
    assert secret == ["api_key", "status_store", "status_store_path"]
    assert set(specs[0]["supported_destination_sync_modes"]) >= {"append"}


# -- write through the console script ------------------------------------------------------------
CARDS, REFUNDS = "card_spend", "refunds"
BAD = {
    "b1": ("amount", "not a plain decimal number", {"amount": "1,234.56"}),
    "b2": ("currency", "not an ISO 4217 currency code", {"currency": "XXX"}),
    "b3": ("date", "not a valid ISO 8601 date", {"date": "2023-02-29"}),
}


def stream_state_input() -> tuple[list[dict], list[dict]]:
    """Two streams with STREAM states, some bad records; and the STATEs expected back."""
    unknown = {"sourceStats": {"recordCount": 3.0}, "platformExtra": {"keep": [1, "two"]}}
    lines = [
        record(CARDS, flat("c1")),
        record(REFUNDS, flat("r1", type="refund")),
        record(CARDS, flat("c2")),
        {"type": "LOG", "log": {"level": "INFO", "message": "a source's log line"}},
        record(CARDS, flat("c3")),
        stream_state(CARDS, 1001, **unknown),
        record(REFUNDS, flat("r2", type="refund", amount="5.50", tax_amount=None)),
        record(CARDS, flat("c4")),
        record(CARDS, flat("b1", **BAD["b1"][2])),
        record(CARDS, flat("b2", **BAD["b2"][2])),
        stream_state(REFUNDS, 1002),
        record(CARDS, flat("c5")),
        record(CARDS, flat("b3", **BAD["b3"][2])),
        stream_state(CARDS, 1003),
        stream_state(REFUNDS, 1004),
    ]
    counts = {1001: 3, 1002: 2, 1003: 5, 1004: 0}
    expected = [
        {**line["state"], "destinationStats": {"recordCount": counts[line["state"]["id"]]}}
        for line in lines
        if line["type"] == "STATE"
    ]
    return lines, expected


@pytest.fixture
def stream_state_run(sandbox_url, tmp_path):
    lines, expected = stream_state_input()
    store = tmp_path / "status.duckdb"
    config = settings(sandbox_url, store, max_rejected_share=0.5)
    paths = write_files(tmp_path / "run", config, catalog(CARDS, REFUNDS), lines)
    done = run_write(paths)
    return done, expected, store


def test_write_echoes_every_state_in_order_with_counts_and_unknown_fields(stream_state_run):
    done, expected, _ = stream_state_run
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    messages = messages_of(done.stdout)  # every stdout line is an Airbyte message
    assert states_of(messages) == expected
    assert not traces_of(messages)
    assert {m["type"] for m in messages} <= {"STATE", "LOG"}


def test_write_records_syncs_items_and_rejects_in_the_store(stream_state_run, sandbox_url):
    done, _, store = stream_state_run
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    # the process ended at once (run.py), yet after closing its store: all of it in the file
    assert not store.with_name(store.name + ".wal").exists()
    good = {txn_id(CARDS, k): "directCosts" for k in ("c1", "c2", "c3", "c4", "c5")}
    good |= {txn_id(REFUNDS, k): "directIncomes" for k in ("r1", "r2")}

    runs = query(store, "SELECT outcome, records_in, records_accepted, records_rejected FROM runs")
    assert runs == [("succeeded", 10, 7, 3)]
    syncs = query(
        store,
        "SELECT sync_id, company_id, flow, status_code, target_platform, item_count, "
        "failed_count, completed_at IS NOT NULL FROM syncs",
    )
    assert syncs and all(s[1:5] == (XERO, "direct", 2000, "Xero") for s in syncs)
    assert sum(s[5] for s in syncs) == 7 and all(s[6] == 0 and s[7] for s in syncs)
    ledger = dict(query(store, "SELECT transaction_id, state FROM transactions"))
    assert ledger == {tid: "completed" for tid in good}

    items = query(store, "SELECT transaction_id, data_type, record_id, status FROM push_items")
    assert {i[0]: i[1] for i in items} == good
    assert all(re.fullmatch(r"XERO-\d{7}", i[2]) and i[3] == "Completed" for i in items)

    rejects = query(store, "SELECT stream, record_key, field, reason FROM rejects")
    assert sorted(r[1] for r in rejects) == ["b1", "b2", "b3"]
    for stream, key, field, reason in rejects:
        assert stream == CARDS
        assert field == BAD[key][0] and BAD[key][1] in reason

    written = books(sandbox_url)
    assert set(written) == set(good)  # nothing rejected reached the books
    assert all(entry["writes"] == 1 for entry in written.values())
    assert {i[0]: i[2] for i in items} == {t: e["record_id"] for t, e in written.items()}


def test_write_counts_global_states_over_every_stream(sandbox_url, tmp_path):
    lines = [
        record(CARDS, flat("g1")),
        record(REFUNDS, flat("g2", type="refund")),
        record(CARDS, flat("g3")),
        record(CARDS, flat("g4")),
        global_state(2001, sourceStats={"recordCount": 4.0}),
        record(REFUNDS, flat("g5", type="refund")),
        global_state(2002),
        global_state(2003, note="no records since the last one"),
    ]
    config = settings(sandbox_url, tmp_path / "status.duckdb")
    done = run_write(write_files(tmp_path / "run", config, catalog(CARDS, REFUNDS), lines))
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    counts = {2001: 4, 2002: 1, 2003: 0}
    expected = [
        {**line["state"], "destinationStats": {"recordCount": counts[line["state"]["id"]]}}
        for line in lines
        if line["type"] == "STATE"
    ]
    assert states_of(messages_of(done.stdout)) == expected
    assert len(books(sandbox_url)) == 5


# -- check through the console script ------------------------------------------------------------
def check_cases(base_url: str, tmp_path: Path) -> dict[str, tuple[dict, str | None]]:
    """name -> (config, a phrase the FAILED message must hold; None for SUCCEEDED)."""
    store = tmp_path / "status.duckdb"
    blocker = tmp_path / "a-file"
    blocker.write_text("a regular file, so nothing can be created under it")
    closed = f"http://127.0.0.1:{free_port()}"
    good = settings(base_url, store)
    return {
        "good": (good, None),
        "wrong_key": ({**good, "api_key": "not-the-key"}, "refused the API key (401)"),
        "unreachable": ({**good, "base_url": closed}, "could not be reached"),
        "no_such_company": (
            {**good, "company_id": "0b6c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3"},
            "does not exist",
        ),
        "deauthorized": ({**good, "company_id": ZOHO_DEAUTHORIZED}, "no linked accounting"),
        "no_expense_config": (
            {**good, "company_id": INTACCT_NO_CONFIG},
            "no expense configuration",
        ),
        "store_not_writable": (
            {**good, "status_store_path": str(blocker / "status.duckdb")},
            "cannot be written",
        ),
        "batch_size_51": ({**good, "batch_size": 51}, "'batch_size'"),
        "bad_timezone": ({**good, "timezone": "Mars/Olympus_Mons"}, "'timezone'"),
        "both_routings": ({**good, "company_id_field": "company"}, "'company_id_field'"),
    }


@pytest.fixture(scope="module")
def check_results(tmp_path_factory):
    """Every case's `check`, run as a process; all at once, since each is mostly start-up."""
    tmp = tmp_path_factory.mktemp("check")
    with ServerThread(create_app(SandboxSettings(api_key=API_KEY))) as base_url:
        cases = check_cases(base_url, tmp)

        def run(name: str) -> subprocess.CompletedProcess:
            path = tmp / f"{name}.json"
            path.write_text(json.dumps(cases[name][0]))
            return run_cli("check", "--config", str(path), timeout=300)

        with ThreadPoolExecutor(len(cases)) as pool:
            done = dict(zip(cases, pool.map(run, cases), strict=True))
    return {name: (done[name], cases[name][1]) for name in cases}


CHECK_CASES = [
    "good",
    "wrong_key",
    "unreachable",
    "no_such_company",
    "deauthorized",
    "no_expense_config",
    "store_not_writable",
    "batch_size_51",
    "bad_timezone",
    "both_routings",
]


@pytest.mark.parametrize("case", CHECK_CASES)
def test_check_answers_with_a_status_and_a_sentence(check_results, case):
    done, phrase = check_results[case]
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    statuses = [m["connectionStatus"] for m in messages_of(done.stdout) if m["type"] != "LOG"]
    assert len(statuses) == 1, done.stdout.decode()[-2000:]
    status = statuses[0]
    if phrase is None:
        assert status["status"] == "SUCCEEDED", status
        return
    assert status["status"] == "FAILED"
    message = status["message"]
    assert phrase in message, message
    assert message.endswith(".") and "Traceback" not in message and "\n" not in message


# -- the canary key ------------------------------------------------------------------------------
CANARY = "canary-SECRET-4242"
CANARY_B64 = base64.b64encode(CANARY.encode()).decode()
CANARY_FORMS = [CANARY, CANARY_B64, f"Basic {CANARY_B64}"]


def assert_no_canary(*blobs: bytes) -> None:
    for blob in blobs:
        for form in CANARY_FORMS:
            assert form.encode() not in blob, f"the key leaked as {form!r}"


def store_bytes(store: Path) -> bytes:
    files = [store, store.with_name(store.name + ".wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def canary_lines() -> list[dict]:
    return [
        record(CARDS, flat("k1")),
        record(CARDS, flat("k2", amount="12.345")),
        record(CARDS, flat("k3", date="not a date")),
        record(CARDS, flat("k4", account_id="999")),  # fails in Codat: ValidationError
        stream_state(CARDS, 3001),
    ]


def test_canary_key_never_leaks_when_codat_refuses_it(sandbox_url, tmp_path):
    """The sandbox expects another key: check and write both meet a 401."""
    store = tmp_path / "status.duckdb"
    config = settings(sandbox_url, store, api_key=CANARY)
    paths = write_files(tmp_path / "run", config, catalog(CARDS), canary_lines())

    checked = run_cli("check", "--config", str(paths["config"]))
    status = [m for m in messages_of(checked.stdout) if m["type"] == "CONNECTION_STATUS"]
    assert status[0]["connectionStatus"]["status"] == "FAILED"

    written = run_write(paths)
    assert written.returncode != 0
    traces = traces_of(messages_of(written.stdout))
    assert traces and traces[-1]["error"]["failure_type"] == "config_error"
    assert "401" in traces[-1]["error"]["message"]
    assert store.exists()
    assert_no_canary(
        checked.stdout, checked.stderr, written.stdout, written.stderr, store_bytes(store)
    )


def test_canary_key_never_leaks_from_a_run_that_writes(tmp_path):
    """The sandbox takes the canary key: a real run with good, bad and Codat-refused records."""
    with ServerThread(create_app(SandboxSettings(api_key=CANARY))) as base_url:
        store = tmp_path / "status.duckdb"
        config = settings(base_url, store, api_key=CANARY, max_rejected_share=0.8)
        paths = write_files(tmp_path / "run", config, catalog(CARDS), canary_lines())
        checked = run_cli("check", "--config", str(paths["config"]))
        written = run_write(paths)
    status = [m for m in messages_of(checked.stdout) if m["type"] == "CONNECTION_STATUS"]
    assert status[0]["connectionStatus"]["status"] == "SUCCEEDED"
    assert written.returncode == 0, written.stderr.decode()[-2000:]
    assert len(states_of(messages_of(written.stdout))) == 1
    ledger = dict(query(store, "SELECT source_key, state FROM transactions"))
    assert ledger == {"k1": "completed", "k4": "failed"}
    assert len(query(store, "SELECT * FROM rejects")) == 2
    assert_no_canary(
        checked.stdout, checked.stderr, written.stdout, written.stderr, store_bytes(store)
    )


def test_write_refuses_a_bad_setting_by_name(sandbox_url, tmp_path):
    config = settings(sandbox_url, tmp_path / "status.duckdb", batch_size=51)
    paths = write_files(tmp_path / "run", config, catalog(CARDS), [record(CARDS, flat("x1"))])
    done = run_write(paths)
    assert done.returncode != 0
    traces = traces_of(messages_of(done.stdout))
    assert traces[-1]["error"]["failure_type"] == "config_error"
    assert traces[-1]["error"]["message"].startswith("Setting 'batch_size':")
    assert books(sandbox_url) == {}


def test_each_http_exchange_is_one_info_line_in_the_airbyte_log_without_the_key(tmp_path):
    """The client logs under the logger the CDK forwards: a real run's stdout carries one INFO
    LOG message per exchange with Codat (method, path template, status), never the key."""
    with ServerThread(create_app(SandboxSettings(api_key=CANARY))) as base_url:
        store = tmp_path / "status.duckdb"
        config = settings(base_url, store, api_key=CANARY)
        lines = [record(CARDS, flat("h1")), record(CARDS, flat("h2")), stream_state(CARDS, 1)]
        written = run_write(write_files(tmp_path / "run", config, catalog(CARDS), lines))
    assert written.returncode == 0, written.stderr.decode()[-2000:]
    logs = [m["log"] for m in messages_of(written.stdout) if m["type"] == "LOG"]
    exchanges = [log for log in logs if log["message"].startswith("codat ")]
    create = "codat POST /companies/{companyId}/sync/expenses/expense-transactions 200 "
    assert [log["level"] for log in exchanges if log["message"].startswith(create)] == ["INFO"]
    status = "codat GET /companies/{companyId}/sync/expenses/syncs/{syncId}/status 200 "
    assert any(log["message"].startswith(status) for log in exchanges)
    assert all(log["level"] == "INFO" and "(attempt 1)" in log["message"] for log in exchanges)
    assert any("migrated to version" in log["message"] for log in logs)  # the store's log too
    assert_no_canary(written.stdout, written.stderr)
