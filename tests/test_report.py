"""The JSON report: exact keys, stages in pipeline order, plain finite numbers, values and weights on request."""
import json

import numpy as np
import pytest
import torch

from imageai.model import CNN, CNNConfig, stage_shapes
from imageai.report import build_report, report_json
from imageai.trace import trace

CONFIG = CNNConfig(in_channels=3, input_size=16, filters=(4, 6), classes=("circle", "square", "triangle"))
TOP_KEYS = ["format_version", "model", "classes", "prediction", "probabilities", "scores", "stages"]
STAGE_KEYS = ["name", "kind", "shape", "min", "max", "mean"]


@pytest.fixture(scope="module")
def result():
    torch.manual_seed(0)
    model = CNN(CONFIG).eval()
    return trace(model, torch.randn(1, 3, 16, 16))


def _plain(value) -> bool:
    """Only JSON's own types: dict with str keys, list, str, int, float (finite), bool."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, float):
        return type(value) is float and np.isfinite(value)
    return type(value) in (str, int, bool)


def test_report_has_exactly_the_documented_top_level_fields(result):
    report = build_report(result, "shapes", CONFIG.classes, values=False)
    assert list(report) == TOP_KEYS
    assert report["format_version"] == 1 and type(report["format_version"]) is int
    assert report["model"] == "shapes" and report["classes"] == ["circle", "square", "triangle"]
    index = int(np.argmax(result.probabilities))
    assert report["prediction"] == {"class": CONFIG.classes[index], "index": index,
                                    "probability": pytest.approx(float(result.probabilities[index]))}
    np.testing.assert_allclose(report["probabilities"], result.probabilities, rtol=1e-6)
    np.testing.assert_allclose(report["scores"], result.scores, rtol=1e-6)
    assert sum(report["probabilities"]) == pytest.approx(1.0, abs=1e-6)


def test_report_lists_stages_in_pipeline_order_with_shape_and_stats(result):
    stages = build_report(result, "m", CONFIG.classes, values=False)["stages"]
    assert [s["name"] for s in stages] == list(result.stage_names)
    assert [s["kind"] for s in stages] == ["input"] + ["conv", "relu", "pool"] * 2 + ["flatten", "dense", "output"]
    shapes = stage_shapes(CONFIG)
    for stage in stages:
        expected_keys = STAGE_KEYS + (["zeroed_fraction"] if stage["kind"] == "relu" else [])
        assert list(stage) == expected_keys
        assert stage["shape"] == list(shapes[stage["name"]])
        values = torch.from_numpy(np.array(result.values[stage["name"]]))
        assert stage["min"] == float(values.min()) and stage["max"] == float(values.max())
        assert stage["mean"] == pytest.approx(float(values.double().mean()), abs=1e-7)
    assert stages[0]["shape"] == [3, 16, 16] and stages[-1]["shape"] == [3]


def test_relu_zeroed_fraction_is_the_share_negative_before_relu(result):
    stages = {s["name"]: s for s in build_report(result, "m", CONFIG.classes, values=False)["stages"]}
    for relu, conv in [("relu1", "conv1"), ("relu2", "conv2")]:
        before = torch.from_numpy(np.array(result.values[conv]))
        assert stages[relu]["zeroed_fraction"] == pytest.approx(float((before < 0).float().mean()))


def test_report_with_values_adds_every_stage_values_and_conv_and_dense_weights(result):
    stages = build_report(result, "m", CONFIG.classes, values=True)["stages"]
    for stage in stages:
        name = stage["name"]
        np.testing.assert_array_equal(np.array(stage["values"], dtype=np.float32), result.values[name])
        if stage["kind"] in ("conv", "dense"):
            weight, bias = result.weights[name]
            np.testing.assert_array_equal(np.array(stage["weight"], dtype=np.float32), weight)
            np.testing.assert_array_equal(np.array(stage["bias"], dtype=np.float32), bias)
        else:
            assert "weight" not in stage and "bias" not in stage
    assert np.array(stages[1]["weight"]).shape == (4, 3, 3, 3)


def test_report_without_values_has_no_values_or_weights(result):
    for stage in build_report(result, "m", CONFIG.classes, values=False)["stages"]:
        assert not {"values", "weight", "bias"} & set(stage)


@pytest.mark.parametrize("values", [False, True])
def test_report_holds_only_plain_json_types_and_round_trips(result, values):
    report = build_report(result, "m", CONFIG.classes, values=values)
    assert _plain(report)
    assert json.loads(report_json(result, "m", CONFIG.classes, values=values)) == report


def test_report_rejects_class_names_that_do_not_fit_the_model(result):
    with pytest.raises(ValueError):
        build_report(result, "m", ["a", "b"], values=False)


def test_report_refuses_non_finite_numbers(result):
    bad = dict(result.values)
    bad["dense"] = np.array([np.inf, 0.0, 0.0], dtype=np.float32)
    broken = type(result)(result.config, result.stage_names, bad, result.weights)
    with pytest.raises(ValueError):
        build_report(broken, "m", CONFIG.classes, values=False)
