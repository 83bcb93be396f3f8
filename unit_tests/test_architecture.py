"""The layout is the architecture: imports run one way, each responsibility lives in one room.

Read from the source (ast), not from a running interpreter, so a module that is never imported
by the tests is checked too. Layers, lowest first: a module may import from its own layer or
below, never above. Within a layer, import cycles are refused outright.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = "destination_codat_expenses"

# lowest first; a module not listed belongs to the layer of its package
LAYERS: list[set[str]] = [
    {  # the vocabulary: no I/O, no knowledge of anything above
        "errors",
        "models",
        "jsonwire",
        "currencies",
        "values",
        "crashpoints",
        "stopping",
        "redaction",
    },
    {
        "mapping",
        "rules",
        "family_mapping",
        "receipts",
        "config",
    },  # pure record -> payload, settings
    {"codat", "store"},  # the only HTTP, the only SQL
    {
        "companies",
        "company_names",
        "reconcile",
        "uploads",
        "follow",
        "outcomes",
        "streams",
        "updates",
        "pushes",
    },  # one push, one follow; streams and updates route the family and its versions
    {"pipeline", "retry", "refresh", "check"},  # what a command does
    {"webhooks", "protocol"},  # edges that are not Airbyte's
    {"destination", "demo", "cli", "run"},  # entry points
]


def layer_of(module: str) -> int:
    """`destination_codat_expenses.store.db` -> the layer of `store`."""
    part = module.split(".")[1] if "." in module else module
    for rank, names in enumerate(LAYERS):
        if part in names:
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in this test")


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module this file imports, absolute, including imports inside functions."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def product_modules() -> dict[str, set[str]]:
    known = {module_name(p) for p in python_files(PRODUCT)}
    graph = {}
    for path in python_files(PRODUCT):
        wanted = {m for m in imports_of(path) if m in known}
        graph[module_name(path)] = wanted - {module_name(path)}
    return graph


def test_codat_sandbox_imports_nothing_from_the_product():
    for path in python_files("codat_sandbox"):
        bad = {m for m in imports_of(path) if m.split(".")[0] in (PRODUCT, "report_app")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("package", [PRODUCT, "report_app", "codat_sandbox", "benchmarks"])
def test_shipped_code_imports_no_test_code(package):
    for path in python_files(package):
        bad = {
            m for m in imports_of(path) if m.split(".")[0] in ("integration_tests", "unit_tests")
        }
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_no_import_runs_from_a_lower_layer_up():
    upward = []
    for module, imported in product_modules().items():
        for target in imported:
            if target == PRODUCT or module == PRODUCT:
                continue
            if layer_of(target) > layer_of(module):
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that run back up:\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    graph = product_modules()

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    return [*path, nxt]
                if nxt not in path and len(path) < 12:
                    stack.append((nxt, [*path, nxt]))
        return None

    cycles = [c for c in map(cycle_from, graph) if c]
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    "library, allowed",
    [
        ("airbyte_cdk", {"destination"}),
        ("httpx", {"codat"}),
        ("duckdb", {"store"}),
        ("streamlit", set()),
    ],
)
def test_each_library_is_spoken_in_one_room(library, allowed):
    for path in python_files(PRODUCT):
        module = module_name(path)
        room = module.split(".")[1] if "." in module else module
        uses = any(m.split(".")[0] == library for m in imports_of(path))
        assert not uses or room in allowed, f"{module} imports {library}"


@pytest.mark.parametrize("package", ["webhooks", "cli", "codat", "store", "demo"])
def test_each_room_is_a_subpackage(package):
    assert (ROOT / PRODUCT / package / "__init__.py").is_file()


# each word of the vocabulary, and the one file allowed to spell it out
WORDS = {
    "1000, 1010": "destination_codat_expenses/models.py",
    'ValidationError", "PushError': "destination_codat_expenses/models.py",
    "previously been processed": "destination_codat_expenses/codat/errors.py",
    "MAX_ID_CHARS =": "destination_codat_expenses/models.py",
    "Success (Data written)": "destination_codat_expenses/models.py",
    '"Customer action"': "destination_codat_expenses/models.py",  # who acts on a code
}


@pytest.mark.parametrize("word", sorted(WORDS))
def test_each_word_of_the_vocabulary_is_defined_once(word):
    files = [*python_files(PRODUCT), *python_files("report_app")]
    spelled = [str(p.relative_to(ROOT)) for p in files if word in p.read_text()]
    assert spelled == [WORDS[word]], f"{word!r} is spelled out in {spelled}"
