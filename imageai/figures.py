"""Plotly figures for every stage, built from plain numpy arrays; every word shown comes in as an argument."""
from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import plotly.graph_objects as go

# Colours. Maps: red = positive, blue = negative, white = 0 (RdBu reversed); bars use the same two colours so
# "red means it pushed up" holds on every page. Exact zeros of non-negative maps (what ReLU zeroed) are grey.
DIVERGING = [[0.0, "#053061"], [0.125, "#2166ac"], [0.25, "#4393c3"], [0.375, "#92c5de"], [0.5, "#f7f7f7"],
             [0.625, "#f4a582"], [0.75, "#d6604d"], [0.875, "#b2182b"], [1.0, "#67001f"]]
SEQUENTIAL = [[0.0, "#f7f7f7"], [0.25, "#f4a582"], [0.5, "#d6604d"], [0.75, "#b2182b"], [1.0, "#67001f"]]
GRAY = [[0.0, "#000000"], [1.0, "#ffffff"]]  # pixel intensity: 0 black, 1 white
POSITIVE, NEGATIVE, NEUTRAL, ACCENT = "#d6604d", "#4393c3", "#bdbdbd", "#f59e0b"
ZERO = "#a3a3a3"  # exact zeros on non-negative maps
MARK = "#111111"  # highlight rectangles and winner circles
CHANNEL_COLORS = ("#6a51a3", "#41ab5d")  # alternate per channel on the flattened vector
KIND_COLORS = {"input": "#737373", "conv": "#3182bd", "relu": "#e6550d", "pool": "#31a354",
               "flatten": "#756bb1", "dense": "#8c6d31", "output": "#de2d26"}

PAYLOAD_BUDGET = 400_000  # JSON bytes for one tiled heatmap's arrays; with layout, a figure stays < 500 KB
PAIR_SHARE = 0.55  # of that budget for each of a stage's two heatmaps (ReLU's before and after): < 500 KB together
NOMINAL_WIDTH = 480  # px a figure is sized for (Explore's figure column on a laptop); Streamlit stretches it to
NARROWEST_PX = 360  # its column, square pixels kept, and in a column this narrow the tile labels must still fit
LABEL_PX = 14  # vertical room a tile label needs above its tile
TITLE_PX = 26  # and a figure title above the plot
MARGIN = dict(l=4, r=4, t=8, b=4)
NO_AXIS = dict(showgrid=False, zeroline=False, showticklabels=False, ticks="", showline=False)
_DEFAULT_LABELS = {"tile": "#", "y": "y", "x": "x", "value": "v", "downsampled": "1/{step}",
                   "patch": "", "kernel": "", "products": "", "index": "i", "channel": "c", "class": "",
                   "score": "", "contribution": "", "probability": "p", "z": "z", "z_shift": "z − max",
                   "exp": "e^(z − max)", "sum": "Σ"}
LABEL_KEYS = tuple(_DEFAULT_LABELS)  # every label a figure may take; the catalogs hold each as fig.label.<key>


def plain(text: object) -> str:
    """A user's word (a class name) as plain text: plotly renders some HTML tags (<a href>, <b>) in labels.

    Quotes stay as they are: with '<' escaped they cannot start a tag, and plotly would show '&quot;' literally.
    """
    return html.escape(str(text), quote=False)


def shape_text(shape: Sequence[int]) -> str:
    """(16, 28, 28) -> '16×28×28', as every figure and page writes a tensor's shape."""
    return "×".join(str(d) for d in shape)


def label(labels: Mapping[str, str] | None, key: str) -> str:
    return (labels or {}).get(key, _DEFAULT_LABELS[key])


def make_figure(data: list[dict], layout: dict) -> go.Figure:
    """One go.Figure built in one go. Plotly's property validation is skipped (`_validate=False`): it costs ~5 ms
    a figure, most of the budget for a whole page; tests/test_figures.py validates every figure instead.
    The empty template leaves the look to Streamlit's theme and keeps ~8 KB of plotly defaults out of the JSON."""
    base = dict(template=dict(layout={}), margin=dict(MARGIN), plot_bgcolor="rgba(0,0,0,0)",
                paper_bgcolor="rgba(0,0,0,0)", font=dict(size=12))
    return go.Figure(data=data, layout={**base, **layout}, _validate=False)


def with_title(layout: dict, title: str | None) -> dict:
    if title:
        layout["title"] = dict(text=title, x=0, xanchor="left", y=1, yanchor="top", pad=dict(t=6, l=4),
                               font=dict(size=14))
        margin = layout.get("margin", MARGIN)
        layout["margin"] = {**margin, "t": margin["t"] + TITLE_PX}
        layout["height"] = layout["height"] + TITLE_PX
    return layout


# ---------------------------------------------------------------------------------------------------- tiles

def grid_columns(n: int, h: int = 1, w: int = 1, aspect: float = 2.0) -> int:
    """Columns for n tiles of h x w: about `aspect` times as wide as tall, preferring a divisor of n (no empty
    slots)."""
    target = math.sqrt(aspect * n * h / w)
    fits = [c for c in range(1, n + 1) if n % c == 0 and c >= target]
    return min(n, fits[0]) if fits and fits[0] <= 2 * target else max(1, min(n, math.ceil(target)))


def tile_canvas(maps: np.ndarray, cols: int, gap_y: int = 1, gap_x: int = 1, fill: float = np.nan):
    """(N, H, W) -> one (rows*(H+gap_y)-gap_y, cols*(W+gap_x)-gap_x) canvas, gaps filled; also tile origins."""
    n, h, w = maps.shape
    rows = math.ceil(n / cols)
    slots = np.full((rows * cols, h + gap_y, w + gap_x), fill, dtype=maps.dtype)
    slots[:n, :h, :w] = maps
    canvas = slots.reshape(rows, cols, h + gap_y, w + gap_x).transpose(0, 2, 1, 3)
    canvas = canvas.reshape(rows * (h + gap_y), cols * (w + gap_x))[: rows * (h + gap_y) - gap_y,
                                                                   : cols * (w + gap_x) - gap_x]
    origins = [((i // cols) * (h + gap_y), (i % cols) * (w + gap_x)) for i in range(n)]
    return canvas, origins


class TileGrid(NamedTuple):
    step: int  # every step-th row and column of each map is drawn (1 = all)
    gap_y: int  # rows between tile rows: room for the tile labels
    cell_px: float  # px per drawn cell at its share of NOMINAL_WIDTH


def tile_grid(n: int, h: int, w: int, cols: int, max_cells: int, labelled: bool, share: float = 1.0) -> TileGrid:
    """The smallest stride whose canvas, label gaps included, fits max_cells; and the gap and cell size for it."""
    step = 1
    while True:
        hs, ws = math.ceil(h / step), math.ceil(w / step)
        width_cells = cols * (ws + 1) - 1
        cell_px = min(share * NOMINAL_WIDTH / width_cells, max(12.0, 96 / max(hs, ws)))  # few big maps: not wide
        label_room = min(cell_px, share * NARROWEST_PX / width_cells)  # px per cell where labels are tightest
        gap_y = max(1, math.ceil(LABEL_PX / label_room)) if labelled else 1
        rows = math.ceil(n / cols)
        if rows * (hs + gap_y) * width_cells <= max_cells or (hs == 1 and ws == 1):
            return TileGrid(step, gap_y, cell_px)
        step += 1


def _cells_budget(n: int, h: int, w: int) -> int:
    """Cells that fit PAYLOAD_BUDGET: float32 value + three hover integers each, base64 in JSON (x 4/3)."""
    item = 1 if max(n, h, w) < 256 else 2
    return int(PAYLOAD_BUDGET / ((4 + 3 * item) * 4 / 3))


def _value_range(maps: np.ndarray, diverging: bool, zmid: float, zmax: float | None) -> tuple[float, float]:
    finite = maps[np.isfinite(maps)]
    if diverging:
        m = zmax if zmax is not None else (float(np.abs(finite - zmid).max()) if finite.size else 1.0)
        m = m or 1.0
        return zmid - m, zmid + m
    top = zmax if zmax is not None else (float(finite.max()) if finite.size else 1.0)
    return 0.0, top if top > 0 else 1.0


def _zero_scale(scale: list, zmax: float) -> tuple[list, float]:
    """A sequential scale that paints exact zeros grey: zmin sits a little below 0, and 0 maps to a grey stop."""
    zmin = -0.02 * zmax
    f0 = -zmin / (zmax - zmin)
    stops = [[0.0, ZERO], [f0, ZERO]] + [[f0 + 1e-6 + (1 - f0 - 1e-6) * p, c] for p, c in scale]
    stops[-1][0] = 1.0  # plotly.js drops a scale that does not end at exactly 1
    return stops, zmin


def _tile_hover(ids: np.ndarray, h: int, w: int, step: int, cols: int, gap_y: int) -> np.ndarray:
    """Per drawn cell: its tile id and its y, x in the original map, laid out like the tiles, as small ints."""
    ys, xs = np.meshgrid(np.arange(0, h, step), np.arange(0, w, step), indexing="ij")  # (hs, ws) each
    shape = (len(ids), *ys.shape)
    item = np.uint8 if max(int(ids.max()), h, w) < 256 else np.uint16
    parts = (np.broadcast_to(ids[:, None, None], shape), np.broadcast_to(ys, shape), np.broadcast_to(xs, shape))
    return np.stack([tile_canvas(p.astype(item), cols, gap_y, fill=0)[0] for p in parts], -1)


def _tile_shapes(origins, step, highlight, marks) -> list[dict]:
    shapes = []
    if highlight is not None:
        tile, y, x, h, w = highlight
        oy, ox = origins[tile]
        shapes.append(dict(type="rect", xref="x", yref="y", line=dict(color=MARK, width=2.5),
                           x0=ox + x / step - 0.5, x1=ox + (x + w) / step - 0.5,
                           y0=oy + y / step - 0.5, y1=oy + (y + h) / step - 0.5))
    for tile, y, x in marks or ():
        oy, ox = origins[tile]
        cy, cx = oy + y // step, ox + x // step
        shapes.append(dict(type="circle", xref="x", yref="y", line=dict(color=MARK, width=2),
                           x0=cx - 0.35, x1=cx + 0.35, y0=cy - 0.35, y1=cy + 0.35))
    return shapes


def tiled_heatmap(maps: np.ndarray, *, cols: int | None = None, titles: Sequence[str] | None = None,
                  diverging: bool = True, zmid: float = 0.0, zmax: float | None = None,
                  zero_color: bool = False, colorscale: list | None = None, max_cells: int | None = None,
                  highlight: tuple[int, int, int, int, int] | None = None,
                  marks: Sequence[tuple[int, int, int]] | None = None, tile_ids: Sequence[int] | None = None,
                  title: str | None = None, labels: Mapping[str, str] | None = None,
                  showscale: bool = True, share: float = 1.0) -> go.Figure:
    """Many (N, H, W) maps as ONE heatmap trace: tiles in a grid with NaN gaps, labels above, square pixels.

    diverging: red/blue scale symmetric around zmid; else a sequential scale from 0 (zero_color paints exact
    zeros grey). highlight=(tile, y, x, h, w) and marks=[(tile, y, x)] are in the maps' own coordinates.
    Hover shows tile id (1-based, or tile_ids), y, x (0-based) and the value. Above max_cells (default: what
    fits PAYLOAD_BUDGET) only every s-th row/column is drawn; the values drawn are never altered. share: the
    part of the figure column's width it is drawn in (0.5: a half-width column); sizes and label room follow.
    """
    maps = np.asarray(maps, dtype=np.float32)
    n, h, w = maps.shape
    cols = cols or grid_columns(n, h, w, aspect=2 * share)  # a half-width column gets a squarer grid
    step, gap_y, cell_px = tile_grid(n, h, w, cols, max_cells or _cells_budget(n, h, w), bool(titles), share)
    shown = maps[:, ::step, ::step]  # (N, ceil(H/s), ceil(W/s))
    hs, ws = shown.shape[1:]
    z, origins = tile_canvas(shown, cols, gap_y=gap_y)

    ids = np.asarray(tile_ids if tile_ids is not None else np.arange(1, n + 1))
    custom = _tile_hover(ids, h, w, step, cols, gap_y)  # (canvas H, canvas W, 3): tile id, y, x
    zmin, zmax_ = _value_range(maps, diverging, zmid, zmax)
    scale = colorscale or (DIVERGING if diverging else SEQUENTIAL)
    if zero_color and not diverging:
        scale, zmin = _zero_scale(scale, zmax_)
    note = label(labels, "downsampled").format(step=step) if step > 1 else ""
    template = (f"{label(labels, 'tile')} %{{customdata[0]}}<br>{label(labels, 'y')} %{{customdata[1]}}, "
                f"{label(labels, 'x')} %{{customdata[2]}}<br>{label(labels, 'value')} %{{z:.4g}}"
                + (f"<br>{note}" if note else "") + "<extra></extra>")
    trace = dict(type="heatmap", z=z, customdata=custom, colorscale=scale, zmin=zmin, zmax=zmax_,
                 hoverongaps=False, hovertemplate=template, showscale=showscale, xgap=0, ygap=0,
                 colorbar=dict(thickness=10, len=0.9, outlinewidth=0, tickfont=dict(size=10)))
    annotations = [dict(x=ox + (ws - 1) / 2, y=oy - 0.5, text=text, showarrow=False, yanchor="bottom",
                        font=dict(size=11), xref="x", yref="y")
                   for (oy, ox), text in zip(origins, titles or ())]
    top = gap_y if titles else 0
    height = (z.shape[0] + top) * cell_px + MARGIN["t"] + MARGIN["b"]
    layout = dict(
        height=int(min(720, max(140, height))), annotations=annotations,
        shapes=_tile_shapes(origins, step, highlight, marks),
        xaxis=dict(NO_AXIS, range=[-0.5, z.shape[1] - 0.5], constrain="domain"),
        yaxis=dict(NO_AXIS, range=[z.shape[0] - 0.5, -0.5 - top], scaleanchor="x", constrain="domain"),
        meta=dict(step=step, cols=cols, gap_y=gap_y, cell_px=cell_px, origins=origins),
    )
    return make_figure([trace], with_title(layout, " · ".join(filter(None, [title, note])) or None))


# ---------------------------------------------------------------------------------------------------- input

def image_figure(pixels: np.ndarray, *, title: str | None = None, labels: Mapping[str, str] | None = None,
                 highlight: tuple[int, int, int, int] | None = None) -> go.Figure:
    """The input image (C, H, W) in [0, 1]: grayscale when C == 1, else RGB; highlight=(y, x, h, w)."""
    pixels = np.asarray(pixels, dtype=np.float32)
    h, w = pixels.shape[1:]
    shapes = []
    if highlight is not None:
        y, x, hh, ww = highlight
        shapes.append(dict(type="rect", xref="x", yref="y", line=dict(color=ACCENT, width=2.5),
                           x0=x - 0.5, x1=x + ww - 0.5, y0=y - 0.5, y1=y + hh - 0.5))
    side = min(360, max(160, 8 * max(h, w)))
    layout = dict(height=side + MARGIN["t"] + MARGIN["b"], shapes=shapes,
                  xaxis=dict(NO_AXIS, range=[-0.5, w - 0.5], constrain="domain"),
                  yaxis=dict(NO_AXIS, range=[h - 0.5, -0.5], scaleanchor="x", constrain="domain"))
    return make_figure([_image_trace(pixels, labels)], with_title(layout, title))


def _image_trace(pixels: np.ndarray, labels: Mapping[str, str] | None) -> dict:
    """(C, H, W) in [0, 1] -> a gray heatmap (C == 1) or an RGB image trace, hover showing y, x and value."""
    where = f"{label(labels, 'y')} %{{y}}, {label(labels, 'x')} %{{x}}<br>{label(labels, 'value')} "
    if pixels.shape[0] == 1:
        return dict(type="heatmap", z=pixels[0], colorscale=GRAY, zmin=0, zmax=1, showscale=False,
                    hovertemplate=where + "%{z:.3f}<extra></extra>")
    rgb = pixels.transpose(1, 2, 0)  # (H, W, 3)
    # plotly reports an image's z on the 0-255 scale, so the exact values travel as customdata for the hover
    return dict(type="image", z=np.round(rgb * 255).clip(0, 255).astype(np.uint8), customdata=rgb,
                hovertemplate=where + "%{customdata[0]:.3f}, %{customdata[1]:.3f}, %{customdata[2]:.3f}"
                                      "<extra></extra>")


# ---------------------------------------------------------------------------------------------------- conv

def kernels_per_channel(shape: tuple[int, ...], max_tiles: int = 48) -> bool:
    """Whether kernels (N, Cin, k, k) are drawn one tile per filter and channel (else summed over channels)."""
    return shape[0] * shape[1] <= max_tiles


def kernels_figure(kernels: np.ndarray, *, titles: Sequence[str] | None = None,
                   channel_titles: Sequence[str] | None = None, title: str | None = None,
                   labels: Mapping[str, str] | None = None) -> go.Figure:
    """Kernels (N, Cin, k, k) on a diverging scale: a row per input channel when few (first layer: gray or
    R, G, B), else each filter's kernel summed over its input channels (see kernels_per_channel)."""
    kernels = np.asarray(kernels, dtype=np.float32)
    n, cin = kernels.shape[:2]
    if kernels_per_channel(kernels.shape):
        maps = kernels.transpose(1, 0, 2, 3).reshape(n * cin, *kernels.shape[2:])  # channel-major rows
        names = None if titles is None else [
            f"{titles[f]}·{channel_titles[c]}" if cin > 1 and channel_titles else titles[f]
            for c in range(cin) for f in range(n)]
        return tiled_heatmap(maps, cols=n, titles=names, tile_ids=list(range(1, n + 1)) * cin, title=title,
                             labels=labels)
    return tiled_heatmap(kernels.sum(1), titles=titles, title=title, labels=labels)


def conv_step_figure(patch: np.ndarray, kernel: np.ndarray, products: np.ndarray, *,
                     padding: np.ndarray | None = None, gray_patch: bool = False, title: str | None = None,
                     labels: Mapping[str, str] | None = None) -> go.Figure:
    """Patch x kernel = products, as three small heatmaps with each number written in its cell.

    Each is (k, k) or (C, k, k); channels stack as rows (pass only the few channels worth showing).
    gray_patch draws the patch like the input image (black-white) instead of the sequential scale;
    padding (k, k) bool outlines, dashed, the patch cells that hang over the image edge (zeros added there).
    """
    arrays = [np.asarray(a, dtype=np.float32).reshape(-1, *np.shape(a)[-2:]) for a in (patch, kernel, products)]
    c, k = arrays[0].shape[0], arrays[0].shape[-1]
    data, layout = [], dict(annotations=[])
    for i, (arr, key) in enumerate(zip(arrays, ("patch", "kernel", "products"))):
        z, _ = tile_canvas(arr, cols=1)
        diverging = i > 0 or not gray_patch and bool((arr < 0).any())
        zmin, zmax = _value_range(arr, diverging, 0.0, None)
        scale = GRAY if i == 0 and gray_patch else DIVERGING if diverging else SEQUENTIAL
        if i == 0 and gray_patch:  # normalised pixels may run below 0 and above 1
            zmin, zmax = min(0.0, float(arr.min())), max(1.0, float(arr.max()))
        ax = "" if i == 0 else str(i + 1)
        data.append(dict(type="heatmap", z=z, colorscale=scale, zmin=zmin, zmax=zmax, showscale=False,
                         texttemplate="%{z:.2f}", textfont=dict(size=12), hoverongaps=False, xaxis=f"x{ax}",
                         yaxis=f"y{ax}", hovertemplate=f"{label(labels, key)} %{{z:.4g}}<extra></extra>"))
        lo, hi = i * 0.36, i * 0.36 + 0.28
        layout[f"xaxis{ax}"] = dict(NO_AXIS, domain=[lo, hi], range=[-0.5, k - 0.5], constrain="domain")
        layout[f"yaxis{ax}"] = dict(NO_AXIS, range=[z.shape[0] - 0.5, -0.5], scaleanchor=f"x{ax}",
                                    constrain="domain")
        layout["annotations"].append(dict(text=label(labels, key), x=(lo + hi) / 2, y=1, xref="paper",
                                          yref="paper", yanchor="bottom", showarrow=False, font=dict(size=12)))
    padded = np.argwhere(padding).tolist() if padding is not None else []  # [(y, x)] outside the image
    layout["shapes"] = [dict(type="rect", xref="x", yref="y", x0=x - 0.45, x1=x + 0.45, y0=r * (k + 1) + y - 0.45,
                             y1=r * (k + 1) + y + 0.45, line=dict(color=MARK, width=1.5, dash="dot"))
                        for r in range(c) for y, x in padded]
    for x, sign in ((0.32, "×"), (0.68, "=")):
        layout["annotations"].append(dict(text=sign, x=x, y=0.5, xref="paper", yref="paper", showarrow=False,
                                          font=dict(size=22)))
    rows = c * (k + 1) - 1
    layout["height"] = int(min(520, 40 + rows * 56))
    layout["margin"] = {**MARGIN, "t": MARGIN["t"] + 18}  # room for the three panel labels
    return make_figure(data, with_title(layout, title))


# ---------------------------------------------------------------------------------------------------- relu, pool

def relu_figures(before: np.ndarray, after: np.ndarray, *, titles: Sequence[str] | None = None,
                 title_before: str | None = None, title_after: str | None = None,
                 highlight: tuple[int, int, int, int, int] | None = None,
                 labels: Mapping[str, str] | None = None) -> tuple[go.Figure, go.Figure]:
    """Maps (N, H, W) before ReLU (diverging: negatives blue) and after it (the zeroed cells grey), on one colour
    range, so a red cell keeps its colour across; meant to be drawn side by side."""
    before = np.asarray(before, dtype=np.float32)
    top = float(np.abs(before).max()) or 1.0
    # side by side, each in half the figure column; two figures in one stage's payload
    common = dict(titles=titles, zmax=top, highlight=highlight, labels=labels, showscale=False, share=0.5,
                  max_cells=int(_cells_budget(*before.shape) * PAIR_SHARE))
    left = tiled_heatmap(before, title=title_before, **common)
    right = tiled_heatmap(after, diverging=False, zero_color=True, title=title_after, **common)
    return left, right


def pool_figures(before: np.ndarray, after: np.ndarray, *, window: tuple[int, int, int] | None = None,
                 winner: tuple[int, int] | None = None, size: int = 2, titles: Sequence[str] | None = None,
                 title_before: str | None = None, title_after: str | None = None,
                 labels: Mapping[str, str] | None = None) -> tuple[go.Figure, go.Figure]:
    """Maps before (N, H, W) and after (N, H/size, W/size) max pooling, on one range, zeros grey; the second is
    meant for a column 1/size as wide, under the first, so that a cell is as big in both.

    window=(tile, y, x) is a cell of the pooled map; its size x size window is outlined on the first figure,
    its winner (y, x in the maps before, default: the window's argmax) circled, and the cell outlined on the second.
    """
    before = np.asarray(before, dtype=np.float32)
    top = float(before.max()) if before.size and before.max() > 0 else 1.0
    box = mark = cell = None
    if window is not None:
        tile, y, x = window
        box, cell = (tile, y * size, x * size, size, size), (tile, y, x, 1, 1)
        if winner is None:
            patch = before[tile, y * size:(y + 1) * size, x * size:(x + 1) * size]
            dy, dx = np.unravel_index(int(np.argmax(patch)), patch.shape)
            winner = (y * size + int(dy), x * size + int(dx))
        mark = [(tile, *winner)]
    # One stage, one payload budget: 3/4 for the maps before; 3/10 for the pooled maps (a quarter of the cells, but
    # drawn half as wide, so their label gaps take more rows)
    budget = _cells_budget(*before.shape)
    cols = grid_columns(*before.shape)  # both grids alike, tile under tile
    common = dict(titles=titles, cols=cols, diverging=False, zmax=top, zero_color=True, labels=labels,
                  showscale=False)
    # the pooled maps are drawn in a column half as wide (share=0.5), so their cells match the maps before
    return (tiled_heatmap(before, highlight=box, marks=mark, title=title_before, max_cells=budget * 3 // 4, **common),
            tiled_heatmap(after, highlight=cell, title=title_after, share=1 / size, max_cells=budget * 3 // 10,
                          **common))


# ---------------------------------------------------------------------------------------------------- dense

def contribution_map_figure(contributions: np.ndarray, image: np.ndarray | None = None, *,
                            overlay: bool = False, titles: Sequence[str] = ("", ""), title: str | None = None,
                            labels: Mapping[str, str] | None = None) -> go.Figure:
    """Where the score came from: contributions (h, w) on a diverging scale, stretched over the input image
    (C, H, W) — side by side (titles for the two panels), or drawn on top of it with overlay=True."""
    contributions = np.asarray(contributions, dtype=np.float32)
    ch, cw = contributions.shape
    image = None if image is None else np.asarray(image, dtype=np.float32)
    h, w = (ch, cw) if image is None else image.shape[1:]
    dy, dx = h / ch, w / cw  # one map cell covers dy x dx pixels
    m = float(np.abs(contributions).max()) or 1.0
    ys, xs = np.meshgrid(np.arange(ch), np.arange(cw), indexing="ij")
    two = image is not None and not overlay
    heat = dict(type="heatmap", z=contributions, x0=(dx - 1) / 2, dx=dx, y0=(dy - 1) / 2, dy=dy,
                colorscale=DIVERGING, zmin=-m, zmax=m, opacity=0.6 if overlay else 1.0,
                customdata=np.stack([ys, xs], -1).astype(np.uint8 if max(ch, cw) < 256 else np.uint16),
                colorbar=dict(thickness=10, len=0.9, outlinewidth=0, tickfont=dict(size=10)),
                hovertemplate=f"{label(labels, 'y')} %{{customdata[0]}}, {label(labels, 'x')} "
                              f"%{{customdata[1]}}<br>{label(labels, 'contribution')} %{{z:.4g}}<extra></extra>",
                xaxis="x2" if two else "x", yaxis="y2" if two else "y")
    data = [heat] if image is None else [_image_trace(image, labels), heat]
    layout = dict(height=300, annotations=[])
    panels = [("", [0, 0.46]), ("2", [0.54, 1])] if two else [("", [0, 1])]
    for i, (ax, domain) in enumerate(panels):
        layout[f"xaxis{ax}"] = dict(NO_AXIS, domain=domain, range=[-0.5, w - 0.5], constrain="domain")
        layout[f"yaxis{ax}"] = dict(NO_AXIS, range=[h - 0.5, -0.5], scaleanchor=f"x{ax}", constrain="domain")
        if two and titles[i]:
            layout["annotations"].append(dict(text=titles[i], x=sum(domain) / 2, y=1, xref="paper",
                                              yref="paper", yanchor="bottom", showarrow=False))
    if two and any(titles):
        layout["margin"] = {**MARGIN, "t": MARGIN["t"] + 18}  # room for the two panel labels
    return make_figure(data, with_title(layout, title))
