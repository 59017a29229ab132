"""Launch Debian's Chromium through Playwright for browser tests, and record what a page does.

Playwright cannot download its own browser here, so tests drive ``/usr/bin/chromium``. A launch failure raises: a
browser test that cannot start a browser must fail, never skip.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@contextlib.contextmanager
def launch_chromium() -> Iterator:
    """A Playwright ``Browser`` on ``/usr/bin/chromium``, headless; closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclasses.dataclass
class PageLog:
    """Everything a page reported: console errors, uncaught exceptions, requested URLs and dialogs."""

    console_errors: list[str] = dataclasses.field(default_factory=list)
    page_errors: list[str] = dataclasses.field(default_factory=list)
    requests: list[str] = dataclasses.field(default_factory=list)
    dialogs: list[str] = dataclasses.field(default_factory=list)

    def network_requests(self) -> list[str]:
        """Requests that left the machine (anything but file:, data: and blob:)."""
        return [u for u in self.requests if not u.startswith(("file:", "data:", "blob:"))]


def open_page(
    browser,
    path: str | Path,
    *,
    query: str = "",
    viewport: tuple[int, int] = (1400, 860),
    ready_timeout_ms: int = 20000,
):
    """Open a local HTML file (plus ``?query``) in a fresh context, wait for ``window.explorer.ready``.

    Returns ``(page, log)``; close with ``page.context.close()``.

    Dialogs (``alert`` and friends) are recorded and dismissed, so a payload that fires one is caught, not hung on.
    """
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, accept_downloads=True)
    page = context.new_page()
    log = PageLog()
    page.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: log.page_errors.append(str(e)))
    page.on("request", lambda r: log.requests.append(r.url))

    def on_dialog(dialog) -> None:
        log.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(Path(path).resolve().as_uri() + (f"?{query}" if query else ""))
    page.wait_for_function("() => window.explorer && window.explorer.ready", timeout=ready_timeout_ms)
    return page, log


def assert_inert(page, log) -> None:
    """No payload ran: no flag set, no dialog, no element a payload would have made, no script added, no error."""
    page.wait_for_timeout(150)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("iframe, svg, img[onerror], b[onmouseover]").count() == 0
    assert page.locator("script").count() == 4
    assert log.dialogs == [] and log.page_errors == []


def open_point(page, row_id: str, i: int) -> None:
    """Find row ``i`` by its id in the search box, then click its point so its panel opens."""
    e = "window.explorer"
    page.fill("#search", row_id)
    page.wait_for_function(f"() => {e}.counts.shown === 1")
    page.keyboard.press("Enter")
    wait_idle(page)
    pos = page.evaluate(f"i => {e}.screenPosition(i)", i)
    page.mouse.click(pos["x"], pos["y"])
    page.wait_for_function(f"i => {e}.current === i", arg=i)


def wait_idle(page, timeout_ms: int = 5000) -> None:
    """Wait until the explorer has no animation or frame pending."""
    page.wait_for_function("() => window.explorer.idle", timeout=timeout_ms)


def lasso_rectangle(page, x0: float, y0: float, x1: float, y1: float) -> None:
    """Shift + drag a rectangle with the mouse, as a person draws a lasso, and wait for the selection."""
    page.keyboard.down("Shift")
    page.mouse.move(x0, y0)
    page.mouse.down()
    for x, y in ((x1, y0), (x1, y1), (x0, y1), (x0, y0 + 1)):
        page.mouse.move(x, y, steps=4)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.wait_for_function("() => window.explorer.counts.selected > 0")
