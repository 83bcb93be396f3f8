"""The docs must keep up with the code: each test fails when something is added but not documented.

Datasette's habit: every setting, knob, route and status the code knows about is looked up in
the docs, in the section where a reader would look for it.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from codat_sandbox import admin, api
from codat_sandbox.engine import SYNC_STATUS_TEXT
from codat_sandbox.faults import FaultPlan
from codat_sandbox.ledger import COMPANY_SETTINGS
from codat_sandbox.platforms import PLATFORMS

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_DOC = ROOT / "docs" / "sandbox.md"


def section(markdown: str, title: str) -> str:
    """The text under the heading `title` (any level), up to the next heading of that level."""
    match = re.search(rf"^(#+) {re.escape(title)}\s*$", markdown, re.MULTILINE)
    assert match, f"docs/sandbox.md has no section titled {title!r}"
    level = len(match.group(1))
    rest = markdown[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def first_table(text: str) -> list[str]:
    """The rows of the first Markdown table in `text`."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def table_first_cells(text: str) -> list[str]:
    """The first cell of every row of the first table, without backticks (header rows too)."""
    return [row.split("|")[1].strip().strip("`") for row in first_table(text)]


@pytest.fixture(scope="module")
def sandbox_doc() -> str:
    return SANDBOX_DOC.read_text(encoding="utf-8")


def test_every_fault_knob_is_in_the_faults_table(sandbox_doc):
    documented = set(table_first_cells(section(sandbox_doc, "Faults")))
    missing = [f.name for f in fields(FaultPlan) if f.name not in documented]
    assert not missing, f"FaultPlan knobs missing from docs/sandbox.md 'Faults': {missing}"


def test_every_sync_status_code_has_a_row_with_its_text(sandbox_doc):
    rows = {}
    for line in first_table(section(sandbox_doc, "How to reach every sync status code")):
        cells = [c.strip() for c in line.split("|")]
        if cells[1].isdigit():
            rows[int(cells[1])] = cells[2]
    assert sorted(rows) == sorted(SYNC_STATUS_TEXT), "the status table and the engine disagree"
    wrong = {code: text for code, text in rows.items() if text != SYNC_STATUS_TEXT[code]}
    assert not wrong, f"status texts differ from engine.SYNC_STATUS_TEXT: {wrong}"


def test_every_company_setting_is_in_the_settings_table(sandbox_doc):
    documented = set(table_first_cells(section(sandbox_doc, "Company settings")))
    missing = sorted(COMPANY_SETTINGS - documented)
    assert not missing, f"company settings missing from docs/sandbox.md: {missing}"
    invented = sorted(documented - COMPANY_SETTINGS - {"setting", "---"})
    assert not invented, f"docs/sandbox.md documents settings the code refuses: {invented}"


def documented_routes(routes) -> list[str]:
    return [
        f"`{method} {route.path}`"
        for route in routes
        for method in sorted(route.methods - {"HEAD"})
    ]


def test_every_admin_route_is_in_the_admin_table(sandbox_doc):
    text = section(sandbox_doc, "Admin API")
    missing = [r for r in documented_routes(admin.ROUTES) if r not in text]
    assert not missing, f"admin routes missing from docs/sandbox.md 'Admin API': {missing}"


def test_every_codat_route_is_in_the_endpoints_table(sandbox_doc):
    text = section(sandbox_doc, "Endpoints")
    missing = [r for r in documented_routes(api.ROUTES) if r not in text]
    assert not missing, f"Codat routes missing from docs/sandbox.md 'Endpoints': {missing}"


def test_every_platform_is_in_the_platforms_table(sandbox_doc):
    rows = first_table(section(sandbox_doc, "Platforms"))
    for platform in PLATFORMS.values():
        cells = f"| `{platform.key}` | {platform.name} | {platform.default_currency} |"
        assert any(row.startswith(cells) for row in rows), f"no platform row starting {cells}"


def test_metadata_yaml_has_the_required_fields():
    metadata = yaml.safe_load((ROOT / "metadata.yaml").read_text(encoding="utf-8"))
    assert metadata["metadataSpecVersion"] == "1.0"
    data = metadata["data"]
    for name in (
        "name",
        "definitionId",
        "dockerRepository",
        "dockerImageTag",
        "license",
        "documentationUrl",
        "githubIssueLabel",
        "releaseStage",
        "tags",
    ):
        assert data.get(name), f"metadata.yaml data.{name} is missing or empty"
    assert data["connectorType"] == "destination"
    assert data["connectorSubtype"] == "api"
    assert data["license"] == "MIT"
    assert re.fullmatch(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", data["definitionId"])
    assert data["releaseStage"] in {"alpha", "beta", "generally_available", "custom"}
    assert data["allowedHosts"]["hosts"] == ["api.codat.io"]


def test_readme_opens_with_make_demo_and_make_test():
    top = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:30])
    assert "make demo" in top
    assert "make test" in top


def demo_options() -> list[str]:
    from destination_codat_expenses.cli.main import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command")
    demo = commands.choices["demo"]
    return [
        o for a in demo._actions for o in a.option_strings if o.startswith("--") and o != "--help"
    ]


def test_readme_says_how_to_choose_the_demos_ports_and_folder():
    """Every demo option, the make variable `make demo` passes on as --port, and DEMO_SERVE are
    in the README's demo section."""
    from destination_codat_expenses.cli.env import DEMO_SERVE_ENV

    text = section((ROOT / "README.md").read_text(encoding="utf-8"), "What `make demo` shows")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    port_variable = re.search(r"^demo:.*\n\t.*--port \$\(or \$\((\w+)\)", makefile, re.M)
    assert port_variable, "the Makefile's demo target no longer passes a variable as --port"
    wanted = [*demo_options(), port_variable.group(1), DEMO_SERVE_ENV]
    missing = [name for name in wanted if name not in text]
    assert not missing, f"README's demo section does not mention {missing}"


def test_codat_openapi_copies_keep_their_license_and_notice():
    folder = ROOT / "codat_sandbox" / "openapi"
    assert "Apache License" in (folder / "LICENSE").read_text(encoding="utf-8")
    notice = (folder / "NOTICE").read_text(encoding="utf-8")
    assert "Codat Ltd." in notice
    assert "Apache" in notice


# -- the destination's docs ------------------------------------------------------------------------
DESTINATION_DOC = ROOT / "docs" / "destination.md"
STORE_DOC = ROOT / "docs" / "status-store.md"


def test_every_setting_is_documented_in_the_settings_table():
    import json

    spec = json.loads((ROOT / "destination_codat_expenses" / "spec.json").read_text())
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", DESTINATION_DOC.read_text(), re.M))
    assert set(spec["connectionSpecification"]["properties"]) <= documented


def test_every_field_mapping_part_is_documented():
    from destination_codat_expenses.mapping import FieldNames

    text = DESTINATION_DOC.read_text()
    for part, default in vars(FieldNames()).items():
        assert f"| `{part}` | `{default}` |" in text, part


def test_every_crash_point_is_documented():
    from destination_codat_expenses.crashpoints import POINTS

    text = DESTINATION_DOC.read_text()
    assert all(f"`{point}`" in text for point in POINTS)


def test_every_store_table_and_view_is_documented():
    schema = (ROOT / "destination_codat_expenses" / "store" / "schema_v1.sql").read_text()
    names = re.findall(r"CREATE (?:TABLE IF NOT EXISTS|OR REPLACE VIEW) (\w+)", schema)
    documented = set(re.findall(r"^\| `(\w+)` \|", STORE_DOC.read_text(), re.M))
    assert names and set(names) <= documented, set(names) - documented


def test_the_receipt_size_cap_is_the_documented_one():
    import json

    from destination_codat_expenses.receipts import MAX_MIB, MAX_RECEIPT_BYTES

    assert MAX_RECEIPT_BYTES == MAX_MIB * 1024 * 1024
    receipts = " ".join(section(DESTINATION_DOC.read_text(), "Receipts").split())
    assert f"at most {MAX_MIB} MiB" in receipts
    spec = json.loads((ROOT / "destination_codat_expenses" / "spec.json").read_text())
    described = spec["connectionSpecification"]["properties"]["receipts_root"]["description"]
    assert f"at most {MAX_MIB} MiB" in described
