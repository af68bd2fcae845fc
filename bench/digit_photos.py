"""How well phone-style photos of handwritten digits survive read_image + MNIST preprocessing + the digits model.

Usage: python -m bench.digit_photos --n 200 [--seed 0] [--model digits|PATH] [--save DIR]
"""
from __future__ import annotations

import argparse
import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from imageai.datasets import DIGITS_FILE
from imageai.errors import ImageAiError
from imageai.images import read_image
from imageai.preprocess import MNIST_SPEC, prepare, prepare_array

PENS = ((20, 22, 28), (18, 30, 95), (35, 35, 40), (60, 25, 30), (70, 70, 78))  # black, blue, graphite, ...
SIDEWAYS = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}  # stored pixels, per EXIF tag


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 test digits (bright ink on black) and labels; rendered with a font if the file is missing."""
    if DIGITS_FILE.exists():
        with np.load(DIGITS_FILE) as data:
            return data["test_images"], data["test_labels"]
    return font_digits()


def font_digits() -> tuple[np.ndarray, np.ndarray]:
    """Ten MNIST-like digits drawn with Pillow's default font: white on black, about 20 px tall."""
    font = ImageFont.load_default(size=26)
    images = []
    for d in range(10):
        img = Image.new("L", (28, 28))
        ImageDraw.Draw(img).text((14, 14), str(d), fill=255, font=font, anchor="mm")
        images.append(np.asarray(img))
    return np.stack(images), np.arange(10, dtype=np.uint8)


def make_phone_photo(digit_img: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 28x28 bright-on-dark digit -> JPEG bytes of it written in dark pen on unevenly lit paper.

    Some are turned a few degrees; some are stored sideways with an EXIF orientation tag, as phones do.
    """
    side = int(rng.integers(300, 601))
    alpha = _pen_strokes(digit_img, side, rng)  # (side, side) in [0, 1]
    height, width = int(side * rng.uniform(1.1, 1.8)), int(side * rng.uniform(1.1, 1.6))
    ink = np.zeros((height, width), np.float32)
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    ink[top:top + side, left:left + side] = alpha
    paper = rng.uniform(205, 250) * np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.85, 1.0)])
    pen = np.array(PENS[int(rng.integers(len(PENS)))], np.float32)
    colour = paper * (1 - ink[..., None]) + pen * ink[..., None]  # (H, W, 3)
    photo = colour * _lighting(height, width, rng)[..., None] + rng.normal(0, rng.uniform(2, 6), colour.shape)
    img = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8), "RGB")
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    exif = Image.Exif()
    if rng.random() < 0.3:
        tag = int(rng.choice(list(SIDEWAYS)))
        img, exif[0x0112] = img.transpose(SIDEWAYS[tag]), tag
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(rng.integers(70, 96)), exif=exif.tobytes())
    return buf.getvalue()


def _pen_strokes(digit_img: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """The digit scaled up to side x side as solid pen strokes of a random width, maybe turned a little."""
    big = Image.fromarray(np.asarray(digit_img, np.uint8), "L").resize((side, side), Image.Resampling.BICUBIC)
    width = int(rng.choice([-1, 0, 0, 1]))  # a fine pen or a marker instead of the sample's own width
    if width:
        size = 2 * round(side / 60) + 1
        big = big.filter(ImageFilter.MinFilter(size) if width < 0 else ImageFilter.MaxFilter(size))
    if rng.random() < 0.5:
        big = big.rotate(float(rng.uniform(-8, 8)), Image.Resampling.BICUBIC)
    level = np.asarray(big, np.float32) / 255
    return np.clip((level - rng.uniform(0.3, 0.5)) * 4, 0, 1)  # a pen leaves solid ink with a narrow soft edge


def _lighting(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W) brightness factor: a gradient in a random direction and a soft shadow on one side."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    along = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    light = 1 - rng.uniform(0.1, 0.45) * (along - along.min()) / max(float(np.ptp(along)), 1e-6)
    edge = rng.uniform(0.1, 0.4) * width
    shadow = 1 / (1 + np.exp((xx - edge) / (0.05 * width)))  # 1 left of the edge, 0 right of it
    return light * (1 - rng.uniform(0.1, 0.35) * shadow)


def _load_model(name_or_path: str):
    from imageai.registry import resolve

    try:
        return resolve(name_or_path)
    except ImageAiError:
        return None


@dataclass
class PhotoScore:
    """What `measure` found; the accuracies are None without a model."""

    photos: int
    refused: int
    ms_each: float  # read_image + prepare, per accepted photo
    correlation: float  # mean Pearson correlation of the prepared 28x28 with the original sample
    accuracy: float | None  # share of all photos the model reads correctly
    clean_accuracy: float | None  # share of the same samples read correctly as clean 28x28 dataset images


def measure(n: int = 200, seed: int = 0, model: str = "digits", save: Path | None = None) -> PhotoScore:
    """Make n photos of test digits (fixed seed), prepare each as the app does and score the result."""
    images, labels = load_digits()
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(images), n, replace=len(images) < n)
    loaded = _load_model(model)
    spec = loaded.input_spec if loaded else MNIST_SPEC
    correct = clean_correct = refused = 0
    agreement, seconds = [], 0.0
    for i, k in enumerate(picks):
        data, stem = make_phone_photo(images[k], rng), f"{i:03d}_{labels[k]}"
        start = time.perf_counter()
        try:
            prepared = prepare(read_image(data), spec)
        except ImageAiError as err:
            refused += 1
            print(f"photo {i} (label {labels[k]}): {err.key}")
            _save(save, f"{stem}_refused.jpg", data)
            continue
        seconds += time.perf_counter() - start
        agreement.append(np.corrcoef(prepared.pixels[0].ravel(), images[k].ravel())[0, 1])
        _save(save, f"{stem}.jpg", data)
        _save(save, f"{stem}_in.png", Image.fromarray((prepared.pixels[0] * 255).astype(np.uint8)))
        if loaded:
            with torch.no_grad():
                correct += int(loaded.model(prepared.tensor).argmax()) == int(labels[k])
                clean = prepare_array(images[k], spec).tensor  # the sample as the dataset holds it
                clean_correct += int(loaded.model(clean).argmax()) == int(labels[k])
    done = max(n - refused, 1)
    return PhotoScore(n, refused, 1000 * seconds / done, float(np.mean(agreement)) if agreement else 0.0,
                      correct / n if loaded else None, clean_correct / done if loaded else None)


def _save(folder: Path | None, name: str, content: bytes | Image.Image) -> None:
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        (folder / name).write_bytes(content)
    else:
        content.save(folder / name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="digits", help="a bundled model's name or a model file")
    parser.add_argument("--save", type=Path, help="write each photo and its 28x28 result here")
    args = parser.parse_args(argv)
    score = measure(args.n, args.seed, args.model, args.save)
    print(f"{score.photos} photos, {score.refused} refused, {score.ms_each:.1f} ms each to read and prepare")
    print(f"mean correlation of the prepared 28x28 with the original sample: {score.correlation:.3f}")
    if score.accuracy is None:
        print(f"no model {args.model!r} (not built yet?): accuracy not measured")
    else:
        print(f"model: {score.accuracy:.1%} of photos read correctly "
              f"({score.clean_accuracy:.1%} of the same samples as clean 28x28 images)")


if __name__ == "__main__":
    main()
