"""The one CNN definition: N blocks of Conv 3x3 -> ReLU -> MaxPool 2x2, then Flatten -> Dense -> Output."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

KERNEL_SIZE = 3  # every conv is 3x3 with padding 1, so it keeps the map's height and width
POOL_SIZE = 2  # every max-pool takes 2x2 windows with stride 2, halving height and width

# The kind of each stage, in the order a block repeats; tracing, pages, colours and tests all use these.
STAGE_KINDS = ("input", "conv", "relu", "pool", "flatten", "dense", "output")


@dataclass(frozen=True)
class CNNConfig:
    """Architecture of one CNN; every width below is derived from these fields."""

    in_channels: int = 1  # 1 for grayscale (digits), 3 for RGB (shapes, photos)
    input_size: int = 28  # square input, in pixels
    filters: tuple[int, ...] = (8, 16)  # filters per block; len(filters) is the number of blocks
    classes: tuple[str, ...] = tuple("0123456789")  # one dense output (score) per class

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", tuple(int(f) for f in self.filters))
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        if self.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, not {self.in_channels}")
        if not 1 <= len(self.filters) <= 4 or min(self.filters) < 1:
            raise ValueError(f"need 1-4 blocks of at least one filter, not {self.filters}")
        if len(self.classes) < 2:
            raise ValueError("need at least two classes")
        if self.input_size < POOL_SIZE ** len(self.filters):
            raise ValueError(f"input_size {self.input_size} is too small for {len(self.filters)} blocks")

    @property
    def blocks(self) -> int:
        return len(self.filters)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "CNNConfig":
        return cls(
            in_channels=int(d["in_channels"]),
            input_size=int(d["input_size"]),
            filters=tuple(d["filters"]),
            classes=tuple(d["classes"]),
        )


def stage_names(blocks: int) -> list[str]:
    """The ordered stage names: input, conv1, relu1, pool1, ..., flatten, dense, output."""
    names = ["input"]
    for i in range(1, blocks + 1):
        names += [f"conv{i}", f"relu{i}", f"pool{i}"]
    return names + ["flatten", "dense", "output"]


def stage_kind(name: str) -> str:
    """'conv2' -> 'conv'; 'dense' -> 'dense'."""
    kind = name.rstrip("0123456789")
    if kind not in STAGE_KINDS:
        raise ValueError(f"unknown stage {name!r}")
    return kind


def stage_block(name: str) -> int | None:
    """'relu2' -> 2; stages outside the repeated blocks -> None."""
    digits = name[len(name.rstrip("0123456789")):]
    return int(digits) if digits else None


def stage_shapes(config: CNNConfig) -> dict[str, tuple[int, ...]]:
    """Each stage's output shape for one image (no batch dimension), derived from the config."""
    c, s = config.in_channels, config.input_size
    shapes: dict[str, tuple[int, ...]] = {"input": (c, s, s)}
    for i, f in enumerate(config.filters, 1):
        shapes[f"conv{i}"] = shapes[f"relu{i}"] = (f, s, s)  # padding 1 keeps the size
        s //= POOL_SIZE  # MaxPool2d floors odd sizes
        shapes[f"pool{i}"] = (f, s, s)
        c = f
    shapes["flatten"] = (c * s * s,)
    shapes["dense"] = shapes["output"] = (config.num_classes,)
    return shapes


class CNN(nn.Module):
    """The plan's CNN; each stage is a named module so forward hooks can see it."""

    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        self.config = config
        self.stage_names = stage_names(config.blocks)
        in_ch = config.in_channels
        for i, out_ch in enumerate(config.filters, 1):
            self.add_module(f"conv{i}", nn.Conv2d(in_ch, out_ch, KERNEL_SIZE, padding=KERNEL_SIZE // 2))
            self.add_module(f"relu{i}", nn.ReLU())  # not in-place: the conv output must stay intact for tracing
            self.add_module(f"pool{i}", nn.MaxPool2d(POOL_SIZE))
            in_ch = out_ch
        self.flatten = nn.Flatten()
        self.dense = nn.Linear(stage_shapes(config)["flatten"][0], config.num_classes)
        self.output = nn.Softmax(dim=1)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Run every stage up to Dense: (B, C, H, W) -> (B, classes) raw scores (logits), used for training."""
        for name in self.stage_names[1:-1]:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, classes) probabilities."""
        return self.output(self.scores(x))

    def first_kernels(self) -> torch.Tensor:
        """The first layer's kernels, (filters, in_channels, 3, 3)."""
        return self.conv1.weight.detach()


def device_available(name: str) -> bool:
    """Whether this machine has the device 'cpu', 'cuda' or 'mps' (Apple)."""
    if name == "cuda":
        return torch.cuda.is_available()
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        return mps is not None and mps.is_available()
    return name == "cpu"


def pick_device() -> torch.device:
    """CUDA or Apple MPS when present, else the CPU; used for training only (explanations stay on the CPU)."""
    return torch.device(next(name for name in ("cuda", "mps", "cpu") if device_available(name)))
