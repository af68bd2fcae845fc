"""Server-side explain latency and figure payload: photo bytes -> every stage's figures as JSON, against a bare forward pass.

Usage: python -m bench.explain_latency [--runs 30]
"""
from __future__ import annotations

import argparse
import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.io
import plotly.tools
import torch
from PIL import Image, ImageDraw, ImageFilter

from bench import Row, in_worker
from imageai import registry, shapes
from imageai.images import read_image
from imageai.model import CNN, CNNConfig
from imageai.modelfile import InputSpec, LoadedModel, save
from imageai.pipeline import Explanation
from imageai.preprocess import prepare
from imageai.stage_figures import stage_data, stage_figures
from imageai.trace import trace

TARGET_MS = 100.0
TARGET_PAYLOAD_KB = 500.0
STEPS = ("decode", "prepare", "trace", "stage data", "figures", "JSON")
WARMUP = 3
LANG = "en"
# Architectures of the bundled models, for a stand-in with random weights while they are not built yet.
STAND_INS = {
    "digits": (CNNConfig(), InputSpec("mnist", 1, 28, (0.1307,), (0.3081,))),
    "shapes": (CNNConfig(3, 32, (16, 32, 64), shapes.CLASSES),  # as `make models` trains it: 3 blocks
               InputSpec("resize", 3, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))),
}


def bench_model(name: str) -> tuple[LoadedModel, bool]:
    """The bundled model, or a random-weight stand-in of its architecture; True when it is the stand-in."""
    if registry.bundled_path(name).exists():
        return registry.load_bundled(name), False
    config, spec = STAND_INS[name]
    torch.manual_seed(0)
    return LoadedModel(name=name, model=CNN(config).eval(), input_spec=spec), True


def write_stand_ins(folder: Path) -> list[str]:
    """Save a stand-in for each bundled model that is missing into `folder`; returns their names."""
    missing = [name for name in registry.BUNDLED if not registry.bundled_path(name).exists()]
    for name in missing:
        save(bench_model(name)[0], folder / f"{name}.safetensors")
    return missing


def photo(name: str) -> bytes:
    """A realistic upload for each model: a phone photo of a handwritten 7 (digits), a 1200x900 JPEG (shapes)."""
    if name == "digits":
        from bench.digit_photos import load_digits, make_phone_photo

        images, labels = load_digits()
        seven = images[int(np.flatnonzero(labels == 7)[0])]  # (28, 28) uint8
        return make_phone_photo(seven, np.random.default_rng(7))
    return shapes_photo()


def shapes_photo(width: int = 1200, height: int = 900, seed: int = 0) -> bytes:
    """A red star on a textured, unevenly lit table top, saved as a camera-quality JPEG."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 0.75 + 0.25 * (xx / width) * (1 - 0.4 * yy / height)  # (H, W)
    grain = Image.fromarray(rng.normal(0, 1, (height // 8, width // 8)).astype(np.float32), "F")
    grain = np.asarray(grain.resize((width, height), Image.Resampling.BICUBIC))  # (H, W) soft blotches
    table = np.array([150, 120, 90], np.float32) + 14 * grain[..., None] + rng.normal(0, 6, (height, width, 3))
    img = Image.fromarray(np.clip(table * light[..., None], 0, 255).astype(np.uint8), "RGB")
    cx, cy, r = width / 2, height / 2, 0.35 * height
    angles = np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
    points = [(cx + a * np.cos(b), cy - a * np.sin(b)) for a, b in zip(radii, angles)]
    ImageDraw.Draw(img).polygon(points, fill=(205, 30, 40))
    img = img.filter(ImageFilter.GaussianBlur(1.2))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


@dataclass
class Timing:
    """Per-run seconds of each step, the bare forward pass, and each stage's payload in bytes."""

    steps: dict[str, list[float]]
    stages: dict[str, list[float]]  # seconds of each stage's figures and JSON
    bare: list[float]
    payload: dict[str, int]

    @property
    def totals(self) -> np.ndarray:
        return np.sum([self.steps[s] for s in STEPS], axis=0)  # (runs,)


def explain_once(loaded: LoadedModel, data: bytes) -> tuple[dict[str, float], dict[str, float], dict[str, int],
                                                           torch.Tensor]:
    """One full explanation as the Explore page computes it, with every stage's figures as JSON.

    Returns seconds per step, seconds per stage (its figures and their JSON: what one page run draws), bytes
    per stage, and the model's input tensor.
    """
    seconds = dict.fromkeys(STEPS, 0.0)
    start = time.perf_counter()
    img = read_image(data)
    seconds["decode"], start = _since(start)
    prepared = prepare(img, loaded.input_spec)
    seconds["prepare"], start = _since(start)
    ex = Explanation(prepared, trace(loaded.model, prepared.tensor))
    seconds["trace"], start = _since(start)
    data_by_stage = {stage: stage_data(stage, ex) for stage in ex.trace.stage_names}
    seconds["stage data"], start = _since(start)
    per_stage, payload = {}, {}
    for stage, d in data_by_stage.items():
        figs = stage_figures(LANG, stage, loaded, ex, d)
        drawn, start = _since(start)
        payload[stage] = sum(len(to_wire(f)) for f in figs)
        sent, start = _since(start)
        seconds["figures"] += drawn
        seconds["JSON"] += sent
        per_stage[stage] = drawn + sent
    return seconds, per_stage, payload, prepared.tensor


def _since(start: float) -> tuple[float, float]:
    now = time.perf_counter()
    return now - start, now


def to_wire(fig) -> bytes:
    """A figure as st.plotly_chart serialises it (streamlit/elements/plotly_chart.py, streamlit 1.67)."""
    spec = plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True)  # fig.to_dict()
    return plotly.io.to_json(spec, validate=False).encode("utf-8")


def bare_forward(model: CNN, x: torch.Tensor) -> float:
    """Seconds of one forward pass of the same model on the same (1, C, S, S) tensor."""
    with torch.inference_mode():
        start = time.perf_counter()
        model(x)
        return time.perf_counter() - start


def measure(loaded: LoadedModel, data: bytes, runs: int, warmup: int = WARMUP) -> Timing:
    """`runs` explanations after `warmup` untimed ones, each followed by the same model's bare forward pass."""
    steps: dict[str, list[float]] = {s: [] for s in STEPS}
    stages: dict[str, list[float]] = {}
    bare: list[float] = []
    payload: dict[str, int] = {}
    for i in range(warmup + runs):
        seconds, per_stage, payload, x = explain_once(loaded, data)
        forward = min(bare_forward(loaded.model, x) for _ in range(3))  # its best of 3: the fastest plain way
        if i >= warmup:
            for s in STEPS:
                steps[s].append(seconds[s])
            for stage, t in per_stage.items():
                stages.setdefault(stage, []).append(t)
            bare.append(forward)
    return Timing(steps, stages, bare, payload)


def rows(runs: int = 30, names: tuple[str, ...] = registry.BUNDLED, warmup: int = WARMUP) -> list[Row]:
    """The explain-latency row and the payload row for each model, measured in a thread as the server runs it."""
    out: list[Row] = []
    for name in names:
        loaded, stand_in = bench_model(name)
        data = photo(name)
        size = Image.open(io.BytesIO(data)).size
        timing = in_worker(measure, loaded, data, runs, warmup)
        label = f"{name}{' (random weights: not built)' if stand_in else ''}"
        out.append(latency_row(label, timing, size, len(data), runs))
        out.append(payload_row(label, timing.payload))
    return out


def latency_row(label: str, timing: Timing, size: tuple[int, int], nbytes: int, runs: int) -> Row:
    totals = timing.totals * 1000  # ms
    fastest, median, p95 = float(totals.min()), float(np.median(totals)), float(np.percentile(totals, 95))
    medians = {s: float(np.median(timing.steps[s])) * 1000 for s in STEPS}
    whole = sum(medians.values())
    shares = ", ".join(f"{s} {medians[s] / whole:.0%}" for s in STEPS)
    stage_ms = {stage: float(np.median(t)) * 1000 for stage, t in timing.stages.items()}
    costliest = max(stage_ms, key=stage_ms.get)
    bare = float(np.median(timing.bare)) * 1000
    note = (f"{size[0]}x{size[1]} JPEG {nbytes // 1024} KB, {runs} runs, fastest {fastest:.1f} ms; {shares}; "
            f"the page draws one stage per run: its costliest, {costliest}, is {stage_ms[costliest]:.1f} ms of "
            f"figures + JSON; bare forward {bare:.2f} ms, explain/bare x{median / bare:.0f}")
    return Row(f"explain, server: {label}", f"median {median:.1f} ms, p95 {p95:.1f} ms", f"p95 <= {TARGET_MS:.0f} ms",
               p95 <= TARGET_MS, note)


def payload_row(label: str, payload: dict[str, int]) -> Row:
    kb = {stage: n / 1024 for stage, n in payload.items()}
    worst = max(kb, key=kb.get)
    per_stage = ", ".join(f"{s} {v:.0f}" for s, v in kb.items())
    return Row(f"figure payload: {label}", f"largest {kb[worst]:.0f} KB ({worst})",
               f"<= {TARGET_PAYLOAD_KB:.0f} KB/stage", kb[worst] <= TARGET_PAYLOAD_KB,
               f"KB per stage: {per_stage}; total {sum(kb.values()):.0f} KB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    for row in rows(args.runs):
        print(row)


if __name__ == "__main__":
    main()
