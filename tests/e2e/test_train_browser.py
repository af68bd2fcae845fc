"""Real browser: train Digits for one short epoch on /train, watch it live, then explain a sample with the new model;
and a training whose tab is closed ends by itself after Streamlit's disconnect timeout."""
from __future__ import annotations

import os
import re
import time
from types import SimpleNamespace

import pytest

from tests.e2e.browser import (app_server, assert_no_exception, browser_page, by_key, open_app, selected,
                               set_number)

TRAIN_LIMIT = 3000  # training images (and all 1,000 test images): one epoch takes seconds, long enough to watch
SESSION_TTL_S = 2  # Streamlit keeps a disconnected session this long before it may drop it (default 120 s)


@pytest.fixture(scope="module")
def train_server(browser):
    with app_server(browser, {"IMAGEAI_TRAIN_LIMIT": str(TRAIN_LIMIT), "IMAGEAI_MAX_TRAININGS": "2"},
                    args=["--server.disconnectedSessionTTL", str(SESSION_TTL_S)]) as (proc, url):
        yield SimpleNamespace(url=url, pid=proc.pid)


@pytest.fixture()
def train_page(browser, train_server):
    with browser_page(browser) as pg:
        yield pg


def _start_training(page, url: str, epochs: int) -> None:
    open_app(page, url, "train")
    page.get_by_role("heading", name="Train a CNN").wait_for()
    set_number(page, "train_epochs_digits", epochs)
    assert by_key(page, "train_epochs_digits").locator("input").input_value() == str(epochs)
    assert_no_exception(page)
    by_key(page, "train_start").locator("button").click()


def watch_training(page, timeout: float = 90) -> dict[str, bool]:
    """Poll the page until the results appear; record which live parts were seen on the way."""
    seen = {"progress": False, "time_left": False, "live_curves": False, "live_kernels": False, "stop": False}
    progress = page.locator("[data-testid='stProgress']")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if progress.count() > 0:
            seen["progress"] = True
            seen["time_left"] |= bool(re.search(r"Epoch 1 of 1 · \d+% · about .+ left", _text(progress)))
        seen["live_curves"] |= page.locator(".st-key-train_live_curves .js-plotly-plot").count() > 0
        seen["live_kernels"] |= page.locator(".st-key-train_live_kernels .js-plotly-plot").count() > 0
        seen["stop"] |= by_key(page, "train_stop").count() > 0
        assert_no_exception(page)
        if page.locator("[data-testid='stMetric']").filter(has_text="Test accuracy").count() > 0:
            return seen
        page.wait_for_timeout(200)
    raise AssertionError(f"training did not finish within {timeout} s; seen {seen}")


def _text(locator) -> str:
    """Its text, or '' when a rerun removed it meanwhile."""
    try:
        return locator.first.inner_text(timeout=1_000)
    except Exception:  # Playwright's TimeoutError
        return ""


def test_train_digits_one_epoch_then_explain_a_sample_with_it(train_page, train_server):
    page = train_page
    _start_training(page, train_server.url, epochs=1)
    seen = watch_training(page)
    assert all(seen.values()), seen  # the live view, while it trained

    accuracy = page.locator("[data-testid='stMetric']").filter(has_text="Test accuracy")
    value = accuracy.locator("[data-testid='stMetricValue']").inner_text().strip()
    assert value.endswith("%") and 50.0 <= float(value.rstrip("%")) <= 100.0, value  # one epoch: far above 10%
    page.get_by_text("Training finished after 1 epoch(s).").wait_for()
    assert page.locator(".st-key-train_result_curves .js-plotly-plot").count() == 1
    assert page.locator(".st-key-train_result_confusion .js-plotly-plot").count() == 1
    assert_no_exception(page)

    page.locator("[class*='st-key-train_result_explain_'] button").click()
    page.get_by_role("heading", name="Explore a picture").wait_for()
    assert "/explore" in page.url
    assert selected(page, "explore_model") == "digits-1 (this session)"  # the model just trained
    assert_no_exception(page)

    by_key(page, "explore_source").get_by_role("radio", name="Sample").click()
    by_key(page, "explore_sample_button").locator("button").click()
    prediction = page.locator("[data-testid='stMetric']").filter(has_text="Prediction")
    predicted = prediction.locator("[data-testid='stMetricValue']").inner_text().strip()
    assert predicted in [str(d) for d in range(10)], predicted
    page.get_by_text("The sample's true class:").wait_for()
    page.get_by_text("Sample:").first.wait_for()  # the picture's caption
    assert selected(page, "explore_model") == "digits-1 (this session)"  # still the trained model
    assert_no_exception(page)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_share(pid: int, seconds: float = 2.0) -> float:
    """The share of one core the process used over the next `seconds`."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


def server_load(page) -> tuple[int, int]:
    """(running, waiting) trainings on the whole server, as the Train page states them."""
    text = page.get_by_text("On this server right now:").inner_text()
    running, queued = re.search(r"(\d+) training\(s\) running and (\d+) waiting", text).groups()
    return int(running), int(queued)


def test_closing_the_tab_mid_training_ends_the_training_after_the_disconnect_timeout(browser, train_server):
    """No other visitor is needed: the worker itself notices that its session is gone (Streamlit 1.67 only drops
    an expired session at the next session event, and frees its state only at a full garbage collection)."""
    url, pid = train_server.url, train_server.pid
    context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    _start_training(page, url, epochs=100)  # minutes of work: it cannot end by itself during this test
    page.locator("[data-testid='stProgress']").wait_for()
    page.get_by_text("1 training(s) running and 0 waiting").wait_for()
    assert cpu_share(pid) > 0.1  # the worker is training (it may get little of a busy machine, but some)
    assert_no_exception(page)
    context.close()  # the tab goes; its session lives on for SESSION_TTL_S, still training

    deadline = time.monotonic() + SESSION_TTL_S + 20
    while (share := cpu_share(pid, 1.0)) > 0.05:  # the server goes idle: no worker computes any more
        assert time.monotonic() < deadline, f"the closed tab's training still runs ({share:.0%} of a core)"

    other = browser.new_context(locale="en-US")
    watcher = other.new_page()
    watcher.set_default_timeout(60_000)
    open_app(watcher, url, "train")
    watcher.get_by_text("On this server right now:").wait_for()
    assert server_load(watcher) == (0, 0)
    assert_no_exception(watcher)
    other.close()
