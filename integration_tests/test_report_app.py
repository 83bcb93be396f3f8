"""The Sync Health report, page by page, with Streamlit's AppTest on real DuckDB stores: a seeded
store that tells every story (report_seed.py), a store written by the real destination against
the sandbox (retry end to end), and a store whose lock another process holds."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from destination_support import (
    XERO,
    catalog,
    flat,
    patch_company,
    record,
    settings,
    write_in_process,
)
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

from destination_codat_expenses.store.db import release
from report_app import access, actions, queries, ui
from testing import report_seed as seed

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "report_app" / "app.py"
pytestmark = pytest.mark.timeout(180)


# -- fixtures and helpers --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> tuple[str, datetime]:
    """The story store, written once for the module (the report only reads it)."""
    now = datetime.now(UTC)
    path = str(tmp_path_factory.mktemp("report") / "status.duckdb")
    seed.seed_story(path, now)
    return path, now


@pytest.fixture
def store(seeded, monkeypatch) -> str:
    monkeypatch.setenv(ui.STORE_ENV, seeded[0])
    monkeypatch.delenv(actions.KEY_ENV, raising=False)
    monkeypatch.delenv(actions.URL_ENV, raising=False)
    return seeded[0]


def open_report(**query: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    for name, value in query.items():
        at.query_params[name] = value
    return at.run()


def calm(at: AppTest) -> AppTest:
    """No exception and no error box reached the page."""
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def history(at: AppTest):
    return next(d.value for d in at.dataframe if d.proto.id and "sync_id" in d.value.columns)


def history_table(at: AppTest):
    return next(d for d in at.dataframe if "sync_id" in d.value.columns and d.proto.column_order)


def frame_by_column(at: AppTest, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def links(at: AppTest) -> dict[str, str]:
    """label -> query string of every st.page_link on the page."""
    return {link.proto.label: link.proto.query_string for link in at.get("page_link")}


def texts(elements) -> str:
    return "\n".join(e.value for e in elements)


@pytest.fixture
def media(monkeypatch) -> list[MediaFileManager]:
    """The media managers AppTest creates, so downloads can be read back."""
    managers: list[MediaFileManager] = []

    class Recording(MediaFileManager):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            managers.append(self)

    monkeypatch.setattr(app_test_module, "MediaFileManager", Recording)
    return managers


def downloaded(managers: list[MediaFileManager], button) -> bytes:
    """What a person gets from a download button (a deferred one is generated, as on click)."""
    manager = managers[-1]
    proto = button.proto
    url = manager.execute_deferred(proto.deferred_file_id) if proto.deferred_file_id else proto.url
    found = manager.read_file(url.rsplit("/", 1)[-1])
    assert found is not None, url
    return found.content


def download_button(at: AppTest, label: str):
    return next(b for b in at.get("download_button") if b.label == label)


def day_of(moment: datetime):
    return moment.astimezone(UTC).date()


# -- dashboard -------------------------------------------------------------------------------------
def test_dashboard_totals_by_outcome_code_and_currency(store):
    at = calm(open_report())
    shown = metrics(at)
    assert shown["Syncs"] == str(seed.EXPECTED["syncs"])
    assert shown["Succeeded"] == "4" and shown["Failed"] == "5" and shown["In progress"] == "2"
    assert shown["Failure rate"] == "55.6%"  # 5 failed of 9 finished
    codes = frame_by_column(at, "status_meaning").set_index("status_code")
    assert codes.loc[5130, "syncs"] == 2 and codes.loc[5130, "status_meaning"] == "Data write error"
    assert codes.loc[4040, "status_meaning"] == "Company deleted/de-authorized"
    currencies = frame_by_column(at, "written_amount").set_index("currency")
    assert sorted(currencies.index) == sorted(seed.EXPECTED["currencies"])
    for currency, (written, failed, pending) in seed.EXPECTED["currencies"].items():
        row = currencies.loc[currency]
        assert (row["written"], row["failed"], row["pending"]) == (written, failed, pending)
    # exact, per currency, with the currency's own minor units and grouping; never a float
    assert Decimal(currencies.loc["USD", "written_amount"]) == Decimal("1234613.88")
    shown = currencies[["written_shown", "failed_shown", "pending_shown"]]
    assert shown.loc["GBP", "written_shown"] == "125.85 GBP"
    assert shown.loc["USD", "written_shown"] == "1,234,613.88 USD"
    assert shown.loc["USD", "failed_shown"] == "37.40 USD"
    assert shown.loc["KWD", "written_shown"] == "1,234.567 KWD"
    assert shown.loc["JPY", "pending_shown"] == "125,000 JPY"
    assert shown.loc["JPY", "written_shown"] == "0 JPY"


def test_syncs_per_day_chart_is_stacked_by_status(store):
    at = calm(open_report())
    charts = at.get("vega_lite_chart")
    per_day = next(c for c in charts if "per day" in json.loads(c.proto.spec)["title"])
    spec = json.loads(per_day.proto.spec)
    assert spec["mark"]["type"] == "bar" and spec["encoding"]["color"]["field"] == "status"
    data = pa.ipc.open_stream(per_day.proto.datasets[0].data.data).read_pandas()
    assert data["day"].nunique() == seed.EXPECTED["days"]
    assert data["syncs"].sum() == seed.EXPECTED["syncs"]
    assert "5130 · Data write error" in set(data["status"])


def test_long_running_and_stuck_syncs_stand_out(store):
    at = calm(open_report())
    assert "1 sync(s) have had no final status for more than 30 minutes" in texts(at.warning)
    assert "1 sync(s) are long running (1010)" in texts(at.info)
    rows = history(at).set_index("sync_id")
    assert rows.loc[seed.S_STUCK_US, "attention"] == "⚠ stuck"
    assert rows.loc[seed.S_LONG_EU, "attention"] == "◷ long running"
    assert rows.loc[seed.S_OK_GB, "attention"] == ""
    at.number_input(key="stuck_after").set_value(600).run()  # 10 hours: nothing is stuck now
    assert "stuck" not in texts(calm(at).warning)
    assert history(at).set_index("sync_id").loc[seed.S_STUCK_US, "attention"] == ""


def test_search_finds_partial_sync_and_company_ids(store):
    at = open_report()
    at.text_input(key="search").set_value("5130-gb").run()
    assert set(history(calm(at))["sync_id"]) == {seed.S_CLOSED_GB, seed.S_RETRY1}
    assert metrics(at)["Syncs"] == "2"
    at.text_input(key="search").set_value("BBBB-4000").run()  # part of the US company id
    assert set(history(calm(at))["sync_id"]) == {seed.S_OK_US, seed.S_INVALID_US, seed.S_STUCK_US}
    at.text_input(key="search").set_value("no-such%id").run()
    assert metrics(calm(at))["Syncs"] == "0" and "No syncs match the filter" in texts(at.info)


def test_companies_are_named_in_the_history_and_found_by_name(store):
    """The name Codat gives each company (v_companies) beside its id; "—" (no value) for the
    company whose name was never read; a search finds a company by part of its name."""
    at = calm(open_report())
    table = history_table(at)
    assert table.proto.column_order[:9][-1] == "company_name"  # visible by default
    names = history(at).set_index("sync_id")["company_name"]
    assert names[seed.S_OK_GB] == "Acme Widgets Ltd" and names[seed.S_OK_US] == "Globex Corporation"
    assert names.isna()[seed.S_DEAUTH]  # the grid shows its placeholder, "—"
    at.text_input(key="search").set_value("globex").run()
    assert set(history(calm(at))["sync_id"]) == {seed.S_OK_US, seed.S_INVALID_US, seed.S_STUCK_US}
    at = calm(open_report(sync=seed.S_DEAUTH))
    facts = frame_by_column(at, "value").set_index("field")["value"]
    assert facts["Company"] == f"— ({seed.GONE})"


def test_date_range_narrows_history_and_totals(store, seeded):
    syncs, _ = seed.story(seeded[1])
    day = day_of(next(s.started for s in syncs if s.sync_id == seed.S_CLOSED_GB))
    expected = {s.sync_id for s in syncs if day_of(s.started) == day}
    at = open_report()
    at.date_input(key="dates").set_value((day, day)).run()
    assert set(history(calm(at))["sync_id"]) == expected
    assert metrics(at)["Syncs"] == str(len(expected))
    at.date_input(key="dates").set_value((day,)).run()  # only the start picked so far
    assert set(history(calm(at))["sync_id"]) == expected


def test_status_filter_shows_reasons_and_narrows(store):
    at = open_report()
    codes = at.multiselect(key="codes")
    assert "5130 · Data write error" in codes.options and "No status yet" in codes.options
    codes.set_value([5130]).run()
    assert set(history(calm(at))["sync_id"]) == {seed.S_CLOSED_GB, seed.S_RETRY1}
    assert set(history(at)["status_meaning"]) == {"Data write error"}
    at.multiselect(key="codes").set_value([ui_no_status(), 4040]).run()
    assert set(history(calm(at))["sync_id"]) == {seed.S_STUCK_US, seed.S_DEAUTH}


def ui_no_status() -> int:
    from report_app import explain

    return explain.NO_STATUS


def test_history_sorts_and_shows_chosen_columns(store):
    at = open_report()
    first = history(at)  # failed first, newest of them first
    assert first["sync_id"].iloc[0] == seed.S_DEAUTH and first["outcome"].iloc[4] == "failed"
    assert set(first["outcome"].iloc[5:]) != {"failed"}
    at.selectbox(key="sort").set_value("initiated_at").run()
    assert history(calm(at))["sync_id"].iloc[0] == seed.S_LONG_EU  # newest first
    at.selectbox(key="sort").set_value("failed_count").run()
    assert history(calm(at))["sync_id"].iloc[0] == seed.S_INVALID_US  # 3 failed items
    at.toggle(key="descending").set_value(False).run()
    at.selectbox(key="sort").set_value("initiated_at").run()
    assert history(calm(at))["sync_id"].iloc[0] == seed.S_OK_GB  # oldest first
    at.multiselect(key="columns").set_value(["sync_id", "status_code", "error_message"]).run()
    table = history_table(calm(at))
    assert list(table.proto.column_order) == ["sync_id", "status_code", "error_message"]


def test_csv_export_holds_the_filtered_table_with_chosen_columns(store, media):
    at = open_report()
    at.text_input(key="search").set_value("gb").run()
    at.multiselect(key="columns").set_value(["sync_id", "status_code", "status_meaning"]).run()
    content = downloaded(media, download_button(calm(at), "Export filtered history (CSV)"))
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert list(rows[0]) == ["sync_id", "status_code", "status_meaning"]
    gb = {seed.S_OK_GB, seed.S_DUP_GB, seed.S_CLOSED_GB, seed.S_RETRY1, seed.S_RETRY2}
    assert {r["sync_id"] for r in rows} == gb
    assert {r["status_code"] for r in rows if r["sync_id"] == seed.S_DUP_GB} == {"5080"}


def test_clicking_a_history_row_opens_that_sync(store):
    at = open_report()
    rows = history(at)
    position = int(rows.index[rows["sync_id"] == seed.S_INVALID_US][0])
    at.session_state["history"] = {"selection": {"rows": [position], "columns": [], "cells": []}}
    at.run()
    assert calm(at).title[0].value == f"Sync {seed.S_INVALID_US}"


def test_history_columns_and_the_column_chooser_use_friendly_names(store):
    at = calm(open_report())
    chooser = at.multiselect(key="columns")
    assert "Started (UTC)" in chooser.options and "initiated_at" not in chooser.options
    assert "Failed" in chooser.options and "failed_count" not in chooser.options
    table = history_table(at)
    config = json.loads(table.proto.columns)
    shown = list(table.proto.column_order)
    assert all(config[c]["label"] for c in shown), config
    assert shown.index("failed_count") < 9  # the key columns come before the long ones


def test_no_syncs_yet_and_missing_store_are_calm(tmp_path, monkeypatch):
    empty = str(tmp_path / "empty.duckdb")
    seed.empty_store(empty)
    monkeypatch.setenv(ui.STORE_ENV, empty)
    at = calm(open_report())
    assert metrics(at)["Syncs"] == "0" and "No syncs yet" in texts(at.info)
    monkeypatch.setenv(ui.STORE_ENV, str(tmp_path / "absent.duckdb"))
    at = calm(open_report())
    assert "There is no status store at" in texts(at.warning)
    monkeypatch.delenv(ui.STORE_ENV)
    at = open_report()
    assert not at.exception and "codat-expenses report --store PATH" in texts(at.error)


# -- sync details ----------------------------------------------------------------------------------
def test_sync_details_by_url_show_times_platforms_notes_and_raw_messages(store):
    at = calm(open_report(sync=seed.S_CLOSED_GB))
    assert at.title[0].value == f"Sync {seed.S_CLOSED_GB}"
    assert at.subheader[0].value == "5130 · Data write error · failed"
    shown = metrics(at)
    assert shown["Duration"] == "2 min 0 s" and shown["Items"] == "3"
    assert shown["Failed items"] == "2"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", shown["Started (UTC)"])
    facts = frame_by_column(at, "value").set_index("field")["value"]
    assert facts["Platforms"] == "Airbyte → Xero"
    assert facts["Company"] == f"Acme Widgets Ltd ({seed.GB})"
    assert facts["Expenses dated"] == "2023-06-01 to 2024-05-01"
    assert facts["Status code and text"] == "5130 PushError"
    notes = texts(at.warning)
    assert "**Data could not be written.**" in notes and "**Closed period.**" in notes
    assert "reopen the period" in notes
    raw = [c.value for c in at.code]
    assert any("locked for entries on or before 2023-12-31" in c for c in raw)
    assert any(c.startswith("PushError: 2 of 3") for c in raw)


def test_root_url_with_sync_param_opens_the_details_page(store):
    at = calm(open_report(sync=seed.S_DEAUTH))
    assert at.title[0].value == f"Sync {seed.S_DEAUTH}"
    assert "**Accounting software disconnected.**" in texts(at.warning)
    assert "re-link" in texts(at.warning)


def test_notes_for_duplicates_and_long_running(store):
    at = calm(open_report(sync=seed.S_DUP_GB))
    assert "Already processed (duplication protection)" in texts(at.warning)
    at = calm(open_report(sync=seed.S_LONG_EU))
    assert "**Long-running sync.**" in texts(at.info)
    assert "This sync is long running." in texts(at.warning)
    assert "Running for" in metrics(at)


def test_retry_lineage_shows_the_chain_both_ways(store):
    at = calm(open_report(sync=seed.S_RETRY1))
    lineage = frame_by_column(at, "relation")
    assert lineage[["relation", "sync_id"]].values.tolist() == [
        ["original sync", seed.S_CLOSED_GB],
        ["this sync", seed.S_RETRY1],
        ["retry of this sync", seed.S_RETRY2],
    ]
    assert {f"Open sync {seed.S_CLOSED_GB}", f"Open sync {seed.S_RETRY2}"} <= set(links(at))
    at = calm(open_report(sync=seed.S_OK_US))
    assert "This sync is not a retry and has not been retried." in texts(at.caption)


def test_sync_is_picked_from_the_sidebar_search(store):
    at = calm(open_report())
    at.switch_page("pages/sync_details.py").run()
    assert "Choose a sync" in texts(calm(at).info)
    at.sidebar.text_input[0].set_value("5120").run()
    picker = at.sidebar.selectbox[0]
    assert len(picker.options) == 1  # the id with its company, software and status
    assert picker.options[0].startswith(
        f"{seed.S_INVALID_US} · Globex Corporation ({seed.US}) · QuickBooks Online · "
        "5120 · Data processing error"
    )
    at.sidebar.text_input[0].set_value("Acme Widg").run()  # a company's name finds its syncs
    assert len(at.sidebar.selectbox[0].options) == 5
    at.sidebar.text_input[0].set_value("5120").run()
    at.sidebar.selectbox[0].set_value(seed.S_INVALID_US).run()
    assert calm(at).title[0].value == f"Sync {seed.S_INVALID_US}"
    assert at.query_params["sync"] == seed.S_INVALID_US


def test_unknown_sync_id_says_so(store):
    at = calm(open_report(sync="sync-that-never-was"))
    assert "That sync is not in the status store." in texts(at.warning)


def test_config_tab_shows_and_downloads_the_snapshot(store, media):
    at = calm(open_report(sync=seed.S_CLOSED_GB))
    assert [t.label for t in at.tabs] == ["Push items (3)", "Config"]
    assert at.json[0].value and json.loads(at.json[0].value) == seed.CONFIG_GB
    button = download_button(at, "Download config (JSON)")
    assert json.loads(downloaded(media, button)) == seed.CONFIG_GB
    assert button.proto.label == "Download config (JSON)"
    at = calm(open_report(sync=seed.S_DEAUTH))
    assert "No expense configuration was recorded with this sync." in texts(at.info)


def test_push_items_search_and_status_filter(store):
    at = calm(open_report(sync=seed.S_CLOSED_GB))
    items = frame_by_column(at, "record_id")
    assert len(items) == 3 and set(items["reason"]) == {"", "Closed period"}
    at.text_input(key="item_search").set_value("0004").run()
    assert frame_by_column(calm(at), "record_id")["transaction_id"].tolist() == ["txn-gb-0004"]
    at.text_input(key="item_search").set_value("directcosts").run()  # data type, any case
    assert frame_by_column(calm(at), "record_id")["record_id"].tolist() == ["XERO-3"]
    at.text_input(key="item_search").set_value("").run()
    assert frame_by_column(calm(at), "record_id")["transaction_id"].tolist() == [
        "txn-gb-0004",
        "txn-gb-0005",
        "txn-gb-0003",
    ]  # failed first
    at.multiselect(key="item_status").set_value(["PushError"]).run()
    failed = frame_by_column(calm(at), "record_id")
    assert failed["transaction_id"].tolist() == ["txn-gb-0004", "txn-gb-0005"]


def test_push_items_show_exact_amounts_per_currency(store):
    at = calm(open_report(sync=seed.S_OK_US))
    items = frame_by_column(at, "record_id").set_index("transaction_id")
    assert items.loc["txn-us-0001", "amount_shown"] == "1,234,567.89 USD"
    assert items.loc["txn-us-0003", "amount_shown"] == "1,234.567 KWD"


def test_clicking_a_push_item_opens_its_expense(store):
    at = calm(open_report(sync=seed.S_INVALID_US))
    at.session_state["items"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert calm(at).title[0].value == "Expense txn-us-0005"


# -- retry -----------------------------------------------------------------------------------------
OPERATOR_TOKEN = "operator-token-7f3a9c"  # noqa: S105 - a test value


def retry_button(at: AppTest):
    return at.button(key="retry")


@pytest.fixture
def operator(monkeypatch) -> str:
    """The report started with an operator token configured (no OIDC)."""
    monkeypatch.setenv(access.OPERATOR_TOKEN_ENV, OPERATOR_TOKEN)
    return OPERATOR_TOKEN


def sign_in(at: AppTest, token: str) -> AppTest:
    at.sidebar.text_input(key="operator_token_input").input(token)
    next(b for b in at.sidebar.button if b.label == "Sign in").click().run()
    return at


def everything_shown(at: AppTest) -> str:
    """Every text the page holds, widgets' values included."""
    return str(at._tree)


def test_retry_is_refused_until_signed_in_with_the_operator_token(store, monkeypatch, operator):
    monkeypatch.setenv(actions.KEY_ENV, "a-key")
    at = calm(open_report(sync=seed.S_INVALID_US))
    assert retry_button(at).disabled
    assert "Sign in (in the sidebar) to retry failed items" in texts(at.info)
    sign_in(at, "not-the-token")
    assert retry_button(at).disabled and "That is not the operator token." in texts(at.error)
    sign_in(at, operator)
    assert not retry_button(calm(at)).disabled
    assert "Signed in as operator" in texts(at.caption)
    assert operator not in everything_shown(at)  # never echoed, the form was cleared
    next(b for b in at.sidebar.button if b.label == "Sign out").click().run()
    assert retry_button(calm(at)).disabled


def test_retry_is_off_with_a_sentence_when_nobody_can_sign_in(store, monkeypatch):
    monkeypatch.delenv(access.OPERATOR_TOKEN_ENV, raising=False)
    monkeypatch.setenv(actions.KEY_ENV, "a-key")
    at = calm(open_report(sync=seed.S_INVALID_US))
    assert retry_button(at).disabled
    assert access.HOW_TO_ENABLE in texts(at.info)
    assert "Read-only: signing in is not set up" in texts(at.caption)


@pytest.mark.parametrize("sync_id", [seed.S_OK_GB, seed.S_CLOSED_GB, seed.S_DUP_GB, seed.S_DEAUTH])
def test_retry_is_disabled_without_failed_items(store, monkeypatch, sync_id):
    monkeypatch.setenv(actions.KEY_ENV, "a-key")
    at = calm(open_report(sync=sync_id))
    assert retry_button(at).disabled
    assert "No failed items to retry" in texts(at.caption)


def test_retry_without_credentials_shows_the_exact_command(store):
    at = calm(open_report(sync=seed.S_INVALID_US))
    assert retry_button(at).disabled
    assert "has no Codat API key ($CODAT_API_KEY is not set)" in texts(at.info)
    assert f"codat-expenses retry --store {store} --sync {seed.S_INVALID_US}" in [
        c.value for c in at.code
    ]


def test_retry_is_enabled_for_failed_items_with_credentials(store, monkeypatch, operator):
    monkeypatch.setenv(actions.KEY_ENV, "a-key")
    at = sign_in(calm(open_report(sync=seed.S_INVALID_US)), operator)
    assert not retry_button(at).disabled
    assert "3 failed item(s) will be pushed again with the same ids." in texts(at.caption)


def test_retry_button_pushes_failed_items_against_the_sandbox(
    tmp_path, sandbox_url, monkeypatch, operator
):
    """Real destination -> real store with a 5130 sync; fix the books; press the button."""
    store = tmp_path / "status.duckdb"
    lines = [
        record("card_spend", flat("ok-1", date="2024-05-02")),
        record("card_spend", flat("closed-1", date="2023-06-01")),
        record("card_spend", flat("closed-2", date="2023-07-01")),
    ]
    write_in_process(settings(sandbox_url, store), catalog("card_spend"), lines)
    release(str(store))  # this test process wrote it; the report reads it read-only
    with duckdb.connect(str(store), read_only=True) as db:
        failed = db.execute("SELECT sync_id FROM syncs WHERE status_code = 5130").fetchone()[0]
    monkeypatch.setenv(ui.STORE_ENV, str(store))
    monkeypatch.setenv(actions.KEY_ENV, "sandbox-test-key")
    monkeypatch.setenv(actions.URL_ENV, sandbox_url)
    at = sign_in(calm(open_report(sync=failed)), operator)
    assert "**Closed period.**" in texts(at.warning)
    patch_company(sandbox_url, XERO, {"closedUntil": None})
    retry_button(at).click().run()
    calm(at)
    with duckdb.connect(str(store), read_only=True) as db:
        new_id, code = db.execute(
            "SELECT sync_id, status_code FROM syncs WHERE retry_of = ?", [failed]
        ).fetchone()
    assert code == 2000
    assert f"Retried 2 item(s) as sync {new_id}: 2000 · Success (Data written)." in texts(
        at.success
    )
    lineage = frame_by_column(at, "relation").set_index("sync_id")
    assert lineage.loc[new_id, "status"] == "2000 · Success (Data written)"
    assert retry_button(at).disabled  # nothing left to retry
    new = calm(open_report(sync=new_id))
    assert new.subheader[0].value == "2000 · Success (Data written) · succeeded"


def test_a_retry_whose_new_sync_fails_again_says_so(tmp_path, sandbox_url, monkeypatch, operator):
    """The closed period is not fixed: the new sync ends 5130 and the page says the retry did
    not succeed, with the new sync's code and meaning (the command exits 1)."""
    store = tmp_path / "status.duckdb"
    lines = [record("card_spend", flat("closed-1", date="2023-06-01"))]
    write_in_process(settings(sandbox_url, store), catalog("card_spend"), lines)
    release(str(store))
    with duckdb.connect(str(store), read_only=True) as db:
        failed = db.execute("SELECT sync_id FROM syncs WHERE status_code = 5130").fetchone()[0]
    monkeypatch.setenv(ui.STORE_ENV, str(store))
    monkeypatch.setenv(actions.KEY_ENV, "sandbox-test-key")
    monkeypatch.setenv(actions.URL_ENV, sandbox_url)
    at = sign_in(calm(open_report(sync=failed)), operator)
    retry_button(at).click().run()
    calm(at)
    with duckdb.connect(str(store), read_only=True) as db:
        new_id, code = db.execute(
            "SELECT sync_id, status_code FROM syncs WHERE retry_of = ?", [failed]
        ).fetchone()
    assert code == 5130
    said = f"The retry did not succeed: sync {new_id} ended 5130 Data write error"
    assert said in texts(at.warning).replace("\\:", ":")  # ui.md escapes the colon
    assert f"as sync {new_id}: 5130" in texts(at.info) and "Retried" not in texts(at.success)


def test_a_refused_retry_is_reported_calmly(own_store, sandbox_url, monkeypatch, operator):
    """Codat does not know the seeded company: the retry command fails, the page says why."""
    monkeypatch.setenv(actions.KEY_ENV, "sandbox-test-key")
    monkeypatch.setenv(actions.URL_ENV, sandbox_url)
    at = sign_in(calm(open_report(sync=seed.S_INVALID_US)), operator)
    retry_button(at).click().run()
    calm(at)
    assert at.warning and retry_button(at).label == "Retry failed items"
    refusal = at.warning[-1].value
    assert "404" in refusal or "not found" in refusal.lower(), refusal
    assert any("codat-expenses:" in c.value for c in at.code)  # the command's own output
    assert not retry_button(at).disabled  # nothing changed: the items can still be retried


# -- expense view ----------------------------------------------------------------------------------
def test_transaction_view_follows_one_expense_across_syncs(store):
    at = calm(open_report(transaction="txn-gb-0005"))
    assert at.title[0].value == "Expense txn-gb-0005"
    shown = metrics(at)
    assert shown["Current state"] == "completed" and shown["Pushes"] == "3"
    assert shown["Amount"] == "8.25 GBP"
    attempts = frame_by_column(at, "sync_status")
    assert attempts["sync_id"].tolist() == [seed.S_CLOSED_GB, seed.S_RETRY1, seed.S_RETRY2]
    assert attempts["status"].tolist() == ["PushError", "PushError", "Completed"]
    assert attempts["reason"].tolist()[0] == "Closed period"
    assert f"Open sync {seed.S_RETRY1}" in links(at)


def test_transaction_view_finds_an_expense_by_source_key(store):
    at = calm(open_report())
    at.switch_page("pages/transaction.py").run()
    at.sidebar.text_input[0].set_value("src-us-0006").run()
    assert (
        at.sidebar.selectbox[0]
        .options[0]
        .startswith(f"txn-us-0006 · Globex Corporation ({seed.US}) · 70.00 EUR")
    )
    at.sidebar.selectbox[0].set_value("txn-us-0006").run()
    assert calm(at).title[0].value == "Expense txn-us-0006"
    assert "**Currency rate missing.**" in texts(at.warning)


# -- the store's lock ------------------------------------------------------------------------------
HOLDER = """
import sys, time, duckdb
db = duckdb.connect(sys.argv[1])
db.execute("BEGIN TRANSACTION")
db.execute("UPDATE syncs SET status_text = 'held' WHERE sync_id = 'sync-2000-gb'")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
db.close()
"""


def hold_lock(path: str, seconds: float) -> subprocess.Popen:
    """Another process writing the store: it holds the file's lock for `seconds`."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, path, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


@pytest.fixture
def own_store(tmp_path, monkeypatch) -> str:
    path = str(tmp_path / "status.duckdb")
    seed.seed_story(path)
    monkeypatch.setenv(ui.STORE_ENV, path)
    return path


def test_a_short_writer_lock_is_waited_out_silently(own_store):
    holder = hold_lock(own_store, 1.0)
    started = time.monotonic()
    at = calm(open_report())
    holder.wait(timeout=30)
    assert time.monotonic() - started >= 0.5
    assert metrics(at)["Syncs"] == "11"


def test_a_long_writer_lock_shows_busy_then_the_page(own_store, monkeypatch):
    """A notice, no sleeping: the page returns at once; the next read (the fragment's retry,
    a rerun here) shows the page."""
    monkeypatch.setattr(queries, "LOCK_WAIT_S", 0.2)
    holder = hold_lock(own_store, 3.0)
    started = time.monotonic()
    at = calm(open_report(sync=seed.S_OK_GB))
    assert time.monotonic() - started < 2.5 or holder.poll() is None  # it did not wait it out
    assert "The status store is busy" in texts(at.info)
    assert at.session_state[ui.BUSY_TOTAL] >= 1
    holder.wait(timeout=30)
    at.run()
    assert calm(at).title[0].value == f"Sync {seed.S_OK_GB}"
    facts = frame_by_column(at, "value").set_index("field")["value"]
    assert facts["Status code and text"] == "2000 held"  # read after the writer committed


def test_report_pages_do_not_import_the_airbyte_cdk(seeded):
    """The CDK is slow to import; the report and its retry path must not pull it in."""
    script = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({str(APP)!r}, default_timeout=60)\n"
        f"at.query_params['sync'] = {seed.S_CLOSED_GB!r}\n"
        "at.run()\n"
        "assert not at.exception, at.exception\n"
        "at.switch_page('pages/transaction.py').run()\n"
        "import report_app.actions\n"
        "import destination_codat_expenses.cli.report\n"
        "print(sorted(m for m in sys.modules if m.startswith('airbyte')))\n"
    )
    env = {**__import__("os").environ, ui.STORE_ENV: seeded[0]}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


# -- runs, rejects, receipts, webhook events -------------------------------------------------------
def test_runs_page_lists_failed_runs_first_with_why(store):
    at = calm(open_report())
    at.switch_page("pages/runs.py").run()
    runs = frame_by_column(calm(at), "records_rejected")
    assert len(runs) == seed.EXPECTED["runs"]
    assert runs["run_id"].iloc[0] == seed.FAILED_RUN and runs["outcome"].iloc[0] == "failed"
    assert runs["error"].iloc[0] == seed.RUN_ERROR
    # the error above the grid, as recorded: a code box (its `commands` not escaped Markdown)
    assert [c.value for c in at.code] == [seed.RUN_ERROR] and "`" in seed.RUN_ERROR
    assert metrics(at)["Failed"] == "1" and metrics(at)["Running"] == "1"
    assert metrics(at)["Records rejected"] == str(seed.EXPECTED["rejects"])
    at.session_state["runs"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()  # a click opens that run's rejects
    assert calm(at).title[0].value == "Rejected records"
    assert set(frame_by_column(at, "reason")["run_id"]) == {seed.FAILED_RUN}


def test_rejects_page_filters_searches_and_downloads(store, media):
    at = calm(open_report())
    at.switch_page("pages/rejects.py").run()
    rejects = frame_by_column(calm(at), "reason")
    assert len(rejects) == seed.EXPECTED["rejects"]
    at.selectbox[1].set_value("currency").run()  # by field
    assert frame_by_column(calm(at), "reason")["record_key"].tolist() == ["src-us-9002"]
    at.selectbox[1].set_value("").run()
    at.text_input[0].set_value("not a decimal").run()  # search the reasons
    found = frame_by_column(calm(at), "reason")
    assert found["record_key"].tolist() == ["src-us-9001"]
    content = downloaded(media, download_button(at, "Download these rejects (CSV)"))
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert [r["record_key"] for r in rows] == ["src-us-9001"] and rows[0]["field"] == "amount"


def test_receipts_page_per_sync_and_per_expense_with_the_refusal(store):
    at = calm(open_report())
    at.switch_page("pages/attachments.py").run()
    receipts = frame_by_column(calm(at), "file_name")
    assert len(receipts) == seed.EXPECTED["receipts"]
    assert receipts["status"].tolist()[0] == "refused"  # not uploaded first
    assert "image/tiff is not a supported" in receipts["message"].iloc[0]
    per_sync = frame_by_column(at, "not_uploaded").set_index("sync_id")
    assert per_sync.loc[seed.S_INVALID_US, "not_uploaded"] == 1
    assert per_sync.loc[seed.S_OK_US, "pending"] == 1
    at = calm(open_report(transaction="txn-us-0004"))
    mine = frame_by_column(at, "file_name")
    assert mine["status"].tolist() == ["refused"]


def test_webhook_events_page_says_what_each_delivery_did(store):
    at = calm(open_report())
    at.switch_page("pages/webhooks.py").run()
    events = frame_by_column(calm(at), "effect").set_index("webhook_id")
    assert len(events) == seed.EXPECTED["webhook_events"]
    assert events.loc["msg-0002", "effect"] == "ignored (signature did not hold)"
    assert events.loc["msg-0001", "effect"] == "sync marked to confirm with Codat"
    assert events.loc["msg-0001", "company_name"] == "Globex Corporation"
    assert events["company_name"].isna()["msg-0002"]  # never named: the grid shows "—"
    assert metrics(at)["Not verified"] == "1"
