"""Tracing: hooks come and go, values equal a direct forward pass, and a shared model is safe across threads."""
import gc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from imageai.model import CNN, CNNConfig, stage_shapes
from imageai.trace import Trace, capture, trace

CONFIG = CNNConfig()  # 1x28x28, filters (8, 16), ten classes
RGB = CNNConfig(in_channels=3, input_size=32, filters=(4, 6, 8), classes=("circle", "square", "triangle"))


def _model(config: CNNConfig = CONFIG, seed: int = 0) -> CNN:
    torch.manual_seed(seed)
    return CNN(config).eval()


def _image(config: CNNConfig = CONFIG, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, config.in_channels, config.input_size, config.input_size, generator=g)


def _hook_count(model: CNN) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _direct(model: CNN, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Every stage's output computed by calling the modules one by one, with no hooks."""
    out = {"input": x[0].numpy()}
    with torch.no_grad():
        for name in model.stage_names[1:]:
            x = getattr(model, name)(x)
            out[name] = x[0].numpy()
    return out


def test_capture_records_every_stage_and_removes_its_hooks():
    model = _model()
    with torch.no_grad(), capture(model) as outputs:
        assert _hook_count(model) == len(model.stage_names) - 1
        model(_image())
    assert list(outputs) == model.stage_names[1:]
    assert _hook_count(model) == 0


def test_capture_removes_its_hooks_when_the_body_raises():
    model = _model()
    with pytest.raises(RuntimeError, match="boom"):
        with capture(model):
            assert _hook_count(model) > 0
            raise RuntimeError("boom")
    assert _hook_count(model) == 0


def test_trace_leaves_no_hooks_on_the_model():
    model = _model()
    trace(model, _image())
    assert _hook_count(model) == 0


@pytest.mark.parametrize("config", [CONFIG, RGB])
def test_trace_values_equal_a_direct_forward_pass(config):
    model, x = _model(config), _image(config)
    result = trace(model, x)
    expected = _direct(model, x)
    assert result.stage_names == tuple(model.stage_names)
    assert list(result.values) == model.stage_names
    for name, array in expected.items():
        assert result.values[name].dtype == np.float32
        np.testing.assert_allclose(result.values[name], array, rtol=1e-5, atol=1e-6, err_msg=name)
        assert result.shape(name) == stage_shapes(config)[name]


def test_trace_helpers_give_scores_probabilities_and_prediction():
    model, x = _model(), _image()
    result = trace(model, x)
    with torch.no_grad():
        scores = model.scores(x)[0]
    np.testing.assert_allclose(result.scores, scores.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.probabilities, torch.softmax(scores, 0).numpy(), rtol=1e-5, atol=1e-7)
    assert result.prediction == int(scores.argmax())
    assert result.previous("conv2") == "pool1" and result.kind("relu2") == "relu"


def test_trace_weights_are_those_of_conv_and_dense_stages():
    model = _model(RGB)
    result = trace(model, _image(RGB))
    assert list(result.weights) == ["conv1", "conv2", "conv3", "dense"]
    for name, (weight, bias) in result.weights.items():
        np.testing.assert_array_equal(weight, getattr(model, name).weight.detach().numpy())
        np.testing.assert_array_equal(bias, getattr(model, name).bias.detach().numpy())


def test_trace_arrays_are_read_only_copies():
    model = _model()
    result = trace(model, _image())
    with pytest.raises(ValueError):
        result.values["conv1"][0, 0, 0] = 1.0
    weight, _ = result.weights["conv1"]
    assert not np.shares_memory(weight, model.conv1.weight.detach().numpy())


def test_trace_runs_in_float32_on_the_cpu_even_for_a_double_input():
    model, x = _model(), _image()
    result = trace(model, x.double())
    np.testing.assert_allclose(result.values["output"], trace(model, x).values["output"], rtol=1e-6)
    assert all(v.dtype == np.float32 for v in result.values.values())


def test_trace_rejects_an_input_of_the_wrong_shape():
    with pytest.raises(ValueError, match="shape"):
        trace(_model(), torch.zeros(1, 3, 28, 28))


def test_concurrent_traces_on_one_shared_model_each_get_their_own_result():
    model = _model(RGB)
    images = [_image(RGB, seed) for seed in range(24)]
    reference = [trace(model, x) for x in images]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda x: trace(model, x), images * 2))
    for got, want in zip(results, reference * 2):
        for name in want.stage_names:
            np.testing.assert_array_equal(got.values[name], want.values[name], err_msg=name)
    assert _hook_count(model) == 0


def test_repeated_traces_do_not_leak_models_or_hooks():
    model, x = _model(), _image()

    def live_models() -> int:
        gc.collect()
        return sum(type(o) is CNN for o in gc.get_objects())

    trace(model, x)
    before = live_models()
    results = [trace(model, x).prediction for _ in range(30)]
    assert live_models() == before
    assert _hook_count(model) == 0 and len(set(results)) == 1


def test_a_trace_holds_only_numpy_arrays_that_own_their_memory():
    result = trace(_model(), _image())
    assert isinstance(result, Trace)
    arrays = [*result.values.values(), *(a for pair in result.weights.values() for a in pair)]
    assert all(type(a) is np.ndarray and a.flags.owndata for a in arrays)
