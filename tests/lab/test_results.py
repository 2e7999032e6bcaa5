"""The per-configuration result table built from benchmark records."""

from __future__ import annotations

import pytest

from miniserve.lab.results import Spread, SweepResults, histogram_delta, parse_batch_histogram
from miniserve.lab.sweep_params import SweepConfig
from tests._sweep_fakes import fake_benchmark_json, per_run_records


def test_open_loop_results_are_kept_per_load() -> None:
    row = SweepResults.from_benchmark_json(fake_benchmark_json()).get("static-8-20")
    assert row is not None and set(row.open_by_load) == {0.2, 0.5}
    assert row.open is row.open_by_load[0.2]  # the judged load
    assert row.open_by_load[0.5].rate_rps == 50.0 and row.open_by_load[0.5].p95_ms.median == 79.0
    assert row.open_by_load[0.5].latencies_ms is None  # the CDF sample is the judged load's


def test_a_single_load_sweep_reads_its_records_as_the_judged_load() -> None:
    r = SweepResults.from_benchmark_json(fake_benchmark_json(half_load=False))
    row = r.get("static-8-20")
    assert r.params.open_loop_loads == (0.2,)
    assert row is not None and row.open is not None and set(row.open_by_load) == {0.2}


def test_spread_ignores_missing_values() -> None:
    assert Spread.of([3.0, None, 1.0, float("nan"), 2.0]) == Spread(2.0, 1.0, 3.0)
    assert Spread.of([None]) is None


def test_table_takes_medians_over_runs_and_sums_statuses() -> None:
    r = SweepResults.from_benchmark_json(fake_benchmark_json())
    assert [c.key for c in r.configs][:2] == ["baseline", "static-1-0"]
    row = r.get("static-8-20")
    assert row is not None and row.closed is not None and row.open is not None
    assert row.closed.throughput_rps == Spread(205.0, 205.0 * 0.95, 205.0 * 1.05)
    assert row.closed.statuses == {"200": 1500} and row.closed.requests == 1500
    assert {b: n for b, n in row.batch_hist.items() if n} == {"8": 186, "1": 12}  # 500 = 62 x 8 + 4 per run
    assert row.mean_batch_size is not None and row.mean_batch_size.median == pytest.approx(500 / 66)
    assert row.open.rate_rps == 20.0 and row.open.latencies_ms is not None
    assert row.server["torch_threads"] == 2
    assert r.calibration is not None and r.calibration.throughput_rps == 4000.0


def test_table_keeps_configured_rows_even_without_results() -> None:
    r = SweepResults.from_benchmark_json(fake_benchmark_json(drop=("closed:static-4-10", "open:static-4-10")))
    row = r.get("static-4-10")
    assert row is not None and row.closed is None and row.open is None


def test_unknown_benchmarks_are_ignored() -> None:
    doc = fake_benchmark_json()
    doc["benchmarks"].append({"name": "test_correct_batch_throughput", "extra_info": {"kind": "correct_batch"}})
    assert len(SweepResults.from_benchmark_json(doc).configs) == 8
    assert SweepConfig.parse("baseline").is_baseline


METRICS = """# HELP miniserve_batch_size requests per model call
# TYPE miniserve_batch_size histogram
miniserve_batch_size_bucket{le="1.0"} %d
miniserve_batch_size_bucket{le="2.0"} %d
miniserve_batch_size_bucket{le="4.0"} %d
miniserve_batch_size_bucket{le="+Inf"} %d
miniserve_batch_size_count %d
miniserve_batch_size_sum %d
"""


def test_histogram_delta_is_per_bucket_between_two_scrapes() -> None:
    before = parse_batch_histogram(METRICS % (2, 3, 3, 3, 3, 4))  # batches of 1, 1, 2
    after = parse_batch_histogram(METRICS % (3, 5, 8, 8, 8, 20))  # + 1, 2, 4, 4, 4 (one size-1, one 2, three 4)
    assert before["cumulative"] == {"1": 2, "2": 3, "4": 3, "+Inf": 3}
    delta = histogram_delta(before, after)
    assert delta == {"buckets": {"1": 1, "2": 1, "4": 3, "+Inf": 0}, "count": 5, "sum": 16}
    with pytest.raises(ValueError, match="no miniserve_batch_size"):
        parse_batch_histogram("# nothing\n")


def test_one_record_per_run_reads_as_the_same_table() -> None:
    whole = SweepResults.from_benchmark_json(fake_benchmark_json())
    split = SweepResults.from_benchmark_json(per_run_records(fake_benchmark_json()))
    # 8 configs x (closed loop + 2 open-loop loads) x 3 runs + 1 calibration
    assert len(per_run_records(fake_benchmark_json())["benchmarks"]) == 8 * 3 * 3 + 1
    for a, b in zip(whole.configs, split.configs, strict=True):
        assert a.key == b.key and a.server == b.server and a.batch_hist == b.batch_hist
        assert a.mean_batch_size == b.mean_batch_size
        for la, lb in ((a.closed, b.closed), (a.open, b.open)):
            assert la is not None and lb is not None
            assert (la.p95_ms, la.throughput_rps, la.statuses, la.requests, la.rate_rps) == \
                   (lb.p95_ms, lb.throughput_rps, lb.statuses, lb.requests, lb.rate_rps)
            assert [r["run"] for r in lb.runs] == [1, 2, 3]
    # the CDF sample: the median-throughput closed-loop run (run 1 of 1.0x, 0.95x, 1.05x), the first open-loop run
    base = split.baseline
    assert base is not None and base.closed is not None and base.open is not None
    assert base.closed.latencies_run == 1 and base.closed.latencies_ms == whole.baseline.closed.latencies_ms
    assert base.open.latencies_run == 1 and base.open.latencies_ms == whole.baseline.open.latencies_ms
