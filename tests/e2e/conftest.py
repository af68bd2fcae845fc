"""Real-browser fixtures: one `streamlit run` server per test session, Playwright on the system Chromium."""
from __future__ import annotations

import os

import pytest

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server, warm_up


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("IMAGEAI_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is required (apt-get install -y chromium)")
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def server(browser):
    proc, url = start_server()
    warm_up(browser, url)
    yield url
    log = stop_server(proc)
    assert "Traceback" not in log, log[-4000:]


@pytest.fixture()
def page(browser, server):
    context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


