"""Benchmarks for ImageAi: `python -m bench` prints one table; `python -m bench.<name>` runs a single script."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One line of the benchmark table."""

    name: str  # what was measured, e.g. "explain, server: digits"
    measured: str  # the figure, formatted with its unit
    target: str  # the goal, e.g. "<= 100 ms"; "" for a figure shown for context
    ok: bool | None  # None: no target, or the row was skipped
    note: str = ""  # how it was measured and what it is made of (shares, ratios, the bare-PyTorch figure)


def in_worker(fn, *args, **kwargs):
    """Run fn in a fresh thread and return its result, as the app runs its work (Streamlit's script thread, a
    training job's thread). Under CPU contention, torch's OpenMP threads spin-wait far worse when called from
    the main thread (10x slower training on 2 busy cores), which would make any comparison meaningless."""
    import threading

    out: dict = {}

    def run() -> None:
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as err:  # handed to the caller below
            out["error"] = err

    thread = threading.Thread(target=run, name="bench-worker")
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]
