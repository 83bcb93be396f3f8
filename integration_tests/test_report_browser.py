"""The Sync Health report in a real browser: headless Chromium (Debian packages, driven by
Selenium) on `codat-expenses report` in its own process.

1. Over a store the real destination wrote against the sandbox: filter, open the failed sync,
   read its push items, see "Retry failed items" refused until signed in with the operator
   token, press it, and find the two expenses in the sandbox's books, then on the page.
2. Over the story store (testing/report_seed.py) at 1280 and 1600 px: every page (dashboard,
   sync, expense, runs, rejects, receipts, webhook events) as a person sees it: JPY, KWD and USD
   amounts formatted, no time tile cut off, no "None" anywhere.
PNG screenshots of every step go to test-artifacts/report/.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import httpx
import pytest
from conftest import AUTH
from destination_support import (
    API_KEY,
    XERO,
    catalog,
    flat,
    patch_company,
    record,
    settings,
    write_in_process,
)

from destination_codat_expenses.store.db import release
from report_app.access import OPERATOR_TOKEN_ENV
from testing import report_seed as seed
from testing.browser import (
    body_text,
    button,
    choose,
    chromium,
    click,
    click_grid_row,
    cut_off,
    evidence_on_failure,
    grid_rows,
    have_browser,
    link,
    report_server,
    screenshot,
    scroll_to_text,
    sign_in,
    tab,
    type_into,
    wait_for_fonts,
    wait_for_metrics,
    wait_for_rows,
    wait_for_text,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "report"
SUCCESS = "2000 · Success (Data written)"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not have_browser(),
        reason="needs /usr/bin/chromium and /usr/bin/chromedriver (make test installs them)",
    ),
]


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    return ARTIFACTS


@pytest.fixture
def browser():
    with chromium() as driver:
        yield driver


@pytest.fixture
def written_store(tmp_path, sandbox_url) -> tuple[str, str, str]:
    """Two syncs by the real destination: one clean, one with two expenses in Xero's closed
    period (on or before 2023-12-31) next to a good one. Returns (store, good, failed)."""
    store = tmp_path / "status.duckdb"
    config = settings(sandbox_url, store)
    clean = [record("card_spend", flat(f"ok-{n}", date="2024-05-02")) for n in (1, 2)]
    write_in_process(config, catalog("card_spend"), clean)
    mixed = [
        record("card_spend", flat("ok-3", date="2024-05-03")),
        record("card_spend", flat("closed-1", date="2023-06-01")),
        record("card_spend", flat("closed-2", date="2023-07-01")),
    ]
    write_in_process(config, catalog("card_spend"), mixed)
    release(str(store))  # this process wrote it; the report (another process) reads it
    with duckdb.connect(str(store), read_only=True) as db:
        codes = dict(db.execute("SELECT status_code, sync_id FROM syncs").fetchall())
    assert sorted(codes) == [2000, 5130], codes
    return str(store), codes[2000], codes[5130]


def test_failed_sync_is_found_inspected_and_retried_in_the_browser(
    written_store, sandbox_url, browser, artifacts, tmp_path
):
    store, good, failed = written_store
    patch_company(sandbox_url, XERO, {"closedUntil": None})  # the customer reopens the period
    token = "browser-operator-token-51c2"  # noqa: S105 - a test value
    env = {
        **os.environ,
        "CODAT_API_KEY": API_KEY,
        "CODAT_BASE_URL": sandbox_url,
        OPERATOR_TOKEN_ENV: token,
    }
    shot = iter(range(1, 100))

    def save(name: str, focus: str | None = None, exact: bool = False) -> None:
        """A numbered PNG of the viewport, scrolled to the text `focus` if given."""
        if focus:
            scroll_to_text(browser, focus, exact)
        screenshot(browser, artifacts / f"{next(shot):02d}-{name}.png")

    with (
        report_server(store, env, cwd=str(tmp_path)) as base_url,
        evidence_on_failure(browser, artifacts, "retry-walk"),
    ):
        # 1. the dashboard: both syncs, one failed
        browser.get(base_url)
        wait_for_text(browser, "Sync health", "Sync history", "2 of 2 matching syncs shown")
        wait_for_metrics(browser, Syncs="2", Succeeded="1", Failed="1", Failure_rate="50.0%")
        wait_for_text(browser, "5130 · Data write error")  # the code and its meaning (charts)
        save("dashboard", focus="Sync health", exact=True)

        # 2. filter by status code 5130: only the failed sync is left
        choose(browser, "Status codes", "5130")
        wait_for_metrics(browser, Syncs="1", Succeeded="0", Failed="1")
        wait_for_text(browser, "1 of 1 matching syncs shown")
        rows = wait_for_rows(browser, "Sync id", 1)
        assert rows[0]["Sync id"] == failed
        assert rows[0]["Code"] == "5130" and rows[0]["Meaning"] == "Data write error"
        save("filtered-5130", focus="Sync history")

        # 2b. the search bar narrows within that (partial ids): the good sync is not a 5130
        type_into(browser, "Search", good[:8])
        wait_for_text(browser, "No syncs match the filter")
        type_into(browser, "Search", failed[:8])
        wait_for_text(browser, "1 of 1 matching syncs shown")
        save("filtered-search")

        # 3. click the row: it opens that sync
        click_grid_row(browser, "Sync id", 0)

        # 4. the sync's details: code, plain-language note, raw Codat message
        wait_for_text(
            browser,
            f"Sync {failed}",
            "5130 · Data write error · failed",
            "Closed period.",
            "Error message (from Codat)",
            "2 failed item(s) could be pushed again. Sign in (in the sidebar)",
        )
        assert not button(browser, "Retry failed items").is_enabled()  # not signed in
        assert token not in body_text(browser)
        assert "?sync=" in browser.current_url and failed in browser.current_url
        save("sync-details", focus=f"Sync {failed}", exact=True)
        save("sync-details-notes", focus="What happened")

        # 5. its push items: one written, two refused for the closed period
        click(browser, tab(browser, "Push items (3)"))
        items = wait_for_rows(browser, "Transaction id", 3)
        assert [i["Item status"] for i in items] == ["PushError", "PushError", "Completed"]
        refused = [i for i in items if i["Item status"] == "PushError"]
        assert all("closed period" in i["Message"] for i in refused), refused
        assert items[2]["Amount"].endswith(" GBP")  # the demo companies book in GBP
        save("push-items", focus="Click one to open that expense")

        # 6. sign in with the operator token (the same tab: no reload), then retry: the child
        # process pushes the two items again; the page shows the new sync
        sign_in(browser, token)
        wait_for_text(browser, "2 failed item(s) will be pushed again with the same ids.")
        assert token not in body_text(browser)
        retry = button(browser, "Retry failed items")
        assert retry.is_enabled()
        click(browser, retry)
        page = wait_for_text(browser, "Retried 2 item(s) as sync", timeout=180)
        done = re.search(r"Retried 2 item\(s\) as sync (\S+): (.+)\.", page)
        assert done and done.group(2) == SUCCESS, page
        new_sync = done.group(1)
        # the sandbox's books first: both refused expenses written now, once each
        books = httpx.get(f"{sandbox_url}/_sandbox/ground-truth", headers=AUTH).json()[XERO]
        with duckdb.connect(store, read_only=True) as db:
            retried = {
                r[0]
                for r in db.execute(
                    "SELECT transaction_id FROM push_items WHERE sync_id = ?", [new_sync]
                ).fetchall()
            }
        assert len(retried) == 2
        written = {b["transaction_id"]: b["writes"] for b in books}
        assert all(written.get(t) == 1 for t in retried), (retried, written)
        wait_until(
            lambda: not button(browser, "Retry failed items").is_enabled(), 30, "retry disabled"
        )
        assert "No failed items to retry" in body_text(browser)
        save("retried", focus="Retry", exact=True)

        # 7. the new sync's own page: success, and it names the sync it retried
        click(browser, link(browser, f"Open sync {new_sync}"))
        wait_for_text(browser, f"Sync {new_sync}", f"{SUCCESS} · succeeded", f"Open sync {failed}")
        expected = [("original sync", failed), ("this sync", new_sync)]

        def lineage() -> list[tuple]:
            return [(r["Relation"], r["Sync id"]) for r in wait_for_rows(browser, "Relation", 2)]

        # the previous page's lineage grid (also two rows) may still be drawn for a moment
        wait_until(lambda: lineage() == expected, 30, "the new sync's lineage grid")
        assert lineage() == expected
        save("new-sync", focus=f"Sync {new_sync}", exact=True)
        click(browser, tab(browser, "Push items (2)"))
        items = wait_for_rows(browser, "Transaction id", 2)
        assert {i["Item status"] for i in items} == {"Completed"}
        save("new-sync-items", focus="Click one to open that expense")

    assert sorted(p.name for p in artifacts.glob("*.png")) == [
        "01-dashboard.png",
        "02-filtered-5130.png",
        "03-filtered-search.png",
        "04-sync-details.png",
        "05-sync-details-notes.png",
        "06-push-items.png",
        "07-retried.png",
        "08-new-sync.png",
        "09-new-sync-items.png",
    ]


# -- every page, as a person sees it ---------------------------------------------------------------
def no_none(driver) -> None:
    """No "None" in the page's text nor in any grid cell."""
    page = body_text(driver)
    assert not re.search(r"\bNone\b", page), page
    cells = driver.execute_script(
        "return [...document.querySelectorAll('[data-testid=\"stDataFrame\"] td')]"
        ".map(c => c.textContent)"
    )
    assert "None" not in cells, cells


def visit(driver, base_url: str, path: str, *texts: str) -> str:
    driver.get(base_url + path)
    page = wait_for_text(driver, *texts)
    wait_for_fonts(driver)
    assert not cut_off(driver), cut_off(driver)  # no metric tile cut off ("2026-11-29 ...")
    no_none(driver)
    return page


@pytest.mark.parametrize("width", [1280, 1600])
def test_every_page_shows_what_the_store_knows(tmp_path, artifacts, width):
    store = seed.seed_story(str(tmp_path / "status.duckdb"))
    env = {k: v for k, v in os.environ.items() if k != OPERATOR_TOKEN_ENV}
    env |= {"CODAT_API_KEY": "never-used", "CODAT_BASE_URL": "http://127.0.0.1:9"}  # no sign-in
    with (
        report_server(store, env, cwd=str(tmp_path)) as base_url,
        chromium((width, 1000)) as web,
        evidence_on_failure(web, artifacts, f"every-page-{width}"),
    ):
        visit(web, base_url, "/", "Sync health", "Status codes and what they mean")
        money = {r["Currency"]: r for r in wait_for_rows(web, "Amount written", 5)}
        assert money["USD"]["Amount written"] == "1,234,613.88 USD"
        assert money["KWD"]["Amount written"] == "1,234.567 KWD"
        assert money["JPY"]["Amount pending"] == "125,000 JPY"
        codes = wait_for_rows(web, "Who acts", 8)  # every code seen, no scroll box
        numbers = [r["Code"] for r in codes[1:]]
        assert codes[0]["Code"] == "No status yet" and numbers == sorted(numbers, key=int)
        # the history grid draws after the figures above it: wait for its rows, never read once
        history = wait_until(lambda: grid_rows(web, "Sync id"), 30, "the history's rows")
        assert {"Started (UTC)", "Code", "Outcome", "Items", "Failed"} <= set(history[0])
        screenshot(web, artifacts / f"page-dashboard-{width}.png")

        visit(web, base_url, f"/sync?sync={seed.S_OK_US}", "2000 · Success", "Started (UTC)")
        amounts = {
            r["Transaction id"]: r["Amount"] for r in wait_for_rows(web, "Transaction id", 3)
        }
        assert amounts["txn-us-0001"] == seed.EXPECTED["amounts"]["txn-us-0001"]
        assert amounts["txn-us-0003"] == seed.EXPECTED["amounts"]["txn-us-0003"]
        screenshot(web, artifacts / f"page-sync-{width}.png")

        refused = "Retrying is off because nobody can sign in"  # and how to turn it on
        # the retry section draws after the sync's tiles: wait for it, never read the page once
        page = visit(
            web, base_url, "/sync?sync=sync-5120-us", "5120 · Data processing error", refused
        )
        assert refused in page
        assert not button(web, "Retry failed items").is_enabled()

        jpy = seed.EXPECTED["amounts"]["txn-zo-0001"]
        visit(web, base_url, "/transaction?transaction=txn-zo-0001", jpy, "Attempts across syncs")
        page = visit(web, base_url, "/transaction?transaction=txn-us-0004", "Receipts")
        assert wait_for_rows(web, "File", 1)[0]["Upload"] == "refused"
        screenshot(web, artifacts / f"page-expense-{width}.png")

        visit(web, base_url, "/runs", "Failed runs first", "Records rejected")
        runs = wait_for_rows(web, "Why it failed", seed.EXPECTED["runs"])
        assert runs[0]["Outcome"] == "failed" and runs[0]["Why it failed"] == seed.RUN_ERROR
        screenshot(web, artifacts / f"page-runs-{width}.png")

        visit(web, base_url, f"/rejects?run={seed.FAILED_RUN}", "rejected record(s) shown")
        assert {r["Field"] for r in wait_for_rows(web, "Reason", 3)} == {
            "amount",
            "currency",
            "issue_date",
        }
        screenshot(web, artifacts / f"page-rejects-{width}.png")

        visit(web, base_url, "/attachments", "Every receipt", "Per sync")
        refused = wait_for_rows(web, "Reason / message", 3)[0]
        assert refused["Upload"] == "refused" and "image/tiff" in refused["Reason / message"]
        screenshot(web, artifacts / f"page-receipts-{width}.png")

        visit(web, base_url, "/webhooks", "Webhook events", "Not verified")
        effects = {r["Sync id"]: r["Effect"] for r in wait_for_rows(web, "Effect", 2)}
        assert effects[seed.S_DEAUTH] == "ignored (signature did not hold)"
        screenshot(web, artifacts / f"page-webhooks-{width}.png")
