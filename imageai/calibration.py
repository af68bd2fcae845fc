"""Is a picture like the model's training data? A Mahalanobis distance on pooled features, fitted at training.

Softmax always shares 100% among the known classes, and raw score strength says little on this small CNN
(a digit shown to the shapes model still gets "triangle 100%"). What does tell: each pooling stage's
per-channel mean and max — a short summary of which filters fired and how strongly. Training fits one
mean per class and a shared covariance of these summaries (as in Lee et al., 2018, "A simple unified
framework for detecting out-of-distribution samples"); a picture farther from every class mean than 99%
of the model's own test pictures is called unfamiliar.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from imageai.model import CNN, CNNConfig

PERCENTILE = 99.0  # about 1 in 100 real test pictures is called unfamiliar: the price of catching the rest
SHRINK = 1e-3  # covariance shrinkage towards its mean variance, so the inverse stays well-conditioned
TENSOR_PREFIX = "calibration."


@dataclass(frozen=True)
class Calibration:
    class_means: torch.Tensor  # (classes, D) float32
    precision: torch.Tensor  # (D, D) float32, the inverse of the shared covariance
    threshold: float  # squared distance above which a picture is unfamiliar

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f"{TENSOR_PREFIX}class_means": self.class_means, f"{TENSOR_PREFIX}precision": self.precision}

    def record(self) -> dict:
        return {"feature": "pool_mean_max", "threshold": self.threshold, "percentile": PERCENTILE}


def feature_dim(config: CNNConfig) -> int:
    return 2 * sum(config.filters)


def pool_summary(pools: list[torch.Tensor]) -> torch.Tensor:
    """Pool outputs [(N, C_i, H_i, W_i)] -> (N, 2 * sum C_i): each channel's mean and max."""
    return torch.cat([t for p in pools for t in (p.mean(dim=(2, 3)), p.amax(dim=(2, 3)))], dim=1)


@torch.inference_mode()
def summarise(model: CNN, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Normalised inputs (N, C, S, S) -> their pooled summaries (N, D), on the CPU in float32."""
    model = model.eval().cpu()
    out = []
    for i in range(0, len(images), batch_size):
        x, pools = images[i:i + batch_size].cpu().float(), []
        for name in model.stage_names[1:-3]:  # the conv blocks only
            x = getattr(model, name)(x)
            if name.startswith("pool"):
                pools.append(x)
        out.append(pool_summary(pools))
    return torch.cat(out)


def distance(calibration: Calibration, features: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (N,) squared Mahalanobis distance to the nearest class mean."""
    diff = features.double()[:, None, :] - calibration.class_means.double()[None]  # (N, K, D)
    return torch.einsum("nkd,de,nke->nk", diff, calibration.precision.double(), diff).min(dim=1).values


def fit(model: CNN, train_x: torch.Tensor, train_y: torch.Tensor, held_out_x: torch.Tensor) -> Calibration:
    """Class means and shared covariance from the training images; the threshold from held-out images."""
    features = summarise(model, train_x).double()
    labels = train_y.cpu()
    k = model.config.num_classes
    means = torch.stack([features[labels == c].mean(0) if (labels == c).any() else features.mean(0)
                         for c in range(k)])
    residual = features - means[labels]
    cov = residual.T @ residual / max(1, len(residual))
    cov += torch.eye(len(cov), dtype=cov.dtype) * SHRINK * float(cov.diagonal().mean().clamp_min(1e-12))
    calibration = Calibration(means.float(), torch.linalg.inv(cov).float(), 0.0)
    reference = held_out_x if len(held_out_x) else train_x
    scores = distance(calibration, summarise(model, reference)).numpy()
    return Calibration(calibration.class_means, calibration.precision, float(np.percentile(scores, PERCENTILE)))


def from_file(tensors: dict[str, torch.Tensor], record: object, config: CNNConfig) -> Calibration | None:
    """The calibration stored in a model file, or None; raises ValueError when it does not fit the model."""
    if not tensors and record is None:
        return None
    d, k = feature_dim(config), config.num_classes
    means = tensors.get(f"{TENSOR_PREFIX}class_means")
    precision = tensors.get(f"{TENSOR_PREFIX}precision")
    if (set(tensors) != {f"{TENSOR_PREFIX}class_means", f"{TENSOR_PREFIX}precision"} or not isinstance(record, dict)
            or means.shape != (k, d) or precision.shape != (d, d)
            or means.dtype != torch.float32 or precision.dtype != torch.float32
            or not (torch.isfinite(means).all() and torch.isfinite(precision).all())):
        raise ValueError("calibration does not fit the model")
    threshold = float(record["threshold"])
    if not np.isfinite(threshold) or threshold <= 0:
        raise ValueError("bad calibration threshold")
    return Calibration(means, precision, threshold)
