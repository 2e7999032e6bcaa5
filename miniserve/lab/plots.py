"""Lab 02's five figures, drawn from a SweepResults table (no measuring here).

Each one says in its title what was measured and how, so it can be read without the code. The rules both labs'
figures keep (one colour per configuration, legends outside the axes, value labels that cross nothing, the same
bytes on every regeneration) and the helpers that keep them are in plots_common.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from miniserve.lab.plots_common import (BAND_COLOR, SAVE, Label, bar_label, config_colors, hline_label, legend_outside,
                                        new_figure, place_labels, point_label, runs_text, write_figures)
from miniserve.lab.prom import bound_value
from miniserve.lab.results import ConfigResult, LoopResult, Spread, SweepResults
from miniserve.lab.sweep_params import SweepConfig

CDF_MAX_BATCH = 8


# -- median and spread per configuration, against max_batch ---------------------------------------------------------

def _static_rows(results: SweepResults) -> list[ConfigResult]:
    return sorted((r for r in results.static if r.config.max_batch), key=lambda r: r.config.max_batch or 0)


def _batch_ticks(ax: Axes, configs: Sequence[SweepConfig]) -> None:
    """max_batch on a log2 axis, each tick naming its max_wait too, so a point reads without the legend."""
    waits: dict[int, list[str]] = {}
    for c in configs:
        if c.max_batch is not None and c.max_wait_ms is not None:
            waits.setdefault(c.max_batch, []).append(f"{c.max_wait_ms:g}")
    ax.set_xscale("log", base=2)
    ax.margins(x=0.08)  # room for the value labels at the ends
    if waits:
        sizes = sorted(waits)
        ax.set_xticks(sizes, [f"{b}\n{'/'.join(waits[b])} ms" for b in sizes])
        ax.minorticks_off()
    ax.set_xlabel("max_batch (most requests per model call; log2 scale), above its max_wait")


def _spread_plot(ax: Axes, results: SweepResults, get: Callable[[ConfigResult], Spread | None],
                 colors: Mapping[str, str]) -> list[Label]:
    """Per static config its median with a min-max bar, in the config's colour, joined in max_batch order by a grey
    line; the baseline as a horizontal line over its min-max band. Returns the value labels, to be placed once the
    figure is complete."""
    rows = [(r, s) for r in _static_rows(results) if (s := get(r)) is not None]
    runs = runs_text(results.params.runs)
    labels: list[Label] = []
    if rows:
        ax.plot([r.config.max_batch for r, _ in rows], [s.median for _, s in rows], color="0.7", lw=1, ls="--",
                zorder=1, label="static configs, in max_batch order")
    for r, s in rows:
        x, color = r.config.max_batch or 0, colors[r.key]
        ax.errorbar([x], [s.median], yerr=[[s.median - s.min], [s.max - s.median]], marker="o", capsize=4, lw=2,
                    color=color, label=r.config.label, zorder=3)
        labels.append(point_label(f"{s.median:.0f}", color, x, s))
    baseline = results.baseline
    base = get(baseline) if baseline else None
    if baseline and base is not None:
        color = colors[baseline.key]
        ax.axhline(base.median, color=color, lw=1.5, zorder=2, label=f"unbatched baseline: median over {runs}")
        ax.axhspan(base.min, base.max, color=BAND_COLOR, alpha=0.15, lw=0, zorder=0,
                   label=f"unbatched baseline: min-max over {runs} (grey band)")
        xs = [float(r.config.max_batch or 0) for r, _ in rows]
        labels.append(hline_label(f"baseline {base.median:.0f}", color, base.median, xs))
    _batch_ticks(ax, [r.config for r, _ in rows])
    ax.grid(True, alpha=0.3)
    return labels


def _closed(attr: str) -> Callable[[ConfigResult], Spread | None]:
    return lambda r: getattr(r.closed, attr) if r.closed else None


def _open(attr: str) -> Callable[[ConfigResult], Spread | None]:
    return lambda r: getattr(r.open, attr) if r.open else None


def _load_text(results: SweepResults) -> str:
    p = results.params
    return f"closed loop: {p.concurrency} clients, {p.total} requests per run, {runs_text(p.runs)}"


def _rate(results: SweepResults) -> float | None:
    b = results.baseline
    return b.open.rate_rps if b and b.open else None


def plot_throughput(results: SweepResults, path: Path) -> Figure:
    fig = new_figure(12, 5.5)
    ax = fig.subplots()
    labels = _spread_plot(ax, results, _closed("throughput_rps"), config_colors(results))
    base = results.baseline.closed.throughput_rps if results.baseline and results.baseline.closed else None
    if base is not None:
        ax.axhline(1.5 * base.median, color="black", lw=1, ls=":",
                   label=f"acceptance target: 1.5 x baseline = {1.5 * base.median:.0f} req/s")
    ax.set_ylabel("throughput (successful requests / s)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Throughput vs max_batch\n{_load_text(results)}\npoint = median, bar = min-max over runs",
                 fontsize=11)
    legend_outside(fig, ax)
    place_labels(fig, [(ax, labels)])
    fig.savefig(path, **SAVE)
    return fig


def plot_p95(results: SweepResults, path: Path) -> Figure:
    fig = new_figure(15, 5.5)
    left, right = fig.subplots(1, 2)
    colors = config_colors(results)
    labels = [(left, _spread_plot(left, results, _closed("p95_ms"), colors)),
              (right, _spread_plot(right, results, _open("p95_ms"), colors))]
    left.set_title(f"Closed loop ({results.params.concurrency} clients, no think time)\n"
                   "Little's law: more throughput means less latency here", fontsize=10)
    rate = _rate(results)
    rate_text = f"{rate:.1f} req/s" if rate else "n/a"
    right.set_title(f"Open loop, Poisson arrivals at {rate_text} for every config\n"
                    f"({results.params.judged_load:g} x the baseline's throughput): the latency cost of batching",
                    fontsize=10)
    for ax in (left, right):
        ax.set_ylabel("p95 latency (ms)")
        ax.set_ylim(bottom=0)
    legend_outside(fig, left)  # both panels draw the same entries
    fig.suptitle(f"p95 latency vs max_batch (median over {runs_text(results.params.runs)}, bar = min-max)")
    place_labels(fig, labels)
    fig.savefig(path, **SAVE)
    return fig


def plot_p95_vs_load(results: SweepResults, path: Path) -> Figure:
    """Open-loop p50 and p95 against the offered load, one line per configuration: where batching costs latency
    (light load: a request waits for its batch and decodes the longest member's tokens) and where the unbatched
    server's own queueing catches up with it."""
    fig = new_figure(15, 5.5)
    panels = fig.subplots(1, 2)
    colors = config_colors(results)
    rows = ([results.baseline] if results.baseline else []) + _static_rows(results)
    judged, judged_rate = results.params.judged_load, _rate(results)
    for ax, attr in zip(panels, ("p50_ms", "p95_ms")):
        for row in rows:
            pts = sorted((loop.rate_rps, s) for loop in row.open_by_load.values()
                         if loop.rate_rps and (s := getattr(loop, attr)) is not None)
            if not pts:
                continue
            base = row.config.is_baseline
            ax.errorbar([x for x, _ in pts], [s.median for _, s in pts],
                        yerr=[[s.median - s.min for _, s in pts], [s.max - s.median for _, s in pts]],
                        marker="s" if base else "o", capsize=3, lw=3 if base else 1.5, color=colors[row.key],
                        label=row.config.label, zorder=3 if base else 2)
        if judged_rate:
            ax.axvline(judged_rate, color="0.5", lw=1, ls=":",
                       label=f"judged load: {judged:g} x baseline = {judged_rate:.1f} req/s")
        ax.set_xlabel("offered load (Poisson arrivals, requests / s)")
        ax.set_ylabel(f"{attr[:3]} latency (ms)")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.set_title(f"Open-loop {attr[:3]} (median over {runs_text(results.params.runs)}, bar = min-max)", fontsize=10)
    legend_outside(fig, panels[0])
    loads = ", ".join(f"{f:g}" for f in results.params.open_loop_loads)
    fig.suptitle(f"Latency vs offered load (fractions {loads} of the baseline's closed-loop throughput): what "
                 "batching costs a request at each load")
    fig.savefig(path, **SAVE)
    return fig


# -- latency distributions ------------------------------------------------------------------------------------------

def _cdf(ax: Axes, loop: LoopResult | None, label: str, color: str) -> str | None:
    """Draws one run's latency CDF; returns which run it is, for the panel's title (None: nothing recorded)."""
    if loop is None or not loop.latencies_ms:
        return None
    xs = sorted(loop.latencies_ms)
    n = len(xs)
    ax.step(xs, [(i + 1) / n for i in range(n)], where="post", color=color, lw=2, label=label)
    return f"run {loop.latencies_run}, {n} requests"


def plot_latency_cdf(results: SweepResults, path: Path) -> Figure:
    fig = new_figure(13, 5.5)
    panels = fig.subplots(1, 2)
    colors = config_colors(results)
    base = results.baseline
    batch8 = next((r for r in _static_rows(results) if r.config.max_batch == CDF_MAX_BATCH), None)
    rate = _rate(results)
    titles = (f"Closed loop, {results.params.concurrency} clients (each config's median-throughput run)",
              f"Open loop, Poisson {rate:.1f} req/s (first run)" if rate else "Open loop")
    for ax, title, kind in zip(panels, titles, ("closed", "open")):
        drawn = []  # the runs drawn go in the panel's title, so the shared legend holds only what is alike
        for row, name in ((base, "baseline"), (batch8, f"max_batch={CDF_MAX_BATCH}")):
            if row is not None and (run := _cdf(ax, getattr(row, kind), row.config.label, colors[row.key])):
                drawn.append(f"{name}: {run}")
        if not drawn:
            ax.text(0.5, 0.5, "no per-request latencies recorded", ha="center", va="center",
                    transform=ax.transAxes)
        ax.axhline(0.95, color="0.5", lw=1, ls=":", label="p95 (0.95 of requests answered)")
        ax.set_xlabel("latency (ms, from scheduled send to response)")
        ax.set_ylabel("fraction of requests answered within")
        ax.set_ylim(0, 1.01)
        ax.grid(True, alpha=0.3)
        ax.set_title(f"{title}\n{'; '.join(drawn)}", fontsize=10)
    legend_outside(fig, panels[0], loc="outside lower center", ncols=3)
    fig.suptitle(f"Latency CDF: unbatched baseline vs static max_batch={CDF_MAX_BATCH} (successful requests)")
    fig.savefig(path, **SAVE)
    return fig


# -- batch sizes ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Bucket:
    """Batches whose size the server's histogram puts in lo..hi (inclusive); lo == hi is one exact size."""

    lo: int
    hi: int
    batches: int

    @property
    def text(self) -> str:
        return str(self.lo) if self.lo == self.hi else f"{self.lo}\u2013{self.hi}"


def size_buckets(hist: Mapping[str, int], max_batch: int) -> list[_Bucket]:
    """The non-empty buckets of a batch-size histogram (batches per Prometheus upper bound, not cumulative) as the
    sizes they really cover. Sizes are integers, so bucket (4, 6] is 5..6; the server never runs more than
    max_batch at once, so a bucket ends there at the latest ((48, 64] at max_batch 50 is 49..50; +Inf is the rest up
    to max_batch). Sweeps before the server had a bucket per size hold such ranges, and nothing recorded says where
    inside one a batch fell."""
    out, prev = [], 0
    for bound in sorted(hist, key=bound_value):
        top = bound_value(bound)
        if hist[bound]:
            hi = int(min(top, max_batch))
            out.append(_Bucket(prev + 1, max(prev + 1, hi), hist[bound]))
        prev = int(top) if top != float("inf") else prev
    return out


def _fill_panel(ax: Axes, row: ConfigResult, color: str) -> tuple[list[Label], bool]:
    """One configuration's batch sizes on a linear 1..max_batch axis: a solid bar per exact size, a hatched bar over
    the whole range where the record only has a range. Returns the bars' labels and whether any was a range."""
    limit = row.config.max_batch or 1
    buckets = size_buckets(row.batch_hist, limit)
    total = sum(b.batches for b in buckets) or 1
    labels = []
    for b in sorted(buckets, key=lambda b: -b.batches):  # the tallest bars get their labels first
        exact = b.lo == b.hi
        x, frac = (b.lo + b.hi) / 2, b.batches / total
        ax.bar(x, frac, width=(b.hi - b.lo + 1) - (0.2 if exact else 0.1), color=color, alpha=1 if exact else 0.35,
               edgecolor=color, hatch=None if exact else "///", lw=1)
        labels.append(bar_label(b.text, "black", x, frac))
    mean = row.mean_batch_size.median if row.mean_batch_size else float("nan")
    ax.set_title(f"{row.config.label}\n{sum(b.batches for b in buckets)} batches, mean {mean:.1f} of max {limit} "
                 f"({mean / limit:.0%} full)", fontsize=9)
    ax.set_xlim(0.5, limit + 0.5)
    # 1, the quarters and max_batch: sizes only, and the ticks read as how full a batch was
    ax.set_xticks(sorted({1, limit} | {round(limit * k / 4) for k in (1, 2, 3)} - {0}))
    ax.set_xlabel("requests in the batch")
    ax.set_ylabel("fraction of batches")
    ax.set_ylim(0, 1.25)  # room above a full bar for its label
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
    ax.grid(True, axis="y", alpha=0.3)
    return labels, any(b.lo != b.hi for b in buckets)


def plot_batch_fill(results: SweepResults, path: Path) -> Figure:
    rows = [r for r in results.configs if r.batch_hist]
    cols = min(4, max(1, len(rows)))
    nrows = max(1, -(-len(rows) // cols))
    fig = new_figure(3.6 * cols, 3.1 * nrows + 0.4)
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    colors = config_colors(results)
    labels, ranges = [], False
    for ax, row in zip(axes, rows):
        ax_labels, ranged = _fill_panel(ax, row, colors[row.key])
        labels.append((ax, ax_labels))
        ranges |= ranged
    for ax in axes[len(rows):]:
        ax.set_visible(False)
    note = ("\nHatched bar: the server's histogram bucket only tells that these batches held between its two ends "
            "(sweeps before one bucket per size); a solid bar is one exact size.") if ranges else ""
    fig.suptitle("How full was each batch? Closed-loop runs, all batches, from the server's miniserve_batch_size "
                 f"histogram (unbatched: one request per model call by definition){note}", fontsize=10)
    place_labels(fig, labels)
    fig.savefig(path, **SAVE)
    return fig


FIGURES = ((plot_throughput, "throughput_vs_batch.png"), (plot_p95, "p95_vs_batch.png"),
           (plot_p95_vs_load, "p95_vs_load.png"), (plot_latency_cdf, "latency_cdf_baseline_vs_batch8.png"),
           (plot_batch_fill, "batch_fill_histogram.png"))


def write_plots(results: SweepResults, out: Path) -> None:
    write_figures(FIGURES, results, out)
