"""A throwaway PostgreSQL cluster for tests and benchmarks: Debian's server binaries
(/usr/lib/postgresql/<version>/bin, installed by `make postgres`), a fresh cluster in a temporary
folder on a free loopback port, stopped and deleted afterwards. No system service is assumed or
touched.

initdb refuses to run as root, so under root (CI, the dev machines) the cluster belongs to the
`postgres` user the Debian package creates (or, without it, to a system user made here) and every
server command runs through `runuser`. The superuser has a random password, so the URL looks like
a real one (`postgresql://user:password@127.0.0.1:port/db`) and secret-scrubbing can be tested.

Speed over durability: fsync and full-page writes are off. The cluster only has to outlive the
processes the tests kill, never a crash of the machine.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg

from codat_sandbox.server import free_port

BIN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "codat"
CLUSTER_USER = "postgres"  # Debian's package makes it
FALLBACK_USER = "codat-expenses-pg"
START_TIMEOUT_S = 60
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "200",  # fleets of destination processes, each with a few threads
}


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def server_bin() -> Path:
    """The newest installed version's bin folder."""
    found = sorted(
        (p for p in Path("/").glob(BIN_GLOB.lstrip("/")) if (p / "initdb").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found:
        raise PostgresMissing(
            f"No PostgreSQL server under {BIN_GLOB}: run `make postgres` (Debian's postgresql)."
        )
    return found[-1]


def cluster_owner() -> str | None:
    """Who runs the server: None for this user, a system user's name under root."""
    if os.geteuid() != 0:
        return None
    for name in (CLUSTER_USER, FALLBACK_USER):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_USER],
        check=True,
        capture_output=True,
    )
    return FALLBACK_USER


def as_owner(owner: str | None, command: list[str]) -> list[str]:
    return command if owner is None else ["runuser", "-u", owner, "--", *command]


def run(owner: str | None, command: list[str], log: Path) -> None:
    done = subprocess.run(
        as_owner(owner, command), capture_output=True, text=True, timeout=START_TIMEOUT_S
    )
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(
            f"{Path(command[0]).name} failed ({done.returncode}): {done.stderr[-2000:]}{tail}"
        )


def prepare_folder(owner: str | None) -> Path:
    """A fresh folder the owner can use (pytest's tmp folders are private to root)."""
    root = Path(tempfile.mkdtemp(prefix="codat-pg-"))
    for name in ("data", "socket"):
        (root / name).mkdir()
    if owner is not None:
        for path in (root, root / "data", root / "socket"):
            shutil.chown(path, owner, owner)
    return root


def init_cluster(bin_dir: Path, owner: str | None, root: Path, password: str) -> None:
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if owner is not None:
        shutil.chown(pwfile, owner, owner)
    initdb = [str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", SUPERUSER]
    initdb += ["--pwfile", str(pwfile), "--auth", "scram-sha-256", "-E", "UTF8", "--no-sync"]
    run(owner, [*initdb, "--locale", "C.UTF-8"], root / "initdb.log")
    pwfile.unlink()


def start_server(bin_dir: Path, owner: str | None, root: Path, port: int) -> None:
    options = " ".join(f"-c {name}={value}" for name, value in SETTINGS.items())
    options += f" -p {port} -k {root / 'socket'}"
    command = [str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "server.log")]
    run(owner, [*command, "-o", options, "-w", "-t", str(START_TIMEOUT_S), "start"], root / "x")


def stop_server(bin_dir: Path, owner: str | None, root: Path) -> None:
    with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
        run(
            owner,
            [str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"],
            root / "server.log",
        )


def url_for(password: str, port: int, database: str = "postgres") -> str:
    return f"postgresql://{SUPERUSER}:{quote(password, safe='')}@127.0.0.1:{port}/{database}"


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """A running cluster; yields the superuser's URL to its `postgres` database. Stopped and
    deleted on the way out, whatever happened inside."""
    bin_dir, owner = server_bin(), cluster_owner()
    password = secrets.token_urlsafe(16)
    root = prepare_folder(owner)
    try:
        init_cluster(bin_dir, owner, root, password)
        port = free_port()
        start_server(bin_dir, owner, root, port)
        try:
            yield url_for(password, port)
        finally:
            stop_server(bin_dir, owner, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def new_database(admin_url: str, name: str) -> str:
    """Create database `name` on the cluster `admin_url` points at; returns its URL."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"database names here are letters, digits and underscores: {name!r}")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"
