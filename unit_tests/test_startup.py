"""`spec` starts fast because it imports only what it needs: the CDK, not the HTTP client, the
status store (DuckDB), the pipeline or the report. Structural, never timed: the start-up time is
measured by benchmarks/startup.py."""

from __future__ import annotations

import json
import subprocess
import sys

# what `spec` must not load: each costs start-up time and memory and `spec` uses none of it
HEAVY = ("duckdb", "pandas", "numpy", "httpx", "streamlit", "pyarrow", "uvicorn", "starlette")
MARK = "loaded-modules:"

# The console script's own code path: the entry point with `spec` as its arguments, in a fresh
# interpreter, then what that left in sys.modules (on stderr, so stdout stays the protocol's),
# from an exit handler: the entry point ends the process once they have run (run.py).
SPEC_THEN_MODULES = f"""
import atexit, sys
atexit.register(lambda: print({MARK!r} + ",".join(sorted(sys.modules)), file=sys.stderr))
from destination_codat_expenses.run import run
sys.argv = ["destination-codat-expenses", "spec"]
run()
"""


def run_spec_in_fresh_interpreter() -> tuple[list[dict], set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", SPEC_THEN_MODULES],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    messages = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    marks = [line for line in done.stderr.splitlines() if line.startswith(MARK)]
    assert marks, done.stderr[-2000:]
    return messages, set(marks[-1].removeprefix(MARK).split(","))


def test_spec_loads_no_heavy_module_it_does_not_need():
    messages, modules = run_spec_in_fresh_interpreter()
    assert [m["type"] for m in messages] == ["SPEC"]  # it did answer spec
    assert "api_key" in messages[0]["spec"]["connectionSpecification"]["properties"]
    loaded = sorted(name for name in HEAVY if name in modules)
    assert loaded == [], f"`spec` imported {loaded}; import them where a command needs them"
    product = {name for name in modules if name.startswith("destination_codat_expenses.")}
    for needless in ("pipeline", "store.db", "codat.client", "check"):
        assert f"destination_codat_expenses.{needless}" not in product


def test_a_store_read_from_the_cli_loads_no_client_driver_or_server():
    """`codat-expenses syncs list` and the other reads import the store's reads only: not the
    HTTP client, the PostgreSQL driver, the receiver's server or pandas (a CLI read during a
    write waits for the file; its own start-up should not add half a second)."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from destination_codat_expenses.cli.main import build_parser\n"
            "build_parser().parse_args(['syncs', 'list', '--store', 'x.duckdb'])\n"
            f"print({MARK!r} + ','.join(sorted(sys.modules)))\n",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    modules = set(done.stdout.strip().removeprefix(MARK).split(","))
    loaded = sorted(
        name for name in ("httpx", "psycopg", "starlette", "uvicorn", "pandas") if name in modules
    )
    assert loaded == [], f"the CLI imported {loaded} before running a read"
