"""Sample pictures from a model's own dataset, for the Explore page's "pick a sample"."""
from __future__ import annotations

import numpy as np

SAMPLE_SEED = 2024  # a generated set apart from the shapes model's training and test seeds


def _test_set(dataset: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from imageai import datasets

    data = datasets.shared_dataset(dataset)
    return data.test_images, data.test_labels, tuple(data.classes)


def sample_dataset_for(meta: dict) -> str:
    """Which built-in dataset fits a model: its own when built in, else by input kind."""
    name = str((meta.get("dataset") or {}).get("name", ""))
    if name in ("digits", "shapes"):
        return name
    return "digits" if (meta.get("input") or {}).get("preprocess") == "mnist" else "shapes"


def sample_image(dataset: str, counter: int) -> tuple[np.ndarray, str]:
    """The counter-th pseudo-random test image of a built-in dataset: (uint8 array, its class name)."""
    images, labels, classes = _test_set(dataset)
    index = int(np.random.default_rng([SAMPLE_SEED, counter]).integers(len(images)))
    return images[index], classes[int(labels[index])]
