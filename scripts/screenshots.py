"""The README's and docs' pictures of the Sync Health report, taken in headless Chromium.

    uv run python -m scripts.screenshots [--out docs/images]

Writes report-<page>-<width>.png for every page (dashboard, sync, expense, runs, rejects,
receipts, webhook events) at 1280x1000 and 1600x1000. The store is the tests' story store
(testing/report_seed.py); the report is the real `codat-expenses report` command, started with
an operator token and a placeholder $CODAT_API_KEY, signed in, so the retry button shows as it
does for an operator; nothing is pressed, so no request is ever made with the key.

Needs /usr/bin/chromium and /usr/bin/chromedriver (`make browser`). The ◷ and ⚠ marks are
plain symbols (DejaVu has them), not emoji: no emoji font is needed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
from pathlib import Path

from report_app.access import OPERATOR_TOKEN_ENV
from testing import browser as web
from testing import report_seed as seed

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = (1280, 1600)
# page name -> (path and query, texts that say it is drawn, text to scroll to)
PAGES = {
    "dashboard": (
        "/",
        ("Sync health", "11 of 11 matching syncs shown", "Status codes and what they mean"),
        None,
    ),
    "sync": (
        f"/sync?sync={seed.S_INVALID_US}",
        ("5120 · Data processing error · failed", "Failed items"),
        None,
    ),
    "sync-retry": (
        f"/sync?sync={seed.S_INVALID_US}",
        ("3 failed item(s) will be pushed again", "failed first"),
        "Retry",
    ),
    "expense": (
        "/transaction?transaction=txn-us-0004",
        ("Attempts across syncs", "Receipts"),
        None,
    ),
    "runs": ("/runs", ("Failed runs first", "Records rejected"), None),
    "rejects": ("/rejects", ("rejected record(s) shown",), None),
    "receipts": ("/attachments", ("Every receipt", "Per sync"), None),
    "webhooks": ("/webhooks", ("Newest first", "Not verified"), None),
}


def take(driver, base_url: str, name: str, width: int, out: Path, token: str) -> Path:
    path, texts, focus = PAGES[name]
    driver.get(base_url + path)
    if name == "sync-retry":
        web.sign_in(driver, token)
    web.wait_for_text(driver, *texts)
    web.wait_until_drawn(driver)
    if focus:
        web.scroll_to_text(driver, focus, exact=True)
    return web.screenshot(driver, out / f"report-{name}-{width}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    if not web.have_browser():
        raise SystemExit("Needs /usr/bin/chromium and /usr/bin/chromedriver: run `make browser`.")
    token = secrets.token_urlsafe(16)  # this run's own; never printed
    with tempfile.TemporaryDirectory(prefix="report-shots-") as tmp:
        store = seed.seed_story(str(Path(tmp) / "status.duckdb"))
        env = {
            **os.environ,
            OPERATOR_TOKEN_ENV: token,
            "CODAT_API_KEY": "placeholder-never-used",
            "CODAT_BASE_URL": "http://127.0.0.1:9",  # nothing listens there; nothing is sent
        }
        with web.report_server(store, env, cwd=tmp) as base_url:
            for width in WIDTHS:
                with web.chromium((width, 1000)) as driver:
                    for name in PAGES:
                        taken = take(driver, base_url, name, width, args.out, token)
                        print(taken.relative_to(ROOT) if taken.is_relative_to(ROOT) else taken)


if __name__ == "__main__":
    main()
