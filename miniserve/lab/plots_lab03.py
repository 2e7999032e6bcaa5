"""Lab 03's four figures, drawn from a Lab03Results table (no measuring here).

The same rules as lab 02's figures (plots.py), with the same helpers (plots_common.py): one colour per configuration
in every figure (plots_common.CONFIG_COLORS: static configurations keep lab 02's colours, continuous ones are
greens, darker with more rows), legends outside the axes, titles that say what was measured, the same bytes on
every regeneration. Static configurations are drawn dashed with square markers, continuous ones solid with round
markers, and the best of each (highest median closed-loop throughput) thicker, so the two the criteria compare stand
out.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from miniserve.lab.plots_common import (BAND_COLOR, SAVE, config_colors, legend_outside, new_figure, place_labels,
                                        point_label, runs_text, write_figures)
from miniserve.lab.results_lab03 import (KV_SLOTS, LENGTH_CLASSES, QUEUE_DEPTH, Lab03Results, Lab03Row, class_p95,
                                         class_result)


def _style(results: Lab03Results, row: Lab03Row) -> dict[str, object]:
    best = row is results.best_static or row is results.best_continuous
    cont = row.config.is_continuous
    return {"ls": "-" if cont else "--", "marker": "o" if cont else "s", "lw": 3.0 if best else 1.4,
            "zorder": 4 if best else 3}


def _label(results: Lab03Results, row: Lab03Row) -> str:
    tag = " (best static)" if row is results.best_static else " (best continuous)" \
        if row is results.best_continuous else ""
    return row.config.label + tag


def _batching(results: Lab03Results) -> list[Lab03Row]:
    return [*results.static, *results.continuous]


def plot_p95_vs_load(results: Lab03Results, path: Path) -> Figure:
    """Open-loop p95 against the offered load, all requests and each length class: where continuous batching's
    shorter tail shows, and where a configuration runs out of capacity (log scale: overload is orders larger)."""
    fig = new_figure(17, 5.8)
    panels = fig.subplots(1, 3, sharey=True)
    colors = config_colors(results)
    judged = results.params.judged_load
    judged_rate = results.rate_rps(judged)
    for ax, cls in zip(panels, (None, *LENGTH_CLASSES)):
        for row in _batching(results):
            pts = sorted((loop.rate_rps, s) for loop in row.open_by_load.values()
                         if loop.rate_rps and (s := class_p95(loop, cls)) is not None)
            if not pts:
                continue
            ax.errorbar([x for x, _ in pts], [s.median for _, s in pts],
                        yerr=[[s.median - s.min for _, s in pts], [s.max - s.median for _, s in pts]], capsize=3,
                        color=colors[row.key], label=_label(results, row), **_style(results, row))
        if judged_rate:
            ax.axvline(judged_rate, color="0.5", lw=1, ls=":",
                       label=f"judged load: {judged:g} x best static = {judged_rate:.1f} req/s")
        ax.set_yscale("log")
        ax.set_xlabel("offered load (Poisson arrivals, requests / s)")
        ax.grid(True, which="both", alpha=0.3)
        what = "all requests" if cls is None else f"{cls} requests only"
        ax.set_title(f"p95, {what}", fontsize=10)
    panels[0].set_ylabel("open-loop p95 latency (ms, log scale)")
    legend_outside(fig, panels[0])
    loads = ", ".join(f"{f:g}" for f in sorted(results.params.open_loop_loads))
    fig.suptitle(f"Open-loop p95 vs offered load (fractions {loads} of the best static configuration's closed-loop "
                 f"throughput); median over {runs_text(results.params.runs)}, bar = min-max; static dashed, "
                 "continuous solid")
    fig.savefig(path, **SAVE)
    return fig


def plot_latency_cdf(results: Lab03Results, path: Path) -> Figure:
    """Latency CDFs at the judged load, short and long requests apart, every batching configuration (all runs'
    successful requests pooled): under static batching a short request's curve sits near the long ones'."""
    fig = new_figure(15, 5.8)
    panels = fig.subplots(1, 2, sharey=True)
    colors = config_colors(results)
    load = results.params.judged_load
    rate = results.rate_rps(load)
    for ax, cls in zip(panels, LENGTH_CLASSES):
        drawn = 0
        for row in _batching(results):
            part = class_result(row.open_by_load.get(load), cls)
            if part is None or not part.latencies_ms:
                continue
            xs = part.latencies_ms
            n = len(xs)
            style = _style(results, row)
            ax.step(xs, [(i + 1) / n for i in range(n)], where="post", color=colors[row.key], lw=style["lw"],
                    ls=style["ls"], label=_label(results, row), zorder=style["zorder"])
            drawn += 1
        if not drawn:
            ax.text(0.5, 0.5, "no per-request latencies recorded", ha="center", va="center", transform=ax.transAxes)
        ax.axhline(0.95, color="0.5", lw=1, ls=":", label="p95 (0.95 of requests answered)")
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms from scheduled send to response, log scale)")
        ax.set_ylim(0, 1.01)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"{cls} requests", fontsize=10)
    panels[0].set_ylabel("fraction of requests answered within")
    legend_outside(fig, panels[0])
    rate_text = f"{rate:.1f} req/s = " if rate else ""
    fig.suptitle(f"Latency CDF by request length, open loop at {rate_text}{load:g} x the best static's throughput "
                 f"(successful requests of all {runs_text(results.params.runs)} pooled)")
    fig.savefig(path, **SAVE)
    return fig


def _series(samples: dict, name: str) -> tuple[list[float], list[float]]:
    pts = [(t, v) for t, v in zip(samples["t_s"], samples.get(name) or []) if v is not None]
    return [t for t, _ in pts], [v for _, v in pts]


def plot_rows_in_use(results: Lab03Results, path: Path) -> Figure:
    """One panel per continuous configuration: KV-cache rows holding a request over one run (kv_cache_slots_used,
    sampled from /metrics) against its max_running, and the requests waiting for a row (queue depth) in grey; a last
    panel has the static configurations' queue depth in the same run, for contrast (a static server exposes no
    rows gauge: its rows are the batch in flight)."""
    colors = config_colors(results)
    cont = [r for r in results.continuous if r.samples and r.samples.get("t_s")]
    static = [r for r in results.static if r.samples and r.samples.get("t_s")]
    n = max(1, len(cont) + (1 if static else 0))
    fig = new_figure(13, 2.3 * n + 1.2)
    axes = fig.subplots(n, 1, sharex=True, squeeze=False).ravel()
    run_text = ""
    for ax, row in zip(axes, cont):
        s = row.samples or {}
        run_text = run_text or _run_text(results, s)
        ts, vs = _series(s, KV_SLOTS)
        if ts:
            ax.step(ts, vs, where="post", color=colors[row.key], lw=2, label=f"{row.config.label}: rows in use")
        else:
            ax.text(0.5, 0.6, "no kv_cache_slots_used samples (the server did not expose the gauge)", ha="center",
                    va="center", transform=ax.transAxes, fontsize=9)
        qt, qv = _series(s, QUEUE_DEPTH)
        if qt:
            ax.step(qt, qv, where="post", color="0.55", lw=1, label="requests waiting for a row (queue depth)")
        ax.axhline(row.config.max_running or 0, color=colors[row.key], lw=1, ls=":", label="max_running")
        ax.set_ylim(0, max([row.config.max_running or 1, *vs, *qv]) * 1.15)
        ax.set_ylabel("rows / requests", fontsize=9)
        ax.set_title(_label(results, row), fontsize=9, loc="left")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    if static:
        ax = axes[len(cont)]
        for row in static:
            s = row.samples or {}
            run_text = run_text or _run_text(results, s)
            qt, qv = _series(s, QUEUE_DEPTH)
            if qt:
                ax.step(qt, qv, where="post", color=colors[row.key], lw=1.5, ls="--",
                        label=f"{row.config.label}: queue depth")
        ax.set_ylim(bottom=0)
        ax.set_ylabel("requests waiting", fontsize=9)
        ax.set_title("static batching, same load and run: requests waiting for a batch", fontsize=9, loc="left")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    if not cont and not static:
        axes[0].text(0.5, 0.5, "no gauge samples recorded", ha="center", va="center", transform=axes[0].transAxes)
    axes[-1].set_xlabel("seconds since the run started")
    interval = next((r.samples.get("interval_s") for r in cont + static if r.samples.get("interval_s")), None)
    every = f"every {interval * 1000:.0f} ms" if interval else "periodically"
    fig.suptitle(f"Rows in use over time, sampled from /metrics {every}{' during the ' + run_text if run_text else ''}")
    fig.savefig(path, **SAVE)
    return fig


def _run_text(results: Lab03Results, samples: dict) -> str:
    load, run = samples.get("load"), samples.get("run")
    if load is None:
        return f"closed loop, run {run}"
    rate = results.rate_rps(load)
    return f"open loop at {rate:.1f} req/s = {load:g} x best static, run {run}" if rate else \
        f"open loop at {load:g} x best static, run {run}"


def plot_throughput_vs_rows(results: Lab03Results, path: Path) -> Figure:
    """Closed-loop throughput against the rows a model call may carry: max_running (continuous) and max_batch
    (static) on one log2 axis, the unbatched baseline as a line over its run range."""
    fig = new_figure(12, 5.8)
    ax = fig.subplots()
    colors = config_colors(results)
    labels = []
    for group, rows in (("static", results.static), ("continuous", results.continuous)):
        pts = [(r.config.rows, r) for r in rows if r.tput is not None]
        pts.sort(key=lambda p: p[0])
        if len(pts) > 1:
            ax.plot([x for x, _ in pts], [r.tput.median for _, r in pts], color="0.6", lw=1,
                    ls="-" if group == "continuous" else "--", zorder=1,
                    label=f"{group} configurations, in row order")
        for x, r in pts:
            s, style = r.tput, _style(results, r)
            ax.errorbar([x], [s.median], yerr=[[s.median - s.min], [s.max - s.median]], marker=style["marker"],
                        capsize=4, lw=2, color=colors[r.key], label=_label(results, r), zorder=style["zorder"],
                        markersize=9 if style["lw"] == 3.0 else 6)
            labels.append(point_label(f"{s.median:.0f}", colors[r.key], x, s))
    base = results.baseline
    if base is not None and base.tput is not None:
        b = base.tput
        ax.axhline(b.median, color=colors[base.key], lw=1.5, zorder=2,
                   label=f"unbatched baseline: median over {runs_text(results.params.runs)}")
        ax.axhspan(b.min, b.max, color=BAND_COLOR, alpha=0.15, lw=0, zorder=0,
                   label="unbatched baseline: min-max (grey band)")
    s = results.best_static
    if s is not None:
        ax.axhline(s.tput.median * 1.2, color="black", lw=1, ls=":",
                   label=f"goal: 1.2 x best static = {s.tput.median * 1.2:.0f} req/s")
    xs = sorted({r.config.rows for r in _batching(results)})
    ax.set_xscale("log", base=2)
    if xs:
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()
    ax.margins(x=0.1)
    ax.set_xlabel("rows per model call: max_running (continuous) / max_batch (static), log2 scale")
    ax.set_ylabel("throughput (successful requests / s)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    p = results.params
    ax.set_title(f"Closed-loop throughput vs rows (max_running / max_batch)\n{p.concurrency} clients, {p.total} "
                 f"requests per run, {runs_text(p.runs)}; point = median, bar = min-max", fontsize=11)
    legend_outside(fig, ax)
    place_labels(fig, [(ax, labels)])
    fig.savefig(path, **SAVE)
    return fig


FIGURES = ((plot_p95_vs_load, "p95_vs_load.png"), (plot_latency_cdf, "latency_cdf_by_length.png"),
           (plot_rows_in_use, "rows_in_use.png"), (plot_throughput_vs_rows, "throughput_vs_max_running.png"))


def write_plots(results: Lab03Results, out: Path) -> None:
    write_figures(FIGURES, results, out)
