"""Stage figures: tiles hold the exact values where they claim, ranges and marks are right, payloads stay small."""
import json

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
import torch.nn.functional as TF

from imageai import charts as C
from imageai import figures as F
from imageai.model import CNNConfig, stage_shapes
from tests.figure_helpers import digits_trace, valid

BUDGET = 500_000  # bytes of fig.to_json() per stage figure


def _maps(n=5, h=4, w=6, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, h, w)).astype(np.float32)


def test_tiled_heatmap_is_one_trace_holding_each_map_exactly_at_its_origin():
    maps = _maps()
    fig = F.tiled_heatmap(maps, cols=3)
    assert len(fig.data) == 1 and fig.data[0].type == "heatmap"
    z, custom = np.asarray(fig.data[0].z), np.asarray(fig.data[0].customdata)
    assert z.shape == (2 * 4 + 1, 3 * 6 + 2)  # 2 rows x 3 cols of 4x6 tiles, one NaN cell between tiles
    for i, (oy, ox) in enumerate(fig.layout.meta["origins"]):
        assert (oy, ox) == ((i // 3) * 5, (i % 3) * 7)
        np.testing.assert_array_equal(z[oy:oy + 4, ox:ox + 6], maps[i])
        assert (custom[oy:oy + 4, ox:ox + 6, 0] == i + 1).all()  # hover: tile number, then y and x
        np.testing.assert_array_equal(custom[oy + 2, ox:ox + 6, 1], 2)
        np.testing.assert_array_equal(custom[oy + 2, ox:ox + 6, 2], np.arange(6))
    assert np.isnan(z[4, :]).all() and np.isnan(z[:, 6]).all() and np.isnan(z[:, 13]).all()
    assert np.isnan(z[5:, 14:]).all()  # the sixth slot of the grid is empty
    assert np.isfinite(z).sum() == maps.size


def test_tile_labels_are_annotations_above_each_tile():
    fig = F.tiled_heatmap(_maps(), cols=3, titles=[f"f{i}" for i in range(1, 6)])
    texts = [a.text for a in fig.layout.annotations]
    assert texts == ["f1", "f2", "f3", "f4", "f5"]
    origins = fig.layout.meta["origins"]
    assert all(a.y == oy - 0.5 and a.yanchor == "bottom" for a, (oy, _) in zip(fig.layout.annotations, origins))
    assert fig.layout.yaxis.range[1] < -0.5  # room above the first row for its labels


def test_diverging_scale_is_symmetric_around_zmid_and_sequential_starts_at_zero():
    maps = _maps()
    fig = F.tiled_heatmap(maps)
    m = float(np.abs(maps).max())
    assert (fig.data[0].zmin, fig.data[0].zmax) == (-m, m)
    assert fig.data[0].colorscale[0][1] == F.DIVERGING[0][1] and fig.data[0].colorscale[-1][0] == 1
    shifted = F.tiled_heatmap(maps, zmid=1.0)
    m1 = float(np.abs(maps - 1).max())
    assert shifted.data[0].zmin == pytest.approx(1 - m1) and shifted.data[0].zmax == pytest.approx(1 + m1)
    positive = F.tiled_heatmap(np.abs(maps), diverging=False)
    assert (positive.data[0].zmin, positive.data[0].zmax) == (0.0, float(np.abs(maps).max()))


def test_zero_color_paints_exact_zeros_grey_and_keeps_the_scalevalid():
    maps = np.maximum(_maps(), 0)
    trace = F.tiled_heatmap(maps, diverging=False, zero_color=True).data[0]
    stops = [s for s, _ in trace.colorscale]
    assert stops[0] == 0 and stops[-1] == 1 and stops == sorted(stops)
    at_zero = (0 - trace.zmin) / (trace.zmax - trace.zmin)  # where plotly places a 0 on the scale
    grey = [s for s, c in trace.colorscale if c == F.ZERO]
    assert grey[0] == 0 and grey[-1] == pytest.approx(at_zero)
    assert trace.zmax == float(maps.max())


def test_highlight_rectangle_and_mark_sit_on_the_chosen_cells():
    fig = F.tiled_heatmap(_maps(), cols=3, highlight=(4, 1, 2, 2, 3), marks=[(4, 2, 3)])
    oy, ox = fig.layout.meta["origins"][4]
    rect, circle = fig.layout.shapes
    assert (rect.x0, rect.x1, rect.y0, rect.y1) == (ox + 1.5, ox + 4.5, oy + 0.5, oy + 2.5)  # cells x 2..4, y 1..2
    assert (circle.x0 + circle.x1) / 2 == ox + 3 and (circle.y0 + circle.y1) / 2 == oy + 2


def test_hover_uses_the_labels_given():
    labels = {"tile": "FILTER", "y": "ROW", "x": "COL", "value": "VALUE"}
    template = F.tiled_heatmap(_maps(), labels=labels).data[0].hovertemplate
    assert all(word in template for word in labels.values())
    assert "customdata[0]" in template and "%{z:.4g}" in template


def test_small_maps_are_drawn_whole_and_large_ones_downsampled_only_for_display():
    small = F.tiled_heatmap(_maps(16, 32, 32))
    assert small.layout.meta["step"] == 1
    big = _maps(64, 64, 64)
    fig = F.tiled_heatmap(big, titles=[f"f{i}" for i in range(64)], labels={"downsampled": "1/{step}"})
    step = fig.layout.meta["step"]
    assert step > 1 and f"1/{step}" in fig.layout.title.text and f"1/{step}" in fig.data[0].hovertemplate
    z, custom = np.asarray(fig.data[0].z), np.asarray(fig.data[0].customdata)
    oy, ox = fig.layout.meta["origins"][9]
    shown = big[9, ::step, ::step]
    np.testing.assert_array_equal(z[oy:oy + shown.shape[0], ox:ox + shown.shape[1]], shown)  # values untouched
    assert custom[oy + 1, ox + 1, 1] == step and custom[oy + 1, ox + 1, 2] == step  # hover: original coordinates
    assert len(fig.to_json()) <= BUDGET
    assert F.tiled_heatmap(big, max_cells=10 ** 9).layout.meta["step"] == 1


def test_image_figure_shows_gray_and_rgb_pixels_unchanged():
    rng = np.random.default_rng(1)
    gray, rgb = rng.random((1, 28, 28), dtype=np.float32), rng.random((3, 32, 32), dtype=np.float32)
    g = valid(F.image_figure(gray, highlight=(3, 4, 3, 3)))
    assert g.data[0].type == "heatmap" and (g.data[0].zmin, g.data[0].zmax) == (0, 1)
    np.testing.assert_array_equal(g.data[0].z, gray[0])
    assert (g.layout.shapes[0].x0, g.layout.shapes[0].y1) == (3.5, 5.5)
    c = valid(F.image_figure(rgb))
    assert c.data[0].type == "image"
    np.testing.assert_array_equal(c.data[0].customdata, rgb.transpose(1, 2, 0))  # hover: the exact values
    np.testing.assert_array_equal(c.data[0].z, np.round(rgb.transpose(1, 2, 0) * 255))  # drawn as 0-255


def test_kernels_are_drawn_per_channel_when_few_and_summed_over_channels_when_many():
    rgb = np.random.default_rng(2).standard_normal((8, 3, 3, 3)).astype(np.float32)
    fig = F.kernels_figure(rgb, titles=[f"f{i}" for i in range(1, 9)], channel_titles=["R", "G", "B"])
    z, origins = np.asarray(fig.data[0].z), fig.layout.meta["origins"]
    oy, ox = origins[1 * 8 + 5]  # channel G of filter 6: rows are channels, columns filters
    np.testing.assert_array_equal(z[oy:oy + 3, ox:ox + 3], rgb[5, 1])
    assert fig.layout.annotations[13].text == "f6·G"
    deep = np.random.default_rng(3).standard_normal((16, 8, 3, 3)).astype(np.float32)
    assert not F.kernels_per_channel(deep.shape)
    fig = F.kernels_figure(deep)
    oy, ox = fig.layout.meta["origins"][7]
    np.testing.assert_allclose(np.asarray(fig.data[0].z)[oy:oy + 3, ox:ox + 3], deep[7].sum(0))


def test_conv_step_shows_patch_kernel_and_products_with_their_numbers():
    rng = np.random.default_rng(4)
    patch, kernel = rng.random((3, 3), dtype=np.float32), rng.standard_normal((3, 3)).astype(np.float32)
    padding = np.zeros((3, 3), bool)
    padding[0] = True
    fig = valid(F.conv_step_figure(patch, kernel, patch * kernel, padding=padding, gray_patch=True))
    assert [t.type for t in fig.data] == ["heatmap"] * 3
    for trace, expected in zip(fig.data, (patch, kernel, patch * kernel)):
        np.testing.assert_array_equal(trace.z, expected)
        assert trace.texttemplate == "%{z:.2f}"
    assert fig.data[2].zmin == -fig.data[2].zmax
    assert len(fig.layout.shapes) == 3 and {s.y0 for s in fig.layout.shapes} == {-0.45}  # top row is padding


def test_relu_figures_share_one_range_and_show_what_torch_computed():
    _, v = digits_trace()
    left, right = F.relu_figures(v["conv1"], v["relu1"], titles=[f"f{i}" for i in range(1, 9)])
    before, after = left.data[0], right.data[0]
    assert before.zmax == after.zmax == pytest.approx(float(np.abs(v["conv1"]).max()))
    z, oy_ox = np.asarray(after.z), right.layout.meta["origins"][3]
    np.testing.assert_array_equal(z[oy_ox[0]:oy_ox[0] + 28, oy_ox[1]:oy_ox[1] + 28], v["relu1"][3])


def test_pool_figures_outline_the_window_and_circle_torch_s_winner():
    _, v = digits_trace()
    before, after = F.pool_figures(v["relu1"], v["pool1"], window=(2, 5, 6))
    _, indices = TF.max_pool2d(torch.from_numpy(v["relu1"])[None], 2, return_indices=True)
    wy, wx = divmod(int(indices[0, 2, 5, 6]), 28)
    oy, ox = before.layout.meta["origins"][2]
    rect, circle = before.layout.shapes
    assert (rect.x0, rect.y0, rect.x1, rect.y1) == (ox + 11.5, oy + 9.5, ox + 13.5, oy + 11.5)
    assert ((circle.x0 + circle.x1) / 2, (circle.y0 + circle.y1) / 2) == (ox + wx, oy + wy)
    oy, ox = after.layout.meta["origins"][2]
    assert (after.layout.shapes[0].x0, after.layout.shapes[0].y0) == (ox + 5.5, oy + 4.5)
    assert after.data[0].zmax == before.data[0].zmax


def test_contribution_map_covers_the_image_cell_for_cell():
    image = np.random.default_rng(6).random((1, 28, 28), dtype=np.float32)
    grid = np.random.default_rng(7).standard_normal((7, 7)).astype(np.float32)
    for overlay in (False, True):
        fig = valid(F.contribution_map_figure(grid, image, overlay=overlay))
        heat = fig.data[-1]
        assert heat.x0 - heat.dx / 2 == -0.5 and heat.x0 + 6.5 * heat.dx == 27.5
        assert heat.zmin == -heat.zmax == -float(np.abs(grid).max())
        assert len(fig.data) == 2 and (heat.xaxis == "x") == overlay


def _all_figures(config: CNNConfig) -> dict[str, go.Figure]:
    """Every stage figure for one image, as a page would draw them."""
    model, v = digits_trace(config=config)
    names, figs = model.stage_names, {}
    figs["input"] = F.image_figure(v["input"])
    figs["pipeline"] = C.pipeline_figure(names, stage_shapes(config), current="conv1")
    for b in range(1, config.blocks + 1):
        conv, relu, pool, prev = v[f"conv{b}"], v[f"relu{b}"], v[f"pool{b}"], v[names[names.index(f"conv{b}") - 1]]
        titles = [f"f{i}" for i in range(1, conv.shape[0] + 1)]
        kernel = getattr(model, f"conv{b}").weight.detach().numpy()
        figs[f"kernels{b}"] = F.kernels_figure(kernel, titles=titles)
        figs[f"conv{b}"] = F.tiled_heatmap(conv, titles=titles, highlight=(0, 1, 1, 1, 1))
        patch = prev[:3, :3, :3]
        figs[f"step{b}"] = F.conv_step_figure(patch, kernel[0, :3], patch * kernel[0, :3])
        figs[f"relu{b}"], figs[f"relu{b}_after"] = F.relu_figures(conv, relu, titles=titles)
        figs[f"pool{b}"], figs[f"pool{b}_after"] = F.pool_figures(relu, pool, window=(0, 0, 0), titles=titles)
    last = v[names[-4]]
    figs["flatten"] = C.flatten_figure(v["flatten"], last.shape, chosen=0)
    weight = model.dense.weight.detach().numpy()
    contributions = weight[0] * v["flatten"]
    top = np.argsort(-np.abs(contributions))[:10]
    figs["scores"] = C.scores_figure(v["dense"], config.classes, chosen=0)
    figs["contributions"] = C.contributions_figure(contributions[top], [f"#{i}" for i in top])
    figs["contribution_map"] = F.contribution_map_figure(contributions.reshape(last.shape).sum(0), v["input"])
    exps = np.exp(v["dense"] - v["dense"].max())
    figs["probabilities"] = C.probabilities_figure(v["output"], config.classes, predicted=0)
    figs["softmax"] = C.softmax_table_figure(config.classes, v["dense"], exps, v["output"])
    return figs


@pytest.mark.parametrize("config", [
    CNNConfig(),  # digits: 8x28x28, 16x14x14, 16x7x7, 784, 10
    CNNConfig(in_channels=3, input_size=32, filters=(16, 32), classes=("circle", "square", "triangle")),
    CNNConfig(in_channels=3, input_size=64, filters=(32, 64), classes=tuple("abcdef")),  # photos, 64x64x64 maps
], ids=["digits", "shapes", "photos"])
def test_every_stage_figure_is_valid_plotly_and_under_the_payload_budget(config):
    per_stage: dict[str, int] = {}
    for name, fig in _all_figures(config).items():
        valid(fig)
        size = len(fig.to_json())
        assert size <= BUDGET, f"{name}: {size} bytes"
        assert json.loads(fig.to_json())["layout"]["height"] > 0, name
        stage = name.removesuffix("_after")  # ReLU and pooling draw two figures in one stage
        per_stage[stage] = per_stage.get(stage, 0) + size
    assert max(per_stage.values()) <= BUDGET, per_stage


@pytest.mark.parametrize("shape", [(8, 28, 28), (16, 28, 28), (32, 7, 7), (64, 64, 64), (3, 4, 4)])
def test_tile_labels_have_room_above_their_tiles_even_in_the_narrowest_column(shape):
    fig = F.tiled_heatmap(_maps(*shape), titles=[f"f{i}" for i in range(1, shape[0] + 1)])
    meta, columns = fig.layout.meta, np.asarray(fig.data[0].z).shape[1]
    px_per_cell = min(meta["cell_px"], F.NARROWEST_PX / columns)  # square cells, the figure squeezed to fit
    assert meta["gap_y"] * px_per_cell >= F.LABEL_PX
    assert len(fig.to_json()) <= BUDGET
