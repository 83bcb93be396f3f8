"""What the connector image and Airbyte's registry are told agrees with itself and with this
repository: one base image (Dockerfile and metadata.yaml), pinned by digest; the entry point is
the console script; `requires-python` covers the base images' Python; `documentationUrl` (spec and
metadata) is a page of this repository's docs that exists."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
METADATA = yaml.safe_load((ROOT / "metadata.yaml").read_text(encoding="utf-8"))["data"]
SPEC = json.loads((ROOT / "destination_codat_expenses" / "spec.json").read_text(encoding="utf-8"))
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
BASE_IMAGE = re.compile(
    r"docker\.io/airbyte/python-connector-base:\d+\.\d+\.\d+@sha256:[0-9a-f]{64}"
)


def test_the_dockerfile_builds_on_the_base_image_metadata_names():
    base = METADATA["connectorBuildOptions"]["baseImage"]
    assert BASE_IMAGE.fullmatch(base), base
    assert f"ARG BASE_IMAGE={base}\n" in DOCKERFILE
    assert DOCKERFILE.count("FROM ${BASE_IMAGE}") == 2  # the builder and the image


def test_the_entry_point_is_the_connectors_console_script():
    script = "destination-codat-expenses"
    assert PYPROJECT["project"]["scripts"][script] == "destination_codat_expenses.run:run"
    assert f'ENV AIRBYTE_ENTRYPOINT="{script}"' in DOCKERFILE
    assert f'ENTRYPOINT ["{script}"]' in DOCKERFILE
    assert "USER airbyte" in DOCKERFILE


def test_the_image_installs_the_connector_without_extras():
    assert "scripts/install-connector.sh" in DOCKERFILE
    script = (ROOT / "scripts" / "install-connector.sh").read_text(encoding="utf-8")
    export = next(line for line in script.splitlines() if " export " in line)
    assert "--no-dev" in export and "--extra" not in export and "--all-extras" not in export
    assert "[report]" not in DOCKERFILE and "[sandbox]" not in DOCKERFILE


def test_requires_python_covers_the_base_images_python():
    supported = SpecifierSet(PYPROJECT["project"]["requires-python"])
    # python-connector-base 4.0.x carries 3.11, 4.1.x carries 3.13
    assert all(version in supported for version in ("3.11.11", "3.12.9", "3.13.9"))


def test_documentation_url_is_a_page_of_this_repository_that_exists():
    urls = PYPROJECT["project"]["urls"]
    prefix = urls["Repository"] + "/blob/main/"
    assert SPEC["documentationUrl"] == METADATA["documentationUrl"] == urls["Documentation"]
    assert SPEC["documentationUrl"].startswith(prefix)
    page = ROOT / SPEC["documentationUrl"].removeprefix(prefix)
    assert page.is_file(), f"{page} does not exist"
