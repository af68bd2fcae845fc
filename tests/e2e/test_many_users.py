"""Real browser: six people on one server at once. Four explore their own digit, two train (the cap is 1, so one
waits its turn); nobody sees another's upload, progress or model, and /_stcore/health keeps answering."""
from __future__ import annotations

import asyncio
import io
import re
import threading
import time
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from imageai.datasets import DIGITS_FILE
from imageai.pipeline import explain_bytes
from imageai.registry import bundled_path, load_bundled
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, INPUT_HINT, stage_caption, start_server, stop_server, warm_up

pytestmark = pytest.mark.skipif(not bundled_path("digits").exists(), reason="bundled models not built")

TRAIN_LIMIT = 1000  # images per split: the first training lasts long enough (seconds) for the second to queue
DIGITS_EPOCHS = 12  # the first training: it must still run for seconds after the second asks to start
SHAPES_EPOCHS = 3
EXPLORER_DIGITS = (0, 1, 2, 3)
HEALTH_EVERY_S = 0.5
HEALTH_MAX_S = 3.0  # "within a few seconds"
SCENARIO_S = 240  # everything, all six people together; each wait inside is bounded too
WAIT_MS = 90_000
BUNDLED_OPTIONS = ["Digits (handwritten 0–9, bundled)", "Shapes (6 shapes, bundled)"]


@pytest.fixture(scope="module")
def crowd_server(browser):
    proc, url = start_server({"IMAGEAI_MAX_TRAININGS": "1", "IMAGEAI_TORCH_THREADS": "1",
                              "IMAGEAI_TRAIN_LIMIT": str(TRAIN_LIMIT)})
    warm_up(browser, url)
    yield url
    log = stop_server(proc)
    assert "Traceback" not in log, log[-4000:]


def digit_png(digit: int) -> bytes:
    """The first held-out digit of this class that the bundled model gets right, as a 224-pixel PNG."""
    loaded = load_bundled("digits")
    with np.load(DIGITS_FILE) as npz:
        images, labels = npz["test_images"], npz["test_labels"]
    for index in np.flatnonzero(labels == digit):
        out = io.BytesIO()
        Image.fromarray(images[index]).resize((224, 224), Image.Resampling.NEAREST).save(out, format="PNG")
        if explain_bytes(loaded, out.getvalue()).prediction == digit:
            return out.getvalue()
    raise AssertionError(f"no test image of {digit} is classified right")


class HealthProbe(threading.Thread):
    """Asks /_stcore/health every HEALTH_EVERY_S seconds; keeps the slowest answer and any failure."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.done = f"{url}/_stcore/health", threading.Event()
        self.latencies: list[float] = []
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.done.wait(HEALTH_EVERY_S):
            start = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=10) as answer:
                    ok = answer.status == 200
            except OSError as err:
                ok, reason = False, repr(err)
            else:
                reason = "status"
            self.latencies.append(time.monotonic() - start)
            if not ok:
                self.failures.append(reason)


# --- async Playwright helpers (the sync ones in browser.py cannot share one event loop between six people) ---

def key(page, name: str):
    return page.locator(f".st-key-{name}")


async def no_exception(page, who: str) -> None:
    boxes = page.locator("[data-testid='stException']")
    assert await boxes.count() == 0, (who, await boxes.first.inner_text())


async def main_text(page) -> str:
    return await page.locator("[data-testid='stMain']").inner_text()


async def metric(page, label: str) -> str:
    box = page.locator("[data-testid='stMetric']").filter(has_text=label).locator("[data-testid='stMetricValue']")
    await box.wait_for()
    return (await box.inner_text()).strip()


async def set_number(page, name: str, value: int) -> None:
    box = key(page, name).locator("input")
    await box.fill(str(value))
    await box.press("Enter")
    await key(page, name).locator(INPUT_HINT).wait_for(state="hidden")  # applied


async def options(page, name: str) -> list[str]:
    """Every option of the keyed selectbox, read by opening its list (and closing it again)."""
    item = page.get_by_role("option")
    for _ in range(3):
        await key(page, name).get_by_role("combobox").click()
        try:
            await item.first.wait_for(timeout=5_000)
            break
        except Exception:  # a rerun redrew the selectbox and closed its list: open it again
            await page.keyboard.press("Escape")
    texts = [t.strip() for t in await item.all_inner_texts()]
    await page.keyboard.press("Escape")
    return texts


async def choose(page, name: str, option: str) -> None:
    for _ in range(3):
        await key(page, name).get_by_role("combobox").click()
        try:
            await page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
            break
        except Exception:
            await page.keyboard.press("Escape")
    await page.wait_for_function("([k, v]) => document.querySelector(`.st-key-${k} [role=combobox]`)?.value === v",
                                 arg=[name, option])


async def new_page(browser, foreign: list[str]):
    context = await browser.new_context(locale="en-US", viewport={"width": 1300, "height": 1000})
    context.on("request", lambda r: None if urlparse(r.url).hostname in ("127.0.0.1", None)
               or r.url.startswith(("data:", "blob:")) else foreign.append(r.url))
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    return context, page


# --- the six people ---

async def explorer(browser, url: str, person: int, digit: int, png: bytes, trainings_done: asyncio.Event,
                   foreign: list[str]) -> dict:
    """Uploads their digit, sees its prediction, and keeps stepping through the stages until both trainings end."""
    who = f"explorer {person}"
    context, page = await new_page(browser, foreign)
    try:
        await page.goto(f"{url}/explore")
        await page.get_by_role("heading", name="Explore a picture").wait_for()
        file_name = f"person{person}-digit{digit}.png"
        await key(page, "explore_upload").locator("input[type='file']").set_input_files(
            {"name": file_name, "mimeType": "image/png", "buffer": png})
        assert await metric(page, "Prediction") == str(digit), who
        steps, stage, forward, deadline = 0, 1, True, time.monotonic() + SCENARIO_S
        stepper = page.locator("[data-testid='stMain']")
        while not trainings_done.is_set():  # back and forth over stages 1-4 while the others train
            assert time.monotonic() < deadline, f"{who}: the trainings did not end"
            forward = stage <= 1 or (forward and stage < 4)
            stage += 1 if forward else -1
            await page.get_by_role("button", name="Next" if forward else "Previous").click()
            # the next press waits for this one's rerun: read too early, the old stage would make it overshoot
            await stepper.get_by_text(stage_caption(stage)).wait_for()
            steps += 1
            await check_own_picture(page, who, person, digit, file_name)
            await page.wait_for_timeout(300)  # pace: a person reads before the next press (not a synchronisation)
        await check_own_picture(page, who, person, digit, file_name)
        assert await options(page, "explore_model") == BUNDLED_OPTIONS, who  # nobody's trained model shows here
        return {"steps": steps}
    finally:
        await context.close()


async def check_own_picture(page, who: str, person: int, digit: int, file_name: str) -> None:
    text = await main_text(page)
    assert file_name in text, who  # the caption under the picture is this person's file
    others = [p for p in re.findall(r"person(\d+)-digit", text) if int(p) != person]
    assert not others, (who, others)
    assert await metric(page, "Prediction") == str(digit), who
    await no_exception(page, who)


async def start_training(page, url: str, dataset: str | None, setting: str, epochs: int) -> None:
    await page.goto(f"{url}/train")
    await page.get_by_role("heading", name="Train a CNN").wait_for()
    if dataset is not None:
        await choose(page, "train_dataset", dataset)
    await set_number(page, setting, epochs)


async def watch(page, who: str, own_epochs: int, other_epochs: int) -> dict:
    """Until the results show: which of this person's states were seen; never the other training's progress."""
    seen = {"queued": None, "running": False}
    deadline = time.monotonic() + SCENARIO_S
    while await page.locator("[data-testid='stMetric']").filter(has_text="Test accuracy").count() == 0:
        assert time.monotonic() < deadline, f"{who}: the training did not end"
        text = await main_text(page)
        queued = re.search(r"Your place in the queue: (\d+)", text)
        if queued and seen["queued"] is None:
            seen["queued"] = int(queued.group(1))
            assert await page.locator("[data-testid='stProgress']").count() == 0, who  # no one else's progress
        if f"of {own_epochs} ·" in text:
            seen["running"] = True
        assert f"of {other_epochs} ·" not in text, who
        await no_exception(page, who)
        await page.wait_for_timeout(150)
    return seen


async def models_seen(page, who: str, own_name: str) -> None:
    """This session's list holds only its own model, and so does the Explore page's picker."""
    boxes = page.locator("[class*='st-key-train_rename_'] input")
    await boxes.first.wait_for()  # the list is drawn below the results
    names = [await box.input_value() for box in await boxes.all()]
    assert names == [own_name], (who, names)
    await page.locator("[class*='st-key-train_result_explain_'] button").click()
    await page.get_by_role("heading", name="Explore a picture").wait_for()
    assert await options(page, "explore_model") == [*BUNDLED_OPTIONS, f"{own_name} (this session)"], who
    await no_exception(page, who)


@dataclass(frozen=True)
class Trainer:
    who: str
    dataset: str | None  # the option to choose; None keeps the page's default, Digits
    setting: str  # the keyed epochs box for this dataset
    epochs: int
    model: str  # the name the trained model gets in this session


DIGITS_TRAINER = Trainer("digits trainer", None, "train_epochs_digits", DIGITS_EPOCHS, "digits-1")
SHAPES_TRAINER = Trainer("shapes trainer", "Shapes (6 drawn shapes, built in)", "train_epochs_shapes", SHAPES_EPOCHS,
                         "shapes-1")


async def press_train(page) -> None:
    await key(page, "train_start").locator("button").click()


async def follow(page, me: Trainer, other: Trainer) -> dict:
    """Watch this person's training to its results, then check they see only their own model."""
    seen = await watch(page, me.who, me.epochs, other.epochs)
    await page.get_by_text(f"Training finished after {me.epochs} epoch(s).").wait_for()
    await models_seen(page, me.who, me.model)
    return seen


async def trainers(browser, url: str, foreign: list[str]) -> list[dict]:
    """Both set up their training; the first presses Train, and once it runs, the second presses (and queues)."""
    pages = [await new_page(browser, foreign) for _ in range(2)]
    (_, first), (_, second) = pages
    try:
        await asyncio.gather(*(start_training(page, url, t.dataset, t.setting, t.epochs)
                               for (_, page), t in zip(pages, (DIGITS_TRAINER, SHAPES_TRAINER))))
        await press_train(first)
        await first.locator("[data-testid='stProgress']").wait_for()
        await press_train(second)
        return await asyncio.gather(follow(first, DIGITS_TRAINER, SHAPES_TRAINER),
                                    follow(second, SHAPES_TRAINER, DIGITS_TRAINER))
    finally:
        for context, _ in pages:
            await context.close()


async def crowd(url: str, pngs: dict[int, bytes], foreign: list[str]) -> list:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            done = asyncio.Event()

            async def training():
                try:
                    return await trainers(browser, url, foreign)
                finally:
                    done.set()  # let the explorers finish, also when a trainer failed

            explorers = [explorer(browser, url, i, d, pngs[d], done, foreign) for i, d in enumerate(EXPLORER_DIGITS)]
            return await asyncio.wait_for(asyncio.gather(training(), *explorers), SCENARIO_S)
        finally:
            await browser.close()


def run_in_thread(coroutine_fn, *args):
    """asyncio.run on a thread of its own: the session's sync Playwright owns this thread's event loop."""
    box: dict = {}

    def target():
        try:
            box["result"] = asyncio.run(coroutine_fn(*args))
        except BaseException as err:  # re-raised on the test's thread
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(SCENARIO_S + 60)
    assert not thread.is_alive(), "the crowd did not finish"
    if "error" in box:
        raise box["error"]
    return box["result"]


def test_six_people_at_once_see_only_their_own_work_while_the_second_training_waits_its_turn(crowd_server):
    pngs = {d: digit_png(d) for d in EXPLORER_DIGITS}
    foreign: list[str] = []
    probe = HealthProbe(crowd_server)
    probe.start()
    started = time.monotonic()
    try:
        (first, second), *explored = run_in_thread(crowd, crowd_server, pngs, foreign)
    finally:
        probe.done.set()
        probe.join(15)
    took = time.monotonic() - started
    print(f"crowd: {took:.1f} s, health max {max(probe.latencies, default=0):.3f} s over {len(probe.latencies)} "
          f"probes; trainers {first} {second}; explorer steps {[e['steps'] for e in explored]}")

    assert first["queued"] is None and first["running"], first  # the first training started at once
    assert second["queued"] == 1 and second["running"], second  # the second waited, first in line, then ran
    assert all(e["steps"] >= 3 for e in explored), explored  # explorers worked while the trainings ran
    assert probe.failures == [], probe.failures
    assert len(probe.latencies) >= took / HEALTH_EVERY_S / 3, (len(probe.latencies), took)
    assert max(probe.latencies) < HEALTH_MAX_S, max(probe.latencies)
    assert foreign == [], foreign  # the browsers talked only to the local server
