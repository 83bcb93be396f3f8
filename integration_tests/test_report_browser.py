"""The Sync Health report in a real browser: headless Chromium (Debian packages, driven by
Selenium) on `codat-expenses report` in its own process, over a store the real destination wrote
against the sandbox. Filter, open the failed sync, read its push items, press "Retry failed
items", see the new sync succeed. PNG screenshots of every step go to test-artifacts/report/.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import pytest
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
from testing.browser import (
    body_text,
    button,
    choose,
    chromium,
    click,
    click_grid_row,
    have_browser,
    link,
    report_server,
    screenshot,
    scroll_to_text,
    tab,
    type_into,
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
    env = {**os.environ, "CODAT_API_KEY": API_KEY, "CODAT_BASE_URL": sandbox_url}
    shot = iter(range(1, 100))

    def save(name: str, focus: str | None = None, exact: bool = False) -> None:
        """A numbered PNG of the viewport, scrolled to the text `focus` if given."""
        if focus:
            scroll_to_text(browser, focus, exact)
        screenshot(browser, artifacts / f"{next(shot):02d}-{name}.png")

    with report_server(store, env, cwd=str(tmp_path)) as base_url:
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
        wait_for_text(browser, "No syncs match the filter.")
        type_into(browser, "Search", failed[:8])
        wait_for_text(browser, "1 of 1 matching syncs shown")
        save("filtered-search")

        # 3. click the row: a preview with a link to the sync's page
        click_grid_row(browser, "Sync id", 0)
        wait_for_text(browser, "Selected sync", f"Open sync {failed}")
        save("row-selected", focus="Selected sync")
        click(browser, link(browser, f"Open sync {failed}"))

        # 4. the sync's details: code, plain-language note, raw Codat message
        wait_for_text(
            browser,
            f"Sync {failed}",
            "5130 · Data write error · failed",
            "Closed period.",
            "Error message (from Codat)",
            "2 failed item(s) will be pushed again with the same ids.",
        )
        assert "?sync=" in browser.current_url and failed in browser.current_url
        save("sync-details", focus=f"Sync {failed}", exact=True)
        save("sync-details-notes", focus="What happened")

        # 5. its push items: one written, two refused for the closed period
        click(browser, tab(browser, "Push items (3)"))
        items = wait_for_rows(browser, "transaction_id", 3)
        assert sorted(i["status"] for i in items) == ["Completed", "PushError", "PushError"]
        refused = [i for i in items if i["status"] == "PushError"]
        assert all("closed period" in i["message"] for i in refused), refused
        assert [i["data_type"] for i in items if i["status"] == "Completed"] == ["directCosts"]
        save("push-items", focus="Click one to follow that expense")

        # 6. retry: the child process pushes the two items again; the page shows the new sync
        retry = button(browser, "Retry failed items")
        assert retry.is_enabled()
        click(browser, retry)
        page = wait_for_text(browser, "Retried 2 item(s) as sync", timeout=180)
        done = re.search(r"Retried 2 item\(s\) as sync (\S+): (.+)\.", page)
        assert done and done.group(2) == SUCCESS, page
        new_sync = done.group(1)
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
            return [(r["relation"], r["sync_id"]) for r in wait_for_rows(browser, "relation", 2)]

        # the previous page's lineage grid (also two rows) may still be drawn for a moment
        wait_until(lambda: lineage() == expected, 30, "the new sync's lineage grid")
        assert lineage() == expected
        save("new-sync", focus=f"Sync {new_sync}", exact=True)
        click(browser, tab(browser, "Push items (2)"))
        items = wait_for_rows(browser, "transaction_id", 2)
        assert {i["status"] for i in items} == {"Completed"}
        save("new-sync-items", focus="Click one to follow that expense")

    assert sorted(p.name for p in artifacts.glob("*.png")) == [
        "01-dashboard.png",
        "02-filtered-5130.png",
        "03-filtered-search.png",
        "04-row-selected.png",
        "05-sync-details.png",
        "06-sync-details-notes.png",
        "07-push-items.png",
        "08-retried.png",
        "09-new-sync.png",
        "10-new-sync-items.png",
    ]
