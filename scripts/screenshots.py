"""The README's pictures of the Sync Health report, taken in headless Chromium.

    uv run python -m scripts.screenshots [--out docs/images]

Writes report-dashboard.png (the dashboard) and report-sync-details.png (a failed sync: what
happened, the retry button, its push items) at 1400x1000. The store is the tests' story store
(testing/report_seed.py: successes, 5120/5130 failures, a stuck and a long-running
sync, a retry lineage); the report is the real `codat-expenses report` command. It is started
with a placeholder $CODAT_API_KEY so the retry button shows as it does with credentials; nothing
is pressed, so no request is ever made with it.

Needs /usr/bin/chromium and /usr/bin/chromedriver (`make browser`); fonts-noto-color-emoji
draws the ⏳ and ⚠ marks.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from testing import browser as web
from testing import report_seed as seed

ROOT = Path(__file__).resolve().parents[1]
FAILED_SYNC = seed.S_INVALID_US  # 5120: three items refused, each for a different reason


def dashboard(driver, base_url: str, out: Path) -> Path:
    driver.get(base_url)
    web.wait_for_text(driver, "Sync health", "11 of 11 matching syncs shown", "Syncs per day")
    web.wait_for_metrics(driver, Syncs="11")
    web.wait_for_text(driver, "5130 · Data write error")  # the charts' legends are drawn
    web.scroll_to_text(driver, "Sync health", exact=True)
    return web.screenshot(driver, out / "report-dashboard.png")


def sync_details(driver, base_url: str, out: Path) -> Path:
    driver.get(f"{base_url}/sync?sync={FAILED_SYNC}")
    web.wait_for_text(
        driver,
        f"Sync {FAILED_SYNC}",
        "5120 · Data processing error · failed",
        "3 failed item(s) will be pushed again with the same ids.",
        "3 item(s). Click one to follow that expense across syncs.",
    )
    web.wait_until(lambda: len(web.grid_rows(driver, "transaction_id")) == 3, 30, "push items")
    web.scroll_to_text(driver, "Retry", exact=True)
    return web.screenshot(driver, out / "report-sync-details.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    if not web.have_browser():
        raise SystemExit("Needs /usr/bin/chromium and /usr/bin/chromedriver: run `make browser`.")
    with tempfile.TemporaryDirectory(prefix="report-shots-") as tmp:
        store = seed.seed_story(str(Path(tmp) / "status.duckdb"))
        env = {
            **os.environ,
            "CODAT_API_KEY": "placeholder-never-used",
            "CODAT_BASE_URL": "http://127.0.0.1:9",  # nothing listens there; nothing is sent
        }
        with web.report_server(store, env, cwd=tmp) as base_url, web.chromium() as driver:
            for taken in (
                dashboard(driver, base_url, args.out),
                sync_details(driver, base_url, args.out),
            ):
                print(taken.relative_to(ROOT) if taken.is_relative_to(ROOT) else taken)


if __name__ == "__main__":
    main()
