"""From bytes or a sample array to an explanation, and the honest verdict beside the prediction."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from imageai.calibration import calibrate, score_strength
from imageai.model import CNN, CNNConfig
from imageai.modelfile import InputSpec, LoadedModel
from imageai.pipeline import assess, explain_array, explain_bytes

DIGITS_SPEC = InputSpec("mnist", 1, 28, (0.1307,), (0.3081,))
SHAPES_SPEC = InputSpec("resize", 3, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


@pytest.fixture()
def digits_model() -> LoadedModel:
    torch.manual_seed(0)
    return LoadedModel("digits", CNN(CNNConfig()).eval(), DIGITS_SPEC, {})


@pytest.fixture()
def shapes_model() -> LoadedModel:
    torch.manual_seed(1)
    config = CNNConfig(3, 32, (8, 16), ("circle", "square", "triangle", "star", "cross", "heart"))
    return LoadedModel("shapes", CNN(config).eval(), SHAPES_SPEC, {})


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_explain_bytes_traces_exactly_what_the_model_computes(shapes_model):
    rng = np.random.default_rng(0)
    explanation = explain_bytes(shapes_model, _png(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)))
    with torch.inference_mode():
        expected = shapes_model.model(explanation.prepared.tensor)[0].numpy()
    np.testing.assert_allclose(explanation.trace.values["output"], expected, atol=1e-6)
    assert explanation.prediction == int(np.argmax(expected))
    assert explanation.probability == pytest.approx(float(expected.max()))


def test_explain_array_takes_a_sample_in_the_models_own_format(digits_model):
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    explanation = explain_array(digits_model, digit)
    expected = (digit / 255.0 - 0.1307) / 0.3081
    np.testing.assert_allclose(explanation.trace.values["input"][0], expected, atol=1e-5)


def test_explain_array_from_another_dataset_is_preprocessed_like_an_upload(shapes_model):
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    explanation = explain_array(shapes_model, digit)
    assert explanation.trace.shape("input") == (3, 32, 32)


def test_score_strength_equals_torch_logsumexp():
    scores = np.random.default_rng(1).normal(size=(5, 7)).astype(np.float32) * 30
    np.testing.assert_allclose(score_strength(scores), torch.logsumexp(torch.from_numpy(scores), 1).numpy(),
                               rtol=1e-5)


def test_calibrate_records_the_low_percentile_of_test_strength(digits_model):
    images = torch.randn(200, 1, 28, 28)
    record = calibrate(digits_model.model, images)
    with torch.inference_mode():
        strength = torch.logsumexp(digits_model.model.scores(images), 1).numpy()
    assert record["logsumexp_p01"] == pytest.approx(float(np.percentile(strength, 1.0)), rel=1e-5)
    assert record["images"] == 200


def test_assess_calls_a_weak_answer_unfamiliar_and_a_flat_one_unsure(digits_model):
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    explanation = explain_array(digits_model, digit)
    strength = float(score_strength(explanation.trace.values["dense"]))
    assert assess(explanation, {"calibration": {"logsumexp_p01": strength + 1}}) == "unfamiliar"
    below = assess(explanation, {"calibration": {"logsumexp_p01": strength - 1}})
    assert below == ("unsure" if explanation.probability < 0.6 else "confident")
    assert assess(explanation, {}) in ("unsure", "confident")
