"""The report's pure parts: plain-language notes, SQL building, chart builders, the launcher."""

from __future__ import annotations

from datetime import date

import pytest

from codat_sandbox.engine import SYNC_STATUS_TEXT
from destination_codat_expenses.cli import report as cli_report
from destination_codat_expenses.cli.env import (
    EXIT_NOT_ALL_DONE,
    EXIT_OK,
    KEY_ENV,
    STORE_ENV,
    URL_ENV,
)
from destination_codat_expenses.cli.main import build_parser
from report_app import access, actions, charts, explain, money, queries, ui

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
    assert "ab" not in where and where.count("?") == len(params) == 6  # the name too
    assert params[3].isoformat() == "2024-05-01T00:00:00+00:00"
    assert params[4].isoformat() == "2024-05-03T00:00:00+00:00"  # `until` is inclusive
    assert params[5] == [5130, 0]


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
    # legend order: success first, then waiting; labels never cut
    assert spec["encoding"]["color"]["scale"]["domain"] == [
        "2000 · Success (Data written)",
        "No status yet",
    ]
    assert spec["encoding"]["color"]["legend"]["labelLimit"] == 0
    # one day is one labelled bar, not a full-width block on a time axis
    assert spec["encoding"]["x"]["type"] == "ordinal" and spec["mark"]["size"] == 36
    codes = pd.DataFrame({"status_code": [5130], "syncs": [2]})
    assert charts.syncs_by_code(codes).to_dict()["encoding"]["x"]["field"] == "syncs"


def test_every_code_has_who_acts_and_a_colour_of_its_own():
    from destination_codat_expenses.models import OWN_STATUS_MEANING, STATUS_MEANING, WHO_ACTS

    codes = [*STATUS_MEANING, *OWN_STATUS_MEANING]
    assert set(WHO_ACTS) == set(codes)
    assert {explain.severity(c) for c in codes} == set(explain.SEVERITIES)
    assert explain.severity(None) == explain.WAITING == explain.severity(explain.NO_STATUS)
    colours = [charts.CODE_COLOURS[c] for c in [*codes, explain.NO_STATUS]]
    assert len(set(colours)) == len(colours)  # no two codes share a colour


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("1234567.890000000", "USD", "1,234,567.89 USD"),
        ("125000.000000000", "JPY", "125,000 JPY"),
        ("1234.567000000", "KWD", "1,234.567 KWD"),
        ("0E-9", "EUR", "0.00 EUR"),
        ("-12.5", "GBP", "-12.50 GBP"),
        ("1.234", "USD", "1.234 USD"),  # more digits than USD allows: shown whole, not rounded
        ("5", "XYZ", "5 XYZ"),  # unknown currency: the digits it has
        (None, "USD", "—"),
    ],
)
def test_amounts_are_exact_with_the_currencys_minor_units(amount, currency, shown):
    assert money.format_amount(amount, currency) == shown


def test_totals_are_exact_and_floats_are_refused():
    from decimal import Decimal

    assert money.total(["1.234", "1000.001", None]) == Decimal("1001.235")
    assert money.format_amount(money.total(["1.234", "1000.001"]), "KWD") == "1,001.235 KWD"
    with pytest.raises(TypeError):
        money.format_amount(0.1, "USD")


def test_platforms_of_a_sync_only_a_webhook_named_are_not_known_yet():
    assert ui.platforms(None, None) == "Not known yet (only a webhook has named this sync)"
    assert ui.platforms("Airbyte", None) == "Airbyte → not known yet"
    assert ui.platforms("Airbyte", "Xero") == "Airbyte → Xero"


def test_the_operator_token_is_compared_whole_and_an_unset_one_matches_nothing():
    assert access.token_matches("s3cret-token", "s3cret-token")
    assert not access.token_matches("s3cret", "s3cret-token")
    assert not access.token_matches("", "")
    assert not access.token_matches("anything", "")


def test_the_retry_child_never_gets_the_operator_token(monkeypatch):
    seen = {}

    class Child:
        def __init__(self, argv, **kwargs):
            seen.update(kwargs["env"], argv=argv)
            self.stdout = iter(())

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def wait(self):
            return EXIT_OK

    monkeypatch.setenv(access.OPERATOR_TOKEN_ENV, "op-token")
    monkeypatch.setattr(actions.subprocess, "Popen", Child)
    store = "postgresql://report:pg-Secret-9@db:5432/codat"
    actions.retry_failed_items(store, "sync-1", lambda line: None)
    assert access.OPERATOR_TOKEN_ENV not in seen and seen["PYTHONUNBUFFERED"] == "1"
    # the store (a URL's password) goes by the environment, never on a process list
    assert seen[STORE_ENV] == store and not any("pg-Secret-9" in arg for arg in seen["argv"])


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
