"""The PostgreSQL status store on a real throwaway cluster: its password is a secret that comes
out nowhere (the destination's output, the stored settings, any table, the operator commands,
the receiver's /healthz), concurrent migrators are serialised, the CLI reads it, and a wrong
password is a clear error that does not repeat it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from codat_sandbox.app import SandboxSettings, create_app
from codat_sandbox.server import ServerThread
from destination_codat_expenses.cli.env import STORE_ENV
from destination_codat_expenses.config import Config
from destination_codat_expenses.mapping import map_record
from destination_codat_expenses.store import pg
from destination_codat_expenses.store.db import MIGRATIONS, migrate, release, version_of
from destination_codat_expenses.store.pg import backend_for, claim_key
from destination_codat_expenses.store.pg_claims import take_over_in_flight
from destination_codat_expenses.store.status_store import OUTCOMES, StatusStore
from destination_codat_expenses.store.writer import TryAgain
from destination_codat_expenses.webhooks.health import FAILING, OK, postgres_probe
from integration_tests.destination_support import (
    API_KEY,
    XERO,
    catalog,
    flat,
    messages_of,
    record,
    run_cli,
    run_write,
    settings,
    states_of,
    stream_state,
    write_files,
)

OPS = Path(sys.executable).with_name("codat-expenses")
S = "card_spend"


def password_of(url: str) -> str:
    return urlsplit(url).password


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    return url.replace(f":{parts.password}@", f":{password}@")


def every_text_in(url: str) -> str:
    """Every value of every table of the store, as text."""
    out = []
    with psycopg.connect(url) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
        for (table,) in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"').fetchall():  # noqa: S608
                out.append(" ".join(str(value) for value in row))
    return "\n".join(out)


def config_for(base_url: str, store: str) -> dict:
    config = settings(base_url, Path("unused"))
    del config["status_store_path"]
    return {**config, "status_store": store}


def test_a_run_on_postgres_keeps_its_password_out_of_everything(postgres_database, tmp_path):
    secret = password_of(postgres_database)
    lines = [record(S, flat(f"pg-{n}", XERO)) for n in range(5)] + [stream_state(S, 1)]
    with ServerThread(create_app(SandboxSettings(api_key=API_KEY))) as base_url:
        paths = write_files(tmp_path, config_for(base_url, postgres_database), catalog(S), lines)
        checked = run_cli("check", "--config", str(paths["config"]))
        written = run_write(paths)
    assert written.returncode == 0, written.stderr.decode()[-2000:]
    assert [s["id"] for s in states_of(messages_of(written.stdout))] == [1]
    for output in (checked.stdout, checked.stderr, written.stdout, written.stderr):
        assert secret not in output.decode()
    assert '"status":"SUCCEEDED"' in checked.stdout.decode()
    stored = every_text_in(postgres_database)
    assert secret not in stored
    assert "********" in stored  # the run's settings keep the URL, its password masked
    env = {**os.environ, STORE_ENV: postgres_database}
    for command in (["syncs", "list"], ["runs", "list"], ["rejects", "list"]):
        shown = subprocess.run([str(OPS), *command], env=env, capture_output=True, check=False)
        assert shown.returncode == 0, shown.stderr.decode()
        assert secret not in (shown.stdout + shown.stderr).decode()
    listed = subprocess.run([str(OPS), "syncs", "list"], env=env, capture_output=True, check=True)
    assert "succeeded" in listed.stdout.decode() or "in progress" in listed.stdout.decode()


def test_a_wrong_password_is_a_clear_error_that_does_not_repeat_it(postgres_database, tmp_path):
    wrong = with_password(postgres_database, "Canary-Wrong-Pw-1234")
    with ServerThread(create_app(SandboxSettings(api_key=API_KEY))) as base_url:
        paths = write_files(tmp_path, config_for(base_url, wrong), catalog(S), [])
        checked = run_cli("check", "--config", str(paths["config"]))
    output = (checked.stdout + checked.stderr).decode()
    assert '"status":"FAILED"' in output
    assert "status store" in output and "Canary-Wrong-Pw-1234" not in output
    env = {**os.environ, STORE_ENV: wrong}
    listed = subprocess.run([str(OPS), "syncs", "list"], env=env, capture_output=True, check=False)
    assert listed.returncode != 0
    assert "Canary-Wrong-Pw-1234" not in (listed.stdout + listed.stderr).decode()
    state, why = postgres_probe(wrong)()
    assert state == FAILING and "Canary-Wrong-Pw-1234" not in why


def test_the_health_probe_reads_a_live_store(postgres_database):
    migrate(postgres_database)
    assert postgres_probe(postgres_database)() == (OK, None)
    release(postgres_database)


def migrate_in_a_process(url: str) -> int:
    code = (
        "import sys; from destination_codat_expenses.store.db import migrate; migrate(sys.argv[1])"
    )
    return subprocess.run([sys.executable, "-c", code, url], check=False).returncode


@pytest.mark.slow
def test_concurrent_migrators_apply_each_version_once(postgres_database):
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(migrate_in_a_process, [postgres_database] * 4))
    assert codes == [0, 0, 0, 0]
    with psycopg.connect(postgres_database) as connection:
        versions = connection.execute("SELECT version FROM schema_migrations").fetchall()
    assert sorted(v for (v,) in versions) == [version_of(m) for m in MIGRATIONS]
    assert json.dumps(sorted(v for (v,) in versions))  # one row per version, no repeats


def test_two_processes_settling_one_sync_at_once_both_commit_its_items(postgres_database):
    """Two processes of a fleet follow one sync (a run's own, and one a live run left open to
    the other) and settle it at the same moment: each read that it had no items, and the
    second to commit used to fail the whole run on the first's rows."""
    migrate(postgres_database)
    other = postgres_database + "?application_name=other-process"  # a backend of its own
    status = {"syncId": "sync-1", "syncStatusCode": 2000, "syncUtc": "2026-11-30T09:00:00Z"}
    items = [{"transactionId": f"t{n}", "status": "Completed", "message": "ok"} for n in (1, 2)]
    second_done = []

    def settle_as_the_other_process() -> None:
        with backend_for(other).transaction() as db:
            second_done.append(OUTCOMES.run_all(db, [("co", status, items)]))

    try:
        with backend_for(postgres_database).transaction() as db:
            OUTCOMES.run_all(db, [("co", status, items)])
            racing = threading.Thread(target=settle_as_the_other_process)
            racing.start()
            time.sleep(0.5)  # it has read no items, and waits on the first one's rows
        racing.join(timeout=30)
        assert second_done, "the second process's outcome did not commit"
        with psycopg.connect(postgres_database) as connection:
            rows = connection.execute("SELECT transaction_id FROM push_items").fetchall()
        assert sorted(rows) == [("t1",), ("t2",)]
    finally:
        release(other)
        release(postgres_database)


def test_a_claim_lock_taken_in_work_that_rolled_back_is_let_go(postgres_database):
    """A flush that fails is rolled back and run again; a claim lock taken in it outlived the
    rollback, and the process later took the row, claimed meanwhile by another process, for
    one it had taken over: both pushed it (the fleet test saw ids pushed twice)."""
    migrate(postgres_database)
    other = postgres_database + "?application_name=other-process"
    first, second = backend_for(postgres_database), backend_for(other)
    row = ("co", "t1")
    try:
        with pytest.raises(RuntimeError), first.transaction() as db:
            assert first.try_lock(db, [row]) == {row}
            raise RuntimeError("another job of the flush failed")
        assert not first.holds(*row)
        with second.transaction() as db:
            assert second.try_lock(db, [row]) == {row}  # the row is free for another process
    finally:
        release(other)
        release(postgres_database)


def fresh_claim_setup(postgres_database: str):
    """A store, a card expense it has never seen, and another process's session holding that
    id's claim lock (as between rolling back its own insert of the id and letting go)."""
    migrate(postgres_database)
    config = Config.from_mapping(settings("http://127.0.0.1:9", Path("unused")))
    mapped = map_record(flat("r1"), S, config.mapping)
    other = backend_for(postgres_database + "?application_name=other-process")
    with other.transaction() as db:
        assert other.try_lock(db, [(XERO, mapped.transaction_id)])  # outlives the commit
    return StatusStore(postgres_database), mapped, other


def test_a_fresh_claim_waits_for_a_lock_another_session_is_letting_go(postgres_database):
    """The claim of a new id took the row and, not getting its lock, pushed it unlocked; once the
    other session let go, a third process took the `sending` row over as a dead process's and
    pushed it too. Now the claim waits for the lock."""
    store, mapped, other = fresh_claim_setup(postgres_database)
    row = (XERO, mapped.transaction_id)
    third = backend_for(postgres_database + "?application_name=third-process")
    letting_go = threading.Timer(0.5, lambda: other.unlock([claim_key(*row)]))
    try:
        letting_go.start()
        assert store.mark_sending(XERO, S, [mapped]) == [mapped.transaction_id]
        assert backend_for(postgres_database).holds(*row)
        with third.transaction() as db:
            assert take_over_in_flight(db, XERO) == []  # a live process's push: not taken
    finally:
        letting_go.join()
        for backend in (other, third):
            release(backend.url)
        release(postgres_database)


def test_a_fresh_claim_that_cannot_get_its_lock_claims_nothing(postgres_database, monkeypatch):
    """A lock that is not let go within the wait: the claim fails as a whole (the store's writer
    runs it again, then the push fails), the row is not left behind, no lock is kept."""
    monkeypatch.setattr(pg, "FRESH_LOCK_WAIT_MS", 200)
    store, mapped, other = fresh_claim_setup(postgres_database)
    try:
        with pytest.raises(TryAgain):
            store.mark_sending(XERO, S, [mapped])
        assert not backend_for(postgres_database).held
        with psycopg.connect(postgres_database) as connection:
            assert connection.execute("SELECT count(*) FROM transactions").fetchone() == (0,)
    finally:
        release(other.url)
        release(postgres_database)
