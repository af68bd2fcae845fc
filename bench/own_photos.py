"""Training on your own photos: 2 classes x 20 phone-size JPEGs, read as the Train page reads them, then trained.

Usage: python -m bench.own_photos [--per-class 20] [--epochs N]
"""
from __future__ import annotations

import argparse
import io
import time
from dataclasses import replace

import numpy as np
from PIL import Image, ImageDraw

from bench import Row, in_worker
from imageai import own_photos, train

TARGET_SECONDS = 30.0
PHOTO_SIZE = (1600, 1200)  # a phone photo after the app's upload; bigger ones are decoded in JPEG draft mode anyway
CLASSES = ("mug", "book")
COLOURS = {"mug": (200, 60, 50), "book": (60, 90, 170)}


def photo(kind: str, rng: np.random.Generator) -> bytes:
    """A phone-style JPEG: an unevenly lit, noisy table top with one object, a red mug or a blue book, its colour
    shifted by the light, at a random size, place and tilt."""
    w, h = PHOTO_SIZE[0] // 2, PHOTO_SIZE[1] // 2  # drawn at half size, then scaled up: soft like a lens, and fast
    light = np.linspace(rng.uniform(0.6, 0.9), rng.uniform(0.9, 1.1), w)[None, :, None]
    table = rng.uniform(120, 200, 3) * light * np.ones((h, 1, 1)) + rng.normal(0, 6, (h, w, 3))
    img = Image.fromarray(table.clip(0, 255).astype(np.uint8))
    layer = Image.new("RGBA", (w, h))
    draw = ImageDraw.Draw(layer)
    base = np.array(COLOURS[kind])  # someone's own mug and book: the same object, photographed again and again
    colour = tuple(int(c) for c in (base * rng.uniform(0.75, 1.15)).clip(0, 255)) + (255,)
    cx, cy, size = rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.65) * h, rng.uniform(0.25, 0.4) * h
    if kind == "mug":  # a round body with a handle
        draw.ellipse([cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2], fill=colour)
        draw.ellipse([cx + size * 0.35, cy - size * 0.25, cx + size * 0.8, cy + size * 0.25], outline=colour,
                     width=int(size * 0.1))
    else:  # a flat cover with a lighter spine
        draw.rectangle([cx - size * 0.7, cy - size * 0.5, cx + size * 0.7, cy + size * 0.5], fill=colour)
        draw.rectangle([cx - size * 0.7, cy - size * 0.5, cx - size * 0.55, cy + size * 0.5],
                       fill=tuple(min(255, c + 60) for c in colour[:3]) + (255,))
    layer = layer.rotate(rng.uniform(-30, 30), center=(cx, cy), resample=Image.Resampling.BICUBIC)
    img.paste(layer, mask=layer)
    out = io.BytesIO()
    img.resize(PHOTO_SIZE, Image.Resampling.BICUBIC).save(out, format="JPEG", quality=88)
    return out.getvalue()


def photo_set(per_class: int, seed: int = 0) -> dict[str, list[tuple[str, bytes]]]:
    rng = np.random.default_rng(seed)
    return {kind: [(f"{kind}-{i:02d}.jpg", photo(kind, rng)) for i in range(per_class)] for kind in CLASSES}


def rows(per_class: int = 20, epochs: int | None = None) -> list[Row]:
    """Seconds from the uploaded bytes to a trained model, with the Train page's default settings for own photos."""
    uploads = photo_set(per_class)
    megabytes = sum(len(data) for files in uploads.values() for _, data in files) / 2**20
    config = train.default_config("own_photos")
    if epochs is not None:
        config = replace(config, epochs=epochs)

    def read_and_train() -> tuple[float, float, train.TrainResult]:
        start = time.perf_counter()
        collection = own_photos.collect_from_classes(uploads)
        own_photos.check(collection)
        dataset = own_photos.to_dataset(collection)
        read = time.perf_counter() - start
        result = train.train(dataset, config, device="cpu")
        return read, time.perf_counter() - start, result

    read, total, result = in_worker(read_and_train)  # a thread of its own, as the page's reading and the job
    n = per_class * len(CLASSES)
    return [Row(f"own photos: {len(CLASSES)} classes x {per_class} photos, read and trained", f"{total:.1f} s",
                f"<= {TARGET_SECONDS:.0f} s", total <= TARGET_SECONDS,
                f"{n} JPEGs of {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} ({megabytes:.1f} MB) read and scaled to "
                f"{own_photos.SIZE}x{own_photos.SIZE} in {read:.1f} s, then {config.epochs} epochs with the Train "
                f"page's defaults in {total - read:.1f} s; test accuracy {result.test_accuracy:.0%} on the "
                f"{len(result.test_probs)} held-out photos")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    for row in rows(args.per_class, args.epochs):
        print(row)


if __name__ == "__main__":
    main()
