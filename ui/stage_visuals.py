"""Each stage's visual, drawn from this picture's numbers (computed in `imageai`, never here)."""
from __future__ import annotations

import numpy as np
import streamlit as st

from imageai import explain, figures
from imageai.figures import shape_text
from imageai import stage_figures as sf
from imageai.i18n import t
from imageai.model import POOL_SIZE
from imageai.modelfile import LoadedModel
from imageai.pipeline import Explanation
from ui.user_text import md_escape

CHART_CONFIG = {"displayModeBar": False, "scrollZoom": False}


def _chart(fig, key: str) -> None:
    st.plotly_chart(fig, key=key, config=CHART_CONFIG, width="stretch")


def _slider(lang: str, label: str, size: int, key: str, one_based: bool = False) -> int:
    """A position picker 0..size-1 (shown 1..size when one_based) that survives reruns and stage changes."""
    if size <= 1:
        return 0
    low = 1 if one_based else 0
    value = st.slider(t(lang, label), low, size - 1 + low, key=key)
    return int(value) - low


def _position(lang: str, stage: str, maps: np.ndarray) -> tuple[int, int, int]:
    """Three sliders in a row: filter (shown 1-based), row, column; they start at filter 1's strongest cell."""
    n, h, w = maps.shape
    _start_at_strongest(stage, maps)
    cols = st.columns(3)
    with cols[0]:
        f = _slider(lang, "explore.pick_filter", n, f"pick_{stage}_filter", one_based=True)
    with cols[1]:
        y = _slider(lang, "explore.pick_row", h, f"pick_{stage}_y")
    with cols[2]:
        x = _slider(lang, "explore.pick_col", w, f"pick_{stage}_x")
    return f, y, x


def _start_at_strongest(stage: str, maps: np.ndarray) -> None:
    """First look at a stage: filter 1 at its strongest response, not the (padded) corner."""
    if f"pick_{stage}_y" not in st.session_state and maps.size:
        st.session_state[f"pick_{stage}_y"], st.session_state[f"pick_{stage}_x"] = sf.strongest_cell(maps)


def draw(lang: str, kind: str, stage: str, loaded: LoadedModel, explanation: Explanation) -> None:
    {"input": _input, "conv": _conv, "relu": _relu, "pool": _pool, "flatten": _flatten,
     "dense": _dense, "output": _output}[kind](lang, stage, loaded, explanation)


def _input(lang: str, stage: str, loaded: LoadedModel, ex: Explanation) -> None:
    pixels = ex.prepared.pixels
    c, s = pixels.shape[0], pixels.shape[1]
    st.markdown(t(lang, "stage.input.live", channels=c, size=s, count=c * s * s))
    shown = sf.input_figures(lang, ex)
    left, right = st.columns(2)
    left.image(ex.prepared.original, caption=t(lang, "explore.original"), width="stretch")
    with right:
        _chart(shown[0], "fig_input")
    if len(shown) > 1:
        _chart(shown[1], "fig_input_channels")
    st.caption(t(lang, "stage.input.normalised"))


def _conv(lang: str, stage: str, loaded: LoadedModel, ex: Explanation) -> None:
    weight, _ = ex.trace.weights[stage]
    n, h, w = ex.trace.values[stage].shape
    f, y, x = _position(lang, stage, ex.trace.values[stage])
    step = explain.conv_step(ex.trace, stage, f, y, x)
    st.markdown(t(lang, "stage.conv.live", filter=f + 1, y=y, x=x, total=step.total, bias=step.bias,
                  value=step.value))
    step_fig, maps_fig, kernels_fig = sf.conv_figures(lang, stage, ex, step)
    cin = step.patch.shape[0]
    if cin > sf.SHOWN_CHANNELS:
        st.caption(t(lang, "stage.conv.live_channels", channels=cin, shown=sf.SHOWN_CHANNELS))
    _chart(step_fig, f"fig_{stage}_step")
    if bool(step.padding.any()):
        st.caption(t(lang, "stage.conv.padding"))
    st.markdown(t(lang, "stage.conv.maps", filters=n, height=h, width=w))
    _chart(maps_fig, f"fig_{stage}_maps")
    _chart(kernels_fig, f"fig_{stage}_kernels")
    if not figures.kernels_per_channel(weight.shape):
        st.caption(t(lang, "stage.conv.kernels_summed", channels=weight.shape[1]))


def _relu(lang: str, stage: str, loaded: LoadedModel, ex: Explanation) -> None:
    summary = explain.relu_summary(ex.trace, stage)
    st.markdown(t(lang, "stage.relu.live", zeroed=summary.zeroed_fraction))
    before_fig, after_fig = sf.relu_figures(lang, stage, ex)
    left, right = st.columns(2)
    with left:
        _chart(before_fig, f"fig_{stage}_before")
    with right:
        _chart(after_fig, f"fig_{stage}_after")
    channels = ex.trace.values[stage].shape[0]
    st.dataframe(
        {t(lang, "fig.label.tile"): sf.tiles(lang, channels),
         t(lang, "explore.zeroed_share"): [f"{v:.0%}" for v in summary.channel_fractions]},
        hide_index=True, key=f"table_{stage}",
    )


def _pool(lang: str, stage: str, loaded: LoadedModel, ex: Explanation) -> None:
    c, y, x = _position(lang, stage, ex.trace.values[stage])
    window = explain.pool_window(ex.trace, stage, c, y, x)
    size = explain.pool_summary(ex.trace, stage)
    st.markdown(t(lang, "stage.pool.live", value=window.value))
    st.markdown(t(lang, "stage.pool.live_size", before=shape_text(size.before), after=shape_text(size.after),
                  factor=size.factor, kept=size.after[1] * size.after[2]))
    before_fig, after_fig = sf.pool_figures(lang, stage, ex, window)
    _chart(before_fig, f"fig_{stage}_before")
    half, _ = st.columns(2)  # half as wide as the maps above, as the pooled maps are: cells keep their size
    with half:
        _chart(after_fig, f"fig_{stage}_after")


def _flatten(lang: str, stage: str, loaded: LoadedModel, ex: Explanation) -> None:
    summary = explain.flatten_summary(ex.trace)
    index = _slider(lang, "explore.pick_index", summary.length, "pick_flatten_index")
    c, y, x = explain.unflatten_index(summary.shape, index)
    st.markdown(t(lang, "stage.flatten.live", channels=summary.shape[0], height=summary.shape[1],
                  width=summary.shape[2], length=summary.length, index=index, channel=c + 1, y=y, x=x))
    _chart(sf.flatten_figures(lang, ex, index)[0], "fig_flatten")


def _dense(lang: str, stage: str, loaded: LoadedModel, ex: Explanation) -> None:
    classes = list(loaded.classes)
    if st.session_state.get("pick_dense_class") not in range(len(classes)):
        st.session_state.pick_dense_class = ex.prediction
    chosen = st.selectbox(t(lang, "explore.pick_class"), range(len(classes)), key="pick_dense_class",
                          format_func=lambda i: classes[i])
    detail = explain.dense_explain(ex.trace, chosen)
    st.markdown(t(lang, "stage.dense.live", label=md_escape(classes[chosen]), count=detail.contributions.size,
                  total=detail.total, bias=detail.bias, score=detail.score))
    scores_fig, contributions_fig, map_fig = sf.dense_figures(lang, loaded, ex, detail)
    _chart(scores_fig, "fig_dense_scores")
    _chart(contributions_fig, "fig_dense_contributions")
    st.markdown(t(lang, "stage.dense.live_map", block=POOL_SIZE ** loaded.config.blocks))
    _chart(map_fig, "fig_dense_map")


def _output(lang: str, stage: str, loaded: LoadedModel, ex: Explanation) -> None:
    soft = explain.softmax_explain(ex.trace.values["dense"])
    classes = list(loaded.classes)
    st.markdown(t(lang, "stage.output.live", label=md_escape(classes[ex.prediction]), probability=ex.probability))
    probs_fig, table_fig = sf.output_figures(lang, loaded, ex, soft)
    _chart(probs_fig, "fig_output_probs")
    st.markdown(t(lang, "stage.output.live_sum", total=soft.total))
    _chart(table_fig, "fig_output_table")

