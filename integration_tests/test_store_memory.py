"""A DuckDB store that outgrew its writer's memory. DuckDB keeps an ART index whole in memory
to add a key to it, and the ledger's indexes hold every id the store has ever seen: with the
writer's first memory limit too small for them, the first claim of a run failed with DuckDB's
"Out of Memory Error", and so did every run after it (a 600k-id store at the old 256 MB). The
writer now doubles its limit, up to DuckDB's own default, and runs the work again. A real
DuckDB file, seeded by SQL."""

from __future__ import annotations

import duckdb
import pytest

from destination_codat_expenses.config import Config
from destination_codat_expenses.errors import StoreError
from destination_codat_expenses.mapping import map_record, transaction_id_for
from destination_codat_expenses.store import db
from destination_codat_expenses.store.db import (
    bytes_of,
    is_out_of_memory,
    lease_for,
    out_of_memory,
    release,
)
from destination_codat_expenses.store.status_store import StatusStore
from integration_tests.destination_support import (
    XERO,
    books,
    catalog,
    flat,
    messages_of,
    patch_company,
    record,
    run_write,
    settings,
    states_of,
    stream_state,
    write_files,
)
from testing.report_seed import seed_bulk

S = "card_spend"
ROWS = 300_000  # the ledger's two indexes: ~50 MiB in memory
SMALL = 16 * 2**20
BIG, RUN = 1_200_000, 10_000  # a store's ids, and a run's records on top of them


@pytest.fixture
def outgrown(tmp_path, monkeypatch):
    """A store of ROWS ids, and a writer whose memory limit starts below what its indexes take."""
    path = str(tmp_path / "status.duckdb")
    seed_bulk(path, syncs=ROWS // 10, transactions=ROWS)
    monkeypatch.setattr(db, "WRITER_MEMORY_BYTES", SMALL)
    yield path
    release(path)


def test_a_store_that_outgrew_the_writers_memory_takes_a_run_s_batch(outgrown):
    store = StatusStore(outgrown)
    store.prepare()
    config = Config.from_mapping(settings("http://127.0.0.1:9", outgrown))
    batch = [map_record(flat(f"big-{n}"), S, config.mapping) for n in range(50)]
    ids = [t.transaction_id for t in batch]

    assert store.mark_sending(XERO, S, batch) == ids
    store.mark_sent(XERO, ids, {"sync_id": "sync-after-growing"})

    assert lease_for(outgrown).memory_bytes > SMALL
    release(outgrown)
    with duckdb.connect(outgrown, read_only=True) as connection:
        rows = connection.execute(
            "SELECT count(*), min(state), max(last_sync_id) FROM transactions WHERE "
            "transaction_id IN (SELECT unnest(?))",
            [ids],
        ).fetchone()
        total = connection.execute("SELECT count(*) FROM transactions").fetchone()[0]
    assert rows == (50, "sent", "sync-after-growing")
    assert total == ROWS + 50


def test_a_writer_at_its_ceiling_says_what_to_do(tmp_path, monkeypatch):
    """No more memory to give: a sentence naming the store and the ways out, not DuckDB's."""
    path = str(tmp_path / "status.duckdb")
    StatusStore(path).prepare()
    lease = lease_for(path)
    monkeypatch.setattr(lease, "grow_memory", lambda: False)
    error = out_of_memory(lease)
    assert isinstance(error, StoreError)
    assert path in str(error) and "PostgreSQL" in str(error) and "more memory" in str(error)
    release(path)


@pytest.mark.slow
def test_a_run_on_a_store_of_a_million_ids_books_every_record(sandbox_url, tmp_path):
    """The bug as a user met it, at the writer's real first limit (256 MiB): the real
    `write` on a store that has seen 1.2 million ids (its indexes need ~360 MiB once a run's
    keys have landed across them) failed with DuckDB's "Out of Memory Error". Now the run
    succeeds, says it gave the store more memory, and Codat's books hold every record once."""
    store = tmp_path / "status.duckdb"
    seed_bulk(str(store), syncs=BIG // 10, transactions=BIG)
    patch_company(sandbox_url, XERO, {"syncSeconds": 0.01})
    keys = [f"big-{n}" for n in range(RUN)]
    lines = [*(record(S, flat(key)) for key in keys), stream_state(S, 1)]
    paths = write_files(tmp_path / "run", settings(sandbox_url, store), catalog(S), lines)

    result = run_write(paths)

    messages = messages_of(result.stdout)
    assert result.returncode == 0, [m for m in messages if m["type"] != "STATE"][-3:]
    logs = [m["log"]["message"] for m in messages if m["type"] == "LOG"]
    assert any("needs more memory for its indexes" in line for line in logs)
    booked = books(sandbox_url)
    assert sorted(booked) == sorted(transaction_id_for(S, key) for key in keys)
    assert all(entry["writes"] == 1 for entry in booked.values())
    assert len(states_of(messages)) == 1


@pytest.mark.parametrize(
    "shown, expected",
    [("244.1 MiB", int(244.1 * 2**20)), ("18.8 GiB", int(18.8 * 2**30)), ("512 B", 512)],
)
def test_duckdb_sizes_read_as_bytes(shown, expected):
    assert bytes_of(shown) == expected


@pytest.mark.parametrize(
    "error",
    [
        duckdb.OutOfMemoryException("Out of Memory Error: failed to pin block of size 256.0 KiB"),
        duckdb.TransactionException(
            "TransactionContext Error: Failed to commit: could not allocate block of size "
            "256.0 KiB (15.8 MiB/16.0 MiB used)"
        ),
        duckdb.TransactionException(
            "TransactionContext Error: Failed to commit: failed to pin block of size 256.0 KiB "
            "(61.0 MiB/61.0 MiB used)"
        ),
    ],
)
def test_each_way_duckdb_says_it_ran_out_of_memory_is_known(error):
    assert is_out_of_memory(error)


def test_other_duckdb_errors_are_not_taken_for_want_of_memory():
    assert not is_out_of_memory(duckdb.ConstraintException("Duplicate key"))
    assert not is_out_of_memory(MemoryError())
