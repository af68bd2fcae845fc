"""Explain latency in a real browser: from setting a photo on the Explore uploader to the prediction and the Output stage.

Usage: python -m bench.browser_latency [--runs 5]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from bench import Row
from bench.explain_latency import photo, write_stand_ins
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, ROOT, open_app, start_server, stop_server, wait_idle

TARGET_S = 1.5
UPLOADER = ".st-key-explore_upload [data-testid='stFileUploader'] input[type='file']"  # not the model-file one
RIBBON = ".st-key-explore_stage button"  # the stage ribbon's options
PREDICTION = "[data-testid='stMetric']"
OUTPUT_CHART = ".st-key-fig_output_probs .js-plotly-plot"  # the Output stage's probability bars, drawn
TIMEOUT_MS = 60_000


@contextmanager
def app_server() -> Iterator[tuple[object, str, list[str]]]:
    """`streamlit run app.py` on a free port: (process, url, names of the bundled models stood in for).

    A bundled model that is not built yet is replaced by one with random weights for this server only, by a
    sitecustomize that points imageai.registry at a temporary folder; nothing in the project is changed.
    """
    with tempfile.TemporaryDirectory(prefix="imageai-bench-") as tmp:
        env: dict[str, str] = {}
        stand_ins = write_stand_ins(Path(tmp))
        if stand_ins:
            _point_registry_at(Path(tmp))
            env["PYTHONPATH"] = os.pathsep.join([tmp, str(ROOT), os.environ.get("PYTHONPATH", "")])
        proc, url = start_server(env)
        try:
            yield proc, url, stand_ins
        finally:
            log = stop_server(proc)
            if "Traceback" in log:
                print(f"the server logged an error:\n{log[-3000:]}", file=sys.stderr)


def _point_registry_at(folder: Path) -> None:
    from imageai import registry

    for name in registry.BUNDLED:  # the built ones are shared as they are
        if registry.bundled_path(name).exists():
            (folder / f"{name}.safetensors").symlink_to(registry.bundled_path(name))
    (folder / "sitecustomize.py").write_text(
        "from pathlib import Path\nimport imageai.registry\n"
        f"imageai.registry.MODELS_DIR = Path({str(folder)!r})\n")


@contextmanager
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser):
    """A fresh browser context (its own Streamlit session, nothing cached in it) and its page."""
    context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return context, page


def open_explore(page, url: str) -> None:
    open_app(page, url, "explore")
    page.locator(UPLOADER).wait_for(state="attached")
    wait_idle(page)
    dismiss_dialog(page)


def dismiss_dialog(page) -> None:
    """Close a modal if one is open: the first deep link after a server start gets a spurious 'Page not found'
    (streamlit/streamlit#9624) over the right page, which makes the page behind it inert."""
    dialog = page.locator("[role='dialog']")
    if dialog.count():
        page.keyboard.press("Escape")
        dialog.first.wait_for(state="detached")


def upload_and_explain(page, picture: Path) -> tuple[float, float]:
    """Seconds from setting the file to (the prediction shown, the Output stage's chart drawn)."""
    start = time.perf_counter()
    page.locator(UPLOADER).set_input_files(str(picture))
    page.locator(PREDICTION).first.wait_for(state="visible")
    predicted = time.perf_counter() - start
    page.locator(RIBBON).filter(has_text=re.compile(r"^Output\b")).click()
    page.locator(OUTPUT_CHART).first.wait_for(state="visible")
    return predicted, time.perf_counter() - start


# How each run reaches the Explore page; every run starts a new Streamlit session, so nothing is reused.
VISITS = {
    "first visit": "a new browser context (empty cache) opens Home, whose pipeline chart loads plotly.js, "
                   "then Explore from the sidebar",
    "deep link, empty cache": "a new browser context opens /explore directly: plotly.js and the other "
                              "chunks load only when the first chart appears",
    "app open": "the same tab reloads /explore: a new session, scripts cached",
}


def reach_explore(browser, context, page, url: str, visit: str):
    """Get a page showing Explore with an empty uploader, the way `visit` says; returns (context, page)."""
    if visit != "app open":
        context.close()
        context, page = new_page(browser)
    if visit == "first visit":
        open_app(page, url)
        page.locator(".st-key-home_pipeline .js-plotly-plot").wait_for()
        dismiss_dialog(page)
        page.locator("[data-testid='stSidebarNav'] a", has_text="Explore").click()
        page.locator(UPLOADER).wait_for(state="attached")
        wait_idle(page)
    else:
        open_explore(page, url)
    return context, page


def measure(url: str, picture: Path, runs: int, visit: str) -> tuple[list[float], list[float], float]:
    """(to prediction, to Output) for each run after an untimed first one, and that first run's time to Output."""
    predicted, output, first = [], [], 0.0
    with chromium() as browser:
        context, page = new_page(browser)
        try:
            for i in range(runs + 1):
                context, page = reach_explore(browser, context, page, url, visit)
                p, o = upload_and_explain(page, picture)
                if i == 0:
                    first = o  # the server's first explanation loads the model and warms its caches
                else:
                    predicted.append(p)
                    output.append(o)
        finally:
            context.close()
    return predicted, output, first


def rows(runs: int = 5, name: str = "digits") -> list[Row]:
    """One row per way of reaching the Explore page (VISITS)."""
    if not os.path.exists(CHROMIUM):
        return [Row("explain, browser", "skipped", f"<= {TARGET_S} s", None, f"{CHROMIUM} not installed")]
    out = []
    with tempfile.TemporaryDirectory(prefix="imageai-bench-") as tmp, app_server() as (_, url, stand_ins):
        picture = Path(tmp) / f"{name}.jpg"
        picture.write_bytes(photo(name))
        label = f"{name}{' (random weights: not built)' if name in stand_ins else ''}"
        for visit, how in VISITS.items():
            predicted, output, first = measure(url, picture, runs, visit)
            median = statistics.median(output)
            out.append(Row(
                f"explain, browser, {visit}: {label}", f"median {median:.2f} s", f"<= {TARGET_S} s",
                median <= TARGET_S,
                f"setting the file on the uploader -> prediction shown (median {statistics.median(predicted):.2f} s)"
                f" -> Output stage chosen on the ribbon and its chart drawn; {runs} runs, {how}; each: "
                f"{', '.join(f'{v:.2f}' for v in output)} s; untimed first run {first:.2f} s"))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    for row in rows(args.runs):
        print(row)


if __name__ == "__main__":
    main()
