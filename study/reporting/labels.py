"""Labels: keep a figure's text apart, measured on the figure itself. `place` writes value labels
beside their points where they hide no other text, marker or line; `legend_below` gives a legend
the fewest rows that fit the figure's width; `fit_ticks` keeps tick labels side by side apart.

Everything is measured in display space after the figure's layout engine has run (`settle`), with
an Agg renderer attached to the figure: call these last, once titles, ticks, limits and legends
are set, so that the layout they measured is the one that is saved. A label is kept inside its
axes, so it never moves the layout it was measured in.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.path import Path
from matplotlib.text import Annotation
from matplotlib.ticker import FixedLocator, MaxNLocator
from matplotlib.transforms import Bbox

# Where a label may go around its point, in the order tried: beside first (reads like a table
# row), then above and below, then the corners; each at 1, 2 and 3.5 times the gap.
DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))
DISTANCES = (1.0, 2.0, 3.5)
# What a label may cost where no place is free: another text is worst, then a marker, then a line.
TEXT_COST, MARKER_COST, LINE_COST, OUTSIDE_COST = 1000.0, 10.0, 1.0, 1e6
TICK_GAP = 0.08  # inches between neighbouring tick labels, about half a digit at FONT
MIN_AXES_HEIGHT = 2.2  # inches (2.9 cm printed): lower, a panel's scores are too squeezed to compare


def renderer(fig: Figure):
    """The figure's Agg renderer, attaching an Agg canvas to a figure built without pyplot."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    return fig.canvas.get_renderer()


def settle(fig: Figure):
    """Run the figure's layout engine now, as saving will, and return the renderer it measured with."""
    found = renderer(fig)
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
    return found


def legend_below(fig: Figure, handles: list, **options) -> Legend | None:
    """A figure legend under the axes, in as few rows as fit the figure's width; the figure grows by
    the rows beyond the first, so the axes keep the height they were given."""
    if not handles:
        return None
    found = renderer(fig)
    for rows in range(1, len(handles) + 1):
        legend = fig.legend(handles=handles, loc="outside lower center", ncol=math.ceil(len(handles) / rows),
                            frameon=False, **options)
        box = legend.get_window_extent(found)
        if box.width <= fig.bbox.width - 4 or rows == len(handles):
            break
        legend.remove()
    probe = fig.legend(handles=handles[:1], frameon=False, **options)  # measured only: one row's height
    one_row = probe.get_window_extent(found).height
    probe.remove()
    grow = (box.height - one_row) / fig.dpi
    if grow > 0:
        fig.set_size_inches(fig.get_figwidth(), fig.get_figheight() + grow)
    return legend


def fit_ticks(fig: Figure, upright: dict | None = None) -> None:
    """Keep each axes' x tick labels apart where side by side they would overlap: a linear number
    line gets fewer ticks; categories stand upright, as the one-line labels `upright` gives for that
    axes (its wrapped labels would be as wide turned as they are tall), else as they are, and the
    figure grows by what they gained in height, so the axes keep theirs."""
    for bins in (4, 3, 2):
        found = settle(fig)
        crowded = [ax for ax in fig.axes if ax.get_visible() and _ticks_collide(ax, found)]
        grow = 0.0
        for ax in crowded:
            if isinstance(ax.xaxis.get_major_locator(), FixedLocator):
                before = _tick_height(ax, found)
                if (upright or {}).get(ax) is not None:
                    ax.set_xticks(ax.get_xticks(), upright[ax])
                ax.tick_params(axis="x", labelrotation=90)
                grow = max(grow, _tick_height(ax, found) - before)
            elif ax.get_xscale() == "linear":
                ax.xaxis.set_major_locator(MaxNLocator(nbins=bins))
        if grow > 0:
            fig.set_size_inches(fig.get_figwidth(), fig.get_figheight() + grow / fig.dpi)
        if not crowded:
            break
    _keep_height(fig)


def _keep_height(fig: Figure) -> None:
    """Grow the figure where tall labels left a row of axes lower than MIN_AXES_HEIGHT."""
    found = settle(fig)
    boxes = [ax.get_window_extent(found) for ax in fig.axes if ax.get_visible()]
    if not boxes:
        return
    short = MIN_AXES_HEIGHT - min(box.height for box in boxes) / fig.dpi
    rows = len({round(box.y0) for box in boxes if box.height / fig.dpi < MIN_AXES_HEIGHT})  # each grows
    if short > 0:
        fig.set_size_inches(fig.get_figwidth(), fig.get_figheight() + short * rows)


def _tick_height(ax: Axes, found) -> float:
    return max((t.get_window_extent(found).height for t in ax.get_xticklabels() if t.get_text()), default=0.0)


def _ticks_collide(ax: Axes, found) -> bool:
    low, high = sorted(ax.get_xlim())
    boxes = sorted((t.get_window_extent(found) for t, loc in zip(ax.get_xticklabels(), ax.get_xticks())
                    if t.get_visible() and t.get_text().strip() and low <= loc <= high), key=lambda box: box.x0)
    gap = TICK_GAP * ax.figure.dpi  # closer than this, neighbouring numbers read as one
    return any(_overlap(a, b, tolerance=-gap) for a, b in zip(boxes, boxes[1:]))


def place(ax: Axes, points: list[tuple[float, float]], texts: list[str], gap: float = 7.0,
          colours: list | None = None, **style) -> list[Annotation]:
    """Write each text beside its point (data coordinates), `gap` points away or more, in the first
    place that stays inside the axes and covers no text, marker or line; where none is free, in the
    place that covers least (a line before a marker, a marker before a text). `colours`, one per
    text, ties a label to its point where it had to move away from it."""
    found = settle(ax.figure)
    inside = ax.get_window_extent(found).padded(-2)
    scale = ax.figure.dpi / 72
    blocked = [t.get_window_extent(found) for t in ax.texts if t.get_visible() and t.get_text().strip()]
    markers = _marker_boxes(ax, scale)
    segments = _segments(ax, scale)
    placed = []
    for index, ((x, y), text) in enumerate(zip(points, texts)):
        colour = {"color": colours[index]} if colours else {}
        label = ax.annotate(text, (x, y), xytext=(gap, 0), textcoords="offset points", **colour, **style)
        best, best_cost = None, math.inf
        for distance in DISTANCES:
            for dx, dy in DIRECTIONS:
                _aim(label, dx, dy, gap * distance)
                box = label.get_window_extent(found)
                cost = _cost(box, inside, blocked, markers, segments)
                if cost < best_cost:
                    best, best_cost = (dx, dy, gap * distance), cost
                if cost == 0:
                    break
            if best_cost == 0:
                break
        _aim(label, *best)
        blocked.append(label.get_window_extent(found))
        placed.append(label)
    return placed


def _aim(label: Annotation, dx: int, dy: int, distance: float) -> None:
    # A corner sits a little closer on each axis, so corners and sides are the same distance away.
    reach = distance / math.sqrt(2) if dx and dy else distance
    label.xyann = (dx * reach, dy * reach)
    label.set_horizontalalignment("left" if dx > 0 else "right" if dx < 0 else "center")
    label.set_verticalalignment("bottom" if dy > 0 else "top" if dy < 0 else "center")


def _cost(box: Bbox, inside: Bbox, blocked: list[Bbox], markers: list[Bbox], segments: list[tuple]) -> float:
    if not (inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1):
        return OUTSIDE_COST
    cost = TEXT_COST * sum(_overlap(box, other) for other in blocked)
    cost += MARKER_COST * sum(_overlap(box, other) for other in markers)
    for (start, end), pad in segments:
        if Path([start, end]).intersects_bbox(box.padded(pad), filled=False):
            cost += LINE_COST
    return cost


def _overlap(a: Bbox, b: Bbox, tolerance: float = 1.0) -> bool:
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > tolerance) and (min(a.y1, b.y1) - max(a.y0, b.y0) > tolerance)


def _marker_boxes(ax: Axes, scale: float) -> list[Bbox]:
    """A box around every marker of the axes (line markers and scatter points), in pixels."""
    boxes = []
    for line in ax.get_lines():
        if not line.get_visible() or line.get_marker() in (None, "", " ", "None"):
            continue
        half = (line.get_markersize() / 2 + line.get_markeredgewidth()) * scale
        boxes += [Bbox.from_extents(x - half, y - half, x + half, y + half) for x, y in _display(line)]
    for collection in ax.collections:
        if isinstance(collection, PathCollection) and collection.get_visible():
            sizes = collection.get_sizes()
            xy = collection.get_offset_transform().transform(collection.get_offsets())
            for index, (x, y) in enumerate(xy):
                half = math.sqrt(sizes[index % len(sizes)] if len(sizes) else 36) / 2 * scale
                if np.isfinite([x, y]).all():
                    boxes.append(Bbox.from_extents(x - half, y - half, x + half, y + half))
    return boxes


def _segments(ax: Axes, scale: float) -> list[tuple]:
    """Every drawn line segment of the axes in pixels, with half its width: ((start, end), pad)."""
    found = []
    for line in ax.get_lines():
        if line.get_visible() and line.get_linestyle() not in ("None", "", " "):
            found += _pairs(_display(line), line.get_linewidth() / 2 * scale)
    for collection in ax.collections:
        if isinstance(collection, LineCollection) and collection.get_visible():
            widths = collection.get_linewidths()
            for index, segment in enumerate(collection.get_segments()):
                width = widths[index % len(widths)] if len(widths) else 1.0
                found += _pairs(collection.get_transform().transform(segment), width / 2 * scale)
    return found


def _display(line: Line2D) -> np.ndarray:
    return line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))


def _pairs(xy: np.ndarray, pad: float) -> list[tuple]:
    return [((tuple(a), tuple(b)), pad) for a, b in zip(xy, xy[1:]) if np.isfinite([*a, *b]).all()]
