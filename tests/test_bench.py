"""The benchmark still runs end to end on a tiny setting, and its bare-PyTorch baseline is the app's architecture."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from bench.train_throughput import bare_model
from imageai.model import CNN, CNNConfig

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_prints_one_table_with_a_row_per_model_and_the_training_rows():
    run = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "explain,payload,throughput,photos"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| what")]
    assert sum(line.startswith("| what | measured | target |") for line in lines) == 1  # one table
    names = [row.split(" | ")[0].removeprefix("| ") for row in rows]
    assert [n for n in names if n.startswith("explain, server: ")] == ["explain, server: digits", "explain, server: shapes"]
    assert [n for n in names if n.startswith("figure payload: ")] == ["figure payload: digits", "figure payload: shapes"]
    assert "training throughput: app / bare PyTorch" in names
    assert "own photos: 2 classes x 4 photos, read and trained" in names
    assert all(row.count(" | ") == 4 for row in rows)  # what, measured, target, verdict, how


def test_bare_baseline_has_the_same_layers_and_weights_shapes_as_the_apps_cnn():
    for config in (CNNConfig(1, 28, (16, 32)), CNNConfig(3, 32, (8, 16, 32), tuple("abcdef"))):
        app, bare = CNN(config), bare_model(config)
        assert [p.shape for p in bare.parameters()] == [p.shape for p in app.parameters()]
        bare.load_state_dict(dict(zip(bare.state_dict(), app.state_dict().values())))
        x = torch.randn(4, config.in_channels, config.input_size, config.input_size)
        torch.testing.assert_close(bare(x), app.scores(x))
