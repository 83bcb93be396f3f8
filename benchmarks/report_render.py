"""Sync Health report render times on a large status store.

Seeds a store with N syncs and M transactions (`seed_bulk`: plain SQL into the real tables, the
same schema the destination migrates), then times, with Streamlit's AppTest, the dashboard's
first render and each filter change (search, date range, status code, sort). Each change starts
from the unfiltered dashboard, with nothing cached for the new filter, as when a person changes
it. Repeated `--repeats` times with Streamlit's caches cleared in between; prints every timing,
the median and the worst per step, and the exact command.

    python -m benchmarks.report_render [--syncs 100000] [--transactions 1000000] [--repeats 3]
        [--store PATH] [--browser] [--small-syncs 1000]

AppTest runs the page script in this process: the DuckDB queries, pandas, the charts' specs and
the Arrow/protobuf serialisation of every element. It does not include the WebSocket hop or the
browser drawing the page. `--browser` adds that: the real `codat-expenses report` server (started
afresh each round, so its cache is cold) and headless Chromium (Debian's /usr/bin/chromium),
timed from the page request or the widget change until the page shows the figures and the first
history row AppTest produced for the same step (polled every 20 ms, one script call a poll). It
also reports the start-up (the first page a cold server sends a fresh browser, on the sync
page: mostly Streamlit's frontend and the report's imports, not the store). The date range is
set by AppTest only: the date picker takes no typed input.

With `--browser` it also seeds a small store (`--small-syncs`, 1,000 by default, ten
transactions each) and times its first render in Chromium in the same rounds, alternating with
the big store's, so both see the same load: the ratio big / small says how much of the first
render grows with the store (target <= 1.5).
"""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import streamlit as st
from streamlit import logger
from streamlit.components.v2.component_manager import BidiComponentManager
from streamlit.testing.v1 import AppTest

from destination_codat_expenses.cli.env import STORE_ENV
from testing.report_seed import seed_bulk

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "report_app" / "app.py"
TARGET_S = 2.0
TARGET_RATIO = 1.5  # first render on the big store / on the small one
SEARCH = "company-0042"  # one company in 500: 200 of 100,000 syncs
CODE = 5130
FIRST = "first render"
STARTUP = "start-up (cold server+browser)"


def changes() -> dict[str, Callable[[AppTest], AppTest]]:
    """Each filter change, applied to an unfiltered dashboard."""
    today = datetime.now(UTC).date()
    return {
        f"search {SEARCH!r}": lambda at: at.text_input(key="search").set_value(SEARCH),
        "date range: last 7 days": lambda at: at.date_input(key="dates").set_value(
            (today - timedelta(days=6), today)
        ),
        f"status code {CODE}": lambda at: at.multiselect(key="codes").set_value([CODE]),
        "sort by duration": lambda at: at.selectbox(key="sort").set_value("duration_s"),
    }


@functools.cache
def components() -> BidiComponentManager:
    """The installed-components scan a server does once at startup (about 0.5 s here)."""
    manager = BidiComponentManager()
    manager.discover_and_register_components(start_file_watching=False)
    return manager


def new_session() -> AppTest:
    """A new visitor's session on the report. AppTest would redo the components scan for every
    instance, which a real server never does per visitor; give it the process's one scan."""
    at = AppTest.from_file(str(APP), default_timeout=600)
    if hasattr(at, "_bidi_component_manager"):  # private; without it the figures include the scan
        at._bidi_component_manager = components()
    return at


def timed_run(at: AppTest) -> tuple[float, AppTest]:
    started = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - started
    if at.exception:
        raise SystemExit(f"the page raised: {[e.message for e in at.exception]}")
    if at.error:
        raise SystemExit(f"the page showed an error: {[e.value for e in at.error]}")
    return seconds, at


@dataclass(frozen=True)
class Shown:
    """What a rerun put on the page: enough to check it did the work, and for the browser to
    know when it has drawn the same thing."""

    syncs: str
    failed: str
    caption: str
    first_sync: str

    def __str__(self) -> str:
        return f"{self.syncs} syncs, {self.failed} failed; {self.caption}; first {self.first_sync}"


def shown(at: AppTest) -> Shown:
    values = {m.label: m.value for m in at.metric}
    captions = [c.value for c in at.caption if "matching syncs shown" in c.value]
    table = next((d.value for d in at.dataframe if "sync_id" in d.value.columns), None)
    return Shown(
        values.get("Syncs", "?"),
        values.get("Failed", "?"),
        captions[0].split(".")[0] if captions else "no table",
        str(table["sync_id"].iloc[0]) if table is not None and len(table) else "",
    )


def one_round(steps: dict[str, Callable[[AppTest], AppTest]]) -> dict[str, tuple[float, Shown]]:
    st.cache_data.clear()  # nothing cached from an earlier round
    results = {}
    seconds, at = timed_run(new_session())
    results[FIRST] = (seconds, shown(at))
    for name, change in steps.items():
        base = new_session()
        base.run()  # the unfiltered dashboard (cached by now, as in a person's session)
        change(base)
        seconds, base = timed_run(base)
        results[name] = (seconds, shown(base))
    return results


# -- the same in a real browser ----------------------------------------------------------------
def browser_steps() -> dict[str, Callable]:
    from testing import browser as web

    return {
        f"search {SEARCH!r}": lambda driver: web.type_into(driver, "Search", SEARCH),
        f"status code {CODE}": lambda driver: web.choose(driver, "Status codes", str(CODE)),
        "sort by duration": lambda driver: web.choose(driver, "Sort by", "Duration"),
    }


PROBE_JS = """
const metric = [...document.querySelectorAll('[data-testid="stMetric"]')].find(
  (m) => m.querySelector('[data-testid="stMetricLabel"]')?.innerText.trim() === "Syncs");
let first = null;
for (const frame of document.querySelectorAll('[data-testid="stDataFrame"]')) {
  const heads = [...frame.querySelectorAll('th[role="columnheader"]')].map((h) => h.textContent);
  const at = heads.indexOf("Sync id");
  const row = frame.querySelector('tbody tr[role="row"]');
  if (at < 0 || !row) continue;
  const cells = [...row.querySelectorAll("td")];
  first = cells[at - (heads.length - cells.length)]?.textContent ?? null;
}
return {
  running: !!document.querySelector('[data-testid="stStatusWidget"]'),
  syncs: metric?.querySelector('[data-testid="stMetricValue"]')?.innerText.trim() ?? null,
  text: document.body.innerText,
  first: first,
};
"""


def browser_round(store: str, expected: dict[str, Shown], changes: bool = True) -> dict[str, float]:
    """One round in Chromium on a freshly started report server: nothing cached, so the
    dashboard's first render runs every query, as for the first visitor after a start."""
    from testing import browser as web

    def drawn(driver, want: Shown) -> bool:
        """One round trip to the page per poll, so polling costs little of what it measures."""
        seen = driver.execute_script(PROBE_JS)
        return (
            not seen["running"]
            and seen["syncs"] == want.syncs
            and want.caption in seen["text"]
            and seen["first"] == want.first_sync
        )

    def until_drawn(driver, want: Shown, started: float) -> float:
        web.wait_until(lambda: drawn(driver, want), 600, str(want), interval=0.02)
        return time.perf_counter() - started

    results = {}
    with web.report_server(store, dict(os.environ)) as url, web.chromium() as driver:
        # Start-up: the browser loads Streamlit's frontend, the server imports the report
        # (pandas, Altair, DuckDB). Measured on the sync page, whose one query is tiny and
        # caches nothing the dashboard uses: about the same with 11 syncs as with 100,000.
        started = time.perf_counter()
        driver.get(f"{url}/sync?sync=warm-up")
        web.wait_for_text(driver, "That sync is not in the status store.")
        results[STARTUP] = time.perf_counter() - started
        started = time.perf_counter()
        driver.get(url)
        results[FIRST] = until_drawn(driver, expected[FIRST], started)
        for name, act in (browser_steps() if changes else {}).items():
            driver.get(url)  # the unfiltered dashboard again (cached by now)
            web.wait_until(lambda: drawn(driver, expected[FIRST]), 600, "the dashboard")
            started = time.perf_counter()
            act(driver)
            results[name] = until_drawn(driver, expected[name], started)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--syncs", type=int, default=100_000)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--store", help="Use (and keep) this store file instead of a temp one.")
    parser.add_argument(
        "--browser", action="store_true", help="Also time the real server in headless Chromium."
    )
    parser.add_argument(
        "--small-syncs", type=int, default=1_000, help="The small store's syncs (--browser)."
    )
    args = parser.parse_args()
    st.config.set_option("logger.level", "error")  # AppTest's "no runtime" notices
    logger.set_log_level("error")
    print("command:", shlex.join([sys.executable, "-m", "benchmarks.report_render", *sys.argv[1:]]))
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        store = args.store or str(Path(tmp) / "status.duckdb")
        if args.store and Path(store).exists():
            print(f"store:   {store} (reused)")
        else:
            started = time.perf_counter()
            seed_bulk(store, args.syncs, args.transactions)
            took, mib = time.perf_counter() - started, Path(store).stat().st_size / 2**20
            print(
                f"store:   {args.syncs:,} syncs, {args.transactions:,} transactions seeded in "
                f"{took:.1f} s ({mib:.0f} MiB)"
            )
        os.environ[STORE_ENV] = store
        small = None
        if args.browser:
            small = str(Path(tmp) / "small.duckdb")
            seed_bulk(small, args.small_syncs, args.small_syncs * 10)
            print(f"small:   {args.small_syncs:,} syncs, {args.small_syncs * 10:,} transactions")
        measure(store, args.repeats, small)


def first_render_of(store: str) -> Shown:
    """What the first render shows on `store` (AppTest), for the browser to wait for."""
    before = os.environ[STORE_ENV]
    os.environ[STORE_ENV] = store
    try:
        st.cache_data.clear()
        return shown(timed_run(new_session())[1])
    finally:
        os.environ[STORE_ENV] = before
        st.cache_data.clear()


def measure(store: str, repeats: int, small: str | None) -> None:
    steps = changes()
    components()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    timings: dict[str, list[float]] = {}
    last: dict[str, Shown] = {}
    for round_ in range(1, repeats + 1):
        for name, (seconds, what) in one_round(steps).items():
            timings.setdefault(name, []).append(seconds)
            last[name] = what
            print(f"AppTest round {round_}: {name:<32} {seconds:6.3f} s   ({what})")
    in_browser: dict[str, list[float]] = {}
    on_small: list[float] = []
    small_first = first_render_of(small) if small else None
    for round_ in range(1, repeats + 1 if small else 1):
        for name, seconds in browser_round(store, last).items():
            in_browser.setdefault(name, []).append(seconds)
            print(f"browser round {round_}: {name:<32} {seconds:6.3f} s")
        seconds = browser_round(small, {FIRST: small_first}, changes=False)[FIRST]
        on_small.append(seconds)
        print(f"browser round {round_}: {'first render, small store':<32} {seconds:6.3f} s")
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    summary("AppTest (page script, queries, serialisation)", timings)
    if in_browser:
        summary("Chromium on the real server (request or change -> drawn)", in_browser)
        ratio(in_browser[FIRST], on_small)


def ratio(big: list[float], small: list[float]) -> None:
    """The big store's first render over the small one's: medians, and round by round."""
    per_round = [b / s for b, s in zip(big, small, strict=True)]
    middle = statistics.median(big) / statistics.median(small)
    verdict = "ok" if middle <= TARGET_RATIO else "OVER"
    print(
        f"\nfirst render, big / small store: median {middle:.2f} (small store median "
        f"{statistics.median(small):.3f} s); per round "
        f"{', '.join(f'{r:.2f}' for r in per_round)}   target <= {TARGET_RATIO}   {verdict}"
    )


def summary(title: str, timings: dict[str, list[float]]) -> None:
    print(f"\n{title}")
    print(f"{'step':<32} {'median':>8} {'worst':>8}   target < {TARGET_S:.0f} s")
    for name, values in timings.items():
        worst = max(values)
        verdict = "ok" if worst < TARGET_S else "OVER"
        print(f"{name:<32} {statistics.median(values):7.3f}s {worst:7.3f}s   {verdict}")


if __name__ == "__main__":
    main()
