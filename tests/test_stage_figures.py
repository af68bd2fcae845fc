"""Stage figures as the Explore page shows them: the page's set and order per stage, picks at their first values."""
from __future__ import annotations

import io

import numpy as np
import plotly.graph_objects as go
import plotly.io
import plotly.tools
import pytest
import torch
from PIL import Image, ImageDraw

from imageai import explain
from imageai.model import CNN, CNNConfig, stage_kind
from imageai.modelfile import InputSpec, LoadedModel
from imageai.pipeline import explain_array, explain_bytes
from imageai.registry import bundled_path, load_bundled
from imageai.stage_figures import SHOWN_CHANNELS, conv_figures, conv_shown_channels, stage_data, stage_figures

# Figures per stage kind, in the order the page draws them (ui/stage_visuals.py).
PER_KIND = {"conv": 3, "relu": 2, "pool": 2, "flatten": 1, "dense": 3, "output": 2}


def _loaded(channels: int, filters: tuple[int, ...]) -> LoadedModel:
    torch.manual_seed(0)
    config = CNNConfig(channels, 16, filters, tuple("abcd"))
    spec = InputSpec("resize", channels, 16, (0.5,) * channels, (0.25,) * channels)
    return LoadedModel(name="test", model=CNN(config).eval(), input_spec=spec)


def _explanation(loaded: LoadedModel):
    shape = (16, 16) if loaded.input_spec.channels == 1 else (16, 16, 3)
    return explain_array(loaded, np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8))


@pytest.mark.parametrize("channels", [1, 3])
def test_every_stage_gets_the_pages_figures_in_both_languages(channels):
    loaded = _loaded(channels, (4, 8))
    ex = _explanation(loaded)
    for lang in ("en", "ko"):
        for stage in ex.trace.stage_names:
            figs = stage_figures(lang, stage, loaded, ex)
            expected = (1 if channels == 1 else 2) if stage == "input" else PER_KIND[stage_kind(stage)]
            assert len(figs) == expected and all(isinstance(f, go.Figure) for f in figs), stage


def test_colour_kernels_name_their_channel_and_the_softmax_table_marks_the_prediction():
    loaded = _loaded(3, (4, 8))
    ex = _explanation(loaded)
    kernels = stage_figures("en", "conv1", loaded, ex)[2]
    titles = [a.text for a in kernels.layout.annotations]
    assert titles[:4] == ["f1·R", "f2·R", "f3·R", "f4·R"] and titles[-1] == "f4·B"  # a row per input channel
    table = stage_figures("en", "output", loaded, ex)[1].data[0]
    fills = table.cells.fill.color[0]
    assert [i for i, colour in enumerate(fills[:-1]) if colour != "rgba(0,0,0,0)"] == [ex.prediction]


def test_first_view_picks_filter_1_at_its_strongest_cell_and_the_predicted_class():
    loaded = _loaded(1, (4, 8))
    ex = _explanation(loaded)
    conv2, pool1 = ex.trace.values["conv2"], ex.trace.values["pool1"]  # (8, 8, 8), (4, 4, 4)
    step = stage_data("conv2", ex)["step"]
    assert step.filter == 0 and conv2[0, step.y, step.x] == conv2[0].max()
    assert step.value == pytest.approx(float(conv2[0].max()), abs=1e-5)
    window = stage_data("pool1", ex)["window"]
    assert window.channel == 0 and window.value == pytest.approx(float(pool1[0].max()))
    assert stage_data("dense", ex)["detail"].class_index == ex.prediction
    soft = stage_data("output", ex)["softmax"]
    np.testing.assert_allclose(soft.probabilities, ex.trace.values["output"], rtol=1e-5, atol=1e-6)
    bars = stage_figures("en", "output", loaded, ex)[0].data[0]
    assert sorted(np.asarray(bars.x).tolist()) == pytest.approx(sorted(ex.trace.values["output"].tolist()), abs=1e-6)


def test_conv_step_over_many_channels_shows_the_ones_that_contribute_most_in_channel_order():
    loaded = _loaded(1, (4, 8))
    ex = _explanation(loaded)
    step = explain.conv_step(ex.trace, "conv2", 1, 3, 2)  # 4 input channels: more than are shown
    assert step.patch.shape[0] > SHOWN_CHANNELS
    patch, kernel, products = conv_shown_channels(step)
    keep = sorted(np.argsort(-np.abs(step.products).sum(axis=(1, 2)))[:SHOWN_CHANNELS])
    np.testing.assert_array_equal(patch, step.patch[keep])
    np.testing.assert_array_equal(kernel, step.kernel[keep])
    np.testing.assert_array_equal(products, step.products[keep])
    maps = conv_figures("en", "conv2", ex, step)[1]
    assert len(maps.layout.shapes) == 1  # the picked position, outlined on the feature maps


@pytest.mark.skipif(not bundled_path("digits").exists(), reason="bundled models not built")
def test_each_stage_first_view_on_the_explore_page_sends_exactly_these_figures():
    from streamlit.testing.v1 import AppTest

    img = Image.new("RGB", (200, 200), (235, 230, 220))
    ImageDraw.Draw(img).line([(50, 50), (150, 50), (90, 170)], fill=(20, 20, 30), width=14)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    at = AppTest.from_file("../app.py", default_timeout=180)
    at.session_state["lang"] = "en"
    at.run()
    at.switch_page("pages/views/explore.py")
    at.run()
    at.file_uploader(key="explore_upload").set_value(("seven.png", buf.getvalue(), "image/png"))
    at.run()
    loaded = load_bundled("digits")
    ex = explain_bytes(loaded, buf.getvalue())
    for stage in ex.trace.stage_names:
        at.session_state["explore_stage"] = stage
        at.run()
        sent = [chart.proto.spec for chart in at.get("plotly_chart")]
        ours = [plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(f, True), validate=False)
                for f in stage_figures("en", stage, loaded, ex)]
        assert sent == ours, stage
