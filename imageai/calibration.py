"""How strongly a model answers on its own test images: the yardstick for "this picture is unlike my data"."""
from __future__ import annotations

import numpy as np
import torch

from imageai.model import CNN

PERCENTILE = 1.0  # a picture whose score strength falls below 99% of real test images is called unfamiliar


def score_strength(scores: np.ndarray) -> np.ndarray:
    """log Σ_j e^(z_j) per row: large when some class scores high, small when no class fits."""
    scores = np.asarray(scores, dtype=np.float64)
    top = scores.max(axis=-1, keepdims=True)
    return (np.log(np.exp(scores - top).sum(axis=-1, keepdims=True)) + top)[..., 0]


@torch.inference_mode()
def calibrate(model: CNN, images: torch.Tensor, batch_size: int = 512) -> dict:
    """The record stored in a model file's `calibration`: the low percentile of score strength on `images`.

    `images` are normalised model inputs (N, C, S, S) the model was not trained on (its test set).
    """
    model = model.eval().cpu()
    scores = np.concatenate([model.scores(images[i:i + batch_size].cpu()).numpy()
                             for i in range(0, len(images), batch_size)])
    strength = score_strength(scores)
    return {"logsumexp_p01": float(np.percentile(strength, PERCENTILE)), "images": int(len(images))}
