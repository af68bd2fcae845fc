"""`python -m imageai train --dataset digits --out FILE`: train the CNN with a progress bar, then save it."""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import torch

from imageai import modelfile
from imageai.datasets import DATASETS, get_dataset
from imageai.errors import ImageAiError, TrainingError
from imageai.i18n import t
from imageai.model import device_available
from imageai.train import OPTIMIZERS, Progress, TrainConfig, default_config, train

LANG = "en"  # the command line speaks English; the app follows the user's language
DEFAULT_THREADS = 2  # fixed, so that `make models` gives the same weights on any machine with this many cores
BAR_WIDTH = 24
REDRAW_SECONDS = 0.1  # redraw the bar at most this often
DEVICES = ("auto", "cpu", "cuda", "mps")
# option -> TrainConfig field, for the settings that default to the dataset's tuned value
SETTINGS = {"epochs": int, "batch_size": int, "lr": float, "optimizer": str, "blocks": int, "filters": int,
            "augment": None, "lr_decay": None, "val_share": float, "seed": int}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    help_ = t(LANG, "cli.train.help")
    parser = subparsers.add_parser("train", help=help_, description=help_)
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS), help=t(LANG, "cli.train.dataset"))
    parser.add_argument("--out", required=True, metavar="FILE.safetensors", help=t(LANG, "cli.train.out"))
    for name, kind in SETTINGS.items():
        flag = "--" + name.replace("_", "-")
        if kind is None:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=t(LANG, f"cli.train.{name}"))
        else:
            parser.add_argument(flag, type=kind, help=t(LANG, f"cli.train.{name}"),
                                choices=OPTIMIZERS if name == "optimizer" else None)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help=t(LANG, "cli.train.threads"))
    parser.add_argument("--device", choices=DEVICES, default="auto", help=t(LANG, "cli.train.device"))
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)  # tests: first N train and test images only
    parser.set_defaults(run=run)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The dataset's tuned defaults, overridden by every option given on the command line."""
    given = {("learning_rate" if name == "lr" else name): getattr(args, name) for name in SETTINGS}
    config = replace(default_config(args.dataset), **{k: v for k, v in given.items() if v is not None})
    config.check()
    return config


def run(args: argparse.Namespace) -> int:
    """Exit status 0, or 2 with one line on stderr for bad settings, a missing dataset or a failed run."""
    try:
        config = config_from_args(args)
        cores = max(os.cpu_count() or 1, DEFAULT_THREADS)
        if not 1 <= args.threads <= cores:  # thousands of OpenMP threads crash the process
            raise TrainingError("training_bad_setting", setting="threads", value=args.threads, allowed=f"1-{cores}")
        out = Path(args.out)
        if not out.parent.is_dir():
            raise TrainingError("train_output_no_folder", path=str(out))
        if out.is_dir():  # found before training, not after minutes of it
            raise TrainingError("train_output_unwritable", path=str(out), reason="it is a folder")
        device = _device(args.device)
        torch.set_num_threads(args.threads)
        dataset = get_dataset(args.dataset)
        if args.limit:
            dataset = dataset.limited(args.limit)
        bar = ProgressBar(sys.stderr)
        start = time.perf_counter()
        result = train(dataset, config, callback=bar, device=device)
        seconds = time.perf_counter() - start
        _write(result.loaded, out)
    except ImageAiError as error:
        print(" ".join(error.message(LANG).split()), file=sys.stderr)
        return 2
    print(t(LANG, "cli.train.result", acc=result.test_accuracy, count=len(dataset.test_labels), seconds=seconds))
    print(t(LANG, "cli.train.saved", path=out))
    return 0


def _device(name: str) -> torch.device | None:
    """None for 'auto' (train picks); a named device that this machine lacks is a TrainingError."""
    if name == "auto":
        return None
    if not device_available(name):
        raise TrainingError("training_device_unavailable", device=name)
    return torch.device(name)


def _write(loaded: modelfile.LoadedModel, out: Path) -> None:
    try:
        modelfile.save(loaded, out)
    except OSError as error:
        raise TrainingError("train_output_unwritable", path=str(out),
                            reason=(error.strerror or type(error).__name__).lower()) from None


class ProgressBar:
    """A training callback that redraws one plain-text line with \\r, and keeps a line per finished epoch."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last_draw = 0.0

    def __call__(self, p: Progress) -> None:
        if p.kind == "batch":
            now = time.perf_counter()
            if now - self.last_draw >= REDRAW_SECONDS or p.done == p.total:
                self.last_draw = now
                self._write("\r" + self.line(p))
        elif p.kind == "epoch":
            self._write("\r" + self.epoch_line(p) + "\n")

    @staticmethod
    def line(p: Progress) -> str:
        share = p.done / max(p.total, 1)
        filled = int(round(share * BAR_WIDTH))
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        epochs = p.total // max(p.batches_per_epoch, 1)
        return t(LANG, "cli.train.progress", epoch=p.epoch, epochs=epochs, bar=bar, percent=100 * share,
                 loss=p.train_loss, acc=p.train_acc, elapsed=p.elapsed, eta=p.eta)

    @staticmethod
    def epoch_line(p: Progress) -> str:
        epochs = p.total // max(p.batches_per_epoch, 1)
        text = t(LANG, "cli.train.epoch_line", epoch=p.epoch, epochs=epochs, loss=p.train_loss, acc=p.train_acc)
        if p.val_acc is not None:
            text += t(LANG, "cli.train.epoch_val", val_loss=p.val_loss, val_acc=p.val_acc)
        return text.ljust(100)  # cover the longer progress line it replaces

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
