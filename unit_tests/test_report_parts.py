"""The report's pure parts: plain-language notes, SQL building, chart builders, the launcher."""

from __future__ import annotations

from datetime import date

import pytest

from codat_sandbox.engine import SYNC_STATUS_TEXT
from destination_codat_expenses.cli import report as cli_report
from destination_codat_expenses.cli.env import EXIT_NOT_ALL_DONE, EXIT_OK, KEY_ENV, URL_ENV
from destination_codat_expenses.cli.main import build_parser
from report_app import actions, charts, explain, queries

# messages the sandbox (and Codat) writes, with the note each must get
KNOWN_MESSAGES = {
    "The transaction date 2023-06-01 is in a closed period: Xero is locked for entries on or "
    "before 2023-12-31.": "Closed period",
    "Line 1: account '999' was not found in the chart of accounts.": "Unknown account",
    "Line 1: account '260 Card rewards and cashback' cannot be used for Payment "
    "transactions.": "Account not valid for this type",
    "Line 1: tax rate 'ZZZ' was not found.": "Unknown or unsupported tax rate",
    "Line 1: FreeAgent does not accept taxRateRef; leave it out.": (
        "Unknown or unsupported tax rate"
    ),
    "The transaction is in EUR but the company's base currency is GBP; a currencyRate is "
    "required for foreign currency.": "Currency rate missing",
    "Bank account 'Company card (GBP)' is in GBP but the transaction is in USD.": (
        "Bank account currency mismatch"
    ),
    "Bank account '999' was not found in Xero.": "Unknown bank account",
    "One or more transactions have previously been processed: abc": "Already processed (5080)",
    "The Xero connection is Deauthorized; the customer must re-link it before expenses can "
    "sync.": "Accounting software disconnected (4040)",
    "The company has no expense configuration: set a default bank account, supplier and "
    "customer (POST /sync/expenses/config).": "No expense configuration (4000)",
    "The Xero subscription for this company has expired.": "Subscription expired (4260)",
    "Sandbox forced status 5000: Generic server error.": "Codat server error (5000)",
    "Line 1: amount 1.234 has more decimal places than GBP allows (2).": (
        "Too many decimal places"
    ),
}


def test_every_codat_status_code_has_its_meaning_and_a_note():
    assert explain.STATUS_MEANING is not SYNC_STATUS_TEXT  # two tables: product and fake Codat
    assert explain.STATUS_MEANING == SYNC_STATUS_TEXT
    assert set(explain.CODE_NOTES) == set(SYNC_STATUS_TEXT)
    assert explain.code_label(5130) == "5130 · Data write error"
    assert explain.code_label(None) == explain.code_label(float("nan")) == "No status yet"
    assert explain.meaning(9999) == "Unknown status code"


def test_the_not_found_at_codat_marker_is_named_and_explained_apart_from_codats_codes():
    """404 is the product's own marker (status refresh settled a sync Codat does not know)."""
    assert 404 not in SYNC_STATUS_TEXT
    assert explain.code_label(404) == "404 · Not found at Codat"
    note = explain.note_for_code(404)
    assert note.title == "Not found at Codat" and "status refresh" in note.happened
    assert explain.notes_for_sync(404, [None])[0] is note


@pytest.mark.parametrize(("message", "title"), KNOWN_MESSAGES.items())
def test_known_messages_get_plain_notes(message, title):
    note = explain.note_for_message(message)
    assert note is not None and note.title == title
    assert note.happened.endswith(".") and note.to_do.endswith(".")


def test_unknown_and_missing_messages_get_no_note():
    assert explain.note_for_message("Something nobody has seen before") is None
    assert explain.note_for_message(None) is None
    assert explain.note_for_message(float("nan")) is None
    assert explain.short_reason("Created directCosts XERO-1 in Xero") == ""


def test_sync_notes_lead_with_the_code_and_do_not_repeat_it():
    closed = next(m for m, t in KNOWN_MESSAGES.items() if t == "Closed period")
    notes = explain.notes_for_sync(5130, [closed, closed, None])
    assert [n.title for n in notes] == ["Data could not be written", "Closed period"]
    deauth = next(m for m, t in KNOWN_MESSAGES.items() if t.endswith("(4040)"))
    assert [n.title for n in explain.notes_for_sync(4040, [deauth])] == [
        "Accounting software disconnected"
    ]


def test_search_text_is_a_literal_pattern():
    assert queries.like("50%_off\\") == "%50\\%\\_off\\\\%"


def test_filter_becomes_fixed_sql_with_parameters():
    flt = queries.SyncFilter("ab", date(2024, 5, 1), date(2024, 5, 2), (5130, 0))
    where, params = queries.where_syncs(flt)
    assert "ab" not in where and where.count("?") == len(params) == 5
    assert params[2].isoformat() == "2024-05-01T00:00:00+00:00"
    assert params[3].isoformat() == "2024-05-03T00:00:00+00:00"  # `until` is inclusive
    assert params[4] == [5130, 0]


def test_history_sorts_only_by_known_columns():
    sql, _ = queries.history_sql(queries.SyncFilter(), "failed_count", True)
    assert "ORDER BY failed_count DESC" in sql
    with pytest.raises(ValueError):
        queries.history_sql(queries.SyncFilter(), "sync_id; DROP TABLE syncs", True)


def test_charts_are_built_from_frames():
    import pandas as pd

    per_day = pd.DataFrame(
        {"day": ["2024-05-01", "2024-05-01"], "status_code": [2000, None], "syncs": [3, 1]}
    ).assign(status=lambda f: [explain.code_label(c) for c in f["status_code"]])
    spec = charts.syncs_per_day(per_day).to_dict()
    assert spec["mark"]["type"] == "bar"
    assert spec["encoding"]["color"]["scale"]["domain"] == [
        "No status yet",
        "2000 · Success (Data written)",
    ]
    outcomes = pd.DataFrame({"outcome": ["failed", "succeeded"], "syncs": [1, 3]})
    assert charts.syncs_by_outcome(outcomes).to_dict()["encoding"]["y"]["field"] == "outcome"
    codes = pd.DataFrame({"status_code": [5130], "syncs": [2]})
    assert charts.syncs_by_code(codes).to_dict()["encoding"]["x"]["field"] == "syncs"


def test_retry_command_and_credentials_use_the_cli_names(monkeypatch):
    assert (actions.KEY_ENV, actions.URL_ENV) == (KEY_ENV, URL_ENV)
    assert actions.retry_command("/data/s.duckdb", "abc") == (
        "codat-expenses retry --store /data/s.duckdb --sync abc"
    )
    assert "'/my store/s.duckdb'" in actions.retry_command("/my store/s.duckdb", "abc")
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert not actions.has_credentials()
    monkeypatch.setenv(KEY_ENV, "k")
    assert actions.has_credentials()


def test_a_retry_that_ran_but_did_not_succeed_is_done_and_says_why():
    lines = [
        "new sync s2: 5130 Data write error (PushError)",
        "codat-expenses: the retry did not succeed: sync s2 ended 5130 Data write error",
        "codat-expenses: `codat-expenses syncs show <sync>` lists each item's reason",
    ]
    result = actions.outcome(EXIT_NOT_ALL_DONE, lines)
    assert result.done and not result.succeeded
    assert result.message == "The retry did not succeed: sync s2 ended 5130 Data write error"
    assert actions.outcome(EXIT_OK, []).succeeded


def test_report_command_runs_streamlit_safely():
    args = build_parser().parse_args(["report", "--store", "s.duckdb"])
    assert (args.host, args.port, args.handler) == ("127.0.0.1", 8501, cli_report.run_report)
    command = cli_report.streamlit_command("127.0.0.1", 8599)
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4].endswith("report_app/app.py")
    for flag in (
        "--server.address=127.0.0.1",
        "--server.port=8599",
        "--server.headless=true",
        "--server.enableXsrfProtection=true",
        "--client.showErrorDetails=false",
        "--browser.gatherUsageStats=false",
    ):
        assert flag in command
    assert cli_report.STORE_ENV == "CODAT_EXPENSES_STORE"


def test_a_syncs_notes_never_contradict_its_code():
    """A whole-sync problem named in an item's message (the sandbox writes "Not written: <the
    sync's error>" on every item of a 4040) is the code's own note or a contradiction."""
    deauth = next(m for m, t in KNOWN_MESSAGES.items() if t.endswith("(4040)"))
    closed = next(m for m, t in KNOWN_MESSAGES.items() if t == "Closed period")
    titles = [n.title for n in explain.notes_for_sync(5130, [f"Not written: {deauth}", closed])]
    assert titles == ["Data could not be written", "Closed period"]
    config = next(m for m, t in KNOWN_MESSAGES.items() if t.endswith("(4000)"))
    assert [n.title for n in explain.notes_for_sync(4040, [config, closed])] == [
        "Accounting software disconnected"
    ]


def test_a_sync_without_codats_final_word_gets_its_one_note():
    closed = next(m for m, t in KNOWN_MESSAGES.items() if t == "Closed period")
    assert [n.title for n in explain.notes_for_sync(1000, [closed])] == ["Sync in progress"]
    assert explain.notes_for_sync(None, [closed], "unconfirmed") == [explain.UNCONFIRMED_NOTE]
    assert explain.notes_for_sync(None, [closed]) == []


def test_unconfirmed_syncs_are_named_as_such_and_only_codats_text_is_from_codat():
    assert explain.status_label(None, "unconfirmed") == explain.UNCONFIRMED_LABEL
    assert explain.status_meaning(None, "unconfirmed") == explain.UNCONFIRMED_LABEL
    assert explain.status_label(5130, "failed") == "5130 · Data write error"
    assert explain.source_label("Error message", "codat") == "Error message (from Codat)"
    for source in ("product", "webhook", None):
        assert "from Codat" not in explain.source_label("Error message", source)
