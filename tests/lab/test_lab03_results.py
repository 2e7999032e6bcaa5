"""Lab 03's configurations, parameters and result table: continuous configurations parse next to static ones, the
records of one lab are read apart from the other's, length classes and metric deltas come through."""

from __future__ import annotations

import pytest

from miniserve.lab.benchmark_doc import benchmark_lab, labs_in, split_by_lab
from miniserve.lab.results import SweepResults
from miniserve.lab.sweep_params import SweepConfig, parse_configs
from miniserve.lab.results_lab03 import (KV_SLOTS, LAB03_CONFIGS, Lab03Params, Lab03Results, class_result,
                                         metrics_delta, parse_lab03_configs, scrape)
from tests._lab03_fakes import GOOD_THROUGHPUT, fake_lab03_json
from tests._sweep_fakes import fake_benchmark_json, per_run_records


def test_continuous_configurations_parse_and_run_as_the_server_expects() -> None:
    c = SweepConfig.parse("cont:16")
    assert (c.mode, c.max_running, c.key, c.token, c.rows) == ("continuous", 16, "continuous-16", "cont:16", 16)
    assert c.label == "continuous max_running=16"
    assert c.server_args() == ["--mode", "continuous", "--max-running", "16"]
    p = SweepConfig.parse("cont:8:512")
    assert p.key == "continuous-8-p512" and p.server_args()[-2:] == ["--max-prefill-tokens", "512"]
    assert SweepConfig.parse("8:20").token == "8:20" and SweepConfig.parse("baseline").rows == 1


@pytest.mark.parametrize(("token", "match"), [("cont:0", "max_running must be >= 1"), ("cont:x", "cont:MAX_RUNNING"),
                                               ("cont:8:0", "max_prefill_tokens must be >= 1")])
def test_bad_continuous_configurations_are_refused(token: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SweepConfig.parse(token)
    with pytest.raises(ValueError, match="continuous-mode settings"):
        SweepConfig("static", 8, 20.0, max_running=4)


def test_lab02_refuses_continuous_configurations() -> None:
    with pytest.raises(ValueError, match="belong to lab 03"):
        parse_configs("baseline,8:20,cont:8")


def test_lab03_configurations_in_measuring_order() -> None:
    keys = [c.key for c in parse_lab03_configs("cont:16,8:20,baseline,cont:8")]
    assert keys == ["baseline", "static-8-20", "continuous-16", "continuous-8"]
    assert [c.key for c in parse_lab03_configs(LAB03_CONFIGS)] == list(GOOD_THROUGHPUT)
    for bad, match in (("baseline,cont:8", "at least one static"), ("8:20,16:20", "at least one static"),
                       ("8:20,cont:8,cont:8", "duplicate")):
        with pytest.raises(ValueError, match=match):
            parse_lab03_configs(bad)


def test_lab03_params_defaults_and_normalization() -> None:
    p = Lab03Params()
    assert p.judged_load == 0.5 and p.open_loop_loads == (0.5, 0.2, 0.8) and p.is_lab_default()
    assert [c.key for c in p.open_loop_configs] == list(GOOD_THROUGHPUT)[1:]  # no baseline in the open loop
    assert Lab03Params.from_dict(p.to_dict()) == p
    assert Lab03Params(configs=LAB03_CONFIGS.replace("8:20", "8:20.0")).is_lab_default()
    assert not Lab03Params(runs=1).is_lab_default()
    assert (p.duration_s(0.5), p.duration_s(0.2), p.duration_s(0.8)) == (25.0, 10.0, 10.0)  # the judged load: longer
    old = {k: v for k, v in p.to_dict().items() if k != "judged_duration_s"}  # a sweep before the judged duration
    assert Lab03Params.from_dict(old).duration_s(0.5) == 10.0  # ... ran every load open_loop_duration_s long
    for kw, match in (({"runs": 0}, "runs must be >= 1"), ({"judged_duration_s": 0}, "judged_duration_s"),
                      ({"judged_duration_s": float("inf")}, "judged_duration_s must be finite"),
                      ({"open_loop_duration_s": float("nan")}, "open_loop_duration_s must be finite"),
                      ({"open_loop_loads": (1.5,)}, "fractions"),
                      ({"sample_interval_s": 0}, "sample_interval_s"), ({"open_loop_loads": (0.5, 0.5)}, "duplicate")):
        with pytest.raises(ValueError, match=match):
            Lab03Params(**kw)


def test_records_are_told_apart_by_lab() -> None:
    lab02 = per_run_records(fake_benchmark_json())
    both = fake_lab03_json(with_lab02=lab02)
    assert labs_in(lab02) == ["02"] and labs_in(fake_lab03_json()) == ["03"] and labs_in(both) == ["02", "03"]
    split = split_by_lab(both)
    assert [benchmark_lab(b) for b in split["02"]["benchmarks"]] == ["02"] * len(lab02["benchmarks"])
    assert "lab03" not in split["02"]["machine_info"]["miniserve"] and "sweep" in split["02"]["machine_info"]["miniserve"]
    assert "sweep" not in split["03"]["machine_info"]["miniserve"]
    assert split_by_lab(lab02) == {"02": lab02}  # one lab: the document as it was
    # each lab's table reads only its own records
    assert SweepResults.from_benchmark_json(both).get("static-8-20").closed.throughput_rps.median == 205.0
    assert Lab03Results.from_benchmark_json(both).get("static-8-20").tput.median == 120.0


def test_results_pick_the_best_of_each_mode_by_median_throughput() -> None:
    r = Lab03Results.from_benchmark_json(fake_lab03_json())
    assert r.best_static.key == "static-32-50" and r.best_continuous.key == "continuous-32"
    assert [x.key for x in r.static] == ["static-8-20", "static-16-20", "static-32-50"]
    assert r.rate_rps(0.5) == 100.0 and r.rate_rps(0.8) == 160.0
    assert r.workload["counts"] == {"short": 280, "long": 120}
    tie = Lab03Results.from_benchmark_json(fake_lab03_json({**GOOD_THROUGHPUT, "continuous-16": 260.0}))
    assert tie.best_continuous.key == "continuous-16"  # a tie goes to the first in sweep order


def test_length_classes_and_metrics_come_through() -> None:
    r = Lab03Results.from_benchmark_json(fake_lab03_json())
    row = r.get("continuous-32")
    short = class_result(row.open_by_load[0.5], "short")
    assert short.p95_ms.median == 60.0 and (short.p95_ms.min, short.p95_ms.max) == (57.0, 63.0)
    assert short.requests == 3 * 1750 and len(short.latencies_ms) == 5250 and short.ok == 5250  # 25-s judged runs
    assert class_result(row.open_by_load[0.5], "long").p95_ms.median == 200.0
    assert row.rows_per_call.median == 32.0 and r.get("static-16-20").rows_per_call.median == 16.0
    assert row.tokens(row.closed) == {"completion": 3 * 500 * 14, "prompt": 3 * 500 * 20}
    assert row.samples["load"] == 0.5 and row.samples["run"] == 1 and len(row.samples[KV_SLOTS]) == 100
    assert r.get("baseline").open_by_load == {} and r.get("baseline").samples is None


METRICS = """# TYPE miniserve_batch_rows_per_step histogram
miniserve_batch_rows_per_step_bucket{le="1.0"} 2.0
miniserve_batch_rows_per_step_bucket{le="2.0"} 5.0
miniserve_batch_rows_per_step_bucket{le="+Inf"} 5.0
miniserve_batch_rows_per_step_count 5.0
miniserve_batch_rows_per_step_sum 8.0
# TYPE miniserve_tokens_total counter
miniserve_tokens_total{kind="prompt"} 100.0
miniserve_tokens_total{kind="completion"} 40.0
# TYPE miniserve_kv_cache_slots_used gauge
miniserve_kv_cache_slots_used 3.0
"""


def test_metric_scrapes_give_per_run_deltas_and_tolerate_missing_metrics() -> None:
    before = scrape(METRICS)
    assert before["batch_size"] is None and before["rows_per_step"]["count"] == 5.0
    assert before["tokens"] == {"prompt": 100.0, "completion": 40.0}
    after = scrape(METRICS.replace("le=\"2.0\"} 5.0", "le=\"2.0\"} 9.0").replace("le=\"+Inf\"} 5.0", "le=\"+Inf\"} 9.0")
                   .replace("count 5.0", "count 9.0").replace("sum 8.0", "sum 16.0")
                   .replace("\"prompt\"} 100.0", "\"prompt\"} 130.0"))
    d = metrics_delta(before, after)
    assert d["rows_per_step"] == {"buckets": {"2": 4}, "count": 4, "sum": 8.0}
    assert d["tokens"] == {"completion": 0, "prompt": 30} and d["batch_size"] is None and d["step_seconds"] is None
    assert metrics_delta({}, scrape("")) == {"batch_size": None, "rows_per_step": None, "step_seconds": None,
                                            "ttft_seconds": None, "tokens": None}


def test_the_servers_own_metrics_scrape_under_the_lab_names() -> None:
    """The names results_lab03 reads are the ones miniserve/server/metrics.py exposes."""
    from miniserve.lab.loadgen import read_gauges
    from miniserve.lab.results_lab03 import INFLIGHT, QUEUE_DEPTH, SAMPLED_GAUGES
    from miniserve.server.metrics import Metrics

    m = Metrics(frozenset({"/correct"}))
    before = scrape(m.render()[0].decode())
    m.observe_step(5, 0.004)
    m.observe_step(7, 0.006)
    m.observe_admit([0.02, 0.03])
    m.count_tokens("prompt", 30)
    m.count_tokens("completion", 12)
    m.observe_batch(8, 0.1)
    m.bind_kv_cache_slots(lambda: 6)
    m.bind_queue_depth(lambda: 2)
    text = m.render()[0].decode()
    d = metrics_delta(before, scrape(text))
    assert d["rows_per_step"] == {"buckets": {"5": 1, "7": 1}, "count": 2, "sum": 12.0}
    assert d["step_seconds"]["count"] == 2 and d["step_seconds"]["sum"] == pytest.approx(0.01)
    assert d["ttft_seconds"]["count"] == 2 and d["batch_size"] == {"buckets": {"8": 1}, "count": 1, "sum": 8.0}
    assert d["tokens"] == {"completion": 12, "prompt": 30}
    assert read_gauges(text, SAMPLED_GAUGES) == {KV_SLOTS: 6.0, QUEUE_DEPTH: 2.0, INFLIGHT: 0.0}
