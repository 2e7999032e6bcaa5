"""The figures' readability rules, checked on the drawn artists: one colour per configuration in every figure,
legends off the axes, value labels clear of data and of each other, batch sizes shown as exact only when the
server's histogram recorded them exactly, and the same bytes on every regeneration."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.text import Annotation

from miniserve.lab import plots, plots_common
from miniserve.lab.results import SweepResults
from tests._sweep_fakes import fake_benchmark_json

RED_8 = "static max_batch=8, max_wait=20 ms"


@pytest.fixture(scope="module")
def results() -> SweepResults:
    return SweepResults.from_benchmark_json(fake_benchmark_json())


@pytest.fixture(scope="module")
def figures(results: SweepResults, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Figure]:
    out = tmp_path_factory.mktemp("plots")
    return {name: draw(results, out / f"{name}.png") for name, draw in (
        ("throughput", plots.plot_throughput), ("p95", plots.plot_p95), ("load", plots.plot_p95_vs_load),
        ("cdf", plots.plot_latency_cdf), ("fill", plots.plot_batch_fill))}


def legend_colors(fig: Figure) -> dict[str, str]:
    out = {}
    for legend in fig.legends:
        for handle, text in zip(legend.legend_handles, legend.get_texts()):
            artist = handle.lines[0] if isinstance(handle, ErrorbarContainer) else handle
            if hasattr(artist, "get_color"):
                out[text.get_text()] = to_hex(artist.get_color())
    return out


def test_every_lab_configuration_has_its_own_colour(results: SweepResults) -> None:
    colors = plots_common.config_colors(results)
    assert set(colors) == {r.key for r in results.configs}
    assert len(set(colors.values())) == len(colors)
    assert colors == {k: plots_common.CONFIG_COLORS[k] for k in colors}


def test_configurations_outside_the_lab_list_take_spare_colours() -> None:
    doc = fake_benchmark_json({"baseline": 100.0, "static-3-5": 150.0, "static-8-20": 200.0},
                              {"baseline": 29.0, "static-3-5": 40.0, "static-8-20": 54.0})
    colors = plots_common.config_colors(SweepResults.from_benchmark_json(doc))
    assert colors == {"baseline": "black", "static-3-5": plots_common.SPARE_COLORS[0], "static-8-20": "tab:red"}


def test_a_configuration_has_one_colour_in_every_figure(figures: dict[str, Figure]) -> None:
    red = to_hex("tab:red")
    for name in ("throughput", "p95", "load", "cdf"):
        assert legend_colors(figures[name])[RED_8] == red, name
    fill = figures["fill"]
    panel = next(ax for ax in fill.axes if ax.get_title().startswith(RED_8))
    bars = [bar for c in panel.containers if isinstance(c, BarContainer) for bar in c]
    assert bars and {to_hex(bar.get_edgecolor()) for bar in bars} == {red}


def test_legends_cover_no_axes(figures: dict[str, Figure]) -> None:
    for name, fig in figures.items():
        renderer = fig.canvas.get_renderer()
        legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
        for legend in legends:
            box = legend.get_window_extent(renderer)
            assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes if ax.get_visible()), name


def test_the_baselines_band_is_named_in_the_legend(figures: dict[str, Figure]) -> None:
    for name in ("throughput", "p95"):
        (legend,) = figures[name].legends
        assert "unbatched baseline: min-max over 3 runs (grey band)" in [t.get_text() for t in legend.get_texts()]


def test_value_labels_cross_no_line_marker_bar_or_other_label(figures: dict[str, Figure]) -> None:
    for name in ("throughput", "p95", "fill"):
        fig = figures[name]
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            labels = [t for t in ax.texts if isinstance(t, Annotation)]
            paths, boxes = plots_common._obstacles(ax, renderer)
            placed = [t.get_window_extent(renderer) for t in labels]
            for i, box in enumerate(placed):
                assert not any(p.intersects_bbox(box, filled=False) for p in paths), (name, labels[i].get_text())
                assert not any(box.overlaps(b) for b in boxes + placed[:i]), (name, labels[i].get_text())


def test_every_median_and_the_baseline_get_a_value_label(figures: dict[str, Figure]) -> None:
    texts = sorted(t.get_text() for t in figures["throughput"].axes[0].texts)
    assert texts == sorted(["baseline 100", "95", "140", "180", "205", "212", "208", "205"])


def test_coarse_buckets_are_the_ranges_they_cover() -> None:
    hist = {"1": 0, "2": 0, "3": 1, "4": 2, "6": 0, "8": 0, "12": 0, "16": 0, "24": 3, "32": 4, "48": 0, "64": 10,
            "+Inf": 0}
    assert [(b.lo, b.hi, b.batches, b.text) for b in plots.size_buckets(hist, 64)] == [
        (3, 3, 1, "3"), (4, 4, 2, "4"), (17, 24, 3, "17\u201324"), (25, 32, 4, "25\u201332"),
        (49, 64, 10, "49\u201364")]
    # the server never runs more than max_batch: a bucket ends there
    assert [(b.lo, b.hi) for b in plots.size_buckets({"32": 1, "48": 2, "64": 0, "+Inf": 0}, 40)] == [(1, 32), (33, 40)]
    assert [(b.lo, b.hi) for b in plots.size_buckets({"64": 0, "+Inf": 5}, 100)] == [(65, 100)]


def test_a_bucket_per_size_gives_exact_sizes() -> None:
    hist = {str(n): (7 if n == 50 else 0) for n in range(1, 65)} | {"+Inf": 0}
    assert [(b.lo, b.hi, b.batches, b.text) for b in plots.size_buckets(hist, 64)] == [(50, 50, 7, "50")]


def _exact_sizes(doc: dict[str, Any]) -> dict[str, Any]:
    """The sweep as a server with a bucket per size records it; max_batch 64 ran batches of 50 (50 clients)."""
    doc = copy.deepcopy(doc)
    for bench in doc["benchmarks"]:
        info = bench["extra_info"]
        for run in info.get("runs") or []:
            hist = run.get("batch_size")
            if not hist:
                continue
            counts = {b: n for b, n in hist["buckets"].items() if n}
            if info.get("max_batch") == 64 and info["kind"] == "closed_loop":
                counts, hist["count"] = {"50": run["requests"] // 50}, run["requests"] // 50
            hist["buckets"] = {str(n): counts.get(str(n), 0) for n in range(1, 65)} | {"+Inf": 0}
    return doc


def test_batch_fill_shows_a_batch_of_50_as_50_and_explains_ranges_only_when_drawn(tmp_path: Path) -> None:
    exact = SweepResults.from_benchmark_json(_exact_sizes(fake_benchmark_json()))
    fig = plots.plot_batch_fill(exact, tmp_path / "exact.png")
    panel = next(ax for ax in fig.axes if ax.get_title().startswith("static max_batch=64"))
    assert [t.get_text() for t in panel.texts] == ["50"]
    assert "Hatched" not in fig.get_suptitle()
    coarse = plots.plot_batch_fill(SweepResults.from_benchmark_json(fake_benchmark_json()), tmp_path / "old.png")
    assert "Hatched bar" in coarse.get_suptitle()


def test_regenerating_gives_the_same_png_bytes(results: SweepResults, tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        plots.write_plots(results, tmp_path / name)
    for png in sorted((tmp_path / "a").iterdir()):
        assert png.read_bytes() == (tmp_path / "b" / png.name).read_bytes(), png.name
