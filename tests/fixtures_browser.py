"""Browser fixtures for the explorer's page tests: one headless Chromium per module, a fresh page per test.

A module using ``page`` defines the ``folder`` fixture: a dict whose ``"result"`` is the built explorer."""

from __future__ import annotations

import pytest

from tests.browser import launch_chromium, open_page


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as b:  # a launch failure raises here: the tests fail, they do not skip
        yield b


@pytest.fixture()
def page(browser, folder):
    page, log = open_page(browser, folder["result"].path)
    yield page, log
    page.context.close()
