"""From a picture to a full explanation: read safely, prepare for the model, trace every stage."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from imageai import calibration
from imageai.images import read_image
from imageai.modelfile import LoadedModel
from imageai.preprocess import Prepared, prepare, prepare_array
from imageai.trace import Trace, trace

# Below this top probability the prediction is called unsure; see `assess`.
UNSURE_PROBABILITY = 0.6


@dataclass(frozen=True)
class Explanation:
    """Everything the pages show for one picture and one model."""

    prepared: Prepared
    trace: Trace
    classes: tuple[str, ...]

    @property
    def prediction(self) -> int:
        return int(np.argmax(self.trace.values["output"]))

    @property
    def probability(self) -> float:
        return float(self.trace.values["output"][self.prediction])


def explain_bytes(loaded: LoadedModel, data: bytes) -> Explanation:
    """Encoded image bytes -> explanation; unreadable input raises ImageReadError."""
    prepared = prepare(read_image(data), loaded.input_spec)
    return Explanation(prepared, trace(loaded.model, prepared.tensor), loaded.classes)


def explain_array(loaded: LoadedModel, array: np.ndarray) -> Explanation:
    """A dataset sample (uint8, already in a built-in dataset's format) -> explanation.

    A sample from another dataset than the model's (say, a digit shown to the shapes model) goes
    through the same preprocessing as an upload.
    """
    spec = loaded.input_spec
    channels = 1 if array.ndim == 2 else array.shape[2]
    if array.shape[:2] == (spec.size, spec.size) and channels == spec.channels:
        prepared = prepare_array(array, spec)
    else:
        prepared = prepare(Image.fromarray(array).convert("RGB"), spec)
    return Explanation(prepared, trace(loaded.model, prepared.tensor), loaded.classes)


def assess(explanation: Explanation, loaded: LoadedModel) -> str:
    """'unfamiliar' (far from everything the model was trained on), 'unsure' (top probability low) or 'confident'.

    Softmax always shares 100% among the known classes, so a photo of a cat still gets some class at a
    high probability; the model's calibration (see calibration.py) tells whether the picture is like its data.
    """
    if loaded.calibration is not None:
        pools = [torch.from_numpy(np.array(explanation.trace.values[name]))[None]
                 for name in explanation.trace.stage_names if name.startswith("pool")]
        if float(calibration.distance(loaded.calibration, calibration.pool_summary(pools))[0]) > \
                loaded.calibration.threshold:
            return "unfamiliar"
    if explanation.probability < UNSURE_PROBABILITY:
        return "unsure"
    return "confident"
