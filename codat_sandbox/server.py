"""Serve the sandbox over loopback: in the foreground (the CLI) or in a thread (tests, demo)."""

from __future__ import annotations

import gc
import socket
import threading
import time

import uvicorn

# Young-generation collections between two full ones (CPython's default is 10).
FULL_COLLECTION_EVERY = 10_000


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def config_for(app, host: str, port: int, log_level: str = "warning") -> uvicorn.Config:
    # h11 so a dropped connection looks the same as it would behind a real load balancer
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http="h11",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )


def serve(app, host: str, port: int, log_level: str = "info") -> None:
    make_full_collections_rare()
    uvicorn.Server(config_for(app, host, port, log_level)).run()


def make_full_collections_rare() -> None:
    """The sandbox keeps every sync and transaction it is sent, an ever-growing heap with no
    cycles to find. CPython still rescans all of it on each full collection: at a few hundred
    50-item pushes a second that was most of the server's CPU, and pauses of up to a second.
    Young collections, where cyclic garbage normally dies, run as before; only full ones wait.
    Called where the process is the server (the CLI), never in a host process such as a test."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


class ServerThread:
    """`with ServerThread(app) as base_url:` runs uvicorn on a free loopback port."""

    def __init__(self, app, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.server = uvicorn.Server(config_for(app, self.host, self.port))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"The sandbox did not start on {self.base_url}.")
            time.sleep(0.01)
        return self.base_url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
