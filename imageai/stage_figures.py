"""Each stage's figures for one explanation, titled in the user's language: drawn by the Explore page, timed by bench/."""
from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from imageai import charts, explain, figures
from imageai.explain import ConvStep, DenseExplain, PoolWindow, SoftmaxExplain
from imageai.i18n import catalog, t
from imageai.model import POOL_SIZE, stage_kind
from imageai.modelfile import LoadedModel
from imageai.pipeline import Explanation

SHOWN_CHANNELS = 3  # a conv step over many input channels draws only the ones that contribute most


def labels(lang: str) -> dict[str, str]:
    return {k.removeprefix("fig.label."): v for k, v in catalog(lang).items() if k.startswith("fig.label.")}


def tiles(lang: str, n: int, kind: str = "filter") -> list[str]:
    return [t(lang, f"fig.tile.{kind}", n=i + 1) for i in range(n)]


def channel_names(lang: str, n: int) -> list[str]:
    """The input channels a first layer reads: R, G, B for a colour picture, else c1, c2, ..."""
    return [t(lang, f"fig.tile.{c}") for c in ("red", "green", "blue")] if n == 3 else tiles(lang, n, "channel")


def strongest_cell(maps: np.ndarray) -> tuple[int, int]:
    """(y, x) of the first map's largest value: where a conv or pool stage first points, not a padded corner."""
    y, x = np.unravel_index(int(np.argmax(maps[0])), maps[0].shape)  # maps: (C, H, W)
    return int(y), int(x)


def stage_data(stage: str, ex: Explanation) -> dict[str, Any]:
    """A stage's numbers as the page first shows them: filter 1 at its strongest cell, the predicted class."""
    trace = ex.trace
    kind = stage_kind(stage)
    if kind == "conv":
        return {"step": explain.conv_step(trace, stage, 0, *strongest_cell(trace.values[stage]))}
    if kind == "relu":
        return {"summary": explain.relu_summary(trace, stage)}
    if kind == "pool":
        return {"window": explain.pool_window(trace, stage, 0, *strongest_cell(trace.values[stage])),
                "size": explain.pool_summary(trace, stage)}
    if kind == "flatten":
        return {"summary": explain.flatten_summary(trace), "index": 0}
    if kind == "dense":
        return {"detail": explain.dense_explain(trace, ex.prediction)}
    if kind == "output":
        return {"softmax": explain.softmax_explain(trace.values["dense"])}
    return {}


def stage_figures(lang: str, stage: str, loaded: LoadedModel, ex: Explanation,
                  data: dict[str, Any] | None = None) -> list[go.Figure]:
    """Every figure of one stage, in the page's order; `data` is `stage_data`'s record (made when omitted)."""
    data = stage_data(stage, ex) if data is None else data
    kind = stage_kind(stage)
    if kind == "input":
        return input_figures(lang, ex)
    if kind == "conv":
        return conv_figures(lang, stage, ex, data["step"])
    if kind == "relu":
        return relu_figures(lang, stage, ex)
    if kind == "pool":
        return pool_figures(lang, stage, ex, data["window"])
    if kind == "flatten":
        return flatten_figures(lang, ex, data["index"])
    if kind == "dense":
        return dense_figures(lang, loaded, ex, data["detail"])
    return output_figures(lang, loaded, ex, data["softmax"])


def input_figures(lang: str, ex: Explanation) -> list[go.Figure]:
    """The normalised input; for RGB also its three channels side by side."""
    pixels = ex.prepared.pixels  # (C, S, S) in [0, 1]
    shown = [figures.image_figure(pixels, title=t(lang, "fig.title.input"), labels=labels(lang))]
    if pixels.shape[0] == 3:
        shown.append(figures.tiled_heatmap(pixels, titles=channel_names(lang, 3), diverging=False,
                                           colorscale=figures.GRAY, zmax=1.0, title=t(lang, "fig.title.channels"),
                                           labels=labels(lang)))
    return shown


def conv_shown_channels(step: ConvStep) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(patch, kernel, products), cut to the SHOWN_CHANNELS input channels that contribute most."""
    patch, kernel, products = step.patch, step.kernel, step.products  # (Cin, 3, 3) each
    if patch.shape[0] > SHOWN_CHANNELS:
        keep = np.sort(np.argsort(-np.abs(products).sum(axis=(1, 2)))[:SHOWN_CHANNELS])
        patch, kernel, products = patch[keep], kernel[keep], products[keep]
    return patch, kernel, products


def conv_figures(lang: str, stage: str, ex: Explanation, step: ConvStep) -> list[go.Figure]:
    """[the picked multiply-and-add step, the feature maps with the pick marked, the kernels]."""
    maps = ex.trace.values[stage]  # (F, H, W)
    weight, _ = ex.trace.weights[stage]  # (F, Cin, 3, 3)
    n = maps.shape[0]
    patch, kernel, products = conv_shown_channels(step)
    step_fig = figures.conv_step_figure(patch, kernel, products, padding=step.padding,
                                        gray_patch=stage == "conv1", title=t(lang, "fig.title.conv_step"),
                                        labels=labels(lang))
    maps_fig = figures.tiled_heatmap(maps, titles=tiles(lang, n), highlight=(step.filter, step.y, step.x, 1, 1),
                                     title=t(lang, "fig.title.feature_maps", filters=n), labels=labels(lang))
    summed = not figures.kernels_per_channel(weight.shape)
    title = (t(lang, "fig.title.kernels_summed", filters=n, channels=weight.shape[1]) if summed
             else t(lang, "fig.title.kernels", filters=n))
    names = channel_names(lang, weight.shape[1]) if stage == "conv1" else tiles(lang, weight.shape[1], "channel")
    kernels_fig = figures.kernels_figure(weight, titles=tiles(lang, n), channel_titles=names, title=title,
                                         labels=labels(lang))
    return [step_fig, maps_fig, kernels_fig]


def relu_figures(lang: str, stage: str, ex: Explanation) -> list[go.Figure]:
    """[before ReLU, after ReLU]."""
    before, after = ex.trace.values[ex.trace.previous(stage)], ex.trace.values[stage]  # (C, H, W) each
    return list(figures.relu_figures(before, after, titles=tiles(lang, before.shape[0]),
                                     title_before=t(lang, "fig.title.relu_before"),
                                     title_after=t(lang, "fig.title.relu_after"), labels=labels(lang)))


def pool_figures(lang: str, stage: str, ex: Explanation, window: PoolWindow) -> list[go.Figure]:
    """[the maps entering the pool with the picked window, the pooled maps]."""
    after = ex.trace.values[stage]  # (C, H/2, W/2)
    before = ex.trace.values[ex.trace.previous(stage)]  # (C, H, W)
    left, right = figures.pool_figures(
        before, after, window=(window.channel, window.y, window.x), winner=window.winner, size=POOL_SIZE,
        titles=tiles(lang, after.shape[0]), title_before=t(lang, "fig.title.pool_before"),
        title_after=t(lang, "fig.title.pool_after"), labels=labels(lang))
    return [left, right]


def flatten_figures(lang: str, ex: Explanation, index: int) -> list[go.Figure]:
    """[the flattened vector with element `index` marked]."""
    shape = explain.flatten_summary(ex.trace).shape
    return [charts.flatten_figure(ex.trace.values["flatten"], shape, chosen=index, title=t(lang, "fig.title.flatten"),
                                  labels=labels(lang))]


def dense_figures(lang: str, loaded: LoadedModel, ex: Explanation, detail: DenseExplain) -> list[go.Figure]:
    """[every class's score, the chosen class's largest contributions, where in the picture they come from]."""
    classes = list(loaded.classes)
    chosen = detail.class_index
    name = figures.plain(classes[chosen])  # a user's class name, inside a plotly title
    scores = charts.scores_figure(ex.trace.values["dense"], classes, chosen=chosen,
                                   title=t(lang, "fig.title.scores"), labels=labels(lang))
    top = sorted([*detail.top_positive, *detail.top_negative], key=lambda c: -abs(c.value))
    origins = [t(lang, "fig.origin", channel=c.origin[0] + 1, y=c.origin[1], x=c.origin[2]) for c in top]
    contributions = charts.contributions_figure(
        np.array([c.value for c in top]), origins, title=t(lang, "fig.title.contributions", label=name),
        labels=labels(lang))
    where = figures.contribution_map_figure(
        detail.grid, ex.prepared.pixels, titles=(t(lang, "fig.title.map_picture"), t(lang, "fig.title.map_votes")),
        title=t(lang, "fig.title.contribution_map", label=name), labels=labels(lang))
    return [scores, contributions, where]


def output_figures(lang: str, loaded: LoadedModel, ex: Explanation, soft: SoftmaxExplain) -> list[go.Figure]:
    """[the probabilities, the softmax worked out as a table]."""
    classes = list(loaded.classes)
    probs = charts.probabilities_figure(soft.probabilities, classes, predicted=ex.prediction,
                                         title=t(lang, "fig.title.probabilities"), labels=labels(lang))
    table = charts.softmax_table_figure(classes, soft.scores, soft.exps, soft.probabilities,
                                        predicted=ex.prediction, title=t(lang, "fig.title.softmax"),
                                        labels=labels(lang))
    return [probs, table]
