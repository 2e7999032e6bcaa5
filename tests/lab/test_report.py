"""The experiment folder from a synthetic benchmark JSON: every file, the CSV's numbers, the manifest's verdicts,
and regeneration from the folder's own benchmark.json giving the same results."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from miniserve.cli import main
from miniserve.lab.report import CSV_COLUMNS, FILES, default_experiment_dir, verdict_lines, write_experiment
from miniserve.lab.sweep_params import SweepParams
from tests._sweep_fakes import GOOD_THROUGHPUT, fake_benchmark_json

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_experiment(fake_benchmark_json(), tmp_path_factory.mktemp("exp") / "run")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_every_file_is_written(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    for name in FILES:
        if name.endswith(".png"):
            data = (folder / name).read_bytes()
            assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name


def test_csv_has_one_row_per_config_with_medians_and_spread(folder: Path) -> None:
    rows = read_csv(folder / "batch_sweep.csv")
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [r["config"] for r in rows] == list(GOOD_THROUGHPUT)
    base, b8 = rows[0], rows[4]
    assert base["mode"] == "unbatched" and base["max_batch"] == "" and base["throughput_rps"] == "100.0"
    assert b8["max_batch"] == "8" and b8["max_wait_ms"] == "20.0"
    assert float(b8["throughput_rps"]) == 205.0
    assert float(b8["throughput_rps_min"]) == pytest.approx(205 * 0.95, abs=0.01)
    assert float(b8["throughput_rps_max"]) == pytest.approx(205 * 1.05, abs=0.01)
    assert b8["runs"] == "3" and b8["status_counts"] == "200=1500" and b8["requests"] == "1500"
    assert float(b8["mean_batch_size"]) == pytest.approx(500 / 66, abs=0.01)
    assert float(b8["mean_batch_fill"]) == pytest.approx(500 / 66 / 8, abs=0.001)
    assert b8["open_loop_rate_rps"] == "20.0" and b8["open_loop_p95_ms"] == "54.0"
    assert b8["open_loop_rate_fraction"] == "0.2"  # the judged load
    assert b8["torch_threads"] == "2" and base["torch_threads"] == "1"


def test_open_loop_csv_has_a_row_per_config_and_load(folder: Path) -> None:
    rows = read_csv(folder / "open_loop_by_load.csv")
    expected = [(k, f) for f in ("0.2", "0.5") for k in GOOD_THROUGHPUT]
    assert [(r["config"], r["load_fraction"]) for r in rows] == expected
    half8 = next(r for r in rows if r["config"] == "static-8-20" and r["load_fraction"] == "0.5")
    assert half8["rate_rps"] == "50.0" and half8["p95_ms"] == "79.0" and half8["baseline_p95_ms"] == "80.0"
    assert half8["p95_minus_baseline_ms"] == "-1.0" and half8["runs"] == "3" and half8["status_counts"] == "200=2250"
    assert float(half8["mean_batch_size"]) == pytest.approx(750 / 189, abs=0.01)  # the runs' /metrics deltas


def test_manifest_shows_the_trade_off_at_every_load(folder: Path) -> None:
    m = json.loads((folder / "manifest.json").read_text())
    light, half = m["open_loop_by_load"]
    assert light["load_fraction"] == 0.2 and light["judged"] and light["rate_rps"] == 20.0
    assert light["static_above_baseline"] == sorted(k for k in GOOD_THROUGHPUT if k != "baseline")
    assert half["load_fraction"] == 0.5 and not half["judged"] and half["baseline_p95_ms"] == 80.0
    assert half["static_above_baseline"] == ["static-1-0", "static-16-20", "static-32-50", "static-64-50"]


def test_manifest_records_provenance_and_verdicts(folder: Path) -> None:
    m = json.loads((folder / "manifest.json").read_text())
    assert m["git"] == {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False, "branch": None}
    assert m["model_sha256"] == "ab" * 32 and m["environment"]["cpu_count"] == 2
    assert m["environment"]["torch"] == "2.13.0"
    assert m["sweep"]["runs"] == 3 and m["sweep"]["lab_defaults"] is True
    assert m["load_generator"]["ceiling_rps"] == 4000.0
    assert m["servers"]["static-8-20"]["torch_threads"] == 2
    assert m["open_loop_rate_rps"] == 20.0
    assert m["acceptance"]["all_passed"] is True
    assert {v["criterion"] for v in m["acceptance"]["verdicts"]} >= {"throughput_gain", "saturation"}
    assert m["date"].startswith("2025-11-28")


def test_failing_numbers_show_as_failing_verdicts(tmp_path: Path) -> None:
    out = write_experiment(fake_benchmark_json(ceiling_rps=500.0), tmp_path / "bad")
    m = json.loads((out / "manifest.json").read_text())
    assert m["acceptance"]["all_passed"] is False
    (failed,) = [v for v in m["acceptance"]["verdicts"] if not v["passed"]]
    assert failed["criterion"] == "loadgen_ceiling" and "2.4x" in failed["message"]


def test_regenerating_from_the_folders_json_gives_the_same_results(folder: Path, tmp_path: Path) -> None:
    assert main(["report", str(folder / "benchmark.json"), "--out", str(tmp_path / "again")]) == 0
    for name in ("batch_sweep.csv", "benchmark.json"):
        assert (tmp_path / "again" / name).read_text() == (folder / name).read_text(), name
    first = json.loads((folder / "manifest.json").read_text())
    again = json.loads((tmp_path / "again" / "manifest.json").read_text())
    assert {k: v for k, v in again.items() if k != "regenerate"} == {k: v for k, v in first.items()
                                                                     if k != "regenerate"}


def test_missing_results_still_give_a_report(tmp_path: Path) -> None:
    doc = fake_benchmark_json(drop=("open:static-8-20", "closed:static-16-20"), ceiling_rps=None)
    out = write_experiment(doc, tmp_path / "partial")
    rows = {r["config"]: r for r in read_csv(out / "batch_sweep.csv")}
    assert rows["static-16-20"]["throughput_rps"] == "" and rows["static-8-20"]["open_loop_p95_ms"] == ""
    m = json.loads((out / "manifest.json").read_text())
    assert m["acceptance"]["all_passed"] is False and m["load_generator"] is None


def test_quick_sweeps_get_their_own_folder(tmp_path: Path) -> None:
    doc = fake_benchmark_json()
    assert default_experiment_dir(doc, tmp_path).name.endswith("-phase-33-lab-02")
    doc["machine_info"]["miniserve"]["sweep"] = SweepParams(total=100, runs=1).to_dict()
    assert default_experiment_dir(doc, tmp_path).name.endswith("-phase-33-lab-02-quick")


def test_a_later_sweep_never_replaces_a_folder_of_the_same_day(tmp_path: Path) -> None:
    doc = fake_benchmark_json()
    first = write_experiment(doc, default_experiment_dir(doc, tmp_path))
    second = default_experiment_dir(doc, tmp_path)
    assert second != first and second.name == f"{first.name}-2" and not second.exists()
    write_experiment(doc, second)
    assert default_experiment_dir(doc, tmp_path).name == f"{first.name}-3"


def test_report_refuses_what_is_not_a_benchmark_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    assert main(["report", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert main(["report", str(tmp_path / "missing.json")]) == 2
    assert "not a pytest-benchmark JSON" in capsys.readouterr().err


def test_an_inconclusive_verdict_reads_inconclusive_not_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 149 req/s is 1.49x the baseline's 100, but the runs spread +-5%: inconclusive, which the lab allows.
    doc = fake_benchmark_json(throughput={**GOOD_THROUGHPUT, "static-4-10": 149.0})
    (tmp_path / "in.json").write_text(json.dumps(doc))
    assert main(["report", str(tmp_path / "in.json"), "--out", str(tmp_path / "o")]) == 0
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["acceptance"]["outcome"] == "pass with inconclusive" and m["acceptance"]["all_passed"] is False
    (gain,) = [v for v in m["acceptance"]["verdicts"] if v["status"] != "PASS"]
    assert gain["status"] == "INCONCLUSIVE" and gain["config"] == "static-4-10"
    out = capsys.readouterr().out
    assert "INCONCLUSIVE throughput_gain" in out and "FAIL" not in out
    assert "outcome: PASS WITH INCONCLUSIVE" in out


def test_a_clear_miss_reads_fail(tmp_path: Path) -> None:
    m = json.loads((write_experiment(fake_benchmark_json(ceiling_rps=500.0), tmp_path / "bad") / "manifest.json")
                   .read_text())
    assert m["acceptance"]["outcome"] == "fail"
    assert verdict_lines(m)[-1].startswith("outcome: FAIL")
