"""Sample pictures from a model's own dataset, for the Explore page's "pick a sample"."""
from __future__ import annotations

import numpy as np

SAMPLE_SEED = 2024  # mixed with the session's seed and the counter into each pick's generator


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


def sample_image(dataset: str, seed: int, counter: int) -> tuple[np.ndarray, str]:
    """The counter-th pseudo-random test image of a built-in dataset in the sequence `seed` picks (each session
    has its own, so that not every visitor starts with the same picture): (uint8 array, its class name)."""
    images, labels, classes = _test_set(dataset)
    index = int(np.random.default_rng([SAMPLE_SEED, seed, counter]).integers(len(images)))
    return images[index], classes[int(labels[index])]
