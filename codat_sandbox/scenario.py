"""Scenario files: the companies a sandbox starts with (YAML or JSON).

    companies:
      - id: 5c1b8a8e-...        # optional; a uuid is made up when missing
        name: Acme Ltd
        platform: xero          # integration key or name
        baseCurrency: GBP       # optional; the platform's usual currency otherwise
        closedUntil: 2024-03-31 # optional: dates on or before it fail with PushError
        ...                     # see ledger.company_from_spec for every setting

`demo` names the scenario shipped with the sandbox.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from codat_sandbox.ledger import Company, company_from_spec

SCENARIOS = Path(__file__).parent / "scenarios"


def scenario_path(name_or_path: str) -> Path:
    shipped = SCENARIOS / f"{name_or_path}.yaml"
    return shipped if shipped.exists() else Path(name_or_path)


def load_scenario(name_or_path: str) -> list[Company]:
    path = scenario_path(name_or_path)
    if not path.exists():
        shipped = ", ".join(sorted(p.stem for p in SCENARIOS.glob("*.yaml")))
        raise ValueError(
            f"Scenario {name_or_path!r} is neither a file nor a shipped scenario ({shipped})."
        )
    return companies_from(yaml.safe_load(path.read_text()) or {})


def companies_from(document: dict[str, Any]) -> list[Company]:
    if not isinstance(document, dict) or not isinstance(document.get("companies"), list):
        raise ValueError("A scenario is a mapping with a 'companies' list.")
    return [company_from_spec(spec) for spec in document["companies"]]
