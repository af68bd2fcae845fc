"""Training speed: the app's training job (callback + a page-like progress reader) against a bare PyTorch loop, and time to 97%.

Usage: python -m bench.train_throughput [--pairs 5] [--epochs 3] [--limit N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from dataclasses import replace

import plotly.io
import torch
import torch.nn.functional as F
from torch import nn

from bench import Row, in_worker
from imageai import train, train_figures
from imageai.datasets import Dataset, get_dataset
from imageai.jobs import JobHandle, TrainingManager
from imageai.model import CNN, CNNConfig, KERNEL_SIZE, POOL_SIZE

TARGET_RATIO = 0.9
TARGET_ACCURACY = 0.97
TARGET_SECONDS = 20.0
THREADS = 2
POLL_S = 0.5  # the page redraws every 1 s (ui/train_views.POLL_S); reading twice as often is the harsher test
CURVE_LABELS = {k: k for k in ("loss", "accuracy", "train", "validation", "epoch")}
KERNEL_LABELS = {"tile": "filter", "value": "weight"}


def bare_model(arch: CNNConfig) -> nn.Sequential:
    """The app's architecture written out plainly: (Conv 3x3 -> ReLU -> MaxPool 2x2) per block, Flatten, Linear."""
    layers: list[nn.Module] = []
    channels, size = arch.in_channels, arch.input_size
    for filters in arch.filters:
        layers += [nn.Conv2d(channels, filters, KERNEL_SIZE, padding=KERNEL_SIZE // 2), nn.ReLU(),
                   nn.MaxPool2d(POOL_SIZE)]
        channels, size = filters, size // POOL_SIZE
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * size * size, arch.num_classes))


def bare_loop(x: torch.Tensor, y: torch.Tensor, arch: CNNConfig, config: train.TrainConfig) -> float:
    """Images per second of a plain Adam + cross-entropy loop over pre-normalised (N, C, S, S) images."""
    torch.manual_seed(config.seed)
    model = bare_model(arch).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    start = time.perf_counter()
    for _ in range(config.epochs):
        order = torch.randperm(len(y))
        for i in range(0, len(y), config.batch_size):
            idx = order[i:i + config.batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return config.epochs * len(y) / (time.perf_counter() - start)


def app_run(dataset: Dataset, config: train.TrainConfig, manager: TrainingManager) -> float:
    """Images per second of the app's job (train.train + its callback), read by a page-like poller meanwhile.

    Timed by the training loop's own clock up to its last batch: the final test evaluation is not training.
    """
    last: list = []

    def timed_train(*args, callback, **kwargs):
        def spy(progress: train.Progress) -> None:
            callback(progress)
            if progress.kind == "batch":
                last[:] = [progress]
        return train.train(*args, callback=spy, **kwargs)

    handle = JobHandle(manager)  # held until the end: a dropped handle stops its job, as a closed session does
    job = handle.start(dataset, config, name="bench", train_fn=timed_train, device=torch.device("cpu"))
    reader = threading.Thread(target=_read_like_the_page, args=(job,), daemon=True)
    reader.start()
    job.join()
    reader.join()
    if job.error is not None or not last:
        raise RuntimeError(f"training ended as {job.state.value}: {job.error}")
    return last[0].seen / last[0].elapsed


def _read_like_the_page(job) -> None:
    """What the live view does on each redraw: copy the job's state, build both figures, serialise them."""
    while not job.join(POLL_S):
        view = job.view()
        figs = [train_figures.curves(view.batch_points, view.epoch_points, CURVE_LABELS)]
        if view.kernels is not None:
            figs.append(train_figures.kernels_figure(view.kernels, labels=KERNEL_LABELS))
        for fig in figs:
            plotly.io.to_json(fig, validate=False)


def throughput_rows(dataset: Dataset, pairs: int = 5, epochs: int = 3) -> list[Row]:
    """Alternating app and bare runs (A B A B ...), on the same work, then the app with its default settings."""
    manager = TrainingManager(max_trainings=1, torch_threads=THREADS)
    same = replace(train.default_config(dataset.name), epochs=epochs, augment=False, val_share=0.0)
    spec = dataset.input_spec
    arch = CNNConfig(spec.channels, spec.size, same.filters_per_block(), dataset.classes)
    _check_same_architecture(arch)
    x = train.to_tensor(dataset.train_images, spec)  # (N, C, S, S)
    y = torch.from_numpy(dataset.train_labels.astype("int64"))
    warm = replace(same, epochs=1)
    app_run(dataset, warm, manager), in_worker(bare_loop, x, y, arch, warm)  # untimed: first-use costs of each
    app, bare = [], []
    for _ in range(pairs):
        app.append(app_run(dataset, same, manager))
        bare.append(in_worker(bare_loop, x, y, arch, same))  # a thread of its own, as the app's job has
    ratio = statistics.median(a / b for a, b in zip(app, bare))
    shown = f"{dataset.name}, batch {same.batch_size}, {epochs} epochs, {THREADS} threads, {pairs} pairs A B"
    rows = [Row("training throughput: app / bare PyTorch", f"x{ratio:.2f}", f">= x{TARGET_RATIO}",
                ratio >= TARGET_RATIO,
                f"{shown}; no augmentation, no validation (same work as the bare loop); img/s app "
                f"{_list(app)}, bare {_list(bare)}; reader polls every {POLL_S} s and builds the live figures")]
    default = replace(train.default_config(dataset.name), epochs=epochs)
    full = app_run(dataset, default, manager)
    rows.append(Row("training throughput: app, default settings", f"{full:.0f} img/s", "", None,
                    f"augmentation and a validation pass each epoch on: x{full / statistics.median(bare):.2f} "
                    "of the bare loop (which does neither)"))
    return rows


def _check_same_architecture(arch: CNNConfig) -> None:
    app_shapes = [tuple(p.shape) for p in CNN(arch).parameters()]
    bare_shapes = [tuple(p.shape) for p in bare_model(arch).parameters()]
    if app_shapes != bare_shapes:
        raise AssertionError(f"bare model differs from the app's: {bare_shapes} vs {app_shapes}")


def _list(values: list[float]) -> str:
    return "/".join(f"{v:.0f}" for v in values)


def digits(limit: int | None = None) -> Dataset:
    dataset = get_dataset("digits")
    return dataset.limited(limit) if limit else dataset


def time_to_accuracy_row(dataset: Dataset, epochs: int | None = None) -> Row:
    """Seconds from calling train.train until an epoch ends with >= 97% on the held-out test images.

    Default settings (`epochs` shortens them for a smoke test); run in a thread, as the app's job runs it.
    """
    config = train.default_config(dataset.name)
    config = replace(config, epochs=epochs) if epochs else config
    first = "torch._dynamo" not in sys.modules  # the first torch.optim optimizer imports it (~1 s, once)
    x_test = train.to_tensor(dataset.test_images, dataset.input_spec)
    reached: list[tuple[int, float, float]] = []  # (epoch, seconds, accuracy)
    checks: list[float] = []
    start = time.perf_counter()

    def on_epoch(progress: train.Progress) -> None:
        if progress.kind != "epoch":
            return
        now = time.perf_counter()
        accuracy, _, _ = train.evaluate(progress.model, x_test, dataset.test_labels)
        reached.append((progress.epoch, now - start - sum(checks), accuracy))
        checks.append(time.perf_counter() - now)  # the benchmark's own test pass is not training time

    result = in_worker(train.train, dataset, config, callback=on_epoch, device="cpu")
    total = time.perf_counter() - start - sum(checks)
    hit = next(((e, s, a) for e, s, a in reached if a >= TARGET_ACCURACY), None)
    curve = ", ".join(f"{a:.1%}@{s:.1f}s" for _, s, a in reached)
    note = (f"default settings ({config.epochs} epochs, batch {config.batch_size}, lr {config.learning_rate:g}, "
            f"augment {config.augment}), {THREADS} threads; test accuracy after each epoch: {curve}; "
            f"whole run {total:.1f} s, final {result.test_accuracy:.1%}; "
            f"{'the first training in this process' if first else 'not the first training in this process'}")
    if hit is None:
        return Row(f"time to {TARGET_ACCURACY:.0%} test accuracy: {dataset.name}", "not reached",
                   f"<= {TARGET_SECONDS:.0f} s", False, note)
    return Row(f"time to {TARGET_ACCURACY:.0%} test accuracy: {dataset.name}", f"{hit[1]:.1f} s (epoch {hit[0]})",
               f"<= {TARGET_SECONDS:.0f} s", hit[1] <= TARGET_SECONDS, note)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, help="use only the first N training and test images")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    dataset = digits(args.limit)
    for row in [*throughput_rows(dataset, args.pairs, args.epochs), time_to_accuracy_row(dataset)]:
        print(row)


if __name__ == "__main__":
    main()
