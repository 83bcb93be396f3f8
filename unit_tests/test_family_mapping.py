"""family_mapping: records -> transfer, reimbursable and adjustment payloads, and the clear
RecordErrors (record, field, reason) for everything else."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from destination_codat_expenses import jsonwire
from destination_codat_expenses.errors import RecordError
from destination_codat_expenses.family_mapping import (
    DateRules,
    map_adjustment,
    map_reimbursable,
    map_transfer,
)
from destination_codat_expenses.mapping import transaction_id_for

DATES = DateRules(today=date(2024, 6, 1))


def transfer(**changes) -> dict:
    record = {
        "id": "t-1",
        "date": "2024-05-02",
        "description": "Card top-up",
        "from": {"accountRef": {"id": "090"}, "amount": "100.00"},
        "to": {"accountRef": {"id": "800"}, "amount": Decimal("100.00")},
    }
    record.update(changes)
    return record


def reimbursable(**changes) -> dict:
    record = {
        "id": "claim-7",
        "contactRef": {"id": "EMP-1"},
        "issueDate": "2024-05-04",
        "dueDate": "2024-05-30",
        "currency": "gbp",
        "lines": [
            {"description": "Hotel", "netAmount": "100.00", "taxAmount": "20.00",
             "accountRef": {"id": "401"}, "taxRateRef": {"id": "STD"}},
        ],
    }  # fmt: skip
    record.update(changes)
    return record


def adjustment(*amounts, **changes) -> dict:
    record = {
        "id": 42,
        "date": "2024-05-03",
        "currency": "USD",
        "lines": [
            {"amount": a, "accountRef": {"id": f"A{i}"}}
            for i, a in enumerate(amounts or ("50.00", "-50.00"))
        ],
    }
    record.update(changes)
    return record


def refusal(mapper, record) -> RecordError:
    with pytest.raises(RecordError) as raised:
        mapper(record, "stream", DATES)
    return raised.value


# -- what comes out -------------------------------------------------------------------------------
def test_transfer_body_is_codats_shape_with_decimal_money_and_no_id():
    mapped = map_transfer(transfer(), "transfers", DATES)
    assert mapped.body == {
        "description": "Card top-up",
        "date": "2024-05-02",
        "from": {"accountRef": {"id": "090"}, "amount": Decimal("100.00")},
        "to": {"accountRef": {"id": "800"}, "amount": Decimal("100.00")},
    }
    assert mapped.transaction_id == transaction_id_for("transfers", "t-1")
    assert (mapped.kind, mapped.total, mapped.currency) == ("transfer", Decimal("100.00"), None)
    assert mapped.update_body == mapped.body


def test_reimbursable_body_and_update_body():
    mapped = map_reimbursable(reimbursable(), "claims", DATES)
    assert mapped.body["id"] == transaction_id_for("claims", "claim-7")
    assert mapped.body["currency"] == "GBP"
    assert mapped.body["lines"] == [
        {
            "description": "Hotel",
            "netAmount": Decimal("100.00"),
            "taxAmount": Decimal("20.00"),
            "taxRateRef": {"id": "STD"},
            "accountRef": {"id": "401"},
        }
    ]
    assert mapped.total == Decimal("120.00") and mapped.day == date(2024, 5, 4)
    assert "id" not in mapped.update_body and mapped.update_body["dueDate"] == "2024-05-30"


def test_adjustment_body_total_is_the_debits_and_a_uuid_key_is_kept():
    key = str(uuid.uuid4())
    mapped = map_adjustment(adjustment("30.00", "20.00", "-50.00", id=key.upper()), "adj", DATES)
    assert mapped.transaction_id == key == mapped.body["id"]
    assert mapped.total == Decimal("50.00")
    assert [line["amount"] for line in mapped.body["lines"]] == [
        Decimal("30.00"),
        Decimal("20.00"),
        Decimal("-50.00"),
    ]


def test_tracking_and_invoice_to_are_kept_with_their_data_types():
    line = {
        "amount": "5",
        "accountRef": {"id": "A"},
        "trackingRefs": [{"id": "SUP-1", "dataType": "suppliers"}, {"id": "DEPT"}],
        "invoiceTo": {"id": "CUST-1", "type": "Customer"},
    }
    record = adjustment(lines=[line, {"amount": "-5", "accountRef": {"id": "B"}}])
    first = map_adjustment(record, "adj", DATES).body["lines"][0]
    assert first["trackingRefs"] == [
        {"id": "SUP-1", "dataType": "suppliers"},
        {"id": "DEPT", "dataType": "trackingCategories"},
    ]
    assert first["invoiceTo"] == {"id": "CUST-1", "type": "customer"}


# -- what is refused, and how it is named ---------------------------------------------------------
@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        (transfer(date=None), "date", "is required"),
        (transfer(date="2030-01-01"), "date", "more than 365 days in the future"),
        (transfer(to={"accountRef": {"id": "090"}, "amount": "1"}), "to.accountRef.id", "same"),
        (
            transfer(**{"from": {"accountRef": {"id": "090"}, "amount": 1.5}}),
            "from.amount",
            "float",
        ),
        (transfer(**{"from": {"accountRef": {"id": "090"}, "amount": "0"}}), "from.amount", "zero"),
        (transfer(**{"from": {"amount": "1"}}), "from.accountRef", "is required"),
        (transfer(to="800"), "to", "must be an object"),
        (transfer(description="a\x00b"), "description", "control character"),
    ],
)
def test_transfer_refusals_name_record_field_and_reason(record, field, reason):
    error = refusal(map_transfer, record)
    assert (error.record_key, error.field) == ("t-1", field)
    assert reason in error.reason


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"contactRef": None}, "contactRef", "is required"),
        ({"contactRef": {"id": ""}}, "contactRef.id", "is required"),
        ({"dueDate": "soon"}, "dueDate", "not a valid ISO 8601 date"),
        ({"currency": "XYZ"}, "currency", "not an ISO 4217"),
        ({"currencyRate": "0"}, "currencyRate", "greater than zero"),
        ({"lines": []}, "lines", "1 to 100 lines"),
        ({"lines": ["x"]}, "lines[0]", "must be an object"),
        ({"lines": [{"netAmount": "1.234"}]}, "lines[0].netAmount", "GBP allows (2)"),
        (
            {"lines": [{"netAmount": "1", "accountRef": {"id": "1"}, "itemRef": {"id": "2"}}]},
            "lines[0]",
            "both accountRef and itemRef",
        ),
        (
            {"lines": [{"netAmount": "1", "trackingRefs": [{"id": "S", "dataType": "suppliers"}]}]},
            "lines[0].trackingRefs[0]",
            "trackingCategories or customers",
        ),
    ],
)
def test_reimbursable_refusals_name_record_field_and_reason(changes, field, reason):
    error = refusal(map_reimbursable, reimbursable(**changes))
    assert (error.record_key, error.field) == ("claim-7", field)
    assert reason in error.reason


def test_unbalanced_adjustment_is_refused_before_anything_is_sent():
    error = refusal(map_adjustment, adjustment("50.00", "-40.00"))
    assert (error.record_key, error.field) == ("42", "lines")
    assert error.reason == "do not balance: debits minus credits is 10.00, not 0"
    assert (
        str(error)
        == "Record 42: field 'lines' do not balance: debits minus credits is 10.00, not 0"
    )


@pytest.mark.parametrize("record", [{}, {"id": ""}, {"id": True}, {"id": ["x"]}, "not a record"])
def test_a_record_without_a_usable_id_is_refused(record):
    error = refusal(map_adjustment, record)
    assert error.field in ("id", "(record)")


# -- properties -----------------------------------------------------------------------------------
CENTS = st.integers(min_value=1, max_value=10**12).map(lambda c: Decimal(c).scaleb(-2))
KEYS = st.one_of(st.text(min_size=1, max_size=30).filter(str.strip), st.integers(0, 10**9))


@settings(max_examples=200, deadline=None)
@given(key=KEYS, debits=st.lists(CENTS, min_size=1, max_size=20))
def test_any_balanced_journal_maps_exactly_and_ids_are_stable(key, debits):
    amounts = [*debits, -sum(debits)]
    record = adjustment(*[str(a) for a in amounts], id=key)
    try:
        first = map_adjustment(record, "adj", DATES)
    except RecordError as error:  # only an id no store can hold may be refused
        assert error.field == "id"
        return
    again = map_adjustment(record, "adj", DATES)
    assert first == again  # same record, same id, same bytes, same hash
    assert [line["amount"] for line in first.body["lines"]] == amounts
    assert first.total == sum(debits)
    assert first.transaction_id == transaction_id_for("adj", str(key).strip())
    assert jsonwire.loads(jsonwire.dumps(first.body)) == first.body  # Decimal on the wire


@settings(max_examples=200, deadline=None)
@given(amounts=st.lists(CENTS, min_size=2, max_size=5), shift=CENTS)
def test_a_journal_that_is_off_by_any_amount_is_refused(amounts, shift):
    balanced = [*amounts, -sum(amounts)]
    balanced[0] += shift
    error = refusal(map_adjustment, adjustment(*[str(a) for a in balanced]))
    assert error.field == "lines" and str(shift) in error.reason


@settings(max_examples=200, deadline=None)
@given(first=CENTS, second=CENTS)
def test_a_changed_amount_changes_the_hash_and_only_then(first, second):
    one = map_reimbursable(reimbursable(lines=[{"netAmount": str(first)}]), "claims", DATES)
    two = map_reimbursable(reimbursable(lines=[{"netAmount": str(second)}]), "claims", DATES)
    assert (one.payload_hash == two.payload_hash) == (first == second)
    assert one.transaction_id == two.transaction_id


@settings(max_examples=300, deadline=None)
@given(
    record=st.dictionaries(
        st.sampled_from(["id", "date", "from", "to", "description", "lines", "currency"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
            max_leaves=10,
        ),
    )
)
def test_any_junk_record_maps_or_is_a_record_error_never_a_crash(record):
    for mapper in (map_transfer, map_reimbursable, map_adjustment):
        try:
            mapped = mapper(record, "junk", DATES)
        except RecordError:
            continue
        assert isinstance(mapped.total, Decimal)


def test_retry_reads_the_date_of_every_kind_from_its_ledger_payload(tmp_path):
    """A transfer's or adjustment's payload has `date`, not `issueDate`: retry must read both."""
    from destination_codat_expenses.config import MappingSettings
    from destination_codat_expenses.retry import RetryPlan, ledger_items
    from destination_codat_expenses.store.status_store import StatusStore
    from destination_codat_expenses.streams import kind_of, map_family

    store = StatusStore(str(tmp_path / "status.duckdb"))
    store.prepare()
    company = "11111111-1111-4111-8111-111111111111"
    mapped = map_family(kind_of("transfers"), transfer(), "transfers", MappingSettings())
    store.mark_sending(company, "transfers", [mapped])
    item = {
        "transaction_id": mapped.transaction_id,
        "source_stream": "transfers",
        "source_key": mapped.source_key,
        "payload": jsonwire.loads(jsonwire.dumps(mapped.body)),
    }

    [(stream, ledger_item)] = ledger_items(store, RetryPlan("sync-1", company, [item]))

    assert (stream, ledger_item.issue_date) == ("transfers", date(2024, 5, 2))
