"""Sources without currency or account columns, written with `defaults` and `mapping_rules`: the
configs in examples/ (the ones the docs show), the real CLI or the destination in process, the
sandbox over loopback, a real DuckDB file. The sandbox's books are read first (each expense's
account, tracking, supplier, bank account and currency as the rule or default said), then the
store. And `check` naming every id the settings use that a company's books do not have."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from integration_tests.destination_support import (
    QBO,
    XERO,
    books,
    catalog,
    ledger,
    messages_of,
    patch_company,
    record,
    run_write,
    settings,
    stream_state,
    txn_id,
    write_files,
    write_in_process,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FAKER = json.loads((EXAMPLES / "faker_products.json").read_text())
CARD = json.loads((EXAMPLES / "card_spend.json").read_text())

# source-faker's `products` rows as it emits them (record_data/products.json): no currency,
# account, bank account or supplier; an integer price; some timestamps with a space
FAKER_PRODUCTS = [
    {"id": 1, "make": "Mazda", "model": "MX-5", "year": 2008, "price": 2869,
     "created_at": "2022-02-01T17:02:19+00:00", "updated_at": "2024-05-01T10:00:00+00:00"},
    {"id": 2, "make": "Mercedes-Benz", "model": "C-Class", "year": 2009, "price": 52397,
     "created_at": "2021-01-25T14:31:33+00:00", "updated_at": "2024-05-01T10:00:00+00:00"},
    {"id": 15, "make": "Ford", "model": "Ranger", "year": 2000, "price": 20228,
     "created_at": "2022-03-24T04:03:19+00:00", "updated_at": "2024-05-01T10:00:00+00:00"},
    {"id": 56, "make": "Ford", "model": "Econoline E250 Van", "year": 1996, "price": 75095,
     "created_at": "2021-02-04T16:17:18+00:00", "updated_at": "2024-05-01T10:00:00+00:00"},
    {"id": 87, "make": "Toyota", "model": "Paseo", "year": 1996, "price": 74558.5,
     "created_at": "2021-10-02 14:54:58+00:00", "updated_at": "2024-05-01T10:00:00+00:00"},
]  # fmt: skip
# what the example's defaults and rules say each product becomes:
# id -> (total, account, tracking); bank account 090, supplier SUP-CARD and GBP for all
FAKER_EXPECTED = {
    1: ("2869", "403", []),  # no rule: the defaults
    2: ("52397", "401", []),  # over 50,000: travel fleet
    15: ("20228", "403", ["DEPT-SALES"]),  # a Ford
    56: ("75095", "401", ["DEPT-ENG"]),  # over 50,000, and a van before it is a Ford
    87: ("74558.5", "401", []),
}


def book_of(entry: dict) -> tuple:
    line = entry["lines"][0]
    return (Decimal(entry["total"]), line["account"], line["tracking"])


def test_faker_products_become_expenses_through_the_real_cli(sandbox_url, tmp_path):
    store = tmp_path / "status.duckdb"
    config = settings(sandbox_url, store, **FAKER)
    lines = [record("products", row) for row in FAKER_PRODUCTS] + [stream_state("products", 1)]
    done = run_write(write_files(tmp_path, config, catalog("products"), lines))
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    states = [m for m in messages_of(done.stdout) if m["type"] == "STATE"]
    assert [s["state"]["destinationStats"]["recordCount"] for s in states] == [5]

    written = books(sandbox_url)
    for product_id, (total, account, tracking) in FAKER_EXPECTED.items():
        entry = written[txn_id("products", str(product_id))]
        assert (entry["company_id"], entry["currency"]) == (XERO, "GBP")
        assert (entry["bank_account"], entry["contact"]) == ("090", "SUP-CARD")
        assert book_of(entry) == (Decimal(total), account, tracking), product_id
    held = ledger(store)
    for product_id in FAKER_EXPECTED:
        assert held[txn_id("products", str(product_id))][:3] == (XERO, "completed", "Completed")


# card-spend rows as a card platform sends them: an MCC, a card id, an employee, a merchant
CARD_ROWS = {
    "t-meal": {"mcc": "5812", "merchant_name": "Pret A Manger", "employee": "ana.lima@example.com"},
    "t-taxi": {"mcc": 4121, "merchant_name": "Uber *Trip", "employee": "sam@example.com"},
    "t-git": {"mcc": "5734", "merchant_name": "GITHUB.COM", "employee": "joe.b@example.com"},
    "t-usd": {"mcc": 5813, "merchant_name": "Bar Nine", "card": {"id": "card-usd-7"},
              "currency": "USD", "currency_rate": "1.25", "employee": "sam@example.com"},
    "t-plain": {"mcc": 7011, "merchant_name": "Hotel", "employee": ""},
    "q-meal": {"mcc": 5814, "merchant_name": "Chipotle", "employee": "joe.b@example.com",
               "company": QBO},
}  # fmt: skip
# id -> (company, currency, bank account, supplier, account, tracking)
CARD_EXPECTED = {
    "t-meal": (XERO, "GBP", "090", "SUP-CARD", "402", ["DEPT-SALES"]),
    "t-taxi": (XERO, "GBP", "090", "SUP-CARD", "401", ["DEPT-ENG"]),
    "t-git": (XERO, "GBP", "090", "SUP-SOFTWARE", "404", ["DEPT-SALES"]),
    "t-usd": (XERO, "USD", "091", "SUP-CARD", "402", ["DEPT-ENG"]),
    "t-plain": (XERO, "GBP", "090", "SUP-CARD", "403", []),
    "q-meal": (QBO, "USD", "090", "SUP-CARD", "402", ["DEPT-SALES"]),
}


def card_rows() -> list[dict]:
    return [
        {
            "transaction_id": key,
            "posted_at": "2024-05-02T09:30:00Z",
            "amount": "18.40",
            "company": XERO,
            **fields,
        }
        for key, fields in CARD_ROWS.items()
    ]


def test_card_spend_rows_are_mapped_by_mcc_card_merchant_and_employee(sandbox_url, tmp_path):
    for company in (XERO, QBO):
        patch_company(sandbox_url, company, {"suppliers": {"SUP-SOFTWARE": "GBP"}})
    store = tmp_path / "status.duckdb"
    config = settings(sandbox_url, store, company_id=None, **CARD)
    lines = [record("card_spend", row) for row in card_rows()] + [stream_state("card_spend", 1)]
    write_in_process(config, catalog("card_spend"), lines)

    written = books(sandbox_url)
    for key, (company, currency, bank, supplier, account, tracking) in CARD_EXPECTED.items():
        entry = written[txn_id("card_spend", key)]
        got = (entry["company_id"], entry["currency"], entry["bank_account"], entry["contact"])
        assert got == (company, currency, bank, supplier), key
        assert entry["lines"][0]["account"] == account, key
        assert entry["lines"][0]["tracking"] == tracking, key
        assert Decimal(entry["total"]) == Decimal("18.40")
    held = ledger(store)
    for key, expected in CARD_EXPECTED.items():
        assert held[txn_id("card_spend", key)][:2] == (expected[0], "completed")


# -- check --------------------------------------------------------------------------------------
def check(config: dict):
    from destination_codat_expenses.destination import DestinationCodatExpenses

    return DestinationCodatExpenses().check(None, config)


def test_check_passes_when_every_id_the_settings_name_exists(sandbox_url, tmp_path):
    patch_company(sandbox_url, XERO, {"suppliers": {"SUP-SOFTWARE": "GBP"}})
    patch_company(sandbox_url, QBO, {"suppliers": {"SUP-SOFTWARE": "GBP"}})
    status = check(settings(sandbox_url, tmp_path / "s.duckdb", company_id=None, **CARD))
    assert status.status.name == "SUCCEEDED", status.message


def test_check_names_every_missing_id_and_where_it_is_set(sandbox_url, tmp_path):
    rules = [
        {"field": "mcc", "equals": [5812], "set": {"account": "EXP-NOPE", "tax_rate": "TAX-X"}},
        {"field": "card", "equals": ["c"], "set": {"bank_account": "402"}},  # not a bank account
        {"field": "e", "contains": ["@"], "set": {"tracking": ["DEPT-SALES", "DEPT-GONE"]}},
    ]
    defaults = {"currency": "GBP", "account": "403", "contact": "SUP-NOBODY"}
    config = settings(sandbox_url, tmp_path / "s.duckdb", defaults=defaults, mapping_rules=rules)
    status = check(config)
    assert status.status.name == "FAILED"
    message = status.message
    assert message.startswith(f"Company {XERO}: ")
    for named in (
        "account 'EXP-NOPE' (mapping_rules[0].set.account)",
        "tax rate 'TAX-X' (mapping_rules[0].set.tax_rate)",
        "bank account '402' (mapping_rules[1].set.bank_account) is an account but not a bank",
        "tracking category 'DEPT-GONE' (mapping_rules[2].set.tracking)",
        "supplier 'SUP-NOBODY' (defaults.contact)",
    ):
        assert named in message, message
    for present in ("'403'", "'DEPT-SALES'", "'GBP'"):
        assert present not in message


def test_with_routing_check_validates_each_company_the_defaults_name(sandbox_url, tmp_path):
    """SUP-SOFTWARE exists in Xero's books only: QBO, named in defaults.companies, fails."""
    patch_company(sandbox_url, XERO, {"suppliers": {"SUP-SOFTWARE": "GBP"}})
    status = check(settings(sandbox_url, tmp_path / "s.duckdb", company_id=None, **CARD))
    assert status.status.name == "FAILED"
    assert status.message.startswith(f"Company {QBO}: ")
    assert "supplier 'SUP-SOFTWARE' (mapping_rules[2].set.contact)" in status.message
