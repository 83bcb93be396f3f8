"""The CLI's store reads keep pandas out of their process (DuckDB would import it, and numpy, at
the first bound parameter: about 0.25 s of the command's start), and DuckDB binds everything
the product binds all the same. Each check runs in a fresh interpreter: DuckDB remembers what
it found for the life of a process, and this one (pytest) has pandas."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from destination_codat_expenses.cli.main import build_parser
from destination_codat_expenses.store.db import migrate, release

ROOT = Path(__file__).resolve().parents[1]


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_duckdb_binds_what_the_product_binds_without_pandas():
    result = python(
        "import sys, datetime, decimal\n"
        "from destination_codat_expenses.store.dataframes import skip_dataframe_imports\n"
        "skip_dataframe_imports()\n"
        "import duckdb\n"
        "from destination_codat_expenses.store.status_store import columns\n"
        "table, params = columns(tid=('VARCHAR', ['a', None]), n=('INTEGER', [1, 2]),\n"
        "    amount=('DECIMAL(38,9)', [decimal.Decimal('12.34'), None]),\n"
        "    day=('DATE', [datetime.date(2024, 5, 2)] * 2), ok=('BOOLEAN', [True, False]),\n"
        "    at=('TIMESTAMPTZ', [datetime.datetime(2024, 5, 2, tzinfo=datetime.UTC)] * 2))\n"
        "c = duckdb.connect()\n"
        "rows = c.execute(f'SELECT tid, n, amount, day, ok FROM {table}', params).fetchall()\n"
        "assert rows[0] == ('a', 1, decimal.Decimal('12.340000000'), datetime.date(2024, 5, 2),"
        " True), rows\n"
        "assert c.execute('SELECT ?, ?', ['x', 7]).fetchall() == [('x', 7)]\n"
        "print(sys.modules.get('pandas') is not None, 'numpy' in sys.modules)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_a_cli_command_runs_without_importing_pandas(tmp_path):
    store = tmp_path / "status.duckdb"
    migrate(str(store))
    release(str(store))
    result = python(
        "import atexit, sys\n"
        "atexit.register(lambda: print('pandas imported:', bool(sys.modules.get('pandas'))))\n"
        "from destination_codat_expenses.cli.main import console\n"
        f"sys.argv = ['codat-expenses', 'syncs', 'list', '--store', {str(store)!r}]\n"
        "console()\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pandas imported: False" in result.stdout


def test_only_the_cli_reads_hide_pandas():
    """The destination and the commands that write keep pandas: without it DuckDB binds a long
    list of parameters about 3x slower (store/dataframes.py)."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {
        "destination-codat-expenses": "destination_codat_expenses.run:run",
        "codat-expenses": "destination_codat_expenses.cli.main:console",
    }
    entry = (ROOT / "destination_codat_expenses" / "cli" / "__main__.py").read_text()
    assert "console()" in entry
    parser = build_parser()
    reads = [["syncs", "list"], ["runs", "list"], ["rejects", "list"], ["syncs", "show", "s"]]
    for words in reads:
        assert parser.parse_args([*words, "--store", "x"]).reads_only, words
    writes = [["status", "refresh"], ["retry", "--sync", "s"]]
    for words in writes:
        assert not getattr(parser.parse_args([*words, "--store", "x"]), "reads_only", False)
