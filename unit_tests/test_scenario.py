"""Scenario files: defaults fill a terse company; mistakes are named, not ignored."""

from __future__ import annotations

from datetime import date

import pytest

from codat_sandbox.scenario import load_scenario


def write(tmp_path, text: str) -> str:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return str(path)


def test_terse_company_gets_platform_defaults(tmp_path):
    (company,) = load_scenario(write(tmp_path, "companies:\n  - name: Acme\n    platform: qbo\n"))
    assert company.platform.name == "QuickBooks Online" and company.base_currency == "USD"
    assert {"401", "402", "090"} <= set(company.accounts)
    assert company.config["bankAccount"] == {"id": "090"}


def test_unquoted_yaml_date_and_camel_case_lists_load(tmp_path):
    text = """companies:
  - name: Acme
    closedUntil: 2024-03-31
    taxRates: [{id: T1, name: Export, rate: "0", validTransactionTypes: [Payment]}]
    trackingCategories: [{id: REGION, name: Region, hasChildren: true}]
"""
    (company,) = load_scenario(write(tmp_path, text))
    assert company.closed_until == date(2024, 3, 31)
    assert company.tax_rates["T1"].valid_types == ["Payment"]
    assert company.tracking["REGION"].has_children is True


def test_unknown_setting_is_named(tmp_path):
    with pytest.raises(ValueError, match="colour"):
        load_scenario(write(tmp_path, "companies:\n  - name: Acme\n    colour: red\n"))


def test_unknown_platform_lists_known_ones(tmp_path):
    with pytest.raises(ValueError, match="Xero"):
        load_scenario(write(tmp_path, "companies:\n  - name: Acme\n    platform: sage50\n"))


def test_demo_scenario_has_every_platform():
    platforms = {c.platform.name for c in load_scenario("demo")}
    assert len(platforms) == 8
