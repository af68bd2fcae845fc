"""The per-stage math in imageai.explain, checked number by number against torch's own operations."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imageai.explain import (conv_step, dense_explain, flatten_index, flatten_summary, pool_summary,
                             pool_window, relu_summary, softmax_explain, stage_stats, unflatten_index)
from imageai.model import CNN, CNNConfig
from imageai.trace import trace

TOL = {"rtol": 1e-5, "atol": 1e-5}  # for numpy.testing
NEAR = {"rel": 1e-5, "abs": 1e-5}  # the same for pytest.approx
DIGITS = CNNConfig()  # 1x28x28 -> 8x14x14 -> 16x7x7
ODD = CNNConfig(in_channels=3, input_size=15, filters=(4, 5), classes=("a", "b", "c"))  # 15 -> 7 -> 3


def _trace(config: CNNConfig = DIGITS, seed: int = 0):
    torch.manual_seed(seed)
    model = CNN(config).eval()
    x = torch.randn(1, config.in_channels, config.input_size, config.input_size)
    return trace(model, x)


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array))


@pytest.fixture(scope="module")
def digits():
    return _trace(DIGITS)


@pytest.fixture(scope="module")
def odd():
    return _trace(ODD, seed=3)


# --- conv ---

@pytest.mark.parametrize("config_name, stage", [("digits", "conv1"), ("digits", "conv2"), ("odd", "conv1"),
                                                ("odd", "conv2")])
def test_conv_step_value_equals_torch_conv2d_everywhere_including_edges(config_name, stage, request):
    result = request.getfixturevalue(config_name)
    weight, bias = result.weights[stage]
    inputs = result.values[result.previous(stage)]
    expected = F.conv2d(_t(inputs)[None], _t(weight), _t(bias), padding=1)[0]
    filters, h, w = expected.shape
    for f in range(filters):
        for y, x in [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (h // 2, w // 3), (1, w - 2)]:
            step = conv_step(result, stage, f, y, x)
            assert step.value == pytest.approx(float(expected[f, y, x]), **NEAR)
            assert step.value == pytest.approx(float(result.values[stage][f, y, x]), **NEAR)
            assert step.value == pytest.approx(float(step.products.sum()) + step.bias, **NEAR)


def test_conv_step_shows_patch_kernel_and_their_products(digits):
    step = conv_step(digits, "conv2", filter=3, y=4, x=5)
    inputs = digits.values["pool1"]
    np.testing.assert_array_equal(step.patch, inputs[:, 3:6, 4:7])
    np.testing.assert_array_equal(step.kernel, digits.weights["conv2"][0][3])
    np.testing.assert_allclose(step.products, step.patch * step.kernel, **TOL)
    assert step.patch.shape == step.kernel.shape == (8, 3, 3)
    assert step.bias == float(digits.weights["conv2"][1][3])
    assert not step.padding.any()


def test_conv_step_pads_with_zeros_outside_the_image(digits):
    step = conv_step(digits, "conv1", filter=0, y=0, x=27)
    expected_padding = np.array([[1, 1, 1], [0, 0, 1], [0, 0, 1]], dtype=bool)
    np.testing.assert_array_equal(step.padding, expected_padding)
    assert (step.patch[:, step.padding] == 0).all()
    np.testing.assert_array_equal(step.patch[0, 1:, :2], digits.values["input"][0, :2, 26:])


def test_conv_step_rejects_positions_outside_the_map_and_other_stages(digits):
    with pytest.raises(IndexError):
        conv_step(digits, "conv1", 0, 28, 0)
    with pytest.raises(IndexError):
        conv_step(digits, "conv1", 8, 0, 0)
    with pytest.raises(ValueError):
        conv_step(digits, "relu1", 0, 0, 0)


# --- relu ---

@pytest.mark.parametrize("stage", ["relu1", "relu2"])
def test_relu_summary_counts_exactly_the_negatives_torch_relu_zeroes(digits, stage):
    before = _t(digits.values[digits.previous(stage)])
    after = torch.relu(before)
    summary = relu_summary(digits, stage)
    negative = before < 0
    np.testing.assert_array_equal(summary.negative_mask, negative.numpy())
    np.testing.assert_array_equal(summary.negative_counts, negative.sum(dim=(1, 2)).numpy())
    np.testing.assert_allclose(summary.channel_fractions, negative.float().mean(dim=(1, 2)).numpy(), **TOL)
    assert summary.zeroed_fraction == pytest.approx(float(negative.float().mean()), **NEAR)
    assert torch.equal(after, torch.where(negative, torch.zeros(()), before))
    np.testing.assert_array_equal(digits.values[stage], after.numpy())
    assert 0 < summary.zeroed_fraction < 1


def test_relu_summary_does_not_count_exact_zeros_as_zeroed():
    result = _trace(DIGITS, seed=5)
    conv = result.values["conv1"].copy()
    conv[0] = 0.0  # a channel of exact zeros: ReLU leaves them as they were
    patched = type(result)(result.config, result.stage_names, {**result.values, "conv1": conv}, result.weights)
    summary = relu_summary(patched, "relu1")
    assert summary.negative_counts[0] == 0 and summary.channel_fractions[0] == 0
    assert summary.zeroed_fraction == pytest.approx(float((conv < 0).mean()))


# --- pool ---

@pytest.mark.parametrize("config_name", ["digits", "odd"])
def test_pool_window_winner_and_value_match_torch_max_pool2d(config_name, request):
    result = request.getfixturevalue(config_name)
    for stage in ["pool1", "pool2"]:
        inputs = _t(result.values[result.previous(stage)])
        values, indices = F.max_pool2d(inputs[None], 2, return_indices=True)
        values, indices = values[0], indices[0]  # indices count row by row within each input channel
        width = inputs.shape[2]
        channels, h, w = values.shape
        for c in range(channels):
            for y in range(h):
                for x in range(w):
                    window = pool_window(result, stage, c, y, x)
                    assert window.value == float(values[c, y, x])
                    assert window.winner == divmod(int(indices[c, y, x]), width)
                    assert (window.top, window.left) == (2 * y, 2 * x)
                    assert window.value == window.window.max()


def test_pool_window_breaks_ties_like_torch_by_taking_the_first_cell():
    torch.manual_seed(0)
    model = CNN(DIGITS).eval()
    with torch.no_grad():
        model.conv1.weight.zero_()
        model.conv1.bias.fill_(-1.0)  # every conv1 value is -1, so relu1 is all zeros: every window is a tie
    result = trace(model, torch.randn(1, 1, 28, 28))
    _, indices = F.max_pool2d(_t(result.values["relu1"])[None], 2, return_indices=True)
    window = pool_window(result, "pool1", 2, 3, 4)
    assert window.winner == (6, 8) == divmod(int(indices[0, 2, 3, 4]), 28)
    assert window.value == 0.0


def test_pool_summary_gives_sizes_before_and_after_and_the_reduction(digits, odd):
    summary = pool_summary(digits, "pool1")
    assert (summary.before, summary.after, summary.factor) == ((8, 28, 28), (8, 14, 14), 4.0)
    summary = pool_summary(odd, "pool2")  # 7x7 -> 3x3: the odd last row and column are dropped
    assert (summary.before, summary.after) == ((5, 7, 7), (5, 3, 3))
    assert summary.factor == pytest.approx(49 / 9)


# --- flatten ---

@pytest.mark.parametrize("shape", [(16, 7, 7), (5, 3, 3), (2, 1, 4)])
def test_flatten_index_matches_torch_flatten_and_unflatten_inverts_it(shape):
    grid = torch.arange(int(np.prod(shape))).reshape(shape) * 10
    flat = torch.flatten(grid)
    for c in range(shape[0]):
        for y in range(shape[1]):
            for x in range(shape[2]):
                i = flatten_index(shape, c, y, x)
                assert flat[i] == grid[c, y, x]
                assert unflatten_index(shape, i) == (c, y, x)
    with pytest.raises(IndexError):
        unflatten_index(shape, len(flat))


def test_flatten_summary_gives_the_length_and_each_elements_channel(digits):
    summary = flatten_summary(digits)
    assert (summary.source, summary.shape, summary.length) == ("pool2", (16, 7, 7), 784)
    pooled = _t(digits.values["pool2"])
    np.testing.assert_array_equal(torch.flatten(pooled).numpy(), digits.values["flatten"])
    channel_grid = torch.arange(16)[:, None, None].expand(16, 7, 7)
    np.testing.assert_array_equal(summary.channel_of, torch.flatten(channel_grid).numpy())


# --- dense ---

@pytest.mark.parametrize("config_name", ["digits", "odd"])
def test_dense_score_is_the_sum_of_contributions_plus_bias_like_f_linear(config_name, request):
    result = request.getfixturevalue(config_name)
    weight, bias = result.weights["dense"]
    expected = F.linear(_t(result.values["flatten"]), _t(weight), _t(bias))
    without_bias = F.linear(_t(result.values["flatten"]), _t(weight))
    for k in range(len(bias)):
        dense = dense_explain(result, k)
        assert dense.total == pytest.approx(float(without_bias[k]), **NEAR)  # the "sum of products" shown
        np.testing.assert_allclose(dense.contributions, weight[k] * result.values["flatten"], **TOL)
        assert dense.score == pytest.approx(float(dense.contributions.sum()) + dense.bias, **NEAR)
        assert dense.score == pytest.approx(float(expected[k]), **NEAR)
        assert dense.score == pytest.approx(float(result.scores[k]), **NEAR)


def test_dense_top_contributions_are_sorted_with_their_origin(digits):
    dense = dense_explain(digits, 3, top=5)
    pos, neg = dense.top_positive, dense.top_negative
    assert len(pos) == 5 and len(neg) == 5
    assert [p.value for p in pos] == sorted((p.value for p in pos), reverse=True)
    assert [n.value for n in neg] == sorted(n.value for n in neg)
    assert pos[0].value == pytest.approx(float(dense.contributions.max()))
    assert neg[0].value == pytest.approx(float(dense.contributions.min()))
    pooled, weight = digits.values["pool2"], digits.weights["dense"][0]
    for item in pos + neg:
        c, y, x = item.origin
        assert item.index == flatten_index((16, 7, 7), c, y, x)
        assert item.value == pytest.approx(float(pooled[c, y, x] * weight[3, item.index]), **NEAR)


def test_dense_top_lists_only_hold_contributions_of_their_sign():
    result = _trace(CNNConfig(input_size=8, filters=(1,), classes=("a", "b")), seed=2)
    dense = dense_explain(result, 0, top=100)  # more than the 16 features: the lists split them by sign
    assert all(c.value > 0 for c in dense.top_positive) and all(c.value < 0 for c in dense.top_negative)
    assert len(dense.top_positive) == int((dense.contributions > 0).sum())
    assert len(dense.top_negative) == int((dense.contributions < 0).sum())


def test_dense_map_folds_contributions_onto_the_pooled_grid_and_input(digits):
    dense = dense_explain(digits, 7)
    folded = _t(dense.contributions).reshape(16, 7, 7).sum(dim=0)
    np.testing.assert_allclose(dense.grid, folded.numpy(), **TOL)
    assert dense.image_map.shape == (28, 28)
    np.testing.assert_allclose(dense.image_map, np.kron(dense.grid, np.ones((4, 4))), **TOL)  # 2 pools: 4x4
    assert dense.image_map.sum() == pytest.approx(16 * (dense.score - dense.bias), rel=1e-4)


def test_dense_map_leaves_pixels_dropped_by_pooling_at_zero(odd):
    dense = dense_explain(odd, 1)
    assert dense.grid.shape == (3, 3) and dense.image_map.shape == (15, 15)
    np.testing.assert_allclose(dense.image_map[:12, :12], np.kron(dense.grid, np.ones((4, 4))), **TOL)
    assert (dense.image_map[12:, :] == 0).all() and (dense.image_map[:, 12:] == 0).all()


# --- output ---

@pytest.mark.parametrize("scores", [[2.0, -1.0, 0.5], [0.0, 0.0], [1000.0, 1001.0, 999.0], [-800.0, -790.0]])
def test_softmax_explain_matches_torch_softmax_without_overflow(scores):
    result = softmax_explain(np.array(scores, dtype=np.float32))
    z = torch.tensor(scores, dtype=torch.float64)
    np.testing.assert_allclose(result.probabilities, torch.softmax(z, 0).numpy(), **TOL)
    np.testing.assert_allclose(result.exps, torch.exp(z - z.max()).numpy(), **TOL)
    assert result.shift == max(scores) and result.exps.max() == 1.0
    assert result.total == pytest.approx(float(result.exps.sum()))
    assert np.isfinite(result.probabilities).all() and result.probabilities.sum() == pytest.approx(1.0)


def test_softmax_of_the_dense_outputs_gives_the_output_stage(digits):
    result = softmax_explain(digits.scores)
    np.testing.assert_allclose(result.probabilities, digits.probabilities, **TOL)


# --- any stage ---

def test_stage_stats_match_torch_min_max_mean(digits):
    for name in digits.stage_names:
        values = digits.values[name]
        stats = stage_stats(values)
        tensor = _t(values)
        assert stats.min == float(tensor.min()) and stats.max == float(tensor.max())
        assert stats.mean == pytest.approx(float(tensor.double().mean()), **NEAR)
