"""The experiment's five figures, drawn from a SweepResults table (no measuring here).

Figures are built on matplotlib's object API with the Agg canvas (no pyplot state, no display needed). Each one
says in its title what was measured and how, so it can be read without the code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from miniserve.lab.results import ConfigResult, LoopResult, Spread, SweepResults

BASELINE_COLOR = "black"
WAIT_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:olive")
CDF_MAX_BATCH = 8
_SAVE = {"dpi": 120, "metadata": {"Software": None}}  # no version stamp, so regenerating gives the same bytes


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _static_rows(results: SweepResults) -> list[ConfigResult]:
    return sorted((r for r in results.static if r.config.max_batch), key=lambda r: r.config.max_batch or 0)


def _spread_plot(ax: Axes, results: SweepResults, get: Callable[[ConfigResult], Spread | None], unit: str,
                 baseline_name: str) -> None:
    """Median with min-max bars per static config, a line per max_wait_ms, the baseline as a horizontal band."""
    rows = [(r, s) for r in _static_rows(results) if (s := get(r)) is not None]
    if rows:
        ax.plot([r.config.max_batch for r, _ in rows], [s.median for _, s in rows], color="0.75", lw=1, ls="--",
                zorder=1, label="all static configs, in max_batch order")
    waits = sorted({r.config.max_wait_ms for r, _ in rows if r.config.max_wait_ms is not None})
    for i, w in enumerate(waits):
        pts = [(r, s) for r, s in rows if r.config.max_wait_ms == w]
        xs, meds = [r.config.max_batch for r, _ in pts], [s.median for _, s in pts]
        err = [[s.median - s.min for _, s in pts], [s.max - s.median for _, s in pts]]
        ax.errorbar(xs, meds, yerr=err, marker="o", capsize=4, lw=2, color=WAIT_COLORS[i % len(WAIT_COLORS)],
                    label=f"static, max_wait_ms = {w:g}", zorder=3)
        for x, m in zip(xs, meds):
            ax.annotate(f"{m:.0f}", (x, m), textcoords="offset points", xytext=(6, 4), fontsize=8)
    base = get(results.baseline) if results.baseline else None
    if base is not None:
        ax.axhline(base.median, color=BASELINE_COLOR, lw=1.5, label=f"{baseline_name}: {base.median:.0f} {unit}")
        ax.axhspan(base.min, base.max, color=BASELINE_COLOR, alpha=0.08, lw=0)
    sizes = sorted({r.config.max_batch for r, _ in rows if r.config.max_batch})
    ax.set_xscale("log", base=2)
    ax.margins(x=0.08)  # room for the value labels at the ends
    if sizes:
        ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("max_batch (most requests per model call; log2 scale)")
    ax.grid(True, alpha=0.3)


def _closed(attr: str) -> Callable[[ConfigResult], Spread | None]:
    return lambda r: getattr(r.closed, attr) if r.closed else None


def _open(attr: str) -> Callable[[ConfigResult], Spread | None]:
    return lambda r: getattr(r.open, attr) if r.open else None


def _load_text(results: SweepResults) -> str:
    p = results.params
    return f"closed loop: {p.concurrency} clients, {p.total} requests per run, {_runs(p.runs)}"


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def _rate(results: SweepResults) -> float | None:
    b = results.baseline
    return b.open.rate_rps if b and b.open else None


def plot_throughput(results: SweepResults, path: Path) -> None:
    fig = _figure(9, 5.5)
    ax = fig.subplots()
    _spread_plot(ax, results, _closed("throughput_rps"), "req/s", "unbatched baseline")
    base = results.baseline.closed.throughput_rps if results.baseline and results.baseline.closed else None
    if base is not None:
        ax.axhline(1.5 * base.median, color=BASELINE_COLOR, lw=1, ls=":",
                   label=f"acceptance target: 1.5 x baseline = {1.5 * base.median:.0f} req/s")
    ax.set_ylabel("throughput (successful requests / s)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Throughput vs max_batch\n{_load_text(results)}\npoint = median, bar = min-max over runs",
                 fontsize=11)
    ax.legend(fontsize=8, loc="lower right")
    fig.savefig(path, **_SAVE)


def plot_p95(results: SweepResults, path: Path) -> None:
    fig = _figure(13, 5)
    left, right = fig.subplots(1, 2)
    _spread_plot(left, results, _closed("p95_ms"), "ms", "unbatched baseline")
    left.set_title(f"Closed loop ({results.params.concurrency} clients, no think time)\n"
                   "Little's law: more throughput means less latency here", fontsize=10)
    _spread_plot(right, results, _open("p95_ms"), "ms", "unbatched baseline")
    rate = _rate(results)
    rate_text = f"{rate:.1f} req/s" if rate else "n/a"
    right.set_title(f"Open loop, Poisson arrivals at {rate_text} for every config\n"
                    f"({results.params.judged_load:g} x the baseline's throughput): the latency cost of batching",
                    fontsize=10)
    for ax in (left, right):
        ax.set_ylabel("p95 latency (ms)")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    fig.suptitle(f"p95 latency vs max_batch (median over {_runs(results.params.runs)}, bar = min-max)")
    fig.savefig(path, **_SAVE)


def plot_p95_vs_load(results: SweepResults, path: Path) -> None:
    """Open-loop p50 and p95 against the offered load, one line per configuration: where batching costs latency
    (light load: a request waits for its batch and decodes the longest member's tokens) and where the unbatched
    server's own queueing catches up with it."""
    fig = _figure(13, 5.5)
    panels = fig.subplots(1, 2)
    rows = ([results.baseline] if results.baseline else []) + _static_rows(results)
    judged, judged_rate = results.params.judged_load, _rate(results)
    for ax, attr in zip(panels, ("p50_ms", "p95_ms")):
        for i, row in enumerate(rows):
            pts = sorted((loop.rate_rps, s) for loop in row.open_by_load.values()
                         if loop.rate_rps and (s := getattr(loop, attr)) is not None)
            if not pts:
                continue
            base = row.config.is_baseline
            color = BASELINE_COLOR if base else WAIT_COLORS[(i - 1) % len(WAIT_COLORS)]
            ax.errorbar([x for x, _ in pts], [s.median for _, s in pts],
                        yerr=[[s.median - s.min for _, s in pts], [s.max - s.median for _, s in pts]],
                        marker="s" if base else "o", capsize=3, lw=3 if base else 1.5, color=color,
                        label=row.config.label, zorder=3 if base else 2)
        if judged_rate:
            ax.axvline(judged_rate, color="0.5", lw=1, ls=":",
                       label=f"judged load: {judged:g} x baseline = {judged_rate:.1f} req/s")
        ax.set_xlabel("offered load (Poisson arrivals, requests / s)")
        ax.set_ylabel(f"{attr[:3]} latency (ms)")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.set_title(f"Open-loop {attr[:3]} (median over {_runs(results.params.runs)}, bar = min-max)", fontsize=10)
    panels[1].legend(fontsize=8, loc="upper left")
    loads = ", ".join(f"{f:g}" for f in results.params.open_loop_loads)
    fig.suptitle(f"Latency vs offered load (fractions {loads} of the baseline's closed-loop throughput): what "
                 "batching costs a request at each load")
    fig.savefig(path, **_SAVE)


def _cdf(ax: Axes, loop: LoopResult | None, label: str, color: str) -> bool:
    if loop is None or not loop.latencies_ms:
        return False
    xs = sorted(loop.latencies_ms)
    n = len(xs)
    ax.step(xs, [(i + 1) / n for i in range(n)], where="post", color=color, lw=2,
            label=f"{label} (run {loop.latencies_run}, {n} requests)")
    return True


def plot_latency_cdf(results: SweepResults, path: Path) -> None:
    fig = _figure(13, 5)
    panels = fig.subplots(1, 2)
    base = results.baseline
    batch8 = next((r for r in _static_rows(results) if r.config.max_batch == CDF_MAX_BATCH), None)
    rate = _rate(results)
    titles = (f"Closed loop, {results.params.concurrency} clients (the median-throughput run)",
              f"Open loop, Poisson {rate:.1f} req/s (first run)" if rate else "Open loop")
    for ax, title, kind in zip(panels, titles, ("closed", "open")):
        drawn = False
        for row, color in ((base, BASELINE_COLOR), (batch8, "tab:red")):
            if row is not None:
                drawn |= _cdf(ax, getattr(row, kind), row.config.label, color)
        if not drawn:
            ax.text(0.5, 0.5, "no per-request latencies recorded", ha="center", va="center",
                    transform=ax.transAxes)
        ax.axhline(0.95, color="0.5", lw=1, ls=":", label="p95")
        ax.set_xlabel("latency (ms, from scheduled send to response)")
        ax.set_ylabel("fraction of requests answered within")
        ax.set_ylim(0, 1.01)
        ax.grid(True, alpha=0.3)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Latency CDF: unbatched baseline vs static max_batch={CDF_MAX_BATCH} (successful requests)")
    fig.savefig(path, **_SAVE)


def _bucket_labels(bounds: list[str]) -> list[str]:
    """Prometheus upper bounds ['1', '2', '3', '4', '6', ...] -> batch-size ranges ['1', '2', '3', '4', '5-6', ...]."""
    labels, prev = [], 0
    for b in bounds:
        if b == "+Inf":
            labels.append(f">{prev}")
            continue
        hi = int(float(b))
        labels.append(str(hi) if hi == prev + 1 else f"{prev + 1}-{hi}")
        prev = hi
    return labels


def plot_batch_fill(results: SweepResults, path: Path) -> None:
    rows = [r for r in results.configs if r.batch_hist]
    cols = min(4, max(1, len(rows)))
    nrows = max(1, -(-len(rows) // cols))
    fig = _figure(3.6 * cols, 3.0 * nrows)
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    for ax, row in zip(axes, rows):
        bounds = sorted(row.batch_hist, key=lambda b: float("inf") if b == "+Inf" else float(b))
        limit = row.config.max_batch or 1
        labels = dict(zip(bounds, _bucket_labels(bounds)))  # ranges need every bound, shown or not
        shown = [b for b in bounds if row.batch_hist[b] or (b != "+Inf" and float(b) <= limit)]
        total = sum(row.batch_hist.values()) or 1
        ax.bar([labels[b] for b in shown], [row.batch_hist[b] / total for b in shown], color="tab:blue")
        mean = row.mean_batch_size.median if row.mean_batch_size else float("nan")
        ax.set_title(f"{row.config.label}\nmean batch {mean:.1f} of max {limit} ({mean / limit:.0%} full)",
                     fontsize=9)
        ax.set_xlabel("requests in the batch")
        ax.set_ylabel("fraction of batches")
        ax.set_ylim(0, 1)
        ax.tick_params(axis="x", labelsize=8, rotation=45 if len(shown) > 7 else 0)
        ax.grid(True, axis="y", alpha=0.3)
    for ax in axes[len(rows):]:
        ax.set_visible(False)
    fig.suptitle("How full was each batch? Closed-loop runs, all batches, from the server's miniserve_batch_size "
                 "histogram\n(unbatched: one request per model call by definition)", fontsize=10)
    fig.savefig(path, **_SAVE)


def write_plots(results: SweepResults, out: Path) -> None:
    plot_throughput(results, out / "throughput_vs_batch.png")
    plot_p95(results, out / "p95_vs_batch.png")
    plot_p95_vs_load(results, out / "p95_vs_load.png")
    plot_latency_cdf(results, out / "latency_cdf_baseline_vs_batch8.png")
    plot_batch_fill(results, out / "batch_fill_histogram.png")
