"""From an RGB picture (or a dataset sample) to the exact tensor that enters the model's first conv layer."""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, ImageOps

from imageai.errors import ImageReadError
from imageai.images import fit_long_side, image_from_array, long_side_size, thumbnail_for_display
from imageai.modelfile import InputSpec

MNIST_SPEC = InputSpec("mnist", 1, 28, (0.1307,), (0.3081,))  # MNIST's own mean and std of ink in [0, 1]
DISPLAY_SIDE = 512  # `Prepared.original` is at most this big
MNIST_BOX = 20 / 28  # MNIST fits each digit in a 20x20 box of the 28x28 field
FIND_SIDE = 384  # the digit is looked for in a copy this big on its long side
MIN_CONTRAST = 0.25  # ink must stand out of the paper by this much (0..1), else the picture holds no digit
MIN_STROKE = 1.9  # strokes thinner than this at 28x28 are thickened: the median MNIST stroke is ~1.9 px
BACKGROUND_SIDE = 96  # the paper's lighting is estimated on a copy this small
BACKGROUND_WINDOW = 0.25  # ... with a window this share of its long side, wider than a marker's stroke
GRID_SIDE = 96  # ink is grouped into connected pieces on a grid this coarse, to drop specks quickly
SPECK = 0.1  # a piece with less than this share of the largest piece's cells is a speck


@dataclass(frozen=True)
class Prepared:
    """One picture ready for the model, and what to show of it."""

    tensor: torch.Tensor  # (1, C, S, S) float32, normalised: exactly what enters conv1
    pixels: np.ndarray  # (C, S, S) float32 in [0, 1]: what the network sees before normalisation
    original: Image.Image  # the RGB picture, at most DISPLAY_SIDE on its long side


def spec_for_rgb(size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> InputSpec:
    """A "resize" spec for colour pictures: centre square, scaled to size x size."""
    return InputSpec("resize", 3, int(size), tuple(float(m) for m in mean), tuple(float(s) for s in std))


def normalise(pixels: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """(N, C, S, S) pixels in [0, 1] -> (pixels - mean) / std per channel; one formula for training and explaining."""
    mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1)
    return (pixels - mean) / std


def batch_from_uint8(images: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """(N, S, S) or (N, S, S, C) uint8 images already in the model's format -> (N, C, S, S) normalised."""
    return normalise(scaled_from_uint8(images, spec), spec)


def scaled_from_uint8(images: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """(N, S, S) or (N, S, S, C) uint8 images already in the model's format -> (N, C, S, S) float in [0, 1]."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise ValueError(f"need uint8 (N, H, W[, C]) images, not {images.dtype} {images.shape}")
    x = torch.from_numpy(np.require(images, requirements=["C", "W"]))  # copies only a read-only (shared) array
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)  # (N, C, H, W)
    if tuple(x.shape[1:]) != (spec.channels, spec.size, spec.size):
        raise ValueError(f"images are {tuple(x.shape[1:])}, the model takes {(spec.channels, spec.size, spec.size)}")
    return x.float() / 255


def prepare(img: Image.Image, spec: InputSpec) -> Prepared:
    """An RGB picture -> the model's input, by the spec's preprocessing ("mnist" or "resize")."""
    img = img if img.mode == "RGB" else img.convert("RGB")
    if spec.preprocess == "mnist":
        pixels = mnist_pixels(img, spec.size)[None]  # (1, S, S)
    elif spec.preprocess == "resize":
        pixels = resize_pixels(img, spec.channels, spec.size)  # (C, S, S)
    else:
        raise ValueError(f"unknown preprocessing {spec.preprocess!r}")
    tensor = normalise(torch.from_numpy(pixels).unsqueeze(0), spec)  # (1, C, S, S)
    return Prepared(tensor, pixels, thumbnail_for_display(img, DISPLAY_SIDE))


def prepare_array(pixels: np.ndarray, spec: InputSpec) -> Prepared:
    """A uint8 sample (H, W) or (H, W, 3): one already in the model's format only gets normalised."""
    pixels = np.asarray(pixels)
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if pixels.shape[:2] != (spec.size, spec.size) or channels != spec.channels:
        return prepare(image_from_array(pixels), spec)
    x = scaled_from_uint8(pixels[None], spec)  # (1, C, S, S) in [0, 1]
    return Prepared(normalise(x, spec), x[0].numpy(), image_from_array(pixels))


def resize_pixels(img: Image.Image, channels: int, size: int) -> np.ndarray:
    """Centre square of the picture scaled to size x size (antialiased) -> (C, S, S) float32 in [0, 1]."""
    img = img.convert("L" if channels == 1 else "RGB")
    square = ImageOps.fit(img, (size, size), Image.Resampling.LANCZOS)
    pixels = np.asarray(square, dtype=np.float32) / 255  # (S, S) or (S, S, 3)
    return pixels.reshape(size, size, channels).transpose(2, 0, 1).copy()


def mnist_pixels(img: Image.Image, size: int = 28) -> np.ndarray:
    """A photo or drawing of one digit -> (S, S) float32 in [0, 1] laid out as MNIST: bright ink on black,
    the ink's box fitted to 20/28 of the field, its centre of mass in the middle."""
    gray = np.asarray(fit_long_side(img.convert("L"), FIND_SIDE, Image.Resampling.BICUBIC),  # a 28x28 digit too
                      dtype=np.float32) / 255  # (H, W)
    ink = ink_map(gray)  # (H, W): 0 paper .. 1 ink
    if ink is not None:
        ink = ink * _without_specks(ink >= 0.5)
    if ink is None or not (ink >= 0.5).any():
        raise ImageReadError("image_no_ink")
    rows, cols = np.nonzero(ink >= 0.5)
    ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]  # (h, w): the digit's box
    box = size * MNIST_BOX
    ink = _thicken(ink, box / max(ink.shape))  # grows the box by the added width
    h, w = ink.shape
    small = Image.fromarray(ink, "F").resize(long_side_size((w, h), box), Image.Resampling.LANCZOS)
    digit = np.clip(np.asarray(small, dtype=np.float32), 0, 1)  # (<=20, <=20)
    digit /= max(float(digit.max()), 1e-6)
    return _centre_by_mass(digit, size)


def ink_map(gray: np.ndarray) -> np.ndarray | None:
    """(H, W) gray in [0, 1] -> (H, W) ink strength in [0, 1] with the paper at 0; None if there is no ink.

    Ink is a minority far from the paper's level, so the pixels' skew (third moment) says which side it
    is on; lighting changes are milder and matter less once cubed.
    The paper is estimated around each pixel, so shadows and uneven light cancel out; dark ink is divided
    by the paper's own brightness (lighting multiplies), light ink on a dark ground is subtracted.
    """
    if np.mean((gray - gray.mean()) ** 3) < 0:  # skewed towards dark: dark ink on light paper
        signal = 1 - gray / np.maximum(_background(gray, dark_ink=True), 1e-3)
    else:  # light strokes on a dark ground, as drawn on the canvas
        signal = gray - _background(gray, dark_ink=False)
    signal = np.clip(signal, 0, 1)
    if _box_blur3(signal).max() < MIN_CONTRAST:
        return None
    level = _otsu(signal)
    above = signal[signal > level]
    strong = float(np.percentile(above, 90)) if above.size else 1.0  # the ink's level, above any broad shadow
    low, high = level / 2, max(strong, level + 1e-3)
    return np.clip((signal - low) / (high - low), 0, 1).astype(np.float32)  # soft edges stay soft


def _background(gray: np.ndarray, dark_ink: bool) -> np.ndarray:
    """(H, W) the paper without the ink: a closing (opening for light ink) with a window wider than any
    stroke, on a small copy; shadows and light gradients wider than the window are kept."""
    h, w = gray.shape
    scale = min(1.0, BACKGROUND_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray(gray, "F").resize(size, Image.Resampling.BOX))  # (h', w'), no ringing
    r = max(1, round(max(small.shape) * BACKGROUND_WINDOW / 2))
    sign = 1 if dark_ink else -1
    closed = sign * _min_filter(_max_filter(sign * small, r), r)
    smooth = Image.fromarray(_box_blur3(closed).astype(np.float32), "F")
    return np.asarray(smooth.resize((w, h), Image.Resampling.BILINEAR))


def _max_filter(x: np.ndarray, r: int) -> np.ndarray:
    """Maximum over a (2r+1) x (2r+1) square around each pixel (edges repeated)."""
    for axis in (0, 1):
        padded = np.pad(x, [(r, r) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        x = sliding_window_view(padded, 2 * r + 1, axis=axis).max(axis=-1)
    return x


def _min_filter(x: np.ndarray, r: int) -> np.ndarray:
    return -_max_filter(-x, r)


def _box_blur3(x: np.ndarray) -> np.ndarray:
    """3x3 mean, so that a single noisy pixel cannot pass for ink."""
    p = np.pad(x, 1, mode="edge")
    h, w = x.shape
    return sum(p[i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 1]: the level that best splits them into two groups."""
    hist, edges = np.histogram(values, bins=256, range=(0, 1))
    p = hist / max(hist.sum(), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * centres)
    between = (m0[-1] * w0 - m0) ** 2 / np.maximum(w0 * (1 - w0), 1e-12)
    return float(edges[int(np.argmax(between)) + 1])


def _without_specks(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool -> (H, W) float: 1 where a piece of ink is big enough to be part of the digit."""
    h, w = mask.shape
    f = max(1, math.ceil(max(h, w) / GRID_SIDE))
    gh, gw = -(-h // f), -(-w // f)
    coarse = np.pad(mask, ((0, gh * f - h), (0, gw * f - w))).reshape(gh, f, gw, f).any(axis=(1, 3))
    labels, sizes = _pieces(coarse)
    keep_ids = [i + 1 for i, s in enumerate(sizes) if s >= SPECK * max(sizes, default=0)]
    keep = np.isin(labels, keep_ids)  # (gh, gw)
    return keep.repeat(f, axis=0).repeat(f, axis=1)[:h, :w].astype(np.float32)


def _pieces(grid: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """8-connected pieces of a small bool grid: labels (0 = none, 1.. = piece) and each piece's size."""
    labels = np.zeros(grid.shape, dtype=np.int32)
    sizes: list[int] = []
    for start in zip(*np.nonzero(grid)):
        if labels[start]:
            continue
        sizes.append(0)
        labels[start] = len(sizes)
        queue = deque([start])
        while queue:
            y, x = queue.popleft()
            sizes[-1] += 1
            for ny in range(max(y - 1, 0), min(y + 2, grid.shape[0])):
                for nx in range(max(x - 1, 0), min(x + 2, grid.shape[1])):
                    if grid[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = len(sizes)
                        queue.append((ny, nx))
    return labels, sizes


def _thicken(ink: np.ndarray, scale: float) -> np.ndarray:
    """Widen thin pen strokes (max filter) so that, once scaled by `scale`, they are as wide as MNIST's."""
    solid = ink >= 0.5
    edges = np.abs(np.diff(np.pad(solid, 1).astype(np.int8), axis=0)).sum() + \
        np.abs(np.diff(np.pad(solid, 1).astype(np.int8), axis=1)).sum()
    width = 2 * solid.sum() / max(int(edges), 1)  # area / half the perimeter: the mean stroke width
    radius = math.ceil((MIN_STROKE / scale - width) / 2)
    radius = min(radius, max(ink.shape) // 10)
    if radius < 1:
        return ink
    return _max_filter(np.pad(ink, radius), radius)  # padded: room to grow at the edges of the box


def _centre_by_mass(digit: np.ndarray, size: int) -> np.ndarray:
    """Place the (h, w) digit in a size x size black field with its centre of mass at (size/2, size/2)."""
    h, w = digit.shape
    ys, xs = np.mgrid[0:h, 0:w]
    mass = max(float(digit.sum()), 1e-6)
    cy, cx = float((digit * ys).sum()) / mass, float((digit * xs).sum()) / mass
    top = min(max(round(size / 2 - cy), 0), size - h)
    left = min(max(round(size / 2 - cx), 0), size - w)
    field = np.zeros((size, size), dtype=np.float32)
    field[top:top + h, left:left + w] = digit
    return field
