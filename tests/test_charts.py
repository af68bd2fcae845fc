"""Bars, table and pipeline diagram: they show exactly the numbers given, in torch's order, and class names stay text."""
import numpy as np
import torch

from imageai import charts as C
from imageai import figures as F
from imageai.model import CNNConfig, stage_names, stage_shapes
from tests.figure_helpers import digits_trace, valid


def test_flatten_bars_follow_torch_s_order_and_name_each_element_s_origin():
    _, v = digits_trace()
    fig = C.flatten_figure(v["flatten"], v["pool2"].shape, chosen=200)
    trace = fig.data[0]
    np.testing.assert_array_equal(trace.y, v["flatten"])
    custom = np.asarray(trace.customdata)
    for i in (0, 48, 49, 200, 783):
        c, y, x = custom[i]
        assert v["pool2"][c - 1, y, x] == v["flatten"][i]
    colors = np.asarray(trace.marker.color)
    assert (colors[:49] == 0).all() and (colors[49:98] == 1).all()  # alternating per channel
    assert fig.layout.shapes[0].x0 == 200


def test_dense_and_output_bars_show_the_given_numbers_and_highlight_the_choice():
    rng = np.random.default_rng(5)
    z = rng.standard_normal(10).astype(np.float32)
    scores = valid(C.scores_figure(z, list("0123456789"), chosen=4))
    np.testing.assert_array_equal(scores.data[0].y, z)
    assert list(scores.data[0].marker.line.width) == [3 if i == 4 else 0 for i in range(10)]
    values = np.array([0.5, -0.3, 0.2])
    contrib = valid(C.contributions_figure(values, ["c3 (y4, x2)", "c1 (y0, x0)", "c2 (y1, x1)"]))
    assert list(contrib.data[0].marker.color) == [F.POSITIVE, F.NEGATIVE, F.POSITIVE]
    p = torch.softmax(torch.from_numpy(z), 0).numpy()
    probs = valid(C.probabilities_figure(p, list("0123456789"), predicted=int(p.argmax()), sort=True))
    assert list(probs.data[0].y)[0] == str(int(p.argmax())) and probs.data[0].marker.color[0] == F.ACCENT
    assert list(probs.data[0].x) == sorted(p, reverse=True)
    exps = np.exp(z - z.max())
    table = valid(C.softmax_table_figure(list("0123456789"), z, exps, exps / exps.sum()))
    cells = table.data[0].cells.values
    assert cells[3][-1] == f"{exps.sum():.4f}" and cells[4][-1] == "100%" and cells[2][int(z.argmax())] == "0.000"


def test_pipeline_draws_one_box_per_stage_with_its_shape_and_fills_the_current_one():
    config = CNNConfig()
    names = stage_names(config.blocks)
    fig = valid(C.pipeline_figure(names, stage_shapes(config), current="pool1"))
    assert len(fig.layout.shapes) == len(names)
    texts = [a.text for a in fig.layout.annotations]
    assert "8×28×28" in texts and "16×7×7" in texts and "784" in texts
    filled = [s for s in fig.layout.shapes if s.fillcolor != "rgba(0,0,0,0)"]
    assert len(filled) == 1 and filled[0].fillcolor == F.KIND_COLORS["pool"]
    wrapped = C.pipeline_figure(stage_names(4), stage_shapes(CNNConfig(input_size=32, filters=(2, 3, 4, 5))))
    assert min(s.y0 for s in wrapped.layout.shapes) < -1  # 17 stages wrap onto a second row


def test_class_names_reach_plotly_as_escaped_plain_text():
    classes = ["<a href='http://evil'>x</a>", "ok"]
    scores = np.array([1.0, -1.0], np.float32)
    probs = np.array([0.88, 0.12], np.float32)
    figs = [C.scores_figure(scores, classes), C.probabilities_figure(probs, classes),
            C.softmax_table_figure(classes, scores, np.exp(scores - 1), probs)]
    for fig in figs:
        payload = fig.to_json()
        assert "<a href" not in payload and "&lt;a href" in payload
