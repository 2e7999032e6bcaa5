"""The lab-03 experiment folder from a synthetic sweep: every file, the CSVs' numbers, the manifest's verdicts and
goals, regeneration from the folder's own benchmark.json giving the same bytes, `miniserve report` telling the labs
apart from the JSON -- and lab 02's committed experiments still regenerating exactly."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from matplotlib.colors import to_hex

from miniserve.cli import main
from miniserve.lab import plots_common, plots_lab03
from miniserve.lab.report_lab03 import FILES, OPEN_LOOP_COLUMNS, SWEEP_COLUMNS, default_experiment_dir, write_experiment
from miniserve.lab.results_lab03 import Lab03Results
from tests._lab03_fakes import GOOD_THROUGHPUT, fake_lab03_json
from tests._sweep_fakes import fake_benchmark_json, per_run_records

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_experiment(fake_lab03_json(), tmp_path_factory.mktemp("exp") / "run")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_every_file_is_written(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    for name in FILES:
        if name.endswith(".png"):
            data = (folder / name).read_bytes()
            assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name


def test_sweep_csv_has_a_row_per_config_and_names_the_best(folder: Path) -> None:
    rows = read_csv(folder / "lab03_sweep.csv")
    assert list(rows[0]) == list(SWEEP_COLUMNS) and [r["config"] for r in rows] == list(GOOD_THROUGHPUT)
    by = {r["config"]: r for r in rows}
    assert by["static-32-50"]["best"] == "best static" and by["continuous-32"]["best"] == "best continuous"
    c32 = by["continuous-32"]
    assert c32["throughput_rps"] == "260.0" and c32["x_best_static"] == "1.3" and c32["x_baseline"] == "6.5"
    assert c32["max_running"] == "32" and c32["max_batch"] == "" and c32["mean_rows_per_call"] == "32.0"
    assert c32["mean_step_ms"] == "8.0" and c32["mean_ttft_ms"] == "30.0" and c32["completion_tokens"] == "21000"
    assert by["static-16-20"]["mean_rows_per_call"] == "16.0" and by["static-16-20"]["mean_step_ms"] == ""
    assert c32["status_counts"] == "200=1500" and c32["short_p95_ms"] != ""


def test_open_loop_csv_has_a_row_per_batching_config_and_load(folder: Path) -> None:
    rows = read_csv(folder / "open_loop_by_load.csv")
    assert list(rows[0]) == list(OPEN_LOOP_COLUMNS)
    keys = [k for k in GOOD_THROUGHPUT if k != "baseline"]
    assert [(r["config"], r["load_fraction"]) for r in rows] == [(k, f) for f in ("0.2", "0.5", "0.8") for k in keys]
    half = next(r for r in rows if r["config"] == "continuous-32" and r["load_fraction"] == "0.5")
    assert half["judged"] == "True" and half["rate_rps"] == "100.0" and half["p95_ms"] == "150.0"
    assert half["short_p95_ms"] == "60.0" and half["long_p95_ms"] == "200.0" and half["p95_x_best_static"] == "0.5"
    assert half["short_p95_x_best_static"] == "0.214" and half["short_requests"] == "5250"
    assert half["short_p95_ms_min"] == "57.0" and half["status_counts"] == "200=7500"


def test_manifest_has_verdicts_goals_and_the_definitions(folder: Path) -> None:
    m = json.loads((folder / "manifest.json").read_text())
    assert m["experiment"] == "phase-33-lab-03" and m["date"].startswith("2025-11-30")
    assert m["acceptance"]["outcome"] == "pass" and m["acceptance"]["all_passed"] is True
    assert [v["criterion"] for v in m["acceptance"]["verdicts"]][:2] == ["continuous_p95_at_half",
                                                                       "continuous_throughput"]
    assert {g["criterion"]: g["status"] for g in m["goals"]} == {
        "goal_throughput_1_2x": "MET", "goal_p95_0_5x": "MET", "goal_short_p95_0_3x": "MET",
        "goal_step_overhead_lt_10pct": "MET", "loadgen_ceiling": "MET"}
    assert m["engine_step"]["overhead"] == 0.05 and m["engine_step"]["max_running"] == 32
    assert m["best"]["static"]["config"] == "static-32-50" and m["best"]["continuous"]["throughput_rps"] == 260.0
    assert "highest median closed-loop throughput" in m["best"]["definition"]
    assert [r["rate_rps"] for r in m["open_loop_rates"]] == [40.0, 100.0, 160.0]
    assert [h["load_fraction"] for h in m["head_of_line"]] == [0.2, 0.5, 0.8]
    assert m["workload"]["counts"] == {"short": 280, "long": 120} and m["sweep"]["lab_defaults"] is True
    assert "lab03" not in m["environment"] and m["environment"]["cpu_count"] == 2


def test_regenerating_from_the_folders_json_gives_the_same_bytes(folder: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(folder / "benchmark.json"), "--out", str(tmp_path / "again")]) == 0
    out = capsys.readouterr().out
    assert "goals beyond the course (reported, not gated):" in out and "MET          goal_throughput_1_2x" in out
    assert out.rstrip().endswith("outcome: PASS -- every criterion passed")
    for name in FILES:
        if name == "manifest.json":
            a, b = (json.loads((d / name).read_text()) for d in (folder, tmp_path / "again"))
            assert {k: v for k, v in a.items() if k != "regenerate"} == {k: v for k, v in b.items()
                                                                         if k != "regenerate"}
        else:
            assert (tmp_path / "again" / name).read_bytes() == (folder / name).read_bytes(), name
    assert json.loads((folder / "benchmark.json").read_text()) == fake_lab03_json()


def test_failing_numbers_read_fail_and_goals_not_met(tmp_path: Path) -> None:
    tput = {**GOOD_THROUGHPUT, "continuous-8": 100.0, "continuous-16": 120.0, "continuous-32": 130.0,
            "continuous-64": 110.0}
    m = json.loads((write_experiment(fake_lab03_json(tput), tmp_path / "bad") / "manifest.json").read_text())
    assert m["acceptance"]["outcome"] == "fail"
    failed = [v for v in m["acceptance"]["verdicts"] if v["status"] == "FAIL"]
    assert [v["criterion"] for v in failed] == ["continuous_throughput"]
    assert {g["criterion"]: g["status"] for g in m["goals"]}["goal_throughput_1_2x"] == "NOT MET"


def test_folders_are_never_replaced_and_quick_sweeps_say_so(tmp_path: Path) -> None:
    doc = fake_lab03_json()
    first = default_experiment_dir(doc, tmp_path)
    assert first.name == "2025-11-30-phase-33-lab-03"
    first.mkdir()
    assert default_experiment_dir(doc, tmp_path).name == "2025-11-30-phase-33-lab-03-2"
    quick = fake_lab03_json(runs=1)
    assert default_experiment_dir(quick, tmp_path).name == "2025-11-30-phase-33-lab-03-quick"


def test_report_detects_the_lab_and_splits_a_session_of_both(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    both = fake_lab03_json(with_lab02=per_run_records(fake_benchmark_json()))
    (tmp_path / "both.json").write_text(json.dumps(both))
    assert main(["report", str(tmp_path / "both.json"), "--out", str(tmp_path / "x")]) == 2
    assert "--lab 02 or --lab 03" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "both.json"), "--out", str(tmp_path / "l3"), "--lab", "03"]) == 0
    assert json.loads((tmp_path / "l3" / "manifest.json").read_text())["experiment"] == "phase-33-lab-03"
    saved = json.loads((tmp_path / "l3" / "benchmark.json").read_text())
    assert {b["extra_info"]["lab"] for b in saved["benchmarks"]} == {"03"}
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(tmp_path / "both.json")]) == 0
    made = sorted(p.name for p in (tmp_path / "experiments").iterdir())
    assert made == ["2025-11-30-phase-33-lab-02", "2025-11-30-phase-33-lab-03"]  # one session, one date
    lab02 = json.loads((tmp_path / "experiments" / made[0] / "manifest.json").read_text())
    assert lab02["experiment"] == "phase-33-lab-02" and lab02["acceptance"]["outcome"] == "pass"
    (tmp_path / "l2.json").write_text(json.dumps(per_run_records(fake_benchmark_json())))
    assert main(["report", str(tmp_path / "l2.json"), "--lab", "03", "--out", str(tmp_path / "no")]) == 2
    assert "holds no lab-03 records" in capsys.readouterr().err


def test_every_figure_keeps_a_configurations_colour() -> None:
    r = Lab03Results.from_benchmark_json(fake_lab03_json())
    colors = plots_common.config_colors(r)
    assert len(set(colors.values())) == len(colors) == 8
    assert colors["static-8-20"] == "tab:red" and colors["continuous-32"] == plots_common.CONFIG_COLORS["continuous-32"]
    figs = {"load": plots_lab03.plot_p95_vs_load, "cdf": plots_lab03.plot_latency_cdf,
            "tput": plots_lab03.plot_throughput_vs_rows}
    for name, draw in figs.items():
        fig = draw(r, Path(os.devnull))
        seen = {}
        for legend in fig.legends:
            for handle, text in zip(legend.legend_handles, legend.get_texts()):
                artist = handle.lines[0] if hasattr(handle, "lines") else handle
                if hasattr(artist, "get_color"):
                    seen[text.get_text()] = to_hex(artist.get_color())
        assert seen["continuous max_running=32 (best continuous)"] == to_hex(colors["continuous-32"]), name
        assert seen["static max_batch=8, max_wait=20 ms"] == to_hex("tab:red"), name


def test_rows_in_use_draws_a_panel_per_continuous_config_against_its_max_running() -> None:
    fig = plots_lab03.plot_rows_in_use(Lab03Results.from_benchmark_json(fake_lab03_json()), Path(os.devnull))
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles[:4] == ["continuous max_running=8", "continuous max_running=16",
                          "continuous max_running=32 (best continuous)", "continuous max_running=64"]
    assert "static batching" in titles[4] and "every 100 ms" in fig.get_suptitle()
    assert "0.5 x best static, run 1" in fig.get_suptitle()


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "experiments").glob("*-phase-33-lab-02*")))
def test_committed_lab02_experiments_still_regenerate_exactly(name: str, tmp_path: Path) -> None:
    committed = ROOT / "experiments" / name
    assert main(["report", str(committed / "benchmark.json"), "--out", str(tmp_path / "x")]) == 0
    for f in ("batch_sweep.csv", "open_loop_by_load.csv", "benchmark.json"):
        assert (tmp_path / "x" / f).read_bytes() == (committed / f).read_bytes(), f
    a, b = (json.loads((d / "manifest.json").read_text()) for d in (committed, tmp_path / "x"))
    assert {k: v for k, v in a.items() if k != "regenerate"} == {k: v for k, v in b.items() if k != "regenerate"}
