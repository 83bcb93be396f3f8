"""Every sync in the store appears in every report view, and each is described as truly as the
store knows it: a sync only a webhook named (no start time, not yet confirmed with Codat) is
counted, charted, found and shown as unconfirmed; text is labelled "from Codat" only when
Codat's API gave it; a sync still running never reads "every item completed".

The store is written by the product's own code (StatusStore, the receiver's SQL), a real DuckDB
file, and read by the report through Streamlit's AppTest and the CLI's queries."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from destination_codat_expenses.mapping import MappedTransaction
from destination_codat_expenses.models import WebhookEvent
from destination_codat_expenses.store import queries as store_queries
from destination_codat_expenses.store.db import release
from destination_codat_expenses.store.status_store import StatusStore
from report_app import actions, explain, queries, ui

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "report_app" / "app.py"
COMPANY = "1a2b3c4d-eeee-4000-8000-000000000005"
DONE, RUNNING = "sync-done-0001", "sync-running-0002"
WEBHOOK_ONLY, NOT_FOUND = "sync-webhook-only-0003", "sync-not-found-0004"
pytestmark = pytest.mark.timeout(180)


def pushed(store: StatusStore, sync_id: str, transaction_id: str, started: datetime) -> None:
    """What the destination records when Codat accepts a push."""
    txn = MappedTransaction(
        transaction_id,
        transaction_id,
        {"id": transaction_id},
        date(2024, 5, 1),
        "GBP",
        Decimal("12.00"),
        "hash",
    )
    store.mark_sending(COMPANY, "card_spend", [txn])
    store.mark_sent(
        COMPANY,
        [transaction_id],
        {"sync_id": sync_id, "run_id": "run-1", "flow": "direct", "initiated_at": started},
    )


def reported_by_webhook(store: StatusStore, sync_id: str, succeeded: bool) -> None:
    """What the receiver commits for a verified event naming a sync the store did not know."""
    body = json.dumps({"payload": {"syncId": sync_id, "referenceCompany": {"id": COMPANY}}})
    event = WebhookEvent("expenses.sync.unsuccessful", sync_id, COMPANY, succeeded, body)
    assert store.record_webhook_events([(f"msg-{sync_id}", event, datetime.now(UTC))], 5) == [
        "applied"
    ]


def codat_status(sync_id: str, code: int, text: str) -> dict:
    return {
        "syncId": sync_id,
        "syncStatusCode": code,
        "syncStatus": text,
        "dataPushed": code == 2000,
        "syncUtc": datetime.now(UTC).isoformat(),
    }


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> str:
    """Four syncs: one Codat settled, one running, one only a webhook named, one Codat does
    not know (status refresh's 404 marker). Three days apart, the webhook-only one today."""
    path = str(tmp_path_factory.mktemp("every-sync") / "status.duckdb")
    store = StatusStore(path)
    store.prepare()
    now = datetime.now(UTC)
    pushed(store, DONE, "txn-1", now - timedelta(days=3))
    store.record_sync_outcome(
        COMPANY,
        codat_status(DONE, 2000, "Complete"),
        [{"transactionId": "txn-1", "status": "Completed", "message": "Created directCosts X-1"}],
    )
    pushed(store, RUNNING, "txn-2", now - timedelta(days=2))
    store.record_sync_status(codat_status(RUNNING, 1000, "Pushing"))
    reported_by_webhook(store, WEBHOOK_ONLY, succeeded=False)
    reported_by_webhook(store, NOT_FOUND, succeeded=True)
    store.settle_not_found(NOT_FOUND, "Codat does not know this sync (it answered 404).")
    release(path)
    return path


@pytest.fixture
def store(story, monkeypatch) -> str:
    monkeypatch.setenv(ui.STORE_ENV, story)
    monkeypatch.delenv(actions.KEY_ENV, raising=False)
    return story


def open_report(**query: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    for name, value in query.items():
        at.query_params[name] = value
    return at.run()


def calm(at: AppTest) -> AppTest:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def history(at: AppTest):
    return next(d.value for d in at.dataframe if d.proto.id and "sync_id" in d.value.columns)


def texts(elements) -> str:
    return "\n".join(e.value for e in elements)


# -- every view counts every sync ------------------------------------------------------------
def test_a_webhook_only_sync_is_counted_charted_and_listed(store):
    at = calm(open_report())

    shown = metrics(at)
    assert shown["Syncs"] == "4"  # before v4 both webhook-named ones fell out of the dates: 2
    assert (shown["Succeeded"], shown["Failed"], shown["In progress"]) == ("1", "1", "1")
    assert shown["Unconfirmed"] == "1"
    rows = history(at).set_index("sync_id")
    assert set(rows.index) == {DONE, RUNNING, WEBHOOK_ONLY, NOT_FOUND}
    assert rows.loc[WEBHOOK_ONLY, "outcome"] == "unconfirmed"
    assert rows.loc[WEBHOOK_ONLY, "status_meaning"] == explain.UNCONFIRMED_LABEL
    assert str(rows.loc[WEBHOOK_ONLY, "status_code"]) == "<NA>"  # never a guessed code
    per_day = next(c for c in at.get("vega_lite_chart") if "per day" in c.proto.spec)
    data = pa.ipc.open_stream(per_day.proto.datasets[0].data.data).read_pandas()
    assert data["syncs"].sum() == 4 and data["day"].notna().all()


def test_a_webhook_only_sync_is_found_by_search_and_by_date(store):
    at = open_report()
    at.text_input(key="search").set_value("webhook-only").run()
    assert list(history(calm(at))["sync_id"]) == [WEBHOOK_ONLY]
    today = datetime.now(UTC).date()
    at.text_input(key="search").set_value("").run()
    at.date_input(key="dates").set_value((today, today)).run()
    assert set(history(calm(at))["sync_id"]) == {WEBHOOK_ONLY, NOT_FOUND}
    board = queries.fetch_dashboard(store, queries.SyncFilter(since=today, until=today))
    assert board.total == 2
    assert [m for m in queries.fetch_sync_matches(store, "webhook")["sync_id"]] == [WEBHOOK_ONLY]
    # the CLI's `syncs list --since` reads the same view
    listed = store_queries.list_syncs(store, store_queries.SyncFilter(since=today))
    assert {row["sync_id"] for row in listed} == {WEBHOOK_ONLY, NOT_FOUND}


# -- each sync described as truly as the store knows it ---------------------------------------
def test_an_unconfirmed_sync_is_shown_as_such_never_as_a_code(store):
    at = calm(open_report(sync=WEBHOOK_ONLY))

    assert at.subheader[0].value == explain.UNCONFIRMED_LABEL
    assert "First seen (UTC)" in metrics(at) and "Started (UTC)" not in metrics(at)
    facts = dict(next(d.value for d in at.dataframe if "field" in d.value.columns).values)
    assert facts["Status code and text"].strip() == "—"
    assert facts["Status from"] == "a webhook's report, not yet confirmed with Codat"
    assert facts["Webhook reported"].startswith("unsuccessful at ")
    assert f"**{explain.UNCONFIRMED_LABEL}.**" in texts(at.info)
    assert "status refresh" in texts(at.info)
    assert not at.warning  # no failure note: nothing is known about how it ended
    assert "from Codat" not in texts(at.caption)
    assert "Nothing to retry yet" in texts(at.caption)


def test_text_this_tool_wrote_is_not_labelled_from_codat(store):
    at = calm(open_report(sync=NOT_FOUND))
    captions = texts(at.caption)
    assert "Error message (recorded by codat-expenses, not by Codat)" in captions
    assert "(from Codat)" not in captions
    assert "Codat does not know this sync (it answered 404)." in [c.value for c in at.code]


def test_a_running_sync_never_reads_every_item_completed(store):
    at = calm(open_report(sync=RUNNING))
    assert at.subheader[0].value == "1000 · In progress · in progress"
    assert "every item completed" not in texts(at.caption)
    assert "Nothing to retry yet" in texts(at.caption)


def test_a_settled_sync_keeps_codats_labels(store):
    at = calm(open_report(sync=DONE))
    assert at.subheader[0].value == "2000 · Success (Data written) · succeeded"
    facts = dict(next(d.value for d in at.dataframe if "field" in d.value.columns).values)
    assert facts["Status from"] == "Codat's API"
    assert "No failed items to retry: every item completed" in texts(at.caption)
