"""Training the CNN on a Dataset: a lean loop that reports through a callback, stops on an event, is seeded."""
from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from imageai import calibration
from imageai.datasets import Dataset
from imageai.errors import TrainingError
from imageai.model import CNN, CNNConfig, pick_device
from imageai.modelfile import InputSpec, LoadedModel
from imageai.preprocess import batch_from_uint8

OPTIMIZERS = ("adam", "sgd")
SGD_MOMENTUM = 0.9
MAX_SHIFT = 2  # augmentation moves a picture by up to this many pixels each way
EVAL_BATCH = 1000
RECENT_KEEP = 0.9  # the live curves' memory: each batch counts 0.9 times the next one, about the last 10 batches
# A batch loss this many times the guessing level ln(classes) means the weights have blown up: a learning rate of
# 1.0 sends it to 10^3-10^14 within a few batches and the network ends at chance, while sane runs (even poor ones)
# stay below 30x. Such a finite loss is as lost as a NaN, so both stop training with the same message.
DIVERGED_FACTOR = 100


@dataclass
class TrainConfig:
    """Training settings; the defaults here are a middle ground, `default_config` tunes them per dataset."""

    epochs: int = 8  # passes over the training images
    batch_size: int = 64  # images per weight update
    learning_rate: float = 2e-3  # step size of each update; lower it if training diverges
    optimizer: str = "adam"  # "adam", or "sgd" (with momentum 0.9)
    blocks: int = 2  # Conv -> ReLU -> Pool blocks, 1-3
    filters: int = 16  # filters in the first block; each later block has twice as many
    augment: bool = True  # small random shifts (and mirroring where it keeps the class) each epoch
    lr_decay: bool = True  # lower the learning rate along a cosine curve, reaching 0 at the last batch
    val_share: float = 0.1  # share of the training images held back to validate after each epoch
    seed: int = 0  # same seed, same data order and starting weights -> the same model

    def filters_per_block(self) -> tuple[int, ...]:
        """filters=8, blocks=2 -> (8, 16)."""
        return tuple(self.filters * 2**i for i in range(self.blocks))

    def check(self) -> None:
        """Raise TrainingError('training_bad_setting') for the first setting out of range."""
        rules = [("epochs", 1 <= self.epochs <= 100, "1-100"),
                 ("batch_size", 1 <= self.batch_size <= 1024, "1-1024"),
                 ("learning_rate", 0 < self.learning_rate <= 10 and math.isfinite(self.learning_rate),
                  "> 0 and <= 10"),
                 ("optimizer", self.optimizer in OPTIMIZERS, " | ".join(OPTIMIZERS)),
                 ("blocks", 1 <= self.blocks <= 3, "1-3"),
                 ("filters", 1 <= self.filters <= 32, "1-32"),
                 ("val_share", 0 <= self.val_share <= 0.5, "0-0.5"),
                 ("seed", 0 <= self.seed < 2**63, ">= 0")]
        for name, ok, allowed in rules:
            if not ok:
                raise TrainingError("training_bad_setting", setting=name, value=getattr(self, name),
                                    allowed=allowed)


_DEFAULTS = {
    "digits": TrainConfig(epochs=15, batch_size=64, learning_rate=2e-3, filters=16),
    "shapes": TrainConfig(epochs=6, batch_size=64, learning_rate=2e-3, blocks=3, filters=16),
    # a few dozen photos: small batches, so that each epoch still makes several updates (batch 64 made one)
    "own_photos": TrainConfig(epochs=20, batch_size=16, learning_rate=2e-3, filters=16),
}


def default_config(dataset_name: str) -> TrainConfig:
    """Settings tuned for a dataset (digits: >= 97% test accuracy in under 20 s on 2 CPU cores)."""
    return TrainConfig(**asdict(_DEFAULTS.get(dataset_name, TrainConfig())))


@dataclass
class Progress:
    """One progress report: kind 'batch' after every batch, 'epoch' after each epoch, 'done' at the end."""

    kind: str
    epoch: int  # 1-based
    batch: int  # 1-based within the epoch
    batches_per_epoch: int
    done: int  # batches done in all
    total: int  # batches in the whole run
    seen: int  # training images seen in all
    train_loss: float  # running mean over this epoch
    train_acc: float  # running accuracy over this epoch
    elapsed: float  # seconds
    eta: float  # seconds left, estimated from the pace so far
    recent_loss: float  # the last batches' loss, an average that forgets as it goes (unlike the epoch's running mean,
    recent_acc: float  # it does not jump when a new epoch starts): what a live curve should draw
    val_loss: float | None = None  # set when an epoch ends (and val_share > 0)
    val_acc: float | None = None
    test_acc: float | None = None  # set on 'done'
    model: CNN | None = field(default=None, repr=False, compare=False)  # the live model: copy from it, never change it


@dataclass
class TrainResult:
    """A trained model and what happened while training it."""

    loaded: LoadedModel  # on the CPU, float32, eval mode; meta holds dataset, accuracy, training, history
    history: list[dict]  # one plain record per finished epoch
    test_accuracy: float
    confusion: np.ndarray  # (classes, classes) counts; rows are true classes, columns predictions
    initial_kernels: np.ndarray  # first-layer kernels before training, (filters, in_channels, 3, 3)
    stopped: bool  # True when the stop event ended training early
    test_probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # (N, classes) softmax


def to_tensor(images: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """(N, H, W) or (N, H, W, C) uint8 -> (N, C, H, W) float32, normalised exactly as the Explore page does."""
    return batch_from_uint8(images, spec).contiguous()


def new_model(config: CNNConfig, generator: torch.Generator) -> CNN:
    """A CNN whose starting weights come from `generator` alone; the global random state is not touched."""
    with torch.device("meta"):  # build without drawing default weights from the global generator
        model = CNN(config)
    model.to_empty(device="cpu")
    init_weights(model, generator)
    return model


def init_weights(model: CNN, generator: torch.Generator) -> None:
    """Re-draw every parameter from `generator` with PyTorch's default layer init (never the global RNG)."""
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            fan_in = module.weight[0].numel()
            torch.nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            bound = 1 / math.sqrt(fan_in)
            torch.nn.init.uniform_(module.bias, -bound, bound, generator=generator)


def shift(x: torch.Tensor, generator: torch.Generator, mirror: bool) -> torch.Tensor:
    """Move each picture by up to MAX_SHIFT pixels (edges repeated), and mirror half of them if `mirror`."""
    b, _, h, w = x.shape
    padded = F.pad(x, (MAX_SHIFT,) * 4, mode="replicate")  # (B, C, H+4, W+4)
    dy, dx = torch.randint(0, 2 * MAX_SHIFT + 1, (2, b, 1), generator=generator).to(x.device)
    rows = (torch.arange(h, device=x.device) + dy)[:, :, None]  # (B, H, 1)
    cols = torch.arange(w, device=x.device) + dx  # (B, W)
    if mirror:
        flip = (torch.rand(b, 1, generator=generator) < 0.5).to(x.device)
        cols = torch.where(flip, cols.flip(1), cols)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols[:, None, :]].permute(0, 3, 1, 2)  # (B, C, H, W)


@torch.no_grad()
def evaluate(model: CNN, images: torch.Tensor, labels: torch.Tensor | np.ndarray
             ) -> tuple[float, np.ndarray, np.ndarray]:
    """Accuracy, predicted classes (N,) and probabilities (N, classes) of `model` on normalised images."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    probs = torch.cat([model(images[i:i + EVAL_BATCH].to(device)).float().cpu()
                       for i in range(0, len(images), EVAL_BATCH)]) if len(images) else torch.zeros(0)
    model.train(was_training)
    predictions = probs.argmax(1).numpy() if len(images) else np.zeros(0, np.int64)
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    accuracy = float((predictions == labels).mean()) if len(labels) else 0.0
    return accuracy, predictions, probs.numpy()


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) int64 counts; row = true class, column = predicted class."""
    return np.bincount(labels * classes + predictions, minlength=classes * classes).reshape(classes, classes)


def split_validation(n: int, share: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, validation) of a random `share` of n training images held back."""
    order = torch.randperm(n, generator=generator)
    n_val = int(round(n * share))
    return order[n_val:], order[:n_val]


def train(dataset: Dataset, config: TrainConfig, *, callback: Callable[[Progress], None] | None = None,
          stop: threading.Event | None = None, device: torch.device | str | None = None) -> TrainResult:
    """Train a fresh CNN on `dataset` with `config`, then test it on the held-out test images.

    The caller sets torch's thread count (it is process-wide). Raises TrainingError for bad settings or a
    loss that stops being a finite number.
    """
    config.check()
    device = torch.device(device) if device is not None else pick_device()
    generator = torch.Generator().manual_seed(config.seed)
    spec = dataset.input_spec
    arch = CNNConfig(spec.channels, spec.size, config.filters_per_block(), dataset.classes)
    model = new_model(arch, generator)
    initial_kernels = model.first_kernels().numpy().copy()
    train_idx, val_idx = split_validation(len(dataset.train_labels), config.val_share, generator)
    if len(train_idx) == 0:
        raise TrainingError("training_too_few_images", count=len(dataset.train_labels))

    labels = torch.from_numpy(dataset.train_labels.astype(np.int64))
    x_train = to_tensor(dataset.train_images[train_idx.numpy()], spec).to(device)  # (N, C, S, S), normalised once
    x_val = to_tensor(dataset.train_images[val_idx.numpy()], spec).to(device)
    y_train, y_val = labels[train_idx].to(device), labels[val_idx].to(device)
    model.to(device).train()
    loop = _Loop(model, config, dataset.mirror_ok and config.augment, generator, callback, stop)
    history = loop.run(x_train, y_train, x_val, y_val)

    model.to("cpu").eval()
    x_test = to_tensor(dataset.test_images, spec)
    test_acc, predictions, test_probs = evaluate(model, x_test, dataset.test_labels)
    loop.report("done", test_acc=test_acc)
    loaded = LoadedModel(name=dataset.name, model=model, input_spec=spec, meta={
        "dataset": dataset.info(),
        "accuracy": {"test": test_acc, "test_images": int(len(dataset.test_labels))},
        "training": asdict(config),
        "history": history,
    }, calibration=calibration.fit(model, x_train, y_train, x_test))
    return TrainResult(loaded, history, test_acc,
                       confusion_matrix(dataset.test_labels, predictions, len(dataset.classes)),
                       initial_kernels, loop.stopped, test_probs)


class Recent:
    """Loss and accuracy of the last batches: an exponential moving average, corrected for its start at zero (as
    Adam corrects its moments), so the first batches count fully and each older batch counts a little less."""

    def __init__(self, keep: float = RECENT_KEEP) -> None:
        self.keep, self.loss, self.acc, self.weight = keep, 0.0, 0.0, 0.0

    def add(self, loss: float, acc: float) -> None:
        self.loss = self.keep * self.loss + (1 - self.keep) * loss
        self.acc = self.keep * self.acc + (1 - self.keep) * acc
        self.weight = self.keep * self.weight + (1 - self.keep)

    def values(self) -> tuple[float, float]:
        if not self.weight:
            return math.nan, math.nan
        return self.loss / self.weight, self.acc / self.weight


class _Loop:
    """The epoch and batch loop, with its running numbers kept in one place for progress reports."""

    def __init__(self, model: CNN, config: TrainConfig, mirror: bool, generator: torch.Generator,
                 callback: Callable[[Progress], None] | None, stop: threading.Event | None) -> None:
        self.model, self.config, self.mirror, self.generator = model, config, mirror, generator
        self.callback, self.stop = callback, stop
        params = model.parameters()
        self.optimizer = (torch.optim.Adam(params, lr=config.learning_rate) if config.optimizer == "adam"
                          else torch.optim.SGD(params, lr=config.learning_rate, momentum=SGD_MOMENTUM))
        self.stopped = False
        self.max_loss = DIVERGED_FACTOR * math.log(max(model.config.num_classes, 2))
        self.epoch = self.batch = self.done = self.seen = self.epoch_seen = self.per_epoch = self.total = 0
        self.loss_sum = self.correct = 0.0
        self.recent = Recent()
        self.start = time.perf_counter()

    def run(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor) -> list[dict]:
        bs = self.config.batch_size
        self.per_epoch = math.ceil(len(y) / bs)
        self.total = self.per_epoch * self.config.epochs
        history: list[dict] = []
        for self.epoch in range(1, self.config.epochs + 1):
            order = torch.randperm(len(y), generator=self.generator).to(x.device)
            self.loss_sum = self.correct = 0.0
            self.epoch_seen = 0
            for self.batch in range(1, self.per_epoch + 1):
                if self.stop is not None and self.stop.is_set():
                    self.stopped = True
                    return history
                idx = order[(self.batch - 1) * bs:self.batch * bs]
                self._step(x[idx], y[idx])
                self.report("batch")
            history.append(self._end_epoch(x_val, y_val))
        return history

    def _step(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """One update on one batch."""
        if self.config.augment:
            xb = shift(xb, self.generator, self.mirror)
        scores = self.model.scores(xb)  # (B, classes)
        loss = F.cross_entropy(scores, yb)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.config.lr_decay:
            self._set_learning_rate()
        loss_value, correct = torch.stack([loss.detach(), (scores.argmax(1) == yb).sum().float()]).tolist()
        if not math.isfinite(loss_value) or loss_value > self.max_loss:  # one sync per batch reads both numbers
            raise TrainingError("training_diverged", lr=self.config.learning_rate)
        self.loss_sum += loss_value * len(yb)
        self.correct += correct
        self.recent.add(loss_value, correct / len(yb))
        self.done += 1
        self.seen += len(yb)
        self.epoch_seen += len(yb)

    def _set_learning_rate(self) -> None:
        """Cosine decay: big steps early to learn fast, small steps late to settle into a good minimum."""
        lr = self.config.learning_rate * 0.5 * (1 + math.cos(math.pi * (self.done + 1) / self.total))
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _end_epoch(self, x_val: torch.Tensor, y_val: torch.Tensor) -> dict:
        val_loss = val_acc = None
        if len(y_val):
            val_acc, _, probs = evaluate(self.model, x_val, y_val)
            picked = torch.from_numpy(probs)[torch.arange(len(y_val)), y_val.cpu()]
            val_loss = float(-picked.clamp_min(1e-12).log().mean())  # cross-entropy; 1e-12 only guards log(0)
        record = {"epoch": self.epoch, "train_loss": self.loss_sum / self.epoch_seen,
                  "train_acc": self.correct / self.epoch_seen, "val_loss": val_loss, "val_acc": val_acc}
        self.report("epoch", val_loss=val_loss, val_acc=val_acc)
        return record

    def report(self, kind: str, **extra: float | None) -> None:
        if self.callback is None:
            return
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        seen = max(self.epoch_seen, 1)
        self.callback(Progress(kind, self.epoch, self.batch, self.per_epoch, self.done, self.total, self.seen,
                               self.loss_sum / seen, self.correct / seen, elapsed,
                               0.0 if kind == "done" else eta, *self.recent.values(), **extra, model=self.model))
