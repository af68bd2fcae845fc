"""The math behind each stage, worked out in plain numpy from a Trace, so pages can show every number."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imageai.model import KERNEL_SIZE, POOL_SIZE
from imageai.trace import Trace

PAD = KERNEL_SIZE // 2  # convs use zero padding of 1, so a 3x3 window fits around every pixel


def _check_kind(trace: Trace, stage: str, kind: str) -> None:
    if stage not in trace.stage_names or trace.kind(stage) != kind:
        raise ValueError(f"{stage!r} is not a {kind} stage of this model")


def _check_index(name: str, value: int, size: int) -> None:
    if not 0 <= value < size:
        raise IndexError(f"{name}={value} is outside 0..{size - 1}")


# --- Convolution -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConvStep:
    """One feature-map value of a conv stage: patch * kernel, summed, plus bias."""

    stage: str
    filter: int
    y: int
    x: int
    patch: np.ndarray  # (Cin, 3, 3) input values under the kernel; cells outside the image are padding zeros
    padding: np.ndarray  # (3, 3) bool, True where the window hangs over the image edge
    kernel: np.ndarray  # (Cin, 3, 3) this filter's weights
    bias: float
    products: np.ndarray  # (Cin, 3, 3) patch * kernel, elementwise
    total: float  # sum of the products
    value: float  # total + bias == the feature map value at (filter, y, x)


def conv_step(trace: Trace, stage: str, filter: int, y: int, x: int) -> ConvStep:
    """Work out feature map value (filter, y, x) of conv `stage` from its input (the previous stage's output)."""
    _check_kind(trace, stage, "conv")
    inputs = trace.values[trace.previous(stage)]  # (Cin, H, W)
    weight, bias = trace.weights[stage]  # (F, Cin, 3, 3), (F,)
    _, h, w = inputs.shape
    _check_index("filter", filter, weight.shape[0])
    _check_index("y", y, h)
    _check_index("x", x, w)
    window = np.s_[y:y + KERNEL_SIZE, x:x + KERNEL_SIZE]  # in padded coordinates: centred on (y, x)
    patch = np.pad(inputs, ((0, 0), (PAD, PAD), (PAD, PAD)))[(slice(None), *window)]  # (Cin, 3, 3)
    padding = np.pad(np.zeros((h, w), dtype=bool), PAD, constant_values=True)[window]  # (3, 3)
    kernel = weight[filter]
    products = patch * kernel
    total = float(products.sum(dtype=np.float64))
    return ConvStep(stage=stage, filter=filter, y=y, x=x, patch=patch, padding=padding, kernel=kernel,
                    bias=float(bias[filter]), products=products, total=total, value=total + float(bias[filter]))


# --- ReLU ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReluSummary:
    """What ReLU zeroed: the elements that were negative before it (exact zeros stay zero and are not counted)."""

    stage: str
    negative_mask: np.ndarray  # (C, H, W) bool, True where the input was negative and became 0
    negative_counts: np.ndarray  # (C,) int, negatives per channel
    channel_fractions: np.ndarray  # (C,) share of each channel's elements that were negative
    zeroed_fraction: float  # share of all elements that were negative


def relu_summary(trace: Trace, stage: str) -> ReluSummary:
    _check_kind(trace, stage, "relu")
    inputs = trace.values[trace.previous(stage)]  # (C, H, W) conv output
    mask = inputs < 0
    counts = mask.sum(axis=(1, 2))
    per_channel = inputs.shape[1] * inputs.shape[2]
    return ReluSummary(stage, mask, counts, counts / per_channel, float(mask.mean()))


# --- Max pooling -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolWindow:
    """One pooled value: the 2x2 window it came from and which cell won."""

    stage: str
    channel: int
    y: int  # position in the pooled (output) map
    x: int
    window: np.ndarray  # (2, 2) input values
    top: int  # window's top-left position in the input map
    left: int
    winner: tuple[int, int]  # (row, col) of the maximum in the input map; ties go to the first in reading order
    value: float  # == the pooled output at (channel, y, x)


def pool_window(trace: Trace, stage: str, channel: int, y: int, x: int) -> PoolWindow:
    _check_kind(trace, stage, "pool")
    inputs = trace.values[trace.previous(stage)]  # (C, H, W) relu output
    out_c, out_h, out_w = trace.shape(stage)
    _check_index("channel", channel, out_c)
    _check_index("y", y, out_h)
    _check_index("x", x, out_w)
    top, left = y * POOL_SIZE, x * POOL_SIZE  # stride equals window size: windows tile without overlap
    window = inputs[channel, top:top + POOL_SIZE, left:left + POOL_SIZE]
    r, c = np.unravel_index(int(np.argmax(window)), window.shape)  # argmax keeps the first maximum, like torch
    return PoolWindow(stage, channel, y, x, window.copy(), top, left, (top + int(r), left + int(c)),
                      float(window[r, c]))


@dataclass(frozen=True)
class PoolSummary:
    stage: str
    before: tuple[int, int, int]  # (C, H, W) entering the pool
    after: tuple[int, int, int]  # (C, H // 2, W // 2); an odd last row or column is dropped
    factor: float  # elements before / elements after (4.0 for even sizes)


def pool_summary(trace: Trace, stage: str) -> PoolSummary:
    _check_kind(trace, stage, "pool")
    before, after = trace.shape(trace.previous(stage)), trace.shape(stage)
    return PoolSummary(stage, before, after, float(np.prod(before)) / float(np.prod(after)))


# --- Flatten -------------------------------------------------------------------------------------------------

def flatten_index(shape: tuple[int, int, int], c: int, y: int, x: int) -> int:
    """Position of (c, y, x) in the flattened vector: channel by channel, each row by row (torch's order)."""
    channels, h, w = shape
    _check_index("c", c, channels)
    _check_index("y", y, h)
    _check_index("x", x, w)
    return (c * h + y) * w + x


def unflatten_index(shape: tuple[int, int, int], i: int) -> tuple[int, int, int]:
    """Inverse of flatten_index: vector position -> (c, y, x)."""
    channels, h, w = shape
    _check_index("i", i, channels * h * w)
    c, rest = divmod(i, h * w)
    y, x = divmod(rest, w)
    return c, y, x


@dataclass(frozen=True)
class FlattenSummary:
    source: str  # the last pool stage
    shape: tuple[int, int, int]  # (C, H, W) of that pool's output
    length: int  # C * H * W
    channel_of: np.ndarray  # (length,) int, the channel each vector element came from


def flatten_summary(trace: Trace) -> FlattenSummary:
    source = trace.previous("flatten")
    c, h, w = trace.shape(source)
    return FlattenSummary(source, (c, h, w), c * h * w, np.repeat(np.arange(c), h * w))


# --- Dense ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Contribution:
    index: int  # position in the flattened vector
    origin: tuple[int, int, int]  # (c, y, x) in the last pooled map
    value: float  # weight * feature


@dataclass(frozen=True)
class DenseExplain:
    """How one class's score is built: score = sum_i w_i * x_i + bias."""

    class_index: int
    features: np.ndarray  # (N,) the flattened vector x
    weights: np.ndarray  # (N,) this class's row of the dense weights
    contributions: np.ndarray  # (N,) w_i * x_i
    bias: float
    total: float  # contributions.sum(), in float64: the score before the bias
    score: float  # total + bias == the dense output for this class
    top_positive: tuple[Contribution, ...]  # largest first
    top_negative: tuple[Contribution, ...]  # most negative first
    grid: np.ndarray  # (H, W) contributions summed over channels, on the last pooled grid
    image_map: np.ndarray  # (S, S) grid upsampled to the input size: which regions voted for this class


def dense_explain(trace: Trace, class_index: int, top: int = 10) -> DenseExplain:
    features = trace.values["flatten"]  # (N,)
    weight, bias = trace.weights["dense"]  # (classes, N), (classes,)
    _check_index("class_index", class_index, weight.shape[0])
    contributions = weight[class_index] * features
    total = float(contributions.sum(dtype=np.float64))
    shape = trace.shape(trace.previous("flatten"))  # (C, H, W)
    positive = [i for i in np.argsort(-contributions, kind="stable")[:top] if contributions[i] > 0]
    negative = [i for i in np.argsort(contributions, kind="stable")[:top] if contributions[i] < 0]
    grid = contributions.reshape(shape).sum(axis=0, dtype=np.float64)  # (H, W)
    return DenseExplain(class_index, features, weight[class_index], contributions, float(bias[class_index]),
                        total, total + float(bias[class_index]), _contributions(positive, contributions, shape),
                        _contributions(negative, contributions, shape), grid,
                        upsample_to_input(grid, trace.config.input_size, POOL_SIZE ** trace.config.blocks))


def _contributions(indices: list, contributions: np.ndarray, shape: tuple) -> tuple[Contribution, ...]:
    return tuple(Contribution(int(i), unflatten_index(shape, int(i)), float(contributions[i])) for i in indices)


def upsample_to_input(grid: np.ndarray, size: int, block: int) -> np.ndarray:
    """Block (nearest) upsampling of the last pooled grid (H, W) to the input (size, size).

    Each pooled cell is painted over the block x block input pixels it sits above (block = 2**blocks).
    Its true receptive field is wider, since every 3x3 conv also looks at neighbours, so this is a coarse
    map of where the votes came from, not an exact attribution. Rows and columns that pooling dropped from
    odd sizes never reach the dense layer, so they stay 0.
    """
    h, w = grid.shape
    painted = np.repeat(np.repeat(grid, block, axis=0), block, axis=1)  # (h*block, w*block)
    image_map = np.zeros((size, size), dtype=np.float64)
    image_map[:h * block, :w * block] = painted
    return image_map


# --- Output (softmax) ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SoftmaxExplain:
    """p_i = e^(z_i - max z) / sum_j e^(z_j - max z).

    Subtracting the largest score first keeps e^z from overflowing (e^1000 is inf in floating point); it
    does not change the probabilities, because e^(z_i - m) / sum_j e^(z_j - m) = e^z_i / sum_j e^z_j.
    """

    scores: np.ndarray  # (classes,) z, the dense outputs
    shift: float  # max z
    exps: np.ndarray  # (classes,) e^(z_i - max z), each in (0, 1]
    total: float  # sum of exps
    probabilities: np.ndarray  # (classes,) exps / total, summing to 1


def softmax_explain(scores: np.ndarray) -> SoftmaxExplain:
    z = np.asarray(scores, dtype=np.float64)
    shift = float(z.max())
    exps = np.exp(z - shift)
    total = float(exps.sum())
    return SoftmaxExplain(z, shift, exps, total, exps / total)


# --- Any stage -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StageStats:
    min: float
    max: float
    mean: float


def stage_stats(values: np.ndarray) -> StageStats:
    return StageStats(float(values.min()), float(values.max()), float(values.mean(dtype=np.float64)))
