"""The command line's shared words: env names and exit codes defined once (cli/env.py) and
documented (docs/cli.md); one httpx.Client factory; `python -m ...cli` is the same program."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from destination_codat_expenses.cli import env
from destination_codat_expenses.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "cli.md"
ENV_NAMES = {name: value for name, value in vars(env).items() if name.endswith("_ENV")}
EXIT_CODES = {name: value for name, value in vars(env).items() if name.startswith("EXIT_")}


def python_files(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and type(n.value) is str}


def commands(parser) -> list[str]:
    """Every command path: `status refresh`, `syncs list`, `demo`, ..."""
    found = []
    for action in parser._subparsers._group_actions:
        for name, sub in action.choices.items():
            inner = commands(sub) if sub._subparsers else []
            found += [f"{name} {rest}" for rest in inner] or [name]
    return found


def test_every_env_name_is_written_once_in_the_code():
    restated = [
        f"{path.relative_to(ROOT)}: {value}"
        for path in python_files("destination_codat_expenses", "report_app")
        if path != ROOT / "destination_codat_expenses" / "cli" / "env.py"
        for value in ENV_NAMES.values()
        if value in string_constants(path)
    ]
    assert not restated, "env names written outside cli/env.py:\n" + "\n".join(restated)


def test_every_env_name_and_exit_code_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    missing = [value for value in ENV_NAMES.values() if f"`{value}`" not in text]
    codes = set(re.findall(r"^\| (\d+) \|", text, re.MULTILINE))
    missing += [name for name, code in EXIT_CODES.items() if str(code) not in codes]
    assert not missing, f"docs/cli.md does not document {missing}"


def test_every_command_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    missing = [c for c in commands(build_parser()) if f"`codat-expenses {c}" not in text]
    assert not missing, f"docs/cli.md has no row for {missing}"


def test_only_codat_http_builds_an_httpx_client():
    builders = []
    for path in python_files("destination_codat_expenses", "report_app"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("Client", "AsyncClient")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "httpx"
            ):
                builders.append(str(path.relative_to(ROOT)))
    assert builders == ["destination_codat_expenses/codat/http.py"]


def test_python_dash_m_runs_the_same_command_line():
    """The report's retry button and the benchmarks start the tool this way."""
    result = subprocess.run(
        [sys.executable, "-m", "destination_codat_expenses.cli", "syncs", "show", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == env.EXIT_OK, result.stderr
    assert "usage: codat-expenses syncs show" in result.stdout
