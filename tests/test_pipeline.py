"""From bytes or a sample array to an explanation, and the honest verdict beside the prediction."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from imageai import calibration
from imageai.errors import ModelFileError
from imageai.model import CNN, CNNConfig
from imageai.modelfile import InputSpec, LoadedModel
from imageai.pipeline import assess, explain_array, explain_bytes
from imageai.preprocess import MNIST_SPEC

SHAPES_SPEC = InputSpec("resize", 3, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


@pytest.fixture()
def digits_model() -> LoadedModel:
    torch.manual_seed(0)
    return LoadedModel("digits", CNN(CNNConfig()).eval(), MNIST_SPEC, {})


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


def test_finite_weights_that_overflow_when_run_are_refused_as_a_bad_model(shapes_model):
    with torch.no_grad():
        shapes_model.model.conv1.weight.fill_(3e38)  # finite, so the file loads; inf and NaN once multiplied
    with pytest.raises(ModelFileError) as raised:
        explain_bytes(shapes_model, _png(np.full((32, 32, 3), 200, np.uint8)))
    assert raised.value.key == "model_bad_values"


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


def _calibrated(loaded: LoadedModel, seed: int = 0) -> LoadedModel:
    gen = torch.Generator().manual_seed(seed)
    train_x = torch.randn(300, 1, 28, 28, generator=gen) * 0.3
    train_y = torch.randint(0, 10, (300,), generator=gen)
    held_out = torch.randn(100, 1, 28, 28, generator=gen) * 0.3
    return LoadedModel(loaded.name, loaded.model, loaded.input_spec, {},
                       calibration.fit(loaded.model, train_x, train_y, held_out))


def test_pool_summary_of_a_trace_equals_summarise_on_the_model(digits_model):
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    explanation = explain_array(digits_model, digit)
    pools = [torch.from_numpy(np.array(explanation.trace.values[n]))[None] for n in ("pool1", "pool2")]
    expected = calibration.summarise(digits_model.model, explanation.prepared.tensor)
    torch.testing.assert_close(calibration.pool_summary(pools), expected)
    assert expected.shape == (1, calibration.feature_dim(digits_model.config))


def test_distance_is_the_squared_mahalanobis_distance_to_the_nearest_class_mean(digits_model):
    cal = _calibrated(digits_model).calibration
    features = torch.randn(4, calibration.feature_dim(digits_model.config))
    means, precision = cal.class_means.double().numpy(), cal.precision.double().numpy()
    expected = [min(float((f - m) @ precision @ (f - m)) for m in means) for f in features.double().numpy()]
    np.testing.assert_allclose(calibration.distance(cal, features).numpy(), expected, rtol=1e-6)


def test_fit_puts_the_threshold_at_the_99th_percentile_of_held_out_distances(digits_model):
    gen = torch.Generator().manual_seed(3)
    train_x, held_out = torch.randn(200, 1, 28, 28, generator=gen), torch.randn(80, 1, 28, 28, generator=gen)
    cal = calibration.fit(digits_model.model, train_x, torch.randint(0, 10, (200,), generator=gen), held_out)
    distances = calibration.distance(cal, calibration.summarise(digits_model.model, held_out)).numpy()
    assert cal.threshold == pytest.approx(float(np.percentile(distances, calibration.PERCENTILE)))
    assert (distances > cal.threshold).mean() <= 0.02


def test_assess_calls_a_picture_unlike_the_training_data_unfamiliar(digits_model):
    loaded = _calibrated(digits_model)
    rng = np.random.default_rng(5)
    wild = explain_array(loaded, rng.integers(0, 256, (28, 28), dtype=np.uint8))  # noise, nothing like N(0, 0.3)
    assert assess(wild, loaded) == "unfamiliar"
    assert assess(wild, digits_model) in ("unsure", "confident")  # without calibration only probability counts


def test_assess_calls_a_flat_answer_unsure(digits_model):
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    explanation = explain_array(digits_model, digit)
    expected = "unsure" if explanation.probability < 0.6 else "confident"
    assert assess(explanation, digits_model) == expected


def test_bundled_models_call_their_own_test_images_familiar_and_the_other_datasets_unfamiliar():
    from imageai.datasets import get_dataset
    from imageai.registry import bundled_path, load_bundled

    if not bundled_path("shapes").exists():
        pytest.skip("bundled models not built")
    shapes = load_bundled("shapes")
    own = get_dataset("shapes").test_images[:40]
    digits = get_dataset("digits").test_images[:40]
    own_verdicts = [assess(explain_array(shapes, a), shapes) for a in own]
    other_verdicts = [assess(explain_array(shapes, a), shapes) for a in digits]
    assert own_verdicts.count("unfamiliar") <= 2
    assert other_verdicts.count("unfamiliar") >= 36
