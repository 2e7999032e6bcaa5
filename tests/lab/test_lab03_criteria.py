"""Lab 03's criteria on synthetic sweeps: pass on a healthy one, fail on a clear miss, inconclusive when the runs
straddle the line; the goals are reported as met / not met; overload above a configuration's own capacity is not a
failure of 'every request 200'."""

from __future__ import annotations

import copy

from miniserve.lab import criteria_lab03 as c
from miniserve.lab.results_lab03 import Lab03Results
from tests._lab03_fakes import GOOD_OPEN_P95, GOOD_THROUGHPUT, fake_lab03_json


def results(**kw) -> Lab03Results:
    return Lab03Results.from_benchmark_json(fake_lab03_json(**kw))


def by_name(verdicts: list[c.Verdict]) -> dict[str, c.Verdict]:
    return {v.criterion: v for v in verdicts if v.criterion != "all_requests_ok"}


def p95_with(key: str, load: float, values: tuple[float, float, float]) -> dict:
    table = copy.deepcopy(GOOD_OPEN_P95)
    table[key][load] = values
    return table


def test_a_healthy_sweep_passes_and_meets_the_goals() -> None:
    r = results()
    verdicts = c.evaluate(r)
    assert [v.criterion for v in verdicts[:2]] == ["continuous_p95_at_half", "continuous_throughput"]
    assert [v.config for v in verdicts[2:]] == list(GOOD_THROUGHPUT)
    assert all(v.passed for v in verdicts) and c.outcome(verdicts) == "pass"
    goals = c.goals(r)
    assert [g.criterion for g in goals] == ["goal_throughput_1_2x", "goal_p95_0_5x", "goal_short_p95_0_3x",
                                            "goal_step_overhead_lt_10pct", "loadgen_ceiling"]
    assert [c.goal_status(g) for g in goals] == ["MET"] * 5


def test_the_p95_criterion_compares_the_best_of_each_mode_at_half_load() -> None:
    v = by_name(c.evaluate(results()))["continuous_p95_at_half"]
    assert v.numbers["continuous"] == "continuous-32" and v.numbers["static"] == "static-32-50"
    assert v.numbers["load"] == 0.5 and v.numbers["ratio"] == 0.5
    assert "100.0 req/s" in v.message and "150.0 ms" in v.message and "300.0 ms" in v.message and "0.50x" in v.message


def test_p95_fails_above_0_7x_and_is_inconclusive_only_when_runs_straddle() -> None:
    # 225 / 300 = 0.75x; runs +-5%: fastest continuous 213.75 vs slowest static 315 = 0.68x -> inconclusive
    v = by_name(c.evaluate(results(open_p95=p95_with("continuous-32", 0.5, (225.0, 100.0, 260.0)))))
    assert v["continuous_p95_at_half"].status == "INCONCLUSIVE" and "0.75x" in v["continuous_p95_at_half"].message
    # 270 / 300 = 0.9x; best pairing 256.5 / 315 = 0.81x -> a clear miss
    v = by_name(c.evaluate(results(open_p95=p95_with("continuous-32", 0.5, (270.0, 100.0, 300.0)))))
    assert v["continuous_p95_at_half"].status == "FAIL" and "above 0.7x" in v["continuous_p95_at_half"].message


def test_p95_at_different_rates_is_not_comparable() -> None:
    v = by_name(c.evaluate(results(open_rate={"continuous-32": 0.9})))["continuous_p95_at_half"]
    assert v.status == "FAIL" and "not comparable" in v.message


def test_throughput_below_the_best_static_fails_or_is_inconclusive() -> None:
    tput = {**GOOD_THROUGHPUT, "continuous-16": 195.0, "continuous-32": 196.0, "continuous-64": 150.0}
    v = by_name(c.evaluate(results(throughput=tput)))["continuous_throughput"]
    assert v.status == "INCONCLUSIVE" and v.config == "continuous-32"  # 196 x 1.05 >= 200 x 0.95
    tput = {**tput, "continuous-32": 150.0, "continuous-16": 160.0}
    v = by_name(c.evaluate(results(throughput=tput)))["continuous_throughput"]
    assert v.status == "FAIL" and v.config == "continuous-16" and "0.80x" in v.message


def test_the_goals_are_reported_not_met_without_failing_the_outcome() -> None:
    # best continuous 210 >= the best static's 200, < 1.2x: passes, the goal is not met
    tput = {**GOOD_THROUGHPUT, "continuous-16": 190.0, "continuous-32": 210.0, "continuous-64": 200.0}
    table = p95_with("continuous-32", 0.5, (200.0, 150.0, 260.0))  # 0.67x: passes 0.7, misses 0.5 and short 0.3
    r = results(throughput=tput, open_p95=table)
    assert c.outcome(c.evaluate(r)) == "pass"
    status = {g.criterion: c.goal_status(g) for g in c.goals(r)}
    assert status == {"goal_throughput_1_2x": "NOT MET", "goal_p95_0_5x": "NOT MET", "goal_short_p95_0_3x": "NOT MET",
                      "goal_step_overhead_lt_10pct": "MET", "loadgen_ceiling": "MET"}


def test_the_step_overhead_goal_reads_the_engine_step_benchmark() -> None:
    def goal(**kw):
        return {g.criterion: g for g in c.goals(results(**kw))}["goal_step_overhead_lt_10pct"]

    assert goal(step_overhead=0.099).passed and "9.9%" in goal(step_overhead=0.099).message
    missed = goal(step_overhead=0.10)
    assert not missed.passed and c.goal_status(missed) == "NOT MET" and "not below 10%" in missed.message
    absent = goal(step_overhead=None)
    assert not absent.passed and "no engine-step benchmark" in absent.message
    assert c.outcome(c.evaluate(results(step_overhead=0.5))) == "pass"  # a goal, never gated


def test_overload_above_a_configs_own_capacity_is_reported_not_gated() -> None:
    # static 8:20 carries 120 req/s; at 0.8 it is offered 160: 503s there are backpressure doing its job
    shed = {("open", "static-8-20", 0.8): {"200": 1200, "503": 400}}
    v = {x.config: x for x in c.all_ok(results(statuses=shed))}
    assert v["static-8-20"].passed and "overloaded: 160.0 req/s is above its 120.0 req/s" in v["static-8-20"].message
    # the same answers at a load it can carry fail
    v = {x.config: x for x in c.all_ok(results(statuses={("open", "static-8-20", 0.5): {"200": 900, "503": 100}}))}
    assert not v["static-8-20"].passed and "non-200 answers 503: 300" in v["static-8-20"].message
    v = {x.config: x for x in c.all_ok(results(statuses={("closed", "continuous-8", None): {"200": 499, "0": 1}}))}
    assert not v["continuous-8"].passed and "non-200 answers 0: 3" in v["continuous-8"].message


def test_missing_runs_and_loops_fail_all_ok() -> None:
    v = {x.config: x for x in c.all_ok(results(drop=("open:0.2:continuous-16", "closed:baseline")))}
    assert not v["continuous-16"].passed and "open loop at 0.2 x best static" in v["continuous-16"].message
    assert not v["baseline"].passed and "closed loop" in v["baseline"].message
    assert v["continuous-32"].passed


def test_no_continuous_results_fail_with_a_reason() -> None:
    drop = tuple(f"closed:{k}" for k in GOOD_THROUGHPUT if k.startswith("continuous"))
    verdicts = by_name(c.evaluate(results(drop=drop)))
    for name in ("continuous_p95_at_half", "continuous_throughput"):
        assert verdicts[name].status == "FAIL" and "no continuous configuration" in verdicts[name].message


def test_head_of_line_is_reported_at_every_load() -> None:
    rows = c.head_of_line(results())
    assert [r["load_fraction"] for r in rows] == [0.2, 0.5, 0.8] and [r["judged"] for r in rows] == [False, True, False]
    half = rows[1]
    assert half["static_short_p95_ms"] == 280.0 and half["continuous_short_p95_ms"] == 60.0
    assert half["short_ratio"] == 0.214 and half["long_ratio"] == 0.625 and half["all_ratio"] == 0.5
    assert half["static_short_p95_ms_range"] == [266.0, 294.0]


def test_the_ceiling_is_reported_against_the_highest_rate() -> None:
    g = {x.criterion: x for x in c.goals(results(ceiling_rps=2000.0))}["loadgen_ceiling"]
    assert c.goal_status(g) == "NOT MET" and "7.7x" in g.message
