"""A deterministic generator of small RGB pictures of six shapes on noisy backgrounds (the 'shapes' dataset)."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "star", "cross", "heart")
OVERSAMPLE = 4  # draw at 4x the size, then downsample: smooth (antialiased) edges
MIN_CONTRAST = 110  # least luminance gap (0-255) between a shape and its background, so a person can tell them apart
BACKGROUND_NOISE = 14.0  # std of the per-pixel noise on the background (0-255 scale)
SHAPE_NOISE = 5.0  # a little noise on the shape too, so colour alone is never perfectly flat
MAX_TILT = {"heart": 30.0}  # degrees; a heart turned upside down is no longer read as a heart
_LUMA = np.array([0.299, 0.587, 0.114])


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    angles = np.pi / 2 + np.arange(2 * points) * np.pi / points
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _heart(n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t) + 2.5  # +2.5 centres it
    return np.stack([x, y], axis=1) / 17.0


def _cross(arm: float = 0.32) -> np.ndarray:
    a, b = arm, 0.95
    return np.array([(a, b), (a, a), (b, a), (b, -a), (a, -a), (a, -b),
                     (-a, -b), (-a, -a), (-b, -a), (-b, a), (-a, a), (-a, b)])


# Outlines in unit coordinates (y up, radius about 1); the circle is drawn as an ellipse instead.
_OUTLINES = {
    "square": np.array([(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)]),
    "triangle": np.array([(np.cos(a), np.sin(a)) for a in np.pi / 2 + np.arange(3) * 2 * np.pi / 3]) * 1.05,
    "star": _star(),
    "cross": _cross(),
    "heart": _heart(),
}


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A background and a shape colour (RGB floats 0-255) whose luminances differ by at least MIN_CONTRAST."""
    while True:
        bg, fg = rng.uniform(0, 255, size=(2, 3))
        if abs(float(_LUMA @ bg) - float(_LUMA @ fg)) >= MIN_CONTRAST:
            return bg, fg


def _mask(shape: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size) float coverage in [0, 1] of one shape at a random size, position and rotation."""
    big = size * OVERSAMPLE
    radius = rng.uniform(0.24, 0.42) * big
    cx, cy = rng.uniform(radius + OVERSAMPLE, big - radius - OVERSAMPLE, size=2)
    tilt = MAX_TILT.get(shape, 180.0)
    angle = np.deg2rad(rng.uniform(-tilt, tilt))
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    if shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
    else:
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        pts = _OUTLINES[shape] @ rot.T * radius
        draw.polygon([(cx + x, cy - y) for x, y in pts], fill=255)  # image y grows downwards
    small = canvas.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64) / 255.0


def draw(shape: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One (size, size, 3) uint8 picture of `shape`, with every random choice taken from `rng`."""
    bg, fg = _colours(rng)
    alpha = _mask(shape, size, rng)[..., None]  # (size, size, 1)
    gradient = rng.uniform(-25, 25, size=3) * np.linspace(-1, 1, size)[:, None, None]  # a gentle vertical shade
    background = bg + gradient + rng.normal(0, BACKGROUND_NOISE, size=(size, size, 3))
    foreground = fg + rng.normal(0, SHAPE_NOISE, size=(size, size, 3))
    picture = alpha * foreground + (1 - alpha) * background
    return np.clip(np.rint(picture), 0, 255).astype(np.uint8)


def generate(n: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """`n` pictures (n, size, size, 3) uint8 and labels (n,) int64 (index into CLASSES), balanced, shuffled.

    The same (n, seed, size) always gives the same bytes.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int64)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i] = draw(CLASSES[label], size, rng)
    return images, labels
