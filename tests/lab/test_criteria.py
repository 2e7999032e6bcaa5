"""The acceptance criteria on synthetic tables: they pass on a healthy sweep and fail, naming config and numbers,
on each kind of bad one."""

from __future__ import annotations

import pytest

from miniserve.lab import criteria
from miniserve.lab.results import SweepResults
from tests._sweep_fakes import GOOD_OPEN_P95, GOOD_THROUGHPUT, fake_benchmark_json


def results(**kw) -> SweepResults:
    return SweepResults.from_benchmark_json(fake_benchmark_json(**kw))


def by_config(verdicts: list[criteria.Verdict]) -> dict[str | None, criteria.Verdict]:
    return {v.config: v for v in verdicts}


def test_healthy_sweep_passes_every_criterion() -> None:
    verdicts = criteria.evaluate(results())
    failed = [v.message for v in verdicts if not v.passed]
    assert not failed
    names = {v.criterion for v in verdicts}
    assert names == {"throughput_gain", "p95_above_baseline_at_same_load", "saturation", "all_requests_ok",
                     "max_batch_1_matches_baseline", "loadgen_ceiling"}


def test_gain_applies_to_max_batch_4_and_up_only() -> None:
    keys = [v.config for v in criteria.throughput_gain(results())]
    assert keys == ["static-4-10", "static-8-20", "static-16-20", "static-32-50", "static-64-50"]


def test_gain_fails_below_one_and_a_half_times_baseline() -> None:
    tput = {**GOOD_THROUGHPUT, "static-4-10": 149.0}
    v = by_config(criteria.throughput_gain(results(throughput=tput)))
    assert not v["static-4-10"].passed
    assert "max_batch=4" in v["static-4-10"].message and "149.0" in v["static-4-10"].message
    assert "100.0" in v["static-4-10"].message and "1.49x" in v["static-4-10"].message
    assert v["static-8-20"].passed
    assert v["static-4-10"].numbers["ratio"] == pytest.approx(1.49)
    # runs spread +-5%: the best static run (156.5) over the worst baseline run (95) reaches 1.5x -> inconclusive
    assert v["static-4-10"].inconclusive and "within run-to-run spread" in v["static-4-10"].message


def test_gain_clear_miss_is_not_inconclusive() -> None:
    tput = {**GOOD_THROUGHPUT, "static-4-10": 120.0}
    v = by_config(criteria.throughput_gain(results(throughput=tput)))["static-4-10"]
    assert not v.passed and not v.inconclusive  # best run 126 / worst baseline 95 = 1.33x: a real failure


def test_gain_fails_when_a_config_or_the_baseline_is_missing() -> None:
    v = by_config(criteria.throughput_gain(results(drop=("closed:static-16-20",))))
    assert not v["static-16-20"].passed and "did not run" in v["static-16-20"].message
    assert all(not x.passed for x in criteria.throughput_gain(results(drop=("closed:baseline",))))


def test_gain_fails_when_no_config_reaches_max_batch_4() -> None:
    tput = {k: GOOD_THROUGHPUT[k] for k in ("baseline", "static-1-0", "static-2-10")}
    p95 = {k: GOOD_OPEN_P95[k] for k in tput}
    (v,) = criteria.throughput_gain(results(throughput=tput, open_p95=p95))
    assert not v.passed and v.config is None and "max_batch >= 4" in v.message


def test_p95_tradeoff_fails_when_batching_is_not_slower_at_equal_load() -> None:
    v = by_config(criteria.p95_tradeoff(results(open_p95={**GOOD_OPEN_P95, "static-8-20": 22.0})))
    assert not v["static-8-20"].passed and not v["static-8-20"].inconclusive  # slowest run 23.1 < fastest 27.6
    assert "22.0 ms <= the baseline's 29.0 ms" in v["static-8-20"].message
    assert v["static-16-20"].passed


def test_p95_tradeoff_is_judged_at_the_first_load_and_says_which() -> None:
    v = by_config(criteria.p95_tradeoff(results()))
    assert v["static-4-10"].passed and "= 0.2 x the baseline's throughput" in v["static-4-10"].message
    # the fakes' half load has the baseline queueing (p95 80 ms) past static (4, 10)'s 75 ms: judged there, it fails
    doc = fake_benchmark_json()
    doc["machine_info"]["miniserve"]["sweep"]["open_loop_loads"] = [0.5, 0.2]
    v = by_config(criteria.p95_tradeoff(SweepResults.from_benchmark_json(doc)))
    assert not v["static-4-10"].passed and "75.0 ms <= the baseline's 80.0 ms" in v["static-4-10"].message
    assert v["static-32-50"].passed and "= 0.5 x" in v["static-32-50"].message


def test_p95_tradeoff_within_run_spread_is_inconclusive() -> None:
    v = by_config(criteria.p95_tradeoff(results(open_p95={**GOOD_OPEN_P95, "static-8-20": 29.0})))
    assert not v["static-8-20"].passed and v["static-8-20"].inconclusive  # runs 27.6-30.4 vs 27.6-30.4
    assert "overlap" in v["static-8-20"].message


def test_p95_tradeoff_needs_the_same_offered_load() -> None:
    v = by_config(criteria.p95_tradeoff(results(open_rate={"static-8-20": 40.0})))
    assert not v["static-8-20"].passed and "differs" in v["static-8-20"].message


def test_p95_tradeoff_fails_without_open_loop_results() -> None:
    v = by_config(criteria.p95_tradeoff(results(drop=("open:baseline",))))
    assert all(not x.passed and "unbatched baseline" in x.message for x in v.values())


def test_saturation_names_the_knee() -> None:
    v = criteria.saturation(results())
    # 8 -> 205; later best 212 (+3.4%); 4 -> 180, later best 212 is +17.8%: the knee is 8
    assert v.passed and v.numbers["knee_max_batch"] == 8 and "max_batch=8" in v.message


UP_TO_32 = {k: v for k, v in GOOD_THROUGHPUT.items() if k != "static-64-50"}  # the curve ends at 32


def test_saturation_fails_while_throughput_still_climbs() -> None:
    tput = {**UP_TO_32, "static-16-20": 260.0, "static-32-50": 300.0}
    v = criteria.saturation(results(throughput=tput, open_p95={k: GOOD_OPEN_P95[k] for k in tput}))
    assert not v.passed
    assert "max_batch=16 -> 32" in v.message and "+15.4%" in v.message and "300.0" in v.message
    # runs spread +-5%: 16's best run (273) is within 10% of 32's worst (285), so the runs allow a knee
    assert v.inconclusive


def test_saturation_clear_climb_is_not_inconclusive() -> None:
    tput = {**UP_TO_32, "static-8-20": 150.0, "static-16-20": 200.0, "static-32-50": 300.0}
    v = criteria.saturation(results(throughput=tput, open_p95={k: GOOD_OPEN_P95[k] for k in tput}))
    assert not v.passed and not v.inconclusive  # 16's best 210 x 1.1 = 231 < 32's worst 285


def test_saturation_judges_the_step_past_32_when_it_is_swept() -> None:
    # 16 -> 32 still climbs +15.4%, a larger max_batch adds +1.7%: the knee is 32, and the message shows both steps
    v = criteria.saturation(results(throughput={**UP_TO_32, "static-16-20": 260.0, "static-32-50": 300.0,
                                                "static-64-50": 305.0}))
    assert v.passed and v.numbers["knee_max_batch"] == 32
    assert "16 -> 32: +15.4%" in v.message and "32 -> 64: +1.7%" in v.message


def test_saturation_passes_when_the_largest_is_best_by_less_than_ten_percent() -> None:
    tput = {**UP_TO_32, "static-16-20": 230.0, "static-32-50": 250.0}  # 230 -> 250 is +8.7%
    v = criteria.saturation(results(throughput=tput, open_p95={k: GOOD_OPEN_P95[k] for k in tput}))
    assert v.passed and v.numbers["knee_max_batch"] == 16 and "16 -> 32: +8.7%" in v.message


def test_saturation_is_not_vacuous_when_a_config_is_missing() -> None:
    v = criteria.saturation(results(drop=("closed:static-32-50",)))
    assert not v.passed and "incomplete" in v.message and "max_batch=32" in v.message


def test_all_ok_fails_on_any_non_200_and_names_it() -> None:
    bad = {"static-32-50": {"200": 497, "503": 2, "0": 1}}
    v = by_config(criteria.all_ok(results(closed_statuses=bad)))
    assert not v["static-32-50"].passed
    # summed over the 3 runs
    assert "503: 6" in v["static-32-50"].message and "0: 3" in v["static-32-50"].message
    assert v["static-32-50"].numbers["closed_statuses"] == {"200": 1491, "503": 6, "0": 3}
    assert v["baseline"].passed and "1500/1500" in v["baseline"].message


def test_all_ok_fails_on_a_missing_run_or_loop() -> None:
    v = by_config(criteria.all_ok(results(drop=("open:static-2-10",))))
    assert not v["static-2-10"].passed and "no results for the open loop at 0.2 x" in v["static-2-10"].message
    v = by_config(criteria.all_ok(results(drop=("half:static-2-10",))))  # the reported load counts too
    assert not v["static-2-10"].passed and "no results for the open loop at 0.5 x" in v["static-2-10"].message
    v = by_config(criteria.all_ok(results(drop=("closed:static-2-10",))))
    assert not v["static-2-10"].passed and "no results for the closed loop" in v["static-2-10"].message
    assert [x.config for x in criteria.all_ok(results())] == list(GOOD_THROUGHPUT)


def test_all_ok_fails_when_fewer_requests_than_configured_were_sent() -> None:
    short = {"static-4-10": {"200": 400}}  # each run recorded 500 requests sent, but statuses say 400
    doc = fake_benchmark_json(closed_statuses=short)
    for b in doc["benchmarks"]:
        if b["extra_info"].get("config") == "static-4-10" and b["extra_info"]["kind"] == "closed_loop":
            for r in b["extra_info"]["runs"]:
                r["requests"] = 400
    v = by_config(criteria.all_ok(SweepResults.from_benchmark_json(doc)))
    assert not v["static-4-10"].passed and "1200 of 1500" in v["static-4-10"].message


@pytest.mark.parametrize(("tput", "passed", "inconclusive"), [(86.0, True, False), (84.0, False, True),
                                                               (114.0, True, False), (116.0, False, True),
                                                               (70.0, False, False), (130.0, False, False)])
def test_batch1_parity_is_within_fifteen_percent_either_way(tput: float, passed: bool, inconclusive: bool) -> None:
    # runs spread +-5%: 84 vs 100 has run pairs 88.2 / 95 = -7%, within the tolerance -> inconclusive, not a pass;
    # 70 (best pair 73.5 / 95 = -23%) is a clear miss
    v = criteria.batch1_parity(results(throughput={**GOOD_THROUGHPUT, "static-1-0": tput}))
    assert v.passed is passed and v.inconclusive is inconclusive
    assert "max_batch=1" in v.message and f"{tput:.1f}" in v.message


def test_ceiling_must_be_ten_times_the_best_throughput() -> None:
    assert criteria.loadgen_ceiling(results(ceiling_rps=2120.0)).passed  # best is 212 req/s
    v = criteria.loadgen_ceiling(results(ceiling_rps=2000.0))
    assert not v.passed and "9.4x" in v.message and "max_batch=16" in v.message
    assert not criteria.loadgen_ceiling(results(ceiling_rps=None)).passed
