"""Real-browser fixtures: one `streamlit run` server per test session, Playwright on the system Chromium."""
from __future__ import annotations

import os

import pytest

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, app_server, browser_page


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
    with app_server(browser) as (_, url):
        yield url


@pytest.fixture()
def page(browser, server):
    with browser_page(browser) as pg:
        yield pg


