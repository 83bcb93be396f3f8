"""Headless Chromium (Debian's chromium and chromium-driver packages) driven by Selenium, and the
few Streamlit-aware helpers the report's browser test, `benchmarks/report_render.py --browser`
and `scripts/screenshots.py` share.

Nothing is downloaded: the browser and the driver are the ones in /usr/bin, named explicitly,
and Selenium Manager is told to stay offline. Every wait polls with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
from selenium import webdriver
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from codat_sandbox.server import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# No network on the test machines: without the background-networking flags Chromium keeps
# trying to reach Google's services and misbehaves.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WINDOW = (1400, 1000)
CLI = Path(sys.executable).with_name("codat-expenses")
# Streamlit's grids draw on a canvas; these are glide-data-grid's header and row heights.
GRID_HEADER_PX, GRID_ROW_PX = 35, 35
CANVAS = '[data-testid="data-grid-canvas"]'
T = TypeVar("T")
TRANSIENT = (NoSuchElementException, StaleElementReferenceException)


def have_browser() -> bool:
    return CHROMIUM.is_file() and CHROMEDRIVER.is_file()


@contextlib.contextmanager
def chromium(window: tuple[int, int] = WINDOW) -> Iterator[WebDriver]:
    """A fresh headless Chromium with its own throw-away profile."""
    os.environ["SE_OFFLINE"] = "true"  # belt and braces: Selenium Manager never downloads
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--window-size={},{}".format(*window),
    ]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        fit_viewport(driver, *window)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def fit_viewport(driver: WebDriver, width: int, height: int) -> None:
    """Make the page's viewport (what screenshots show) exactly width x height: headless
    Chromium's --window-size counts its (invisible) window frame too."""
    inner_w, inner_h = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    if (inner_w, inner_h) != (width, height):
        size = driver.get_window_size()
        driver.set_window_size(size["width"] + width - inner_w, size["height"] + height - inner_h)


# -- the report as a person starts it --------------------------------------------------------------
def healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/_stcore/health", timeout=2).text == "ok"
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def report_server(store: str, env: dict[str, str], cwd: str | None = None) -> Iterator[str]:
    """`codat-expenses report --store STORE --port <free>` in its own process group."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed argv
            [str(CLI), "report", "--store", store, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        try:
            wait_until(lambda: healthy(base_url) or process.poll() is not None, 60, "report up")
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"The report exited: {log.read()}")
            yield base_url
        finally:
            stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the report's process group (the CLI and its streamlit child), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


# -- waiting on an asynchronous page ---------------------------------------------------------------
def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll `check()` until it returns something truthy (elements going stale while Streamlit
    re-renders count as "not yet"), and return it; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except TRANSIENT as error:
            last_error = error
        if time.monotonic() > deadline:
            raise AssertionError(f"Gave up after {timeout} s waiting for {what} ({last_error}).")
        time.sleep(interval)


def body_text(driver: WebDriver) -> str:
    """What a person can read on the page (rendered, visible text)."""
    return driver.find_element(By.TAG_NAME, "body").text


def running(driver: WebDriver) -> bool:
    """Streamlit shows its status widget ("Running...") while the script runs."""
    return bool(driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'))


def drawing(driver: WebDriver) -> bool:
    """Streamlit draws a grey skeleton in place of an element whose code is still loading
    (metrics, widgets, grids, charts): their text may be on the page before they are."""
    return bool(driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSkeleton"]'))


def wait_for_text(driver: WebDriver, *texts: str, timeout: float = 60) -> str:
    """Wait until every text is visible, the script has finished running and no element is
    still a skeleton; the page text."""

    def shown() -> str | None:
        text = body_text(driver)
        done = all(t in text for t in texts) and not running(driver) and not drawing(driver)
        return text if done else None

    return wait_until(shown, timeout, f"{texts!r} on {driver.current_url}")


def metrics(driver: WebDriver) -> dict[str, str]:
    found = {}
    for metric in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'):
        label = metric.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text
        found[label] = metric.find_element(By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text
    return found


def wait_for_metrics(driver: WebDriver, timeout: float = 60, **expected: str) -> dict[str, str]:
    """Wait until the named metrics (label with spaces as underscores) show these values."""
    wanted = {label.replace("_", " "): value for label, value in expected.items()}

    def shown() -> dict[str, str] | None:
        found = metrics(driver)
        ok = all(found.get(k) == v for k, v in wanted.items()) and not running(driver)
        return found if ok else None

    return wait_until(shown, timeout, f"metrics {wanted}")


# -- grids (st.dataframe) --------------------------------------------------------------------------
def grid(driver: WebDriver, header: str) -> WebElement:
    """The st.dataframe whose column headers include `header`."""
    for frame in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]'):
        headers = frame.find_elements(By.CSS_SELECTOR, 'th[role="columnheader"]')
        if any(h.get_attribute("textContent") == header for h in headers):
            return frame
    raise NoSuchElementException(f"no grid with a {header!r} column")


def grid_rows(driver: WebDriver, header: str) -> list[dict[str, str]]:
    """The rows the grid draws, as header -> cell text. Glide draws on a canvas and mirrors the
    drawn cells in an accessible table inside it; that table is what this reads."""
    frame = grid(driver, header)
    headers = [
        h.get_attribute("textContent")
        for h in frame.find_elements(By.CSS_SELECTOR, 'th[role="columnheader"]')
    ]
    rows = []
    for row in frame.find_elements(By.CSS_SELECTOR, 'tbody tr[role="row"]'):
        cells = [c.get_attribute("textContent") for c in row.find_elements(By.TAG_NAME, "td")]
        rows.append(dict(zip(headers[-len(cells) :], cells, strict=False)))
    return rows


def wait_for_rows(driver: WebDriver, header: str, count: int, timeout: float = 30) -> list[dict]:
    """Wait until the grid with column `header` draws exactly `count` rows; those rows."""

    def drawn() -> list[dict] | None:
        rows = grid_rows(driver, header)
        return rows if len(rows) == count else None

    return wait_until(drawn, timeout, f"{count} rows in the {header!r} grid")


def click_grid_row(driver: WebDriver, header: str, row: int, column_px: int = 16) -> None:
    """Click a drawn row of the grid, by default on its selection box (the row marker at the
    left edge: clicking a cell only focuses the cell)."""
    canvas = wait_until(
        lambda: grid(driver, header).find_element(By.CSS_SELECTOR, CANVAS), 30, f"{header} grid"
    )
    scroll_into_view(driver, canvas)
    size = canvas.size
    x = column_px - size["width"] / 2
    y = GRID_HEADER_PX + GRID_ROW_PX * row + GRID_ROW_PX / 2 - size["height"] / 2
    ActionChains(driver).move_to_element_with_offset(canvas, int(x), int(y)).click().perform()


# -- widgets ---------------------------------------------------------------------------------------
def scroll_into_view(driver: WebDriver, element: WebElement) -> None:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)


def scroll_to_text(driver: WebDriver, text: str, exact: bool = False) -> None:
    """Bring the first visible element showing `text` (or exactly `text`) to the top."""
    found = wait_until(
        lambda: driver.execute_script(FIND_TEXT_JS, text, exact), 30, f"{text!r} to scroll to"
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", found)


FIND_TEXT_JS = """
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const node = walker.currentNode;
  const text = node.textContent;
  const hit = arguments[1] ? text.trim() === arguments[0] : text.includes(arguments[0]);
  if (hit && node.parentElement.offsetParent !== null) {
    return node.parentElement;
  }
}
return null;
"""


def click(driver: WebDriver, element: WebElement) -> None:
    scroll_into_view(driver, element)
    try:
        element.click()
    except ElementClickInterceptedException:
        driver.execute_script("arguments[0].click();", element)


def button(driver: WebDriver, label: str, timeout: float = 30) -> WebElement:
    """The st.button whose label ends with `label` (its icon's name comes first)."""
    return find(driver, '[data-testid="stButton"] button', lambda t: t.endswith(label), timeout)


def link(driver: WebDriver, label: str, timeout: float = 30) -> WebElement:
    """The st.page_link whose label contains `label`."""
    return find(driver, '[data-testid="stPageLink-NavLink"]', lambda t: label in t, timeout)


def tab(driver: WebDriver, label: str, timeout: float = 30) -> WebElement:
    return find(driver, '[role="tab"]', lambda t: label in t, timeout)


def find(driver: WebDriver, css: str, matches: Callable[[str], bool], timeout: float) -> WebElement:
    """Wait for an element matching `css` whose visible text `matches`."""

    def found() -> WebElement | None:
        for candidate in driver.find_elements(By.CSS_SELECTOR, css):
            if matches(candidate.text.strip()):
                return candidate
        return None

    return wait_until(found, timeout, f"{css} on {driver.current_url}")


def choose(driver: WebDriver, widget_label: str, option: str) -> None:
    """Pick an option in a st.multiselect or st.selectbox by typing part of it."""
    box = widget(driver, widget_label).find_element(By.TAG_NAME, "input")
    click(driver, box)
    box.send_keys(option)
    wait_until(
        lambda: any(
            option in o.text for o in driver.find_elements(By.CSS_SELECTOR, '[role="option"]')
        ),
        10,
        f"option {option!r}",
    )
    box.send_keys(Keys.ENTER)
    box.send_keys(Keys.ESCAPE)


def type_into(driver: WebDriver, widget_label: str, text: str) -> None:
    """Type into a st.text_input and commit it (Enter), as a person does."""
    box = widget(driver, widget_label).find_element(By.TAG_NAME, "input")
    click(driver, box)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(text, Keys.ENTER)


def widget(driver: WebDriver, label: str, timeout: float = 30) -> WebElement:
    """The element holding the widget labelled `label`."""

    def found() -> WebElement | None:
        for element in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stElementContainer"]'):
            labels = element.find_elements(By.CSS_SELECTOR, '[data-testid="stWidgetLabel"]')
            if labels and labels[0].text.strip() == label:
                return element
        return None

    return wait_until(found, timeout, f"widget {label!r}")


def screenshot(driver: WebDriver, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(path)):
        raise WebDriverException(f"Chromium did not save {path}")
    return path


@contextlib.contextmanager
def evidence_on_failure(driver: WebDriver, folder: Path, name: str) -> Iterator[None]:
    """When the block fails, keep what the browser showed: a PNG of the viewport, the page's
    visible text and its URL (test-artifacts/, so a flaky failure can be read afterwards)."""
    try:
        yield
    except BaseException:
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(WebDriverException):
            driver.save_screenshot(str(folder / f"FAILED-{name}.png"))
        with contextlib.suppress(WebDriverException):
            text = f"{driver.current_url}\n\n{body_text(driver)}"
            (folder / f"FAILED-{name}.txt").write_text(text)
        raise


def sign_in(driver: WebDriver, token: str) -> None:
    """Sign in with the operator token from the sidebar form, as a person does. A signed-in
    session lasts while the page is not reloaded (Streamlit's session is the tab's
    connection): move on by clicking, not by loading a URL."""
    box = widget(driver, "Operator token").find_element(By.TAG_NAME, "input")
    click(driver, box)
    box.send_keys(token)
    submit = find(
        driver, '[data-testid="stFormSubmitButton"] button', lambda t: t.endswith("Sign in"), 30
    )
    click(driver, submit)
    wait_for_text(driver, "Signed in as operator")


DRAWN_JS = """
const grids = [...document.querySelectorAll('[data-testid="stDataFrame"]')];
const charts = [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')];
return document.fonts.status === "loaded"
  && grids.every((g) => g.querySelector('[data-testid="data-grid-canvas"]'))
  && charts.every((c) => c.querySelector("canvas, svg"));
"""


def wait_until_drawn(driver: WebDriver, timeout: float = 30) -> None:
    """Until every grid has its canvas, every chart its drawing and the fonts are in (what a
    screenshot must wait for after the page's text is there)."""
    wait_until(lambda: driver.execute_script(DRAWN_JS) and not drawing(driver), timeout, "drawn")


def wait_for_fonts(driver: WebDriver, timeout: float = 30) -> None:
    """Until the page's web fonts are in: text laid out in a fallback font is wider, so a tile
    measured before then can look cut off when it is not."""
    wait_until(
        lambda: driver.execute_script("return document.fonts.status") == "loaded", timeout, "fonts"
    )


CUT_OFF_JS = """
return [...document.querySelectorAll('[data-testid="stMetricValue"]')]
  .filter((value) => [value, ...value.querySelectorAll("*")]
    .some((e) => e.scrollWidth > e.clientWidth + 1))
  .map((value) => value.textContent);
"""


def cut_off(driver: WebDriver) -> list[str]:
    """The metric values the page draws cut off (wider than their tile): the value or any
    element inside it (Streamlit puts the ellipsis on an inner one)."""
    return driver.execute_script(CUT_OFF_JS)
