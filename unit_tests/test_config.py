"""The settings: defaults from spec.json, every bad value refused naming its setting, the
secret never in what is stored with a run."""

from __future__ import annotations

import json

import pytest

from destination_codat_expenses.config import Config, defaults, spec
from destination_codat_expenses.errors import ConfigError

COMPANY = "11111111-1111-4111-8111-111111111111"
BASE = {"api_key": " key-1234 ", "company_id": COMPANY}


def refused(**changes) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        Config.from_mapping({**BASE, **changes})
    return raised.value


def test_unset_settings_take_the_specs_defaults_and_none_counts_as_unset():
    config = Config.from_mapping({**BASE, "batch_size": None, "timezone": None})
    assert config.api_key == "key-1234"  # trimmed
    assert config.base_url == defaults()["base_url"] == "https://api.codat.io"
    assert config.batch_size == defaults()["batch_size"]
    assert config.sync_size == defaults()["sync_size"]
    assert str(config.mapping.zone) == "UTC" and config.receipts_root is None
    assert config.max_rejected_share == defaults()["max_rejected_share"]


def test_every_setting_the_spec_names_is_a_config_field_or_routed_into_mapping():
    named = set(spec()["connectionSpecification"]["properties"])
    fields = set(Config.__dataclass_fields__)
    into_mapping = {
        "record_shape",
        "field_mapping",
        "defaults",
        "mapping_rules",
        "amount_includes_tax",
        "timezone",
    }
    # `status_store` is read into the field of its old name, `status_store_path` (its alias)
    assert named - fields == into_mapping | {"status_store"}
    assert fields - named == {"mapping"}


@pytest.mark.parametrize("key", [None, "", "   ", 42])
def test_the_api_key_is_required(key):
    config = {**BASE, "api_key": key} if key is not None else {"company_id": COMPANY}
    with pytest.raises(ConfigError) as raised:
        Config.from_mapping(config)
    assert raised.value.setting == "api_key"


@pytest.mark.parametrize(
    "spelling", [f"urn:uuid:{COMPANY}", f"{{{COMPANY}}}", COMPANY.replace("-", ""), "acme"]
)
def test_a_configured_company_id_must_be_a_canonical_uuid(spelling):
    config = {"api_key": "k", "status_store_path": "s.duckdb"}
    with pytest.raises(ConfigError) as raised:
        Config.from_mapping({**config, "company_id": spelling})
    assert raised.value.setting == "company_id"
    accepted = Config.from_mapping({**config, "company_id": COMPANY.upper()})
    assert accepted.company_id == COMPANY


def test_records_are_routed_by_a_fixed_company_or_a_field_never_both_nor_neither():
    assert refused(company_id=None).setting == "company_id"
    assert refused(company_id_field="company").setting == "company_id_field"
    routed = Config.from_mapping({"api_key": "k", "company_id_field": " company "})
    assert routed.company_id is None and routed.company_id_field == "company"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("batch_size", 0),
        ("batch_size", 51),
        ("batch_size", True),  # a bool is not a number of records
        ("batch_size", "5"),
        ("batch_size", 5.0),
        ("sync_size", 5001),
        ("concurrency", 11),
        ("sync_wait_timeout_seconds", -1),
        ("max_rejected_share", 1.5),
        ("max_rejected_share", -0.1),
        ("max_rejected_share", True),
        ("max_rejected_share", "0.1"),
        ("push_flow", "batch"),
        ("record_shape", "nested"),
        ("base_url", "ftp://codat.test"),
        ("base_url", "api.codat.io"),
        ("base_url", "http://api.codat.io"),
        ("base_url", "http://10.0.0.5:8080"),
        ("base_url", "http://localhost.evil.example"),
        ("status_store_path", "  "),
        ("timezone", "Mars/Olympus_Mons"),
        ("field_mapping", {"amount": "total", "colour": "x"}),
        ("field_mapping", {"amount": "  "}),
        ("field_mapping", {"amount": 7}),
    ],
)
def test_a_bad_value_is_refused_naming_its_setting(setting, value):
    error = refused(**{setting: value})
    assert error.setting == setting
    assert str(error).startswith(f"Setting '{setting}':")


def test_bounds_are_inclusive_and_values_are_normalised():
    config = Config.from_mapping(
        {
            **BASE,
            "batch_size": 50,
            "concurrency": 1,
            "max_rejected_share": 0,
            "base_url": "http://127.0.0.1:8765/",
            "field_mapping": {"amount": " total "},
            "push_flow": "datasets",
        }
    )
    assert config.batch_size == 50 and config.concurrency == 1
    assert config.max_rejected_share == 0.0 and isinstance(config.max_rejected_share, float)
    assert config.base_url == "http://127.0.0.1:8765"
    assert config.mapping.fields.amount == "total" and config.mapping.fields.id == "id"
    assert config.push_flow == "datasets"


def test_receipts_root_is_an_existing_folder_kept_as_its_real_path(tmp_path):
    folder = tmp_path / "receipts"
    folder.mkdir()
    link = tmp_path / "link"
    link.symlink_to(folder)
    assert Config.from_mapping({**BASE, "receipts_root": str(link)}).receipts_root == str(
        folder.resolve()
    )
    assert Config.from_mapping({**BASE, "receipts_root": "  "}).receipts_root is None
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for bad in [str(tmp_path / "missing"), str(a_file), "/", "/proc", 7]:
        assert refused(receipts_root=bad).setting == "receipts_root"


def test_what_is_stored_with_a_run_never_holds_the_key():
    config = Config.from_mapping({**BASE, "api_key": "very-secret-key"})
    shown = config.redacted()
    assert shown["api_key"] == "**********"
    assert "very-secret-key" not in json.dumps(shown, default=str)
    assert shown["mapping"]["zone"] == "UTC" and shown["mapping"]["fields"]["id"] == "id"
    assert shown["status_store_path"] == config.status_store_path


@pytest.mark.parametrize(
    "url", ["https://api.codat.io", "http://127.0.0.1:8765", "http://localhost:1", "http://[::1]:9"]
)
def test_https_anywhere_and_plain_http_only_on_loopback(url):
    assert Config.from_mapping({**BASE, "base_url": url}).base_url == url


def test_status_store_takes_a_postgres_url_and_its_old_name_still_works():
    base = {"api_key": "k", "company_id": "8a210b68-6988-11ed-a1eb-0242ac120002"}
    url = "postgresql://codat:s3cr3t-pw@db.internal:5432/codat"
    assert Config.from_mapping({**base, "status_store": url}).status_store_path == url
    assert Config.from_mapping({**base, "status_store_path": "x.duckdb"}).status_store_path == (
        "x.duckdb"
    )
    both = {**base, "status_store": url, "status_store_path": "x.duckdb"}
    assert Config.from_mapping(both).status_store_path == url
    redacted = json.dumps(Config.from_mapping({**base, "status_store": url}).redacted())
    assert "s3cr3t-pw" not in redacted and "db.internal" in redacted


def test_an_incomplete_postgres_url_is_refused_without_its_password():
    base = {"api_key": "k", "company_id": "8a210b68-6988-11ed-a1eb-0242ac120002"}
    with pytest.raises(ConfigError) as refused:
        Config.from_mapping({**base, "status_store": "postgresql://codat:s3cr3t-pw@/"})
    assert "s3cr3t-pw" not in str(refused.value)
