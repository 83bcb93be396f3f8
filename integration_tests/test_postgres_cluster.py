"""The throwaway PostgreSQL cluster the PostgreSQL status store is tested on (testing/postgres.py):
a real server (15 or newer) on a loopback port with password authentication, real uniqueness
across connections, fresh databases per test, and nothing left behind once it stops."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest

from testing.postgres import throwaway_cluster


def test_the_cluster_is_postgresql_15_or_newer_and_asks_for_the_password(postgres_url):
    with psycopg.connect(postgres_url) as connection:
        version = connection.execute("SHOW server_version_num").fetchone()[0]
    assert int(version) >= 150000
    address = urlparse(postgres_url)
    assert address.hostname == "127.0.0.1" and address.password
    wrong = postgres_url.replace(f":{address.password}@", ":not-the-password@")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong).close()


def test_a_unique_key_holds_across_connections(postgres_database):
    with psycopg.connect(postgres_database, autocommit=True) as first:
        first.execute("CREATE TABLE claims (transaction_id TEXT PRIMARY KEY, owner TEXT)")
        first.execute("INSERT INTO claims VALUES ('t-1', 'process A')")
        with psycopg.connect(postgres_database, autocommit=True) as second:
            with pytest.raises(psycopg.errors.UniqueViolation):
                second.execute("INSERT INTO claims VALUES ('t-1', 'process B')")
            claimed = second.execute(
                "INSERT INTO claims VALUES ('t-1', 'process B') ON CONFLICT DO NOTHING "
                "RETURNING owner"
            ).fetchall()
        rows = first.execute("SELECT transaction_id, owner FROM claims").fetchall()
    assert claimed == [] and rows == [("t-1", "process A")]


def test_each_test_database_starts_empty(postgres_database):
    with psycopg.connect(postgres_database) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()[0]
    assert tables == 0


def test_a_stopped_cluster_leaves_no_server_and_no_files():
    with throwaway_cluster() as url:
        port = urlparse(url).port
        with psycopg.connect(url) as connection:
            folder = connection.execute("SHOW data_directory").fetchone()[0]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nobody listens any more
    assert not Path(folder).exists()
