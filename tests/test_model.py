"""The one CNN definition: stage names and order, widths from the config, shapes, forward == softmax(scores)."""
import pytest
import torch
from torch import nn

from imageai.model import (CNN, STAGE_KINDS, CNNConfig, device_available, pick_device, stage_block, stage_kind,
                           stage_names, stage_shapes)
from imageai.trace import capture

CONFIGS = [
    CNNConfig(),  # digits-like: 1x28x28, two blocks
    CNNConfig(in_channels=3, input_size=32, filters=(4,), classes=("a", "b", "c")),
    CNNConfig(in_channels=3, input_size=29, filters=(5, 6, 7), classes=("x", "y")),  # odd sizes floor
    CNNConfig(in_channels=1, input_size=30, filters=(2, 3, 4, 5), classes=tuple("0123")),
]


def _model(config: CNNConfig, seed: int = 0) -> CNN:
    torch.manual_seed(seed)
    return CNN(config).eval()


@pytest.mark.parametrize("blocks, expected", [
    (1, ["input", "conv1", "relu1", "pool1", "flatten", "dense", "output"]),
    (2, ["input", "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "dense", "output"]),
    (3, ["input", "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3", "pool3",
         "flatten", "dense", "output"]),
])
def test_stage_names_follow_the_plan_order(blocks, expected):
    assert stage_names(blocks) == expected
    assert [stage_kind(n) for n in expected] == [STAGE_KINDS[0]] + ["conv", "relu", "pool"] * blocks + list(
        STAGE_KINDS[4:])
    assert [stage_block(n) for n in expected[1:-3]] == [b for b in range(1, blocks + 1) for _ in range(3)]
    assert stage_block("dense") is None


def test_unknown_stage_kind_is_rejected():
    with pytest.raises(ValueError):
        stage_kind("dropout1")


@pytest.mark.parametrize("config", CONFIGS)
def test_every_stage_after_input_is_a_named_module_in_order(config):
    model = _model(config)
    assert model.stage_names == stage_names(config.blocks)
    assert [name for name, _ in model.named_children()] == model.stage_names[1:]
    kinds = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d, "flatten": nn.Flatten,
             "dense": nn.Linear, "output": nn.Softmax}
    for name in model.stage_names[1:]:
        assert isinstance(getattr(model, name), kinds[stage_kind(name)])


@pytest.mark.parametrize("config", CONFIGS)
def test_widths_are_derived_from_the_config(config):
    model = _model(config)
    channels = (config.in_channels, *config.filters)
    for i, (cin, cout) in enumerate(zip(channels, channels[1:]), 1):
        conv = getattr(model, f"conv{i}")
        assert (conv.in_channels, conv.out_channels) == (cin, cout)
        assert conv.kernel_size == (3, 3) and conv.padding == (1, 1)
    assert model.dense.in_features == stage_shapes(config)["flatten"][0]
    assert model.dense.out_features == config.num_classes
    assert not any(isinstance(m, nn.ReLU) and m.inplace for m in model.modules())


@pytest.mark.parametrize("config", CONFIGS)
def test_stage_shapes_match_the_shapes_a_forward_pass_produces(config):
    model = _model(config)
    x = torch.randn(2, config.in_channels, config.input_size, config.input_size)
    with torch.no_grad(), capture(model) as outputs:
        model(x)
    expected = stage_shapes(config)
    assert list(expected) == model.stage_names
    assert expected["input"] == tuple(x.shape[1:])
    for name in model.stage_names[1:]:
        assert tuple(outputs[name].shape) == (2, *expected[name]), name


@pytest.mark.parametrize("config", CONFIGS)
def test_forward_is_softmax_of_scores(config):
    model = _model(config)
    x = torch.randn(3, config.in_channels, config.input_size, config.input_size)
    with torch.no_grad():
        probabilities, scores = model(x), model.scores(x)
    assert scores.shape == (3, config.num_classes)
    torch.testing.assert_close(probabilities, torch.softmax(scores, dim=1))
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(3))


def test_first_kernels_are_conv1_weights_without_gradient():
    model = _model(CNNConfig())
    kernels = model.first_kernels()
    assert kernels.shape == (8, 1, 3, 3) and not kernels.requires_grad
    assert torch.equal(kernels, model.conv1.weight)


def test_config_round_trips_through_a_dict():
    config = CONFIGS[2]
    assert CNNConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("kwargs", [
    {"in_channels": 2}, {"filters": ()}, {"filters": (8, 0)}, {"filters": (1, 1, 1, 1, 1)},
    {"classes": ("only",)}, {"input_size": 3, "filters": (4, 4)},
])
def test_invalid_configs_are_rejected(kwargs):
    with pytest.raises(ValueError):
        CNNConfig(**kwargs)


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_training_picks_cuda_then_apple_mps_then_the_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert pick_device() == torch.device(expected)
    assert [name for name in ("cpu", "cuda", "mps") if device_available(name)] == \
        ["cpu"] + ["cuda"] * cuda + ["mps"] * mps
