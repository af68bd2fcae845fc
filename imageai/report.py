"""The JSON report of one trace: prediction, probabilities and every stage's shape and statistics."""
from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from imageai.explain import relu_summary, stage_stats
from imageai.trace import Trace

FORMAT_VERSION = 1


def build_report(trace: Trace, model_name: str, classes: Sequence[str], *, values: bool) -> dict:
    """A json.dumps-able dict of plain Python numbers; with `values`, also every stage's values and weights."""
    classes = [str(c) for c in classes]
    if len(classes) != trace.config.num_classes:
        raise ValueError(f"{len(classes)} class names for a model with {trace.config.num_classes} classes")
    index = trace.prediction
    return {
        "format_version": FORMAT_VERSION,
        "model": model_name,
        "classes": classes,
        "prediction": {"class": classes[index], "index": index,
                       "probability": _float(trace.probabilities[index])},
        "probabilities": _floats(trace.probabilities),
        "scores": _floats(trace.scores),
        "stages": [_stage(trace, name, values) for name in trace.stage_names],
    }


def _stage(trace: Trace, name: str, values: bool) -> dict:
    kind = trace.kind(name)
    array = trace.values[name]
    stats = stage_stats(array)
    stage = {"name": name, "kind": kind, "shape": list(trace.shape(name)),
             "min": _float(stats.min), "max": _float(stats.max), "mean": _float(stats.mean)}
    if kind == "relu":
        stage["zeroed_fraction"] = _float(relu_summary(trace, name).zeroed_fraction)
    if values:
        stage["values"] = _floats(array)
        if name in trace.weights:  # conv and dense stages
            weight, bias = trace.weights[name]
            stage["weight"] = _floats(weight)
            stage["bias"] = _floats(bias)
    return stage


def report_json(trace: Trace, model_name: str, classes: Sequence[str], *, values: bool,
                indent: int | None = 2) -> str:
    return json.dumps(build_report(trace, model_name, classes, values=values), indent=indent,
                      ensure_ascii=False, allow_nan=False)


def _float(value: float) -> float:
    value = float(value)
    if not np.isfinite(value):
        raise ValueError("the trace holds a value that is not finite")
    return value


def _floats(array: np.ndarray) -> list:
    """Nested lists of plain Python floats, in the array's own shape."""
    if not np.isfinite(array).all():
        raise ValueError("the trace holds a value that is not finite")
    return np.asarray(array, dtype=np.float64).tolist()
