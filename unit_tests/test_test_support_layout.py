"""Test support has one home, `testing/`, and only tests reach into the test folders: the
benchmarks, the scripts and `testing/` itself import from `testing/` and the product, never from
`integration_tests/` or `unit_tests/`; the product never imports test support; the connector's
wheel does not ship it. The imports are read from the source with `ast`; the last test imports
each benchmark and script for real, since `make test` runs none of them."""

from __future__ import annotations

import ast
import importlib
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_FOLDERS = ("integration_tests", "unit_tests")
SUPPORT_USERS = ("benchmarks", "scripts", "testing")
PRODUCT = ("destination_codat_expenses", "codat_sandbox", "report_app")


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def reachable_test_modules() -> set[str]:
    """The test folders as packages, and their modules by bare name (pytest puts each test folder
    on sys.path, so `import destination_support` works inside a test run)."""
    names = set(TEST_FOLDERS)
    for folder in TEST_FOLDERS:
        names |= {path.stem for path in (ROOT / folder).glob("*.py")}
    return names


def imported_roots(path: Path) -> set[str]:
    """The top-level name of every absolute import in `path`, wherever it sits in the file
    (imports inside functions count too)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


@pytest.mark.parametrize("path", python_files(*SUPPORT_USERS), ids=module_name)
def test_benchmarks_scripts_and_testing_never_import_the_test_folders(path: Path):
    reached = imported_roots(path) & reachable_test_modules()
    assert not reached, f"{module_name(path)} imports {sorted(reached)}: move it to testing/"


@pytest.mark.parametrize("path", python_files(*PRODUCT), ids=module_name)
def test_the_product_imports_no_test_support(path: Path):
    reached = imported_roots(path) & (reachable_test_modules() | {"testing"})
    assert not reached, f"{module_name(path)} imports test support {sorted(reached)}"


def test_the_wheel_ships_the_product_and_no_test_support():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert sorted(shipped) == sorted(PRODUCT)


@pytest.mark.parametrize("path", python_files("benchmarks", "scripts"), ids=module_name)
def test_every_benchmark_and_script_imports(path: Path):
    """`make bench` and the screenshots are not run by `make test`: a module moved under them
    shows up here instead."""
    importlib.import_module(module_name(path).removesuffix(".__init__"))
