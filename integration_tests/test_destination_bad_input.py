"""Poison input through the real console script, against the sandbox over loopback: each bad
line is a reject in the store with its line or record, field and reason; every other record is
in the books once; the STATEs are echoed; and however a run ends, its `runs` row says how.
No row is ever left `running` by a process that ended on its own or was told to stop."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from integration_tests.destination_support import (
    CLI,
    XERO,
    books,
    catalog,
    flat,
    iter_write,
    messages_of,
    query,
    record,
    routed,
    run_write,
    settings,
    states_of,
    stream_state,
    traces_of,
    txn_id,
    wait_until,
    write_files,
    write_in_process,
)

CARDS = "card_spend"
UUID = "5c1b8a8e-0000-4000-8000-00000000abcd"


def text(line: dict) -> bytes:
    return json.dumps(line).encode()


def with_emitted_at(key: str, raw: str) -> bytes:
    """A valid record whose emitted_at is `raw` JSON text (NaN and Infinity are not JSON)."""
    line = {"type": "RECORD", "record": {"stream": CARDS, "data": flat(key), "emitted_at": 0}}
    return text(line).replace(b'"emitted_at": 0', f'"emitted_at": {raw}'.encode())


# each input line, and the (record key, field) of the reject it must become ("line": its line)
POISON_LINES: list[tuple[bytes, tuple[str, str] | None]] = [
    (text(record(CARDS, flat("g1"))), None),
    (with_emitted_at("e-text", '"2024-05-01T00:00:00Z"'), None),
    (with_emitted_at("e-object", '{"at": 1}'), None),
    (with_emitted_at("e-nan", "NaN"), None),
    (with_emitted_at("e-inf", "Infinity"), None),
    (text(record(CARDS, flat("d-late", date="9999-12-31T23:59:59-12:00"))), ("d-late", "date")),
    (text(record(CARDS, flat("d-early", date="0001-01-01T00:00:00+12:00"))), ("d-early", "date")),
    (b"this line is not JSON", ("line", "(line)")),
    (b'{"type": "RECORD", "record": {"stream": "card_spend", "data": "g9"}}', ("line", "(line)")),
    (b"[1, 2, 3]", ("line", "(line)")),
    (b'{"type": "RECORD", "record": {"stream": "\xff\xfe"}}', ("line", "(line)")),
    (text(stream_state(CARDS, 1)), None),
    (text(record("payroll", flat("p1"))), ("line", "(stream)")),
    (
        text(record(CARDS, flat("a-arabic", amount="\u0661\u0662.\u0660\u0660"))),
        ("a-arabic", "amount"),
    ),
    (text(record(CARDS, flat("a-wide", amount="\uff11\uff12.\uff10\uff10"))), ("a-wide", "amount")),
    (text(record(CARDS, flat(UUID))), None),
    (text(record(CARDS, flat(f"urn:uuid:{UUID}", amount="30.00"))), None),
    (text(record(CARDS, flat(424242))), None),
    (text(record(CARDS, flat("424242"))), None),  # the same expense: ids compare as text
    (text(record(CARDS, flat("g2"))), None),
    (text(stream_state(CARDS, 2)), None),
]
DELIVERED = ["g1", "e-text", "e-object", "e-nan", "e-inf", UUID, f"urn:uuid:{UUID}", "424242", "g2"]
REASONS = {
    "date": "is out of range",
    "amount": "is not a plain decimal number",
    "(stream)": "'payroll', a stream not in the configured catalog",
}


def expected_rejects() -> list[tuple[str, str, str]]:
    out = []
    for number, (_, expected) in enumerate(POISON_LINES, start=1):
        if expected is not None:
            key, field = expected
            out.append((f"line {number}" if key == "line" else key, field))
    return sorted(out)


def write_raw(folder: Path, config: dict, lines: list[bytes]) -> dict:
    paths = write_files(folder, config, catalog(CARDS), [])
    paths["messages"].write_bytes(b"\n".join(lines) + b"\n")
    return paths


def no_run_is_left_running(store: Path) -> None:
    assert query(store, "SELECT count(*) FROM runs WHERE outcome = 'running'") == [(0,)]


@pytest.fixture
def poison_run(sandbox_url, tmp_path):
    store = tmp_path / "status.duckdb"
    config = settings(sandbox_url, store, max_rejected_share=0.6)
    done = run_write(write_raw(tmp_path / "run", config, [line for line, _ in POISON_LINES]))
    return done, store


def test_poison_lines_are_rejects_and_every_other_record_is_delivered_once(poison_run, sandbox_url):
    done, store = poison_run
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    written = books(sandbox_url)  # the books first: what Codat holds
    assert set(written) == {txn_id(CARDS, key) for key in DELIVERED}
    assert all(entry["writes"] == 1 for entry in written.values())
    assert txn_id(CARDS, f"urn:uuid:{UUID}") != UUID  # another spelling is another expense

    rejects = query(store, "SELECT stream, record_key, field, reason FROM rejects")
    assert sorted((key, field) for _, key, field, _ in rejects) == expected_rejects()
    for stream, key, field, reason in rejects:
        assert REASONS.get(field, "") in reason, (key, reason)
        named = {"(stream)": "payroll", "(line)": CARDS if key == "line 9" else ""}
        assert stream == named.get(field, CARDS), (key, stream)
    unreadable = {key: reason for _, key, field, reason in rejects if field == "(line)"}
    assert unreadable == {
        "line 8": "is not valid JSON",
        "line 9": "is a RECORD without a stream and a data object",
        "line 10": "is not an Airbyte message (a JSON object with a type)",
        "line 11": "is not valid UTF-8",
    }
    ledger = dict(query(store, "SELECT transaction_id, state FROM transactions"))
    assert ledger == {tid: "completed" for tid in written}


def test_poison_lines_still_let_every_state_through_and_the_run_records_its_counts(poison_run):
    done, store = poison_run
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    messages = messages_of(done.stdout)
    assert not traces_of(messages)
    # records of card_spend before each STATE, rejects included (line 9 names card_spend)
    assert [(s["id"], s["destinationStats"]["recordCount"]) for s in states_of(messages)] == [
        (1, 8),
        (2, 7),
    ]
    runs = query(store, "SELECT outcome, records_in, records_rejected, error FROM runs")
    assert runs == [("succeeded", len(POISON_LINES) - 2, len(expected_rejects()), None)]
    no_run_is_left_running(store)


def test_a_run_of_only_unreadable_lines_fails_and_says_why(sandbox_url, tmp_path):
    store = tmp_path / "status.duckdb"
    lines = [b"not json", b"[]", b'{"type": "RECORD"}', b"\xff", text(stream_state(CARDS, 1))]
    done = run_write(write_raw(tmp_path / "run", settings(sandbox_url, store), lines))
    assert done.returncode != 0
    trace = traces_of(messages_of(done.stdout))[-1]["error"]
    assert trace["failure_type"] == "config_error"
    assert "4 of 4 records were rejected" in trace["message"]
    runs = query(store, "SELECT outcome, records_in, records_rejected, error FROM runs")
    assert runs == [("failed", 4, 4, trace["message"])]
    keys = sorted(r[0] for r in query(store, "SELECT record_key FROM rejects"))
    assert keys == ["line 1", "line 2", "line 3", "line 4"]
    assert books(sandbox_url) == {}


def test_a_company_id_counts_only_in_its_canonical_form(sandbox_url, tmp_path):
    """Routed by a record field: other spellings of Xero's id are not Xero's id."""
    spellings = {
        "upper": XERO.upper(),
        "urn": f"urn:uuid:{XERO}",
        "braces": f"{{{XERO}}}",
        "no-hyphens": XERO.replace("-", ""),
        "arabic-indic": XERO.replace("1", "\u0661"),
    }
    records = [record(CARDS, flat(key, company=company)) for key, company in spellings.items()]
    store = tmp_path / "status.duckdb"
    config = routed(sandbox_url, store, max_rejected_share=1)
    write_in_process(config, catalog(CARDS), [*records, stream_state(CARDS, 1)])

    written = books(sandbox_url)
    assert {t: e["company_id"] for t, e in written.items()} == {txn_id(CARDS, "upper"): XERO}
    rejects = query(store, "SELECT record_key, field, reason FROM rejects")
    assert sorted(r[0] for r in rejects) == ["arabic-indic", "braces", "no-hyphens", "urn"]
    assert all(field == "company" and "company id (UUID)" in why for _, field, why in rejects)


# -- however a run ends, it records how -----------------------------------------------------------
def test_a_run_that_ends_on_an_unexpected_error_is_recorded_failed(sandbox_url, tmp_path):
    """The input breaks off with an error that is not the destination's own (a reader that
    fails): the run is `failed`, with the kind of error, and what came before is delivered."""
    store = tmp_path / "status.duckdb"

    def broken_input():
        yield record(CARDS, flat("x1"))
        yield stream_state(CARDS, 1)
        yield record(CARDS, flat("x2"))
        raise OSError("stdin went away")

    echoed = []
    with pytest.raises(OSError, match="stdin went away"):
        for state in iter_write(settings(sandbox_url, store), catalog(CARDS), broken_input()):
            echoed.append(state["state"]["id"])
    assert echoed == [1]
    # x1's sync was opened, not followed (the run failed first); Codat still completes it
    assert set(wait_until(lambda: books(sandbox_url))) == {txn_id(CARDS, "x1")}
    ((outcome, error),) = query(store, "SELECT outcome, error FROM runs")
    assert outcome == "failed" and "unexpected error (OSError)" in error
    assert "stdin went away" not in error  # a foreign message may quote anything; not stored


def test_too_many_rejects_records_the_reason_in_the_run(sandbox_url, tmp_path):
    store = tmp_path / "status.duckdb"
    lines = [record(CARDS, flat("ok")), record(CARDS, flat("bad", amount="x"))]
    with pytest.raises(AirbyteTracedException) as failure:
        list(iter_write(settings(sandbox_url, store), catalog(CARDS), lines))
    assert failure.value.failure_type == FailureType.config_error
    assert query(store, "SELECT outcome, error FROM runs") == [("failed", failure.value.message)]


def read_until(process: subprocess.Popen, wanted: str, timeout: float) -> str:
    deadline, seen = time.monotonic() + timeout, b""
    while wanted.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {wanted!r} on stdout: {seen[-2000:]!r}"
        if select.select([process.stdout], [], [], left)[0]:
            chunk = os.read(process.stdout.fileno(), 65536)
            assert chunk, f"stdout closed: {seen[-2000:]!r}"
            seen += chunk
    return seen.decode()


def test_a_terminated_run_is_recorded_failed_not_left_running(sandbox_url, tmp_path):
    """SIGTERM (how the platform cancels a job) while the run waits for more input."""
    store = tmp_path / "status.duckdb"
    paths = write_files(tmp_path / "run", settings(sandbox_url, store), catalog(CARDS), [])
    process = subprocess.Popen(
        [str(CLI), "write", "--config", str(paths["config"]), "--catalog", str(paths["catalog"])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        for line in (record(CARDS, flat("t1")), stream_state(CARDS, 1)):
            process.stdin.write(text(line) + b"\n")
        process.stdin.flush()
        seen = read_until(process, '"STATE"', timeout=120)  # t1 is pushed and committed
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) != 0
        seen += process.stdout.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdin.close()
        process.stdout.close()
    ((outcome, error),) = query(store, "SELECT outcome, error FROM runs")
    assert outcome == "failed" and "stopped before it finished" in error
    trace = traces_of(messages_of(seen.encode()))[-1]["error"]
    assert trace["message"] == error and trace["failure_type"] == "transient_error"
    assert set(books(sandbox_url)) == {txn_id(CARDS, "t1")}
