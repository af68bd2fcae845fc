"""Bars, a table and a diagram: the flattened vector, the dense layer's scores and contributions, the output's
probabilities and softmax table, and the whole pipeline. Every word shown comes in as an argument."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from imageai.figures import (ACCENT, CHANNEL_COLORS, KIND_COLORS, MARGIN, MARK, NEGATIVE, NEUTRAL, NO_AXIS, POSITIVE,
                             label, make_figure, plain, shape_text, with_title)


# ---------------------------------------------------------------------------------------------------- flatten

def flatten_figure(vector: np.ndarray, map_shape: tuple[int, int, int], *, chosen: int | None = None,
                   channel_titles: Sequence[str] | None = None, title: str | None = None,
                   labels: Mapping[str, str] | None = None, max_bars: int = 8192) -> go.Figure:
    """The flattened vector (L,) as a strip of bars: height = value, colour alternating per source channel
    (map_shape = (C, h, w), L = C*h*w); hover names the channel, y, x; chosen index is marked."""
    vector = np.asarray(vector, dtype=np.float32)
    c, h, w = map_shape
    step = max(1, math.ceil(vector.size / max_bars))
    idx = np.arange(0, vector.size, step)
    ch, rest = np.divmod(idx, h * w)
    item = np.uint16 if vector.size >= 65536 or max(c, h, w) >= 256 else np.uint8
    custom = np.stack([ch + 1, rest // w, rest % w], -1).astype(np.uint16 if c + 1 >= 256 else item)
    note = label(labels, "downsampled").format(step=step) if step > 1 else ""
    template = (f"{label(labels, 'index')} %{{x}}<br>{label(labels, 'channel')} %{{customdata[0]}}: "
                f"{label(labels, 'y')} %{{customdata[1]}}, {label(labels, 'x')} %{{customdata[2]}}<br>"
                f"{label(labels, 'value')} %{{y:.4g}}" + (f"<br>{note}" if note else "") + "<extra></extra>")
    trace = dict(type="bar", x=idx.astype(np.int32), y=vector[idx], customdata=custom, width=step,
                 marker=dict(color=(ch % 2).astype(np.uint8), cmin=0, cmax=1, line=dict(width=0),
                             colorscale=[[0, CHANNEL_COLORS[0]], [0.5, CHANNEL_COLORS[0]],
                                         [0.5, CHANNEL_COLORS[1]], [1, CHANNEL_COLORS[1]]]),
                 hovertemplate=template)
    shapes = []
    if chosen is not None:
        shapes.append(dict(type="line", xref="x", yref="paper", x0=chosen, x1=chosen, y0=0, y1=1,
                           line=dict(color=ACCENT, width=3)))
    annotations = [dict(x=(i + 0.5) * h * w - 0.5, y=1, xref="x", yref="paper", yanchor="bottom", text=text,
                        showarrow=False, font=dict(size=10)) for i, text in enumerate(channel_titles or ())]
    layout = dict(height=200, bargap=0, shapes=shapes, annotations=annotations,
                  margin={**MARGIN, "l": 40, "t": MARGIN["t"] + (16 if channel_titles else 0)},
                  xaxis=dict(range=[-0.5, vector.size - 0.5], showgrid=False, zeroline=False, automargin=True,
                             title=dict(text=label(labels, "index"), font=dict(size=11))),
                  yaxis=dict(zeroline=True, gridcolor="rgba(128,128,128,0.2)", automargin=True))
    return make_figure([trace], with_title(layout, " · ".join(filter(None, [title, note])) or None))


# ---------------------------------------------------------------------------------------------------- dense

def _sign_colors(values: np.ndarray) -> list[str]:
    return [POSITIVE if v >= 0 else NEGATIVE for v in values]


def scores_figure(scores: np.ndarray, classes: Sequence[str], *, chosen: int | None = None,
                  title: str | None = None, labels: Mapping[str, str] | None = None) -> go.Figure:
    """Every class's score (logit) as a bar, red positive / blue negative; the chosen class outlined."""
    scores = np.asarray(scores, dtype=np.float32)
    widths = [3 if i == chosen else 0 for i in range(len(classes))]
    trace = dict(type="bar", x=[plain(c) for c in classes], y=scores, text=[f"{v:.2f}" for v in scores],
                 textposition="outside", cliponaxis=False,
                 marker=dict(color=_sign_colors(scores), line=dict(color=MARK, width=widths)),
                 hovertemplate=f"{label(labels, 'class')} %{{x}}<br>{label(labels, 'score')} %{{y:.4g}}"
                               "<extra></extra>")
    layout = dict(height=260, margin={**MARGIN, "l": 40, "t": MARGIN["t"] + 14},
                  xaxis=dict(type="category", automargin=True,
                             title=dict(text=label(labels, "class"), font=dict(size=11))),
                  yaxis=dict(title=dict(text=label(labels, "score"), font=dict(size=11)), zeroline=True,
                             gridcolor="rgba(128,128,128,0.2)", automargin=True))
    return make_figure([trace], with_title(layout, title))


def contributions_figure(values: np.ndarray, origins: Sequence[str], *, title: str | None = None,
                         labels: Mapping[str, str] | None = None) -> go.Figure:
    """The top contributions (weight x feature) as horizontal bars, largest first, labelled by origin
    (e.g. "c3 (y4, x2)"), red when they raise the score and blue when they lower it."""
    values = np.asarray(values, dtype=np.float32)
    reach = float(np.abs(values).max()) if values.size else 1.0
    lo, hi = min(0.0, float(values.min(initial=0))), max(0.0, float(values.max(initial=0)))
    trace = dict(type="bar", orientation="h", x=values, y=list(origins), text=[f"{v:+.3f}" for v in values],
                 textposition="outside", cliponaxis=False, marker=dict(color=_sign_colors(values)),
                 hovertemplate=f"%{{y}}<br>{label(labels, 'contribution')} %{{x:.4g}}<extra></extra>")
    layout = dict(height=60 + 22 * len(values), margin={**MARGIN, "r": 50},
                  yaxis=dict(type="category", autorange="reversed", tickfont=dict(size=11), automargin=True),
                  xaxis=dict(range=[lo - 0.25 * reach * (lo < 0), hi + 0.25 * reach * (hi > 0)],  # room for text
                             zeroline=True, automargin=True, zerolinecolor="#888", gridcolor="rgba(128,128,128,0.2)",
                             title=dict(text=label(labels, "contribution"), font=dict(size=11))))
    return make_figure([trace], with_title(layout, title))


# ---------------------------------------------------------------------------------------------------- output

def probabilities_figure(probs: np.ndarray, classes: Sequence[str], *, predicted: int | None = None,
                         sort: bool = False, title: str | None = None,
                         labels: Mapping[str, str] | None = None) -> go.Figure:
    """Probabilities as horizontal bars with percentages, the prediction in the accent colour."""
    probs = np.asarray(probs, dtype=np.float32)
    order = np.argsort(-probs, kind="stable") if sort else np.arange(probs.size)
    names = [plain(classes[i]) for i in order]
    trace = dict(type="bar", orientation="h", x=probs[order], y=names, text=[f"{probs[i]:.1%}" for i in order],
                 textposition="outside", cliponaxis=False,
                 marker=dict(color=[ACCENT if i == predicted else NEUTRAL for i in order]),
                 hovertemplate=f"{label(labels, 'class')} %{{y}}<br>{label(labels, 'probability')} "
                               "%{x:.2%}<extra></extra>")
    layout = dict(height=50 + 24 * probs.size, margin={**MARGIN, "r": 56},
                  yaxis=dict(type="category", autorange="reversed", automargin=True),
                  xaxis=dict(range=[0, 1.14], tickvals=[0, 0.25, 0.5, 0.75, 1], tickformat=".0%",  # room for text
                             automargin=True, gridcolor="rgba(128,128,128,0.2)",
                             title=dict(text=label(labels, "probability"), font=dict(size=11))))
    return make_figure([trace], with_title(layout, title))


def softmax_table_figure(classes: Sequence[str], scores: np.ndarray, exps: np.ndarray, probs: np.ndarray, *,
                         predicted: int | None = None, title: str | None = None,
                         labels: Mapping[str, str] | None = None) -> go.Figure:
    """Softmax step by step as a table: class, z, z − max, e^(z − max), p; a last row with the sums."""
    scores, exps, probs = (np.asarray(a, dtype=np.float64) for a in (scores, exps, probs))
    shifted = scores - scores.max()
    cells = [[plain(c) for c in classes] + [label(labels, "sum")],
             [f"{v:.3f}" for v in scores] + [""], [f"{v:.3f}" for v in shifted] + [""],
             [f"{v:.4f}" for v in exps] + [f"{exps.sum():.4f}"], [f"{v:.1%}" for v in probs] + [f"{probs.sum():.0%}"]]
    fill = [ACCENT if i == predicted else "rgba(0,0,0,0)" for i in range(len(classes))] + ["rgba(128,128,128,0.15)"]
    header = [label(labels, k) for k in ("class", "z", "z_shift", "exp", "probability")]
    trace = dict(type="table", header=dict(values=header, align="center", font=dict(size=12),
                                           fill=dict(color="rgba(128,128,128,0.2)")),
                 cells=dict(values=cells, align=["center"] + ["right"] * 4, fill=dict(color=[fill]),
                            height=22, font=dict(size=12)))
    layout = dict(height=40 + 23 * (len(classes) + 2))
    return make_figure([trace], with_title(layout, title))


# ---------------------------------------------------------------------------------------------------- pipeline

def pipeline_figure(stage_names: Sequence[str], shapes: Sequence[Sequence[int]] | Mapping[str, Sequence[int]],
                    current: str | None = None, labels: Sequence[str] | None = None,
                    per_row: int | None = None) -> go.Figure:
    """All stages as a row of boxes (display name over tensor shape, e.g. 8×28×28) joined by arrows;
    `current` is filled in its kind's colour. Many stages wrap onto a second row."""
    names = list(stage_names)
    dims = [shapes[s] for s in names] if isinstance(shapes, Mapping) else list(shapes)
    per_row = per_row or (len(names) if len(names) <= 11 else math.ceil(len(names) / 2))
    boxes, texts = [], []
    for i, (name, shape, text) in enumerate(zip(names, dims, labels or names)):
        row, col = divmod(i, per_row)
        color = KIND_COLORS[name.rstrip("0123456789")]  # the stage kind, as model.stage_kind (no torch here)
        now = name == current
        boxes.append(dict(type="rect", xref="x", yref="y", x0=col - 0.42, x1=col + 0.42, y0=-row - 0.4,
                          y1=-row + 0.4, line=dict(color=color, width=3 if now else 1.5),
                          fillcolor=color if now else "rgba(0,0,0,0)", opacity=1 if now else 0.9))
        texts.append(dict(x=col, y=-row + 0.1, text=f"<b>{text}</b>" if now else text, showarrow=False,
                          font=dict(size=11, color="#ffffff" if now else None), xref="x", yref="y"))
        texts.append(dict(x=col, y=-row - 0.18, text=shape_text(shape), showarrow=False, xref="x", yref="y",
                          font=dict(size=10, color="#ffffff" if now else "#777777")))
        if i + 1 < len(names) and (i + 1) % per_row:
            texts.append(dict(x=col + 0.58, y=-row, ax=col + 0.42, ay=-row, xref="x", yref="y", axref="x",
                              ayref="y", text="", showarrow=True, arrowhead=2, arrowsize=1, arrowwidth=1.5,
                              arrowcolor="#999999"))
    rows = math.ceil(len(names) / per_row)
    layout = dict(height=30 + 80 * rows, shapes=boxes, annotations=texts, showlegend=False,
                  xaxis=dict(NO_AXIS, range=[-0.5, per_row - 0.5], fixedrange=True),
                  yaxis=dict(NO_AXIS, range=[-rows + 0.5, 0.5], fixedrange=True))
    return make_figure([], layout)
