"""Real browser: class and file names that look like HTML or Markdown stay plain text on Train and Explore."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from tests.e2e.browser import (app_server, assert_no_exception, browser_page, by_key, choose, open_app, selected,
                               set_number, step, wait_idle)

IMG = "<img src=x onerror=alert(1)>"
LINK = "[click](http://example.com)"
ANCHOR = '<a href="http://example.com">a</a>'
CLASSES = (IMG, LINK, ANCHOR)
COLOURS = ((220, 40, 40), (40, 200, 60), (40, 60, 220))  # one colour per class: easy to learn in two epochs
PHOTOS_PER_CLASS = 8

# What an injected name could have created: <img src=x> (HTML or SVG), links to example.com (HTML <a href> or
# SVG xlink:href, as plotly draws them) and onerror attributes, each as a snippet of its markup; and alert() calls.
PROBE = """() => {
  const all = Array.from(document.querySelectorAll('*'));
  const href = e => (e.getAttribute('href') || '') + (e.getAttributeNS('http://www.w3.org/1999/xlink', 'href') || '');
  const shown = list => list.map(e => e.outerHTML.slice(0, 200));
  return {
    img_x: shown(all.filter(e => ['img', 'image'].includes(e.localName)
                                 && ((e.getAttribute('src') || '') === 'x' || href(e) === 'x'))),
    links: shown(all.filter(e => e.localName === 'a' && href(e).includes('example.com'))),
    onerror: shown(all.filter(e => e.hasAttribute('onerror'))),
    alerted: window.__alerted || 0,
  };
}"""
RECORD_ALERTS = """
for (const name of ['alert', 'confirm', 'prompt']) {
  const original = window[name];
  window[name] = function (...args) {
    window.__alerted = (window.__alerted || 0) + 1;
    return original.apply(this, args);
  };
}
"""


@pytest.fixture(scope="module")
def injection_server(browser):
    with app_server(browser, {"IMAGEAI_TRAIN_LIMIT": "200"}) as (_, url):
        yield url


@pytest.fixture()
def watched_page(browser, injection_server):
    """A page whose alert/confirm/prompt calls and dialogs are recorded."""
    with browser_page(browser, height=1100, init_script=RECORD_ALERTS) as pg:
        pg.dialogs = []
        pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
        yield pg


def photo(colour: tuple[int, int, int], seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.integers(-25, 26, (96, 96, 3)), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def assert_inert(page, where: str) -> None:
    """Nothing was created from an injected name, no alert ran, and no exception box is shown."""
    found = page.evaluate(PROBE)
    assert found == {"img_x": [], "links": [], "onerror": [], "alerted": 0}, (where, found)
    assert page.dialogs == [], (where, page.dialogs)
    assert_no_exception(page)


def shown_text(page) -> str:
    """The main area's visible text, without the invisible word joiners that keep bare URLs from linking."""
    return page.locator("[data-testid='stMain']").inner_text().replace("\u2060", "")


def wait_literal(page, text: str, where: str, timeout: float = 30) -> None:
    """Wait until the exact characters are on the page as visible text."""
    deadline = time.monotonic() + timeout
    while text not in shown_text(page):
        assert time.monotonic() < deadline, (where, text, shown_text(page)[-2000:])
        page.wait_for_timeout(200)


def add_class(page, name: str, index: int) -> None:
    box = by_key(page, "train_own_new_class").locator("input")
    box.fill(name)
    box.press("Enter")
    by_key(page, "train_own_add").locator("button").click()
    uploader = by_key(page, f"train_own_files_{index}").locator("input[type='file']")
    uploader.wait_for(state="attached")
    files = [{"name": f"{IMG}{i}.png" if i == 0 else f"photo{i}.png", "mimeType": "image/png",
              "buffer": photo(COLOURS[index], 100 * index + i)} for i in range(PHOTOS_PER_CLASS)]
    if index == 0:  # not a picture: left out, and listed by its name
        files.append({"name": f"{LINK}.png", "mimeType": "image/png", "buffer": b"not a picture"})
    uploader.set_input_files(files)
    by_key(page, f"train_own_files_{index}").get_by_text(f"photo{PHOTOS_PER_CLASS - 1}.png").wait_for()


def train_own_photos(page, url: str) -> None:
    open_app(page, url, "train")
    page.get_by_role("heading", name="Train a CNN").wait_for()
    choose(page, "train_dataset", "Your own photos")
    by_key(page, "train_own_new_class").wait_for()
    for index, name in enumerate(CLASSES):
        add_class(page, name, index)
        assert_inert(page, f"class {index} added")
    page.locator("[data-testid='stDataFrame']").first.wait_for()  # the photos per class: all classes have photos
    page.get_by_text("Files left out: 1").wait_for()
    for name in CLASSES:
        wait_literal(page, name, "class list on Train")
    set_number(page, "train_epochs_own_photos", 2)
    assert_inert(page, "gallery and settings")
    by_key(page, "train_start").locator("button").click()
    page.locator("[data-testid='stMetric']").filter(has_text="Test accuracy").wait_for(timeout=90_000)
    page.get_by_text("Training finished after 2 epoch(s).").wait_for()


def test_html_and_markdown_names_stay_plain_text_from_training_to_explanation(watched_page, injection_server):
    page = watched_page
    train_own_photos(page, injection_server)
    confusion = page.locator(".st-key-train_result_confusion .js-plotly-plot")
    confusion.wait_for()
    ticks = " ".join(confusion.locator("text").all_text_contents())
    for name in CLASSES:
        assert name in ticks, (name, ticks)  # the confusion matrix's axes show the names as typed
    wait_literal(page, f"3 classes: {', '.join(CLASSES)}", "this session's models")
    assert_inert(page, "results: confusion matrix, mistakes, model list")

    page.locator("[class*='st-key-train_result_explain_'] button").click()
    page.get_by_role("heading", name="Explore a picture").wait_for()
    assert selected(page, "explore_model") == "own_photos-1 (this session)"
    wait_literal(page, ", ".join(CLASSES), "classes the model knows")
    assert_inert(page, "Explore with the trained model")

    for file_name, colour in ((f"{IMG}.png", COLOURS[1]), (f"{LINK}.png", COLOURS[0])):
        by_key(page, "explore_upload").locator("input[type='file']").set_input_files(
            {"name": file_name, "mimeType": "image/png", "buffer": photo(colour, 7)})
        wait_literal(page, file_name, "the uploaded file's name")
        wait_idle(page)  # the caption comes before the metric: let this run finish drawing this picture's prediction
        value = page.locator("[data-testid='stMetric']").filter(has_text="Prediction").locator(
            "[data-testid='stMetricValue']").inner_text().strip().replace("\u2060", "")
        assert value in CLASSES, value  # the predicted class, exactly as typed (the last one is checked below)
        assert_inert(page, f"prediction for {file_name}")

    for _ in range(8):  # Input, 2 x (Conv, ReLU, Pool), Flatten, then Fully connected
        step(page)
        assert_inert(page, "stepping to the dense stage")
    page.get_by_role("heading", name="Fully connected").wait_for()
    for name in CLASSES:
        choose(page, "pick_dense_class", name)
        wait_literal(page, f"Score of {name} =", "dense stage")
        assert_inert(page, f"dense stage, class {name}")
    step(page)
    page.get_by_role("heading", name="Output").first.wait_for()
    wait_literal(page, f"The model's prediction: {value}, with", "output stage")
    charts = " ".join(page.locator(".js-plotly-plot text").all_text_contents())
    assert all(name in charts for name in CLASSES), charts  # probability bars and softmax table, names as typed
    assert_inert(page, "output stage")
