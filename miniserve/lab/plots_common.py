"""What both labs' figures share (plots.py: lab 02, plots_lab03.py: lab 03): the colours, the canvas, the legend
beside the axes, the value labels that cross nothing, and the save settings that make every regeneration the same
bytes.

Figures are built on matplotlib's object API with the Agg canvas (no pyplot state, no display needed). Three rules
keep them readable in one look: a configuration has the same colour in every figure (CONFIG_COLORS); legends sit
outside the axes, so they hide no data; value labels go only where they cross no line, marker, bar or other label
(place_labels).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import cycle
from math import sqrt
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.path import Path as DisplayPath
from matplotlib.transforms import Bbox

from miniserve.lab.results import Spread

# One colour per configuration (SweepConfig.key), the same in every figure and both labs, so "red is max_batch 8"
# learnt in one plot holds in the next. The labs' configurations (sweep_params.LAB_CONFIGS, results_lab03.LAB03_CONFIGS)
# are fixed here; any other configuration (a quick sweep's own list) takes the next spare colour in sweep order.
CONFIG_COLORS = {
    "baseline": "black",
    "static-1-0": "tab:blue",
    "static-2-10": "tab:orange",
    "static-4-10": "tab:green",
    "static-8-20": "tab:red",
    "static-16-20": "tab:purple",
    "static-32-50": "tab:brown",
    "static-64-50": "tab:cyan",
    # lab 03's continuous configurations: greens, darker with more rows (its static ones keep lab 02's colours)
    "continuous-8": "#74c476",
    "continuous-16": "#31a354",
    "continuous-32": "#006d2c",
    "continuous-64": "#00441b",
}
SPARE_COLORS = ("tab:pink", "tab:olive", "navy", "goldenrod", "teal", "indigo")
BAND_COLOR = "0.55"  # the baseline's min-max band: grey, drawn light, so labels and lines stay readable over it
DPI = 120
SAVE = {"dpi": DPI, "metadata": {"Software": None}}  # no version stamp, so regenerating gives the same bytes


def config_colors(results: Any) -> dict[str, str]:
    """Every configuration of the sweep (`results.configs`, either lab's table) -> its colour: CONFIG_COLORS, else
    the spares in sweep order."""
    spare: Iterator[str] = cycle(SPARE_COLORS)
    return {r.key: CONFIG_COLORS.get(r.key) or next(spare) for r in results.configs}


def new_figure(width: float, height: float) -> Figure:
    # the figure's dpi is the saved one, so the label placement measures the same pixels the PNG gets
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def legend_outside(fig: Figure, ax: Axes, **kwargs: object) -> None:
    """One legend for the figure, beside the axes rather than on them: no placement inside can be sure to hide
    nothing for every sweep's data. Centred on the right by default: at the top it would meet a long suptitle."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, **({"loc": "outside right center"} | kwargs))


# -- value labels ---------------------------------------------------------------------------------------------------

Spot = tuple[tuple[float, float], tuple[float, float], str, str]  # data anchor, offset (points), ha, va


@dataclass(frozen=True, slots=True)
class Label:
    """A text for the axes and the spots it may take, best first."""

    text: str
    color: str
    spots: tuple[Spot, ...]


def point_label(text: str, color: str, x: float, s: Spread) -> Label:
    """A median's value: beside the point, or beside the ends of its min-max bar."""
    m = s.median
    return Label(text, color, (
        ((x, m), (7, 0), "left", "center"), ((x, m), (-7, 0), "right", "center"),
        ((x, s.max), (0, 5), "center", "bottom"), ((x, s.min), (0, -5), "center", "top"),
        ((x, m), (6, 6), "left", "bottom"), ((x, m), (6, -6), "left", "top"),
        ((x, m), (-6, 6), "right", "bottom"), ((x, m), (-6, -6), "right", "top"),
    ))


def hline_label(text: str, color: str, y: float, xs: Sequence[float]) -> Label:
    """A horizontal line's value: just above or below it, between two of the points (log2 x: the geometric mean),
    the rightmost gap first, else over a point."""
    gaps = [sqrt(a * b) for a, b in zip(xs, xs[1:])][::-1] + list(xs)[::-1]
    return Label(text, color, tuple(((x, y), (0, dy), "center", va) for x in gaps
                                    for dy, va in ((3, "bottom"), (-3, "top"))))


def bar_label(text: str, color: str, x: float, height: float) -> Label:
    """A bar's size or range: above it, stacked higher when a neighbour's label or bar is in the way, and ending
    at the bar (rather than centred on it) when the bar stands at the axis' edge."""
    return Label(text, color, tuple(((x, height), (0, 2 + 10 * k), ha, "bottom") for k in range(4)
                                    for ha in ("center", "right", "left")))


def _obstacles(ax: Axes, renderer: RendererBase) -> tuple[list[DisplayPath], list[Bbox]]:
    """What a label must not cross, in display pixels: every line and error bar as a path, every marker and bar as
    a box. The baseline's band is not among them: it is a light fill that text stays readable on."""
    paths: list[DisplayPath] = []
    boxes: list[Bbox] = []
    for line in ax.get_lines():
        xy = line.get_transform().transform(line.get_xydata())
        if line.get_linestyle() not in ("None", "none", "", " "):
            paths.append(DisplayPath(xy))
        if line.get_marker() not in (None, "None", "none", "", " "):
            r = line.get_markersize() * ax.figure.dpi / 72 / 2
            boxes += [Bbox.from_extents(x - r, y - r, x + r, y + r) for x, y in xy]
    for coll in ax.collections:
        if isinstance(coll, LineCollection):  # error bars
            paths += [DisplayPath(coll.get_transform().transform(seg)) for seg in coll.get_segments()]
    for container in ax.containers:
        if isinstance(container, BarContainer):
            boxes += [bar.get_window_extent(renderer) for bar in container]
    return paths, boxes


def place_labels(fig: Figure, labels: Sequence[tuple[Axes, Sequence[Label]]]) -> None:
    """Each label at its first spot that stays inside its axes and crosses no line, marker, error bar, bar or label
    already placed; a label with no free spot is left out rather than drawn over data. Call it once the figure is
    complete: it lays the figure out first, so it measures final positions (the labels are kept out of the layout,
    which therefore stays the same at savefig)."""
    canvas = fig.canvas
    canvas.draw()
    renderer = canvas.get_renderer()
    for ax, ax_labels in labels:
        paths, taken = _obstacles(ax, renderer)
        frame = ax.get_window_extent(renderer)
        for label in ax_labels:
            for anchor, offset, ha, va in label.spots:
                text = ax.annotate(label.text, anchor, xytext=offset, textcoords="offset points", ha=ha, va=va,
                                   fontsize=8, color=label.color, in_layout=False)
                box = text.get_window_extent(renderer).padded(2)
                inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
                if inside and not any(p.intersects_bbox(box, filled=False) for p in paths) \
                        and not any(box.overlaps(t) for t in taken):
                    taken.append(box)
                    break
                text.remove()


def runs_text(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def write_figures(figures: Iterable[tuple[Callable[[Any, Path], Figure], str]], results: Any, out: Path) -> None:
    """Each (plot function, file name) drawn from `results` into the folder `out`, in order."""
    for plot, name in figures:
        plot(results, out / name)
