"""Resident memory of the `streamlit run` server: idle, per session that explained a photo, and after a Digits training.

Usage: python -m bench.memory [--sessions 5]
"""
from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import Row
from bench.browser_latency import (
    app_server, chromium, dismiss_dialog, new_page, open_explore, upload_and_explain,
)
from bench.explain_latency import photo
from tests.e2e.browser import CHROMIUM, ROOT, open_app, wait_idle

TARGET_PER_SESSION_MB = 20.0
TARGET_AFTER_TRAINING_MB = 150.0
SETTLE_S = 3.0  # let the server finish its reruns and sending before reading its memory
TRAIN_TIMEOUT_S = 600
TRAIN_BUTTON = ".st-key-train_start button"


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc/PID/status (VmRSS, in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def settled_rss(pid: int) -> float:
    time.sleep(SETTLE_S)
    return rss_mb(pid)


def session_rows(sessions: int = 5) -> list[Row]:
    """Idle after the first page load, then 1 and `sessions` open browser sessions that each explained a photo."""
    with tempfile.TemporaryDirectory(prefix="imageai-bench-") as tmp, app_server() as (proc, url, _), \
            chromium() as browser:
        picture = Path(tmp) / "digits.jpg"
        picture.write_bytes(photo("digits"))
        contexts = []
        try:
            context, page = new_page(browser)
            contexts.append(context)
            open_explore(page, url)
            idle = settled_rss(proc.pid)
            after: list[float] = []
            for _ in range(sessions):
                context, page = new_page(browser)  # its own Streamlit session, kept open while measuring
                contexts.append(context)
                open_explore(page, url)
                upload_and_explain(page, picture)
                wait_idle(page)
                after.append(settled_rss(proc.pid))
        finally:
            for context in contexts:
                context.close()
    per_session = (after[-1] - after[0]) / max(sessions - 1, 1)
    steps = ", ".join(f"{v:.0f}" for v in after)
    return [
        Row("server memory: idle", f"{idle:.0f} MB", "", None,
            f"RSS of the streamlit process after one browser opened /explore; `import torch` alone: "
            f"{import_costs().torch:.0f} MB (torchvision, imported only to download MNIST or CIFAR-10, would add "
            f"{import_costs().torchvision:.0f} MB)"),
        Row(f"server memory: per extra session (1 -> {sessions})", f"{per_session:+.1f} MB",
            f"<= {TARGET_PER_SESSION_MB:.0f} MB", per_session <= TARGET_PER_SESSION_MB,
            f"each session uploaded a photo and opened the Output stage, all kept open; RSS after 1..{sessions}: "
            f"{steps} MB; the first one added {after[0] - idle:+.0f} MB over idle (model load, first-use imports)"),
    ]


def training_rows() -> list[Row]:
    """A fresh server, idle on /train; then two Digits trainings in a row from the page, with its default settings."""
    with app_server() as (proc, url, _), chromium() as browser:
        context, page = new_page(browser)
        try:
            open_app(page, url, "train")
            page.locator(TRAIN_BUTTON).wait_for()
            wait_idle(page)
            dismiss_dialog(page)
            idle = settled_rss(proc.pid)
            first = _train_from_page(page, proc.pid)
            second = _train_from_page(page, proc.pid)
        finally:
            context.close()
    grown, once = first.after - idle, import_costs().optimizer
    return [
        Row("server memory: after a Digits training", f"{grown:+.0f} MB", f"<= {TARGET_AFTER_TRAINING_MB:.0f} MB",
            grown <= TARGET_AFTER_TRAINING_MB,
            f"Train page, default settings ({first.seconds:.0f} s, test accuracy {first.accuracy}), session kept open: "
            f"idle on /train {idle:.0f} MB, peak {first.peak:.0f} MB, after {first.after:.0f} MB. Of the growth, "
            f"{once:.0f} MB is a one-time import: the first torch.optim optimizer in a process imports torch._dynamo "
            f"(+ sympy, triton); without it {grown - once:+.0f} MB"),
        Row("server memory: a second training adds", f"{second.after - first.after:+.0f} MB", "", None,
            f"the same page again: peak {second.peak:.0f} MB, after {second.after:.0f} MB ({second.seconds:.0f} s); "
            "what a training freed is handed back (imageai.jobs.release_freed_memory)"),
    ]


@dataclass(frozen=True)
class Training:
    peak: float  # MB
    after: float  # MB, settled, once the results show
    seconds: float
    accuracy: str


def _train_from_page(page, pid: int) -> Training:
    """Click Train, wait for the test accuracy of the finished training; RSS is sampled twice a second meanwhile."""
    start = time.perf_counter()
    page.locator(TRAIN_BUTTON).click()
    result = page.locator("[data-testid='stMetric']")
    result.first.wait_for(state="detached")  # the last training's results make way for the live view
    peak = rss_mb(pid)
    deadline = time.monotonic() + TRAIN_TIMEOUT_S
    while not result.count():
        if time.monotonic() > deadline:
            raise TimeoutError("the training did not finish in time")
        peak = max(peak, rss_mb(pid))
        page.wait_for_timeout(500)
    seconds = time.perf_counter() - start
    wait_idle(page)
    accuracy = page.locator("[data-testid='stMetricValue']").first.inner_text().strip()
    return Training(max(peak, rss_mb(pid)), settled_rss(pid), seconds, accuracy)


@dataclass(frozen=True)
class ImportCosts:
    torch: float  # MB of RSS of a process that has only imported torch
    optimizer: float  # MB more after its first torch.optim optimizer
    torchvision: float  # MB more after importing torchvision instead


@functools.cache
def import_costs() -> ImportCosts:
    """Measured in fresh processes, so nothing else the benchmark imported counts."""
    rss = "int(open(f'/proc/{os.getpid()}/status').read().split('VmRSS:')[1].split()[0]) / 1024"
    after_torch = _print_from_child(f"import os, torch; print({rss})")
    optimizer = _print_from_child(f"import os, torch; a = {rss}; torch.optim.Adam(torch.nn.Linear(2, 2).parameters()); "
                                  f"print({rss} - a)")
    torchvision = _print_from_child(f"import os, torch; a = {rss}; import torchvision; print({rss} - a)")
    return ImportCosts(after_torch, optimizer, torchvision)


def _print_from_child(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def rows(sessions: int = 5, train: bool = True) -> list[Row]:
    if not os.path.exists(CHROMIUM):
        return [Row("server memory", "skipped", "", None, f"{CHROMIUM} not installed")]
    out = session_rows(sessions)
    if train:
        out += training_rows()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--no-train", action="store_true")
    args = parser.parse_args(argv)
    for row in rows(args.sessions, not args.no_train):
        print(row)


if __name__ == "__main__":
    main()
