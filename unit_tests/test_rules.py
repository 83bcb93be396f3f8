"""Defaults and mapping rules: records without currency or account columns become valid bodies;
the first matching rule wins, parts it leaves fall back to the company's then the global
defaults, a record's own value wins over all; bad settings are refused naming rule and field."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from destination_codat_expenses.config import Config, spec
from destination_codat_expenses.errors import ConfigError, RecordError
from destination_codat_expenses.mapping import MappingSettings, map_record
from destination_codat_expenses.rules import (
    PART_PARSERS,
    Fallbacks,
    parsed_fallbacks,
    referenced_ids,
)

TODAY = date(2024, 6, 1)
COMPANY = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"
DEFAULTS = {"currency": "GBP", "account": "EXP-GENERAL", "bank_account": "BANK-CARD"}
CARD_RULES = [
    {"field": "mcc", "range": {"from": 5811, "to": 5814}, "set": {"account": "EXP-MEALS"}},
    {"field": "merchant", "contains": ["uber", "TAXI"], "set": {"account": "EXP-TRAVEL"}},
    {"field": "card_id", "equals": ["card-0042"], "set": {"bank_account": "BANK-CARD-2"}},
    {"field": "employee", "equals": ["Ana Lima"], "set": {"tracking": ["DEPT-SALES"]}},
]


def settings_for(defaults=None, rules=None, company=COMPANY, field=None) -> MappingSettings:
    fallbacks = parsed_fallbacks(defaults, rules, None if field else company)
    return MappingSettings(
        today=TODAY,
        fallbacks=fallbacks,
        company_id=None if field else company,
        company_id_field=field,
    )


def card(**fields) -> dict:
    return {"id": "tx-1", "date": "2024-05-02", "amount": Decimal("12.50"), **fields}


def body(record: dict, mapping: MappingSettings) -> dict:
    return map_record(record, "card_spend", mapping).body


# -- matching ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mcc", [5811, "5812", Decimal("5813"), " 5814 ", Decimal("5811.0")])
def test_an_mcc_range_matches_numbers_and_numeric_text(mcc):
    mapped = body(card(mcc=mcc), settings_for(DEFAULTS, CARD_RULES))
    assert mapped["lines"][0]["accountRef"] == {"id": "EXP-MEALS"}


@pytest.mark.parametrize("mcc", [5810, "5815", "58x2", True, None, "", [5812], {"v": 5812}])
def test_outside_the_range_or_not_a_number_falls_back_to_the_default(mcc):
    mapped = body(card(mcc=mcc), settings_for(DEFAULTS, CARD_RULES))
    assert mapped["lines"][0]["accountRef"] == {"id": "EXP-GENERAL"}


def test_contains_ignores_case_and_equals_compares_text_ignoring_case():
    mapping = settings_for(DEFAULTS, CARD_RULES)
    assert body(card(merchant="UBER *TRIP"), mapping)["lines"][0]["accountRef"]["id"] == (
        "EXP-TRAVEL"
    )
    taxi = body(card(merchant="City Taxi", card_id=" CARD-0042 "), mapping)
    assert taxi["lines"][0]["accountRef"]["id"] == "EXP-TRAVEL"
    assert taxi["bankAccountRef"] == {"id": "BANK-CARD-2"}  # another part: another rule


def test_for_each_part_the_first_matching_rule_wins():
    rules = [
        {"field": "mcc", "equals": [5812], "set": {"account": "FIRST"}},
        {"field": "mcc", "range": {"from": 5000}, "set": {"account": "SECOND", "contact": "S2"}},
    ]
    mapped = body(card(mcc=5812), settings_for(DEFAULTS, rules))
    assert mapped["lines"][0]["accountRef"]["id"] == "FIRST"
    assert mapped["contactRef"]["id"] == "S2"  # the first rule does not set it


def test_equals_compares_numbers_by_value():
    rules = [{"field": "mcc", "equals": ["5812", 4121], "set": {"account": "EXP-X"}}]
    mapping = settings_for(DEFAULTS, rules)
    for mcc in (5812, "5812", Decimal("5812.00"), "4121", 4121):
        assert body(card(mcc=mcc), mapping)["lines"][0]["accountRef"]["id"] == "EXP-X"
    assert body(card(mcc="05813"), mapping)["lines"][0]["accountRef"]["id"] == "EXP-GENERAL"


def test_a_dotted_field_reaches_into_nested_objects():
    rules = [{"field": "merchant_data.mcc", "equals": [5812], "set": {"contact": "SUP-FOOD"}}]
    mapped = body(card(merchant_data={"mcc": "5812"}), settings_for(DEFAULTS, rules))
    assert mapped["contactRef"] == {"id": "SUP-FOOD", "type": "Supplier"}


def test_a_card_spend_record_without_currency_or_account_columns_is_a_full_body():
    record = card(mcc="5812", card_id="card-0042", merchant="Pret", employee="ana lima")
    mapped = body(record, settings_for(DEFAULTS, CARD_RULES))
    assert mapped["currency"] == "GBP"
    assert mapped["bankAccountRef"] == {"id": "BANK-CARD-2"}
    assert mapped["lines"] == [
        {
            "netAmount": Decimal("12.50"),
            "accountRef": {"id": "EXP-MEALS"},
            "trackingRefs": [{"id": "DEPT-SALES", "dataType": "trackingCategories"}],
        },
    ]


def test_the_records_own_value_wins_over_rules_and_defaults():
    record = card(mcc=5812, currency="EUR", account_id="402", bank_account_id="B-OWN")
    mapped = body(record, settings_for(DEFAULTS, CARD_RULES))
    assert (mapped["currency"], mapped["bankAccountRef"]["id"]) == ("EUR", "B-OWN")
    assert mapped["lines"][0]["accountRef"] == {"id": "402"}


def test_a_bad_value_in_the_record_is_its_reject_not_replaced_by_a_default():
    with pytest.raises(RecordError) as raised:
        body(card(currency="XXX"), settings_for(DEFAULTS))
    assert raised.value.field == "currency"


def test_without_a_default_a_missing_currency_says_how_to_give_one():
    with pytest.raises(RecordError, match="no default or mapping rule sets one"):
        body(card(), settings_for({"account": "A"}))


def test_company_defaults_override_the_global_ones_for_that_company_only():
    defaults = {**DEFAULTS, "companies": {OTHER: {"currency": "USD", "contact": "SUP-US"}}}
    mapping = settings_for(defaults, field="company")
    other = body(card(company=OTHER), mapping)
    assert (other["currency"], other["contactRef"]["id"]) == ("USD", "SUP-US")
    assert other["lines"][0]["accountRef"]["id"] == "EXP-GENERAL"
    first = body(card(company=COMPANY), mapping)
    assert first["currency"] == "GBP" and "contactRef" not in first


def test_a_rule_for_one_company_is_skipped_for_the_others():
    rules = [{"field": "mcc", "equals": [5812], "company_id": OTHER, "set": {"account": "O-1"}}]
    mapping = settings_for(DEFAULTS, rules, field="company")
    assert body(card(company=OTHER, mcc=5812), mapping)["lines"][0]["accountRef"]["id"] == "O-1"
    mine = body(card(company=COMPANY, mcc=5812), mapping)
    assert mine["lines"][0]["accountRef"]["id"] == "EXP-GENERAL"


# -- property: first match wins, the rest falls back ------------------------------------------
VALUES = st.one_of(st.integers(5800, 5820), st.sampled_from(["uber", "Pret", "taxi", ""]))
RULE = st.fixed_dictionaries(
    {
        "field": st.sampled_from(["mcc", "merchant"]),
        "matcher": st.one_of(
            st.tuples(st.just("equals"), st.lists(st.integers(5800, 5820), min_size=1)),
            st.tuples(st.just("contains"), st.lists(st.sampled_from(["ub", "ta"]), min_size=1)),
            st.tuples(st.just("range"), st.tuples(st.integers(5800, 5820), st.integers(0, 5))),
        ),
        "set": st.dictionaries(
            st.sampled_from(["account", "contact", "tax_rate"]),
            st.text("ABC123", min_size=1, max_size=4),
            min_size=1,
        ),
    }
)


def as_setting(rule: dict) -> dict:
    kind, arg = rule["matcher"]
    matcher = {"from": arg[0], "to": arg[0] + arg[1]} if kind == "range" else arg
    return {"field": rule["field"], kind: matcher, "set": rule["set"]}


def oracle_matches(rule: dict, record: dict) -> bool:
    """The documented meaning, written independently of rules.py."""
    value = record.get(rule["field"])
    kind, arg = rule["matcher"]
    if value in (None, ""):
        return False
    if kind == "contains":
        return any(part in str(value).lower() for part in arg)
    if not isinstance(value, int):
        return False
    return value in arg if kind == "equals" else arg[0] <= value <= arg[0] + arg[1]


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(RULE, max_size=6),
    mcc=VALUES,
    merchant=VALUES,
    defaults=st.dictionaries(
        st.sampled_from(["account", "contact", "tax_rate"]), st.text("XYZ", min_size=1)
    ),
)
def test_per_part_the_first_matching_rule_wins_and_the_rest_fall_back(
    rules, mcc, merchant, defaults
):
    record = {"mcc": mcc, "merchant": merchant}
    fallbacks = parsed_fallbacks(defaults, [as_setting(r) for r in rules], COMPANY)
    expected = dict(defaults)
    for part in ("account", "contact", "tax_rate"):
        setter = next((r for r in rules if part in r["set"] and oracle_matches(r, record)), None)
        if setter:
            expected[part] = setter["set"][part]
    assert fallbacks.parts_for(record, COMPANY) == expected


# -- settings -----------------------------------------------------------------------------------
def refused(defaults=None, rules=None, company=COMPANY) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        parsed_fallbacks(defaults, rules, company)
    return raised.value


@pytest.mark.parametrize(
    ("defaults", "rules", "setting", "reason"),
    [
        ({"amount": 5}, None, "defaults.amount", "own fact"),
        ({"date": "2024-01-01"}, None, "defaults.date", "own fact"),
        ({"colour": "red"}, None, "defaults.colour", "not a part"),
        ({"currency": "XXX"}, None, "defaults.currency", "not an ISO 4217"),
        ({"tracking": [str(i) for i in range(11)]}, None, "defaults.tracking", "at most 10"),
        ({"companies": {"acme": {}}}, None, "defaults.companies.acme", "not a Codat company"),
        ({"companies": {OTHER: {}}}, None, f"defaults.companies.{OTHER}", "every record goes"),
        (None, {"rules": []}, "mapping_rules", "must be a list"),
        (None, ["x"], "mapping_rules[0]", "must be an object"),
        (None, [{"set": {"account": "A"}, "equals": [1]}], "mapping_rules[0].field", "name"),
        (None, [{"field": "m", "set": {"account": "A"}}], "mapping_rules[0]", "exactly one"),
        (
            None,
            [{"field": "m", "equals": [1], "contains": ["a"], "set": {"account": "A"}}],
            "mapping_rules[0]",
            "exactly one",
        ),
        (None, [{"field": "m", "equals": [1], "set": {}}], "mapping_rules[0].set", "at least"),
        (None, [{"field": "m", "equals": [], "set": {"a": 1}}], "mapping_rules[0].set.a", "part"),
        (None, [{"field": "m", "equals": [], "set": {"account": "A"}}], "[0].equals", "non-empty"),
        (None, [{"field": "m", "equals": [[1]], "set": {"account": "A"}}], "[0].equals", "texts"),
        (None, [{"field": "m", "contains": [""], "set": {"account": "A"}}], "[0].contains", "non"),
        (None, [{"field": "m", "range": {}, "set": {"account": "A"}}], "[0].range", "needs"),
        (
            None,
            [{"field": "m", "range": {"from": "x"}, "set": {"account": "A"}}],
            "[0].range.from",
            "not a number",
        ),
        (
            None,
            [{"field": "m", "range": {"from": 9, "to": 1}, "set": {"account": "A"}}],
            "[0].range",
            "above",
        ),
        (None, [{"field": "m", "equals": [1], "set": {"account": ""}}], "[0].set.account", "empty"),
        (None, [{"field": "m", "equals": [1], "mcc": 1, "set": {}}], "mapping_rules[0]", "unknown"),
    ],
)
def test_bad_defaults_and_rules_are_refused_naming_the_rule_and_field(
    defaults, rules, setting, reason
):
    error = refused(defaults, rules)
    assert setting in error.setting and str(error).startswith(f"Setting '{error.setting}'")
    assert reason in error.reason


def test_range_bounds_are_exact_decimals_even_from_json_floats():
    rules = [
        {"field": "amount_band", "range": {"from": 0.1, "to": "0.30"}, "set": {"account": "S"}}
    ]
    rule = parsed_fallbacks(None, rules, COMPANY).rules[0]
    assert (rule.low, rule.high) == (Decimal("0.1"), Decimal("0.30"))
    assert rule.matches({"amount_band": Decimal("0.3")}, COMPANY)
    assert not rule.matches({"amount_band": Decimal("0.30000000000000001")}, COMPANY)


def test_defaults_and_rules_need_flat_records():
    with pytest.raises(ConfigError, match="flat records only"):
        Config.from_mapping(
            {"api_key": "k", "company_id": COMPANY, "record_shape": "codat", "defaults": DEFAULTS}
        )


def test_referenced_ids_name_where_each_id_is_set():
    defaults = {**DEFAULTS, "companies": {OTHER: {"tax_rate": "T-9"}}}
    rules = [
        *CARD_RULES,
        {"field": "x", "equals": [1], "company_id": OTHER, "set": {"tax_rate": "T"}},
    ]
    fallbacks = parsed_fallbacks(defaults, rules, None)
    mine = referenced_ids(fallbacks, COMPANY)
    assert ("account", "EXP-MEALS", "mapping_rules[0].set.account") in mine
    assert ("tracking", "DEPT-SALES", "mapping_rules[3].set.tracking") in mine
    assert ("bank_account", "BANK-CARD", "defaults.bank_account") in mine
    assert not [r for r in mine if r[0] == "tax_rate"]
    theirs = referenced_ids(fallbacks, OTHER)
    assert ("tax_rate", "T-9", f"defaults.companies.{OTHER}.tax_rate") in theirs
    assert ("tax_rate", "T", "mapping_rules[4].set.tax_rate") in theirs


# -- the spec ----------------------------------------------------------------------------------
def test_the_specs_examples_are_valid_settings_and_every_part_is_described():
    connection = spec()["connectionSpecification"]
    properties = connection["properties"]
    for name in ("defaults", "mapping_rules"):
        assert properties[name]["title"] and properties[name]["description"]
        for example in properties[name]["examples"]:
            jsonschema.validate({"api_key": "k", name: example}, connection)
    assert set(properties["defaults"]["properties"]) == {*PART_PARSERS, "companies"}
    rule_set = properties["mapping_rules"]["items"]["properties"]["set"]["properties"]
    assert set(rule_set) == set(PART_PARSERS)
    example_rules = properties["mapping_rules"]["examples"][0]
    example_defaults = properties["defaults"]["examples"][0]
    fallbacks = parsed_fallbacks(example_defaults, example_rules, None)
    assert isinstance(fallbacks, Fallbacks) and len(fallbacks.rules) == len(example_rules)
