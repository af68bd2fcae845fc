"""From a picture to a full explanation: read safely, prepare for the model, trace every stage."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from imageai import calibration
from imageai.errors import ModelFileError
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

    @property
    def prediction(self) -> int:
        return self.trace.prediction

    @property
    def probability(self) -> float:
        return float(self.trace.values["output"][self.prediction])


def explain_bytes(loaded: LoadedModel, data: bytes) -> Explanation:
    """Encoded image bytes -> explanation; unreadable input raises ImageReadError."""
    return _explain(loaded, prepare(read_image(data), loaded.input_spec))


def explain_array(loaded: LoadedModel, array: np.ndarray) -> Explanation:
    """A dataset sample (uint8, already in a built-in dataset's format) -> explanation.

    A sample from another dataset than the model's (say, a digit shown to the shapes model) goes
    through the same preprocessing as an upload.
    """
    return _explain(loaded, prepare_array(array, loaded.input_spec))


def _explain(loaded: LoadedModel, prepared: Prepared) -> Explanation:
    """Trace the picture; a model whose finite but extreme weights overflow to inf or NaN is refused here."""
    traced = trace(loaded.model, prepared.tensor)
    if not all(np.isfinite(values).all() for values in traced.values.values()):
        raise ModelFileError("model_bad_values")
    return Explanation(prepared, traced)


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
