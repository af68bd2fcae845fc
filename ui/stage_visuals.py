"""Each stage's visual, drawn from this picture's numbers (computed in `imageai`, never here)."""
from __future__ import annotations

import numpy as np
import streamlit as st

from imageai import explain, figures
from imageai.i18n import catalog, t
from imageai.model import POOL_SIZE
from imageai.modelfile import LoadedModel
from imageai.pipeline import Explanation

CHART_CONFIG = {"displayModeBar": False, "scrollZoom": False}
SHOWN_CHANNELS = 3  # a conv step over many input channels draws only the ones that contribute most


def _labels(lang: str) -> dict[str, str]:
    return {k.removeprefix("fig.label."): v for k, v in catalog(lang).items() if k.startswith("fig.label.")}


def _tiles(lang: str, n: int, kind: str = "filter") -> list[str]:
    return [t(lang, f"fig.tile.{kind}", n=i + 1) for i in range(n)]


def _chart(fig, key: str) -> None:
    st.plotly_chart(fig, key=key, config=CHART_CONFIG, width="stretch")


def _slider(lang: str, label: str, size: int, key: str, one_based: bool = False) -> int:
    """A position picker 0..size-1 (shown 1..size when one_based) that survives reruns and stage changes."""
    if size <= 1:
        return 0
    low = 1 if one_based else 0
    value = st.slider(t(lang, label), low, size - 1 + low, key=key)
    return int(value) - low


def draw(lang: str, kind: str, stage: str, loaded: LoadedModel, explanation: Explanation) -> None:
    {"input": _input, "conv": _conv, "relu": _relu, "pool": _pool, "flatten": _flatten,
     "dense": _dense, "output": _output}[kind](lang, stage, loaded, explanation)


def _input(lang: str, stage: str, loaded: LoadedModel, ex: Explanation) -> None:
    pixels = ex.prepared.pixels
    c, s = pixels.shape[0], pixels.shape[1]
    st.markdown(t(lang, "stage.input.live", channels=c, size=s, count=c * s * s))
    left, right = st.columns(2)
    left.image(ex.prepared.original, caption=t(lang, "explore.original"), width="stretch")
    with right:
        _chart(figures.image_figure(pixels, title=t(lang, "fig.title.input"), labels=_labels(lang)), "fig_input")
    if c == 3:
        names = [t(lang, f"fig.tile.{n}") for n in ("red", "green", "blue")]
        _chart(figures.tiled_heatmap(pixels, titles=names, diverging=False, colorscale=figures.GRAY, zmax=1.0,
                                     title=t(lang, "fig.title.channels"),
                                     labels=_labels(lang)), "fig_input_channels")
    st.caption(t(lang, "stage.input.normalised"))


def _conv(lang: str, stage: str, loaded: LoadedModel, ex: Explanation) -> None:
    maps = ex.trace.values[stage]
    weight, _ = ex.trace.weights[stage]
    n, h, w = maps.shape
    cols = st.columns(3)
    with cols[0]:
        f = _slider(lang, "explore.pick_filter", n, f"pick_{stage}_filter", one_based=True)
    with cols[1]:
        y = _slider(lang, "explore.pick_row", h, f"pick_{stage}_y")
    with cols[2]:
        x = _slider(lang, "explore.pick_col", w, f"pick_{stage}_x")
    step = explain.conv_step(ex.trace, stage, f, y, x)
    st.markdown(t(lang, "stage.conv.live", filter=f + 1, y=y, x=x, total=step.total, bias=step.bias,
                  value=step.value))
    patch, kernel, products, cin = step.patch, step.kernel, step.products, step.patch.shape[0]
    if cin > SHOWN_CHANNELS:
        keep = np.sort(np.argsort(-np.abs(products).sum(axis=(1, 2)))[:SHOWN_CHANNELS])
        patch, kernel, products = patch[keep], kernel[keep], products[keep]
        st.caption(t(lang, "stage.conv.live_channels", channels=cin, shown=SHOWN_CHANNELS))
    _chart(figures.conv_step_figure(patch, kernel, products, padding=step.padding, gray_patch=stage == "conv1",
                                    title=t(lang, "fig.title.conv_step"), labels=_labels(lang)), f"fig_{stage}_step")
    if bool(step.padding.any()):
        st.caption(t(lang, "stage.conv.padding"))
    st.markdown(t(lang, "stage.conv.maps", filters=n, height=h, width=w))
    _chart(figures.tiled_heatmap(maps, titles=_tiles(lang, n), highlight=(f, y, x, 1, 1),
                                 title=t(lang, "fig.title.feature_maps", filters=n), labels=_labels(lang)),
           f"fig_{stage}_maps")
    summed = not figures.kernels_per_channel(weight.shape)
    title = (t(lang, "fig.title.kernels_summed", filters=n, channels=weight.shape[1]) if summed
             else t(lang, "fig.title.kernels", filters=n))
    _chart(figures.kernels_figure(weight, titles=_tiles(lang, n), title=title, labels=_labels(lang)),
           f"fig_{stage}_kernels")
    if summed:
        st.caption(t(lang, "stage.conv.kernels_summed", channels=weight.shape[1]))


def _relu(lang: str, stage: str, loaded: LoadedModel, ex: Explanation) -> None:
    summary = explain.relu_summary(ex.trace, stage)
    st.markdown(t(lang, "stage.relu.live", zeroed=summary.zeroed_fraction))
    before, after = ex.trace.values[ex.trace.previous(stage)], ex.trace.values[stage]
    view = figures.relu_figures(before, after, titles=_tiles(lang, before.shape[0]),
                                title_before=t(lang, "fig.title.relu_before"),
                                title_after=t(lang, "fig.title.relu_after"), labels=_labels(lang))
    left, right = st.columns(2)
    with left:
        _chart(view.before, f"fig_{stage}_before")
    with right:
        _chart(view.after, f"fig_{stage}_after")
    st.dataframe(
        {t(lang, "fig.label.tile"): _tiles(lang, before.shape[0]),
         t(lang, "explore.zeroed_share"): [f"{v:.0%}" for v in summary.channel_fractions]},
        hide_index=True, key=f"table_{stage}",
    )


def _pool(lang: str, stage: str, loaded: LoadedModel, ex: Explanation) -> None:
    after = ex.trace.values[stage]
    before = ex.trace.values[ex.trace.previous(stage)]
    n, h, w = after.shape
    cols = st.columns(3)
    with cols[0]:
        c = _slider(lang, "explore.pick_filter", n, f"pick_{stage}_filter", one_based=True)
    with cols[1]:
        y = _slider(lang, "explore.pick_row", h, f"pick_{stage}_y")
    with cols[2]:
        x = _slider(lang, "explore.pick_col", w, f"pick_{stage}_x")
    window = explain.pool_window(ex.trace, stage, c, y, x)
    size = explain.pool_summary(ex.trace, stage)
    st.markdown(t(lang, "stage.pool.live", value=window.value))
    st.markdown(t(lang, "stage.pool.live_size", before=_shape(size.before), after=_shape(size.after),
                  factor=size.factor, kept=size.after[1] * size.after[2]))
    left_fig, right_fig = figures.pool_figures(
        before, after, window=(c, y, x), winner=window.winner, size=POOL_SIZE, titles=_tiles(lang, n),
        title_before=t(lang, "fig.title.pool_before"), title_after=t(lang, "fig.title.pool_after"),
        labels=_labels(lang))
    left, right = st.columns([2, 1])
    with left:
        _chart(left_fig, f"fig_{stage}_before")
    with right:
        _chart(right_fig, f"fig_{stage}_after")


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape)


def _flatten(lang: str, stage: str, loaded: LoadedModel, ex: Explanation) -> None:
    summary = explain.flatten_summary(ex.trace)
    index = _slider(lang, "explore.pick_index", summary.length, "pick_flatten_index")
    c, y, x = explain.unflatten_index(summary.shape, index)
    st.markdown(t(lang, "stage.flatten.live", channels=summary.shape[0], height=summary.shape[1],
                  width=summary.shape[2], length=summary.length, index=index, channel=c + 1, y=y, x=x))
    _chart(figures.flatten_figure(ex.trace.values[stage], summary.shape, chosen=index, labels=_labels(lang)),
           "fig_flatten")


def _dense(lang: str, stage: str, loaded: LoadedModel, ex: Explanation) -> None:
    classes = list(loaded.classes)
    if st.session_state.get("pick_dense_class") not in range(len(classes)):
        st.session_state.pick_dense_class = ex.prediction
    chosen = st.selectbox(t(lang, "explore.pick_class"), range(len(classes)), key="pick_dense_class",
                          format_func=lambda i: classes[i])
    detail = explain.dense_explain(ex.trace, chosen)
    st.markdown(t(lang, "stage.dense.live", label=classes[chosen], count=detail.contributions.size,
                  total=float(detail.contributions.sum()), bias=detail.bias, score=detail.score))
    _chart(figures.scores_figure(ex.trace.values["dense"], classes, chosen=chosen,
                                 title=t(lang, "fig.title.scores"), labels=_labels(lang)), "fig_dense_scores")
    top = sorted([*detail.top_positive, *detail.top_negative], key=lambda c: -abs(c.value))
    origins = [t(lang, "fig.origin", channel=c.origin[0] + 1, y=c.origin[1], x=c.origin[2]) for c in top]
    _chart(figures.contributions_figure(np.array([c.value for c in top]), origins,
                                        title=t(lang, "fig.title.contributions", label=classes[chosen]),
                                        labels=_labels(lang)), "fig_dense_contributions")
    block = POOL_SIZE ** loaded.config.blocks
    st.markdown(t(lang, "stage.dense.live_map", block=block))
    _chart(figures.contribution_map_figure(
        detail.grid, ex.prepared.pixels, titles=(t(lang, "fig.title.map_picture"), t(lang, "fig.title.map_votes")),
        title=t(lang, "fig.title.contribution_map", label=classes[chosen]), labels=_labels(lang)), "fig_dense_map")


def _output(lang: str, stage: str, loaded: LoadedModel, ex: Explanation) -> None:
    soft = explain.softmax_explain(ex.trace.values["dense"])
    classes = list(loaded.classes)
    st.markdown(t(lang, "stage.output.live", label=classes[ex.prediction], probability=ex.probability))
    _chart(figures.probabilities_figure(soft.probabilities, classes, predicted=ex.prediction,
                                        title=t(lang, "fig.title.probabilities"), labels=_labels(lang)),
           "fig_output_probs")
    st.markdown(t(lang, "stage.output.live_sum", total=soft.total))
    _chart(figures.softmax_table_figure(classes, soft.scores, soft.exps, soft.probabilities,
                                        labels=_labels(lang)), "fig_output_table")
