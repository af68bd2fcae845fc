"""Real-browser helpers: start `streamlit run` on a free port, wait for it, drive Playwright on the system Chromium."""
from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("streamlit did not become healthy")


def start_server(env_extra: dict[str, str] | None = None,
                 args: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on a free local port, with extra environment and `--server.*` flags; waits for health."""
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    log = tempfile.TemporaryFile()  # a file, not a pipe: an unread pipe would block a chatty server
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", *(args or [])],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    proc.log = log
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
    except Exception:
        proc.kill()
        raise
    return proc, url


def stop_server(proc: subprocess.Popen) -> str:
    """Stop the server and return everything it printed."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.log.seek(0)
    return proc.log.read().decode("utf-8", "replace")


@contextlib.contextmanager
def app_server(browser, env_extra: dict[str, str] | None = None, args: list[str] | None = None):
    """A warmed `streamlit run` server for a test module; on exit it must have logged no traceback."""
    proc, url = start_server(env_extra, args=args)
    try:
        warm_up(browser, url)
        yield proc, url
    finally:
        log = stop_server(proc)
    assert "Traceback" not in log, log[-4000:]


@contextlib.contextmanager
def browser_page(browser, height: int = 1000, init_script: str | None = None):
    """A page in its own browser context (its own cookies, so its own Streamlit session)."""
    context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": height})
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        context.close()


def warm_up(browser, url: str) -> None:
    """Open the home page once: until some session has run st.navigation, a fresh server answers a deep
    link (/explore) with Streamlit's one-time "page not found" notice before routing correctly."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("[data-testid='stSidebarNav']", timeout=120_000)
    context.close()


def open_app(page, url: str, path: str = "") -> None:
    page.goto(f"{url}/{path}")
    page.wait_for_selector("[data-testid='stApp']")


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished running the script (no 'running' status widget)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.match(/Running|Stop/)",
        timeout=timeout,
    )


def stage_caption(index: int | None = None) -> re.Pattern:
    """The English caption under the Explore stepper ("Stage 3 of 10"): for stage `index`, or for any stage."""
    number = str(index) if index is not None else r"\d+"
    return re.compile(rf"^Stage {number} of \d+$")


def current_stage(page) -> int:
    """The 1-based stage the Explore stepper shows now."""
    caption = page.locator("[data-testid='stMain']").get_by_text(stage_caption())
    return int(re.search(r"Stage (\d+) of", caption.inner_text()).group(1))


def step(page, forward: bool = True) -> int:
    """Press Next (or Previous) once and wait until the stepper shows the stage it leads to. Reading the stage
    again before that rerun has finished would see the old one, and a second press would overshoot."""
    target = current_stage(page) + (1 if forward else -1)
    page.get_by_role("button", name="Next" if forward else "Previous").click()
    page.locator("[data-testid='stMain']").get_by_text(stage_caption(target)).wait_for()
    return target


INPUT_HINT = "[data-testid='InputInstructions']"  # "Press Enter to apply" while a typed value is not yet applied


def by_key(page, key: str):
    """The container Streamlit 1.67 gives a keyed widget (CSS class `st-key-<key>`)."""
    return page.locator(f".st-key-{key}")


def choose(page, key: str, option: str) -> None:
    """Pick `option` (its visible label) in the keyed selectbox. A rerun that redraws the selectbox closes its
    list, so opening it is tried a few times."""
    item = page.get_by_role("option", name=option, exact=True)
    for _ in range(3):
        by_key(page, key).get_by_role("combobox").click()
        try:
            item.wait_for(timeout=5_000)
            break
        except Exception:  # Playwright's TimeoutError: the list closed again before it was seen
            page.keyboard.press("Escape")
    item.click()
    page.wait_for_function("([key, option]) => document.querySelector(`.st-key-${key} [role=combobox]`)?.value"
                           " === option", arg=[key, option])


def selected(page, key: str) -> str:
    """The label shown in the keyed selectbox (Streamlit 1.67 draws it as the value of a combobox input)."""
    return by_key(page, key).get_by_role("combobox").input_value()


def set_number(page, key: str, value: int) -> None:
    """Type a value into the keyed number input and commit it: Streamlit applies it on Enter, and then empties
    its "Press Enter to apply" hint."""
    box = by_key(page, key).locator("input")
    box.fill(str(value))
    box.press("Enter")
    by_key(page, key).locator(INPUT_HINT).wait_for(state="hidden")


def assert_no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, page.locator(
        "[data-testid='stException']").first.inner_text()
