"""The HTML report in a real headless Chromium (Debian's package, driven by Playwright).

It must load from the file alone (no request beyond the file itself), log no console error,
show the endpoint table and the plots, and stay inert with hostile event values in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shadow import cli
from tests.report.test_report import hostile_events, make_demo_events

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright for Python (pip install playwright)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Visit:
    """A page opened on a report file, with everything it logged and asked for."""

    def __init__(self, browser: Any, report: Path) -> None:
        self.url = report.resolve().as_uri()
        self.page = browser.new_page(viewport={"width": 1280, "height": 1000})
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("dialog", self._dialog)
        self.page.goto(self.url, wait_until="load")

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


def html_report(events: Path, out: Path) -> Path:
    assert cli.main(["report", str(events), "--html", str(out), "--json"]) == 0
    return out


def test_demo_report_loads_offline_with_its_table_and_plots(
    browser: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = html_report(make_demo_events(tmp_path), tmp_path / "demo.html")
    capsys.readouterr()
    visit = Visit(browser, report)
    page = visit.page
    try:
        assert visit.problems == []
        assert visit.requests == [visit.url]
        table = page.locator("#endpoints table")
        assert table.is_visible()
        assert table.locator("tbody tr").count() == 14  # 13 endpoints and the total
        assert table.locator("tbody tr").first.locator("a").inner_text() == "Check Bans"
        plot = page.locator("#latency svg")
        plot.scroll_into_view_if_needed()
        assert plot.is_visible()
        box = plot.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
        assert page.locator("#latency svg text").filter(has_text="candidate").count() == 1
        page.locator("#endpoints a", has_text="GTC Stake").click()
        assert page.url.endswith("#ep-1")
        assert page.locator("#ep-1 table.sxs mark").first.is_visible()
        assert len(page.screenshot(full_page=True)) > 10_000
        assert visit.requests == [visit.url] and visit.problems == []
    finally:
        page.close()


def test_hostile_event_values_stay_inert_in_the_browser(
    browser: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = html_report(hostile_events(tmp_path / "hostile.ndjson"), tmp_path / "hostile.html")
    capsys.readouterr()
    visit = Visit(browser, report)
    try:
        visit.page.mouse.move(200, 300)
        visit.page.wait_for_timeout(200)  # give an injected handler its chance to fire
        assert visit.dialogs == []
        assert visit.problems == []
        assert visit.requests == [visit.url]
        heading = visit.page.locator("#ep-0 h2 a").inner_text()
        assert heading == "<script>alert(1)</script><img src=x onerror=alert(2)>"
    finally:
        visit.page.close()
