"""Figures and plain data for a training run: curves, confusion matrix, kernels before/after, confident mistakes."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from imageai import figures
from imageai.figures import plain

MAX_CURVE_POINTS = 400  # per trace: enough to see the shape, small enough to send every second
TRAIN_COLOUR = "#1f77b4"
VALIDATION_COLOUR = "#ff7f0e"



def thin(points: Sequence[dict], limit: int = MAX_CURVE_POINTS) -> list[dict]:
    """At most `limit` evenly spread points, always keeping the last one."""
    if len(points) <= limit:
        return list(points)
    idx = np.unique(np.linspace(0, len(points) - 1, limit).round().astype(int))
    return [points[i] for i in idx]


def curves(batch_points: Sequence[dict], epoch_points: Sequence[dict], labels: dict[str, str]) -> go.Figure:
    """Loss (left) and accuracy (right) against epochs: training per batch, validation per finished epoch.

    labels: loss, accuracy, train, validation, epoch. Built as plain dicts (no validation): the live view
    redraws it every second, and plotly's checked builders cost ~30 ms a time.
    """
    batches = thin(batch_points)
    val = [p for p in epoch_points if p.get("val_loss") is not None]
    data = []
    for axis, key, val_key in (("", "loss", "val_loss"), ("2", "accuracy", "val_accuracy")):
        data.append(dict(type="scatter", x=[p["epoch"] for p in batches], y=[p[key] for p in batches],
                         mode="lines", name=labels["train"], legendgroup="train", showlegend=axis == "",
                         line=dict(color=TRAIN_COLOUR), xaxis=f"x{axis}", yaxis=f"y{axis}"))
        data.append(dict(type="scatter", x=[p["epoch"] for p in val], y=[p[val_key] for p in val],
                         mode="lines+markers", name=labels["validation"], legendgroup="validation",
                         showlegend=axis == "", line=dict(color=VALIDATION_COLOUR), xaxis=f"x{axis}",
                         yaxis=f"y{axis}"))
    x_axis = dict(title=dict(text=labels["epoch"]), rangemode="tozero")
    panel_title = dict(xref="paper", yref="paper", y=1.0, yanchor="bottom", showarrow=False, font=dict(size=14))
    layout = dict(
        height=320, margin=dict(l=40, r=20, t=40, b=40), legend=dict(orientation="h", y=-0.25),
        xaxis=dict(x_axis, domain=[0.0, 0.44], anchor="y"), yaxis=dict(rangemode="tozero", anchor="x"),
        xaxis2=dict(x_axis, domain=[0.56, 1.0], anchor="y2"),
        yaxis2=dict(range=[0, 1.02], tickformat=".0%", anchor="x2"),
        annotations=[dict(panel_title, text=labels["loss"], x=0.22, xanchor="center"),
                     dict(panel_title, text=labels["accuracy"], x=0.78, xanchor="center")])
    return go.Figure(data=data, layout=layout, _validate=False)


def confusion(matrix: np.ndarray, classes: Sequence[str], labels: dict[str, str]) -> go.Figure:
    """(classes, classes) counts, rows true and columns predicted, with each count written in its cell.

    labels: true, predicted.
    """
    names = [plain(c) for c in classes]
    fig = go.Figure(go.Heatmap(
        z=matrix, x=names, y=names, text=matrix, texttemplate="%{text}", colorscale="Blues",
        showscale=False, hovertemplate=f"{plain(labels['true'])}: %{{y}}<br>"
                                       f"{plain(labels['predicted'])}: %{{x}}<br>%{{z}}<extra></extra>"))
    fig.update_xaxes(title_text=labels["predicted"], type="category", side="bottom")
    fig.update_yaxes(title_text=labels["true"], type="category", autorange="reversed")
    size = 160 + 36 * len(classes)
    fig.update_layout(height=min(size, 700), margin={"l": 60, "r": 20, "t": 20, "b": 60})
    return fig


def kernel_maps(kernels: np.ndarray) -> np.ndarray:
    """(filters, in_channels, k, k) -> (filters * in_channels, k, k): each filter's channels one after another."""
    f, c, k, _ = kernels.shape
    return np.asarray(kernels, dtype=np.float32).reshape(f * c, k, k)


def kernels_figure(kernels: np.ndarray, *, zmax: float | None = None, title: str | None = None,
                   labels: dict[str, str] | None = None) -> go.Figure:
    """First-layer kernels as one tiled heatmap; with colour input, one row of R, G, B tiles per filter.

    Pass the same zmax for the kernels before and after training so their colours compare.
    """
    f, c = kernels.shape[:2]
    cols = c if c > 1 else min(8, f)
    return figures.tiled_heatmap(kernel_maps(kernels), cols=cols, zmax=zmax, title=title, labels=labels,
                                 showscale=False)


def shared_zmax(*kernels: np.ndarray) -> float:
    """The largest absolute weight among several sets of kernels (for one colour scale across them)."""
    return max(float(np.abs(k).max()) for k in kernels) or 1.0


def confident_mistakes(probs: np.ndarray, labels: np.ndarray, images: np.ndarray, k: int) -> list[dict]:
    """The k wrong test predictions made with the highest confidence, most confident first.

    Each record: image (H, W[, C]) uint8, true and pred class indices, confidence (the predicted probability).
    """
    predictions = probs.argmax(1)  # (N,)
    confidence = probs.max(1)  # (N,)
    wrong = np.flatnonzero(predictions != labels)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:k]
    return [{"image": np.array(images[i]), "true": int(labels[i]), "pred": int(predictions[i]),
             "confidence": float(confidence[i])} for i in order]
