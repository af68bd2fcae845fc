"""`python -m bench`: every benchmark in one run on this machine, printed as one table.

Usage: python -m bench [--quick] [--only explain,payload,browser,throughput,accuracy,photos,memory]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import torch

from bench import Row

THREADS = 2
SECTIONS = ("explain", "payload", "browser", "throughput", "accuracy", "photos", "memory")


@dataclass(frozen=True)
class Settings:
    """How much each benchmark does; --quick is a smoke-test size whose figures mean nothing."""

    explain_runs: int = 30
    explain_warmup: int = 3
    browser_runs: int = 5
    train_limit: int | None = None  # first N training and test images only
    pairs: int = 5
    epochs: int = 3
    accuracy_epochs: int | None = None  # None: the dataset's default settings
    photos_per_class: int = 20
    photos_epochs: int | None = None  # None: the Train page's defaults
    sessions: int = 5
    memory_training: bool = True


QUICK = Settings(explain_runs=3, explain_warmup=1, browser_runs=1, train_limit=256, pairs=1, epochs=1,
                 accuracy_epochs=1, photos_per_class=4, photos_epochs=1, sessions=2, memory_training=False)


def run(sections: tuple[str, ...], settings: Settings) -> list[Row]:
    rows: list[Row] = []
    if "explain" in sections or "payload" in sections:
        from bench import explain_latency

        measured = explain_latency.rows(settings.explain_runs, warmup=settings.explain_warmup)
        rows += [r for r in measured if _section_of(r) in sections]
    if "browser" in sections:
        from bench import browser_latency

        rows += browser_latency.rows(settings.browser_runs)
    if "throughput" in sections or "accuracy" in sections:
        from bench import train_throughput as tt

        dataset = tt.digits(settings.train_limit)
        if "accuracy" in sections:  # first: it then pays the one-time costs a server's first training pays
            rows.append(tt.time_to_accuracy_row(dataset, settings.accuracy_epochs))
        if "throughput" in sections:
            rows += tt.throughput_rows(dataset, settings.pairs, settings.epochs)
    if "photos" in sections:
        from bench import own_photos

        rows += own_photos.rows(settings.photos_per_class, settings.photos_epochs)
    if "memory" in sections:
        from bench import memory

        rows += memory.rows(settings.sessions, settings.memory_training)
    return rows


def _section_of(row: Row) -> str:
    return "payload" if row.name.startswith("figure payload") else "explain"


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 platform.processor() or "?")
    return (f"{model}, nproc {os.cpu_count()}; Python {platform.python_version()}, torch {torch.__version__}, "
            f"{platform.system()} {platform.release()}")


def table(rows: list[Row], started: str, load_before: tuple[float, ...], seconds: float, command: str) -> str:
    load_after = os.getloadavg()
    lines = [
        f"ImageAi benchmark, {started}: `{command}` ({seconds:.0f} s)",
        f"machine: {machine()}",
        f"torch.set_num_threads({THREADS}) for in-process work; the app's server uses its own setting "
        f"(2 threads until a training starts, then cores // IMAGEAI_MAX_TRAININGS); load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (other processes share these cores)",
        "",
        "| what | measured | target | | how, and what it is made of |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        verdict = {True: "pass", False: "FAIL", None: ""}[r.ok]
        lines.append(f"| {r.name} | {r.measured} | {r.target} | {verdict} | {r.note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the benchmark runs, not the speed")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated, from {','.join(SECTIONS)}")
    args = parser.parse_args(argv)
    sections = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    torch.set_num_threads(THREADS)
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before, start = os.getloadavg(), time.perf_counter()
    rows = run(sections, QUICK if args.quick else Settings())
    command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    print(table(rows, started, load_before, time.perf_counter() - start, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
