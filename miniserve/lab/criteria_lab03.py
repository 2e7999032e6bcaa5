"""Lab 03's acceptance criteria and its reported goals, as pure functions over a Lab03Results table.

Definitions (docs/acceptance.md, lab 03): T(c) = c's median closed-loop throughput over its runs; the *best static*
S and the *best continuous* C are the static and continuous configurations with the highest T (the first in sweep
order on a tie); the open loop offers every batching configuration the same Poisson rates, fractions f of T(S)
measured in the same session; P_f(c) = c's median open-loop p95 over its runs at f, P_f(c, short) the same over its
short requests only.

Gated (the acceptance tests assert them; a miss within the runs' spread is INCONCLUSIVE, as in lab 02):
- `continuous_p95_at_half`: P_1/2(C) <= 0.7 x P_1/2(S), both offered the same rate;
- `continuous_throughput`: T(C) >= T(S);
- `all_requests_ok`, per configuration: every closed-loop request 200 and every run there; every open-loop request
  200 at each load the configuration can carry (a rate below its own T); above that, 503/504 are overload doing
  what it should and are reported, not gated.
Reported, never gated (`goals`): T(C) >= 1.2 x T(S); P_1/2(C) <= 0.5 x P_1/2(S); P_1/2(C, short) <= 0.3 x
P_1/2(S, short); the per-step overhead (iteration time outside the model) < 10% at 32 running rows
(bench/test_lab03_engine_step.py) -- each MET / NOT MET / INCONCLUSIVE -- and, at every load, the short and long
requests' p95 of S against C (`head_of_line`: what a short request pays for sharing a static batch with a long one).
"""

from __future__ import annotations

from typing import Any

from miniserve.lab.criteria import SAME_RATE_TOLERANCE, Verdict, outcome  # noqa: F401 - outcome: one rule, both labs
from miniserve.lab.results_lab03 import LENGTH_CLASSES, Lab03Results, Lab03Row, class_p95

P95_FACTOR = 0.7  # gated: best continuous p95 <= 0.7 x best static's at the judged load
THROUGHPUT_FACTOR = 1.0  # gated: best continuous throughput >= the best static's
GOAL_THROUGHPUT_FACTOR = 1.2  # reported: >= 1.2 x
GOAL_P95_FACTOR = 0.5  # reported: p95 <= 0.5 x at the judged load
GOAL_SHORT_P95_FACTOR = 0.3  # reported: short requests' p95 <= 0.3 x at the judged load
GOAL_STEP_OVERHEAD = 0.10  # reported: per-step overhead outside the model call < 10% of the iteration


def _pair(results: Lab03Results) -> tuple[Lab03Row | None, Lab03Row | None, str | None]:
    s, c = results.best_static, results.best_continuous
    if s is None or c is None:
        missing = " and ".join(w for w, r in (("static", s), ("continuous", c)) if r is None)
        return s, c, f"no {missing} configuration has a closed-loop throughput (their benchmarks failed or did not " \
                     "run), so there is no best one to compare"
    return s, c, None


def _throughput(results: Lab03Results, name: str, factor: float) -> Verdict:
    s, c, problem = _pair(results)
    if problem:
        return Verdict(name, None, False, problem)
    ts, tc = s.tput, c.tput
    ratio = tc.median / ts.median if ts.median > 0 else float("inf")
    ok = ratio >= factor
    best_run = tc.max / ts.min if ts.min > 0 else float("inf")
    unsure = not ok and best_run >= factor
    spread = (f"; best continuous run vs worst static run {best_run:.2f}x: within run-to-run spread" if unsure
              else "")
    need = "the best static's" if factor == 1 else f"{factor:g}x the best static's"
    return Verdict(name, c.key, ok, f"closed-loop throughput, median over runs: best continuous ({c.config.label}) "
                   f"{tc.median:.1f} req/s against best static ({s.config.label}) {ts.median:.1f} req/s = "
                   f"{ratio:.2f}x ({'>=' if ok else 'below'} {need}){spread}",
                   {"continuous": c.key, "static": s.key, "continuous_rps": tc.median, "static_rps": ts.median,
                    "ratio": ratio, "best_run_ratio": best_run, "factor": factor}, inconclusive=unsure)


def throughput(results: Lab03Results) -> Verdict:
    """Gated: the best continuous configuration serves at least the best static's closed-loop throughput."""
    return _throughput(results, "continuous_throughput", THROUGHPUT_FACTOR)


def _p95_ratio(results: Lab03Results, name: str, factor: float, cls: str | None) -> Verdict:
    """P_f(C) <= factor x P_f(S) at the judged load f, over all requests (cls None) or one length class."""
    s, c, problem = _pair(results)
    load = results.params.judged_load
    if problem:
        return Verdict(name, None, False, problem)
    what = "open-loop p95" if cls is None else f"open-loop p95 of {cls} requests"
    ls, lc = s.open_by_load.get(load), c.open_by_load.get(load)
    ps, pc = class_p95(ls, cls), class_p95(lc, cls)
    if ps is None or pc is None:
        missing = s.config.label if ps is None else c.config.label
        return Verdict(name, c.key, False, f"no {what} at {load:g} x the best static's throughput for {missing} "
                       "(its open-loop benchmark failed, did not run, or had no successful request)")
    numbers = {"continuous": c.key, "static": s.key, "load": load, "continuous_p95_ms": pc.median,
               "static_p95_ms": ps.median, "rate_rps": lc.rate_rps, "static_rate_rps": ls.rate_rps, "factor": factor}
    if not lc.rate_rps or not ls.rate_rps or abs(lc.rate_rps - ls.rate_rps) > SAME_RATE_TOLERANCE * ls.rate_rps:
        return Verdict(name, c.key, False, f"{c.config.label} was offered {lc.rate_rps} req/s and {s.config.label} "
                       f"{ls.rate_rps} req/s: the p95s are not comparable", numbers)
    ratio = pc.median / ps.median if ps.median > 0 else float("inf")
    ok = ratio <= factor
    best = pc.min / ps.max if ps.max > 0 else float("inf")
    unsure = not ok and best <= factor
    numbers.update(ratio=ratio, best_run_ratio=best)
    spread = (f"; runs {pc.min:.1f}-{pc.max:.1f} vs {ps.min:.1f}-{ps.max:.1f} ms: the fastest continuous run against "
              f"the slowest static one is {best:.2f}x, within run-to-run spread") if unsure else ""
    return Verdict(name, c.key, ok, f"{what} at the same Poisson rate {lc.rate_rps:.1f} req/s ({load:g} x the best "
                   f"static's throughput): best continuous ({c.config.label}) {pc.median:.1f} ms against best static "
                   f"({s.config.label}) {ps.median:.1f} ms = {ratio:.2f}x ({'<=' if ok else 'above'} {factor:g}x)"
                   f"{spread}", numbers, inconclusive=unsure)


def p95_at_judged_load(results: Lab03Results) -> Verdict:
    """Gated: at the judged load (1/2), the best continuous configuration's open-loop p95 <= 0.7 x the best
    static's, both offered the same Poisson rate."""
    return _p95_ratio(results, "continuous_p95_at_half", P95_FACTOR, None)


def short_p95_goal(results: Lab03Results) -> Verdict:
    return _p95_ratio(results, "goal_short_p95_0_3x", GOAL_SHORT_P95_FACTOR, "short")


def all_ok(results: Lab03Results) -> list[Verdict]:
    """Per configuration: every closed-loop request 200 and every run there; every open-loop request 200 and every
    run there at each load whose rate is below the configuration's own median closed-loop throughput. At a higher
    rate the server is overloaded by construction and sheds load (503) or times out (504): reported, not gated."""
    p = results.params
    out = []
    for row in results.configs:
        c, problems, parts, numbers = row.config, [], [], {}
        loops = [("closed", "closed loop", row.closed, p.total * p.runs, True)]
        if not c.is_baseline:
            for f in p.open_loop_loads:
                loop = row.open_by_load.get(f)
                rate = loop.rate_rps if loop else None
                carried = row.tput is not None and rate is not None and rate < row.tput.median
                loops.append((f"open_{f:g}", f"open loop at {f:g} x best static", loop, None,
                              carried or row.tput is None))
        for short, what, loop, expect_reqs, gated in loops:
            if not loop:
                problems.append(f"no results for the {what} (its benchmark failed or did not run)")
                continue
            numbers[f"{short}_statuses"] = dict(loop.statuses)
            bad = {k: v for k, v in loop.statuses.items() if k != "200"}
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted(bad.items()))
            parts.append(f"{what} {loop.ok}/{loop.requests} 200s over {len(loop.runs)} runs")
            if len(loop.runs) != p.runs:
                problems.append(f"{what} ran {len(loop.runs)} of {p.runs} runs")
            if loop.requests == 0:
                problems.append(f"{what} sent no requests")
            if expect_reqs is not None and loop.requests != expect_reqs:
                problems.append(f"{what} sent {loop.requests} of {expect_reqs} requests")
            if bad and gated:
                problems.append(f"{what} non-200 answers {statuses} (0 = timeout / transport error)")
            elif bad:
                parts[-1] += (f" (overloaded: {loop.rate_rps:.1f} req/s is above its {row.tput.median:.1f} req/s; "
                              f"non-200 {statuses} reported, not gated)")
        summary = "; ".join(parts) or "nothing measured"
        ok = not problems
        out.append(Verdict("all_requests_ok", c.key, ok,
                           f"{c.label}: {summary}" if ok else f"{c.label}: {'; '.join(problems)} ({summary})", numbers))
    return out


def evaluate(results: Lab03Results) -> list[Verdict]:
    """The gated verdicts, in the order the acceptance module lists them."""
    return [p95_at_judged_load(results), throughput(results), *all_ok(results)]


def ceiling(results: Lab03Results) -> Verdict:
    """Reported: the load generator's calibrated ceiling on POST /noop against the highest rate the sweep needed
    (the best closed-loop throughput, or the highest open-loop rate if higher): >= 10x, so the numbers are the
    server's, not the client's."""
    name, cal = "loadgen_ceiling", results.calibration
    if cal is None:
        return Verdict(name, None, False, "no load-generator calibration in this sweep")
    rates = [r.tput.median for r in results.configs if r.tput is not None]
    rates += [x for f in results.params.open_loop_loads if (x := results.rate_rps(f))]
    if not rates:
        return Verdict(name, None, False, f"ceiling {cal.throughput_rps:.0f} req/s, nothing to compare it with")
    need = max(rates)
    multiple = cal.throughput_rps / need if need > 0 else float("inf")
    return Verdict(name, None, multiple >= 10, f"load generator reaches {cal.throughput_rps:.0f} req/s on POST /noop "
                   f"= {multiple:.1f}x the highest rate of the sweep ({need:.1f} req/s); want >= 10x",
                   {"ceiling_rps": cal.throughput_rps, "highest_rps": need, "multiple": multiple})


def step_overhead(results: Lab03Results) -> Verdict:
    """Reported: at full rows, the median share of an iteration's wall time spent outside the model's forward
    passes (the engine's Python and the scheduler's) is below 10%."""
    name, e = "goal_step_overhead_lt_10pct", results.engine_step
    if not e or e.get("overhead") is None:
        return Verdict(name, None, False, "no engine-step benchmark in this sweep (bench/test_lab03_engine_step.py)")
    ok = e["overhead"] < GOAL_STEP_OVERHEAD
    return Verdict(name, None, ok, f"at {e['max_running']} running rows, one iteration {e['wall_ms']:.2f} ms = model "
                   f"{e['model_ms']:.2f} + engine Python {e['engine_python_ms']:.2f} + scheduler {e['scheduler_ms']:.2f} "
                   f"(medians over {e['full_iterations']} iterations): overhead {e['overhead']:.1%} "
                   f"({'<' if ok else 'not below'} {GOAL_STEP_OVERHEAD:.0%})", dict(e))


def goals(results: Lab03Results) -> list[Verdict]:
    """The goals beyond the course, reported as met / not met (never gated), and the generator's ceiling."""
    return [_throughput(results, "goal_throughput_1_2x", GOAL_THROUGHPUT_FACTOR),
            _p95_ratio(results, "goal_p95_0_5x", GOAL_P95_FACTOR, None), short_p95_goal(results),
            step_overhead(results), ceiling(results)]


def goal_status(v: Verdict) -> str:
    """MET / NOT MET / INCONCLUSIVE: a goal is a statement about this run, not a test."""
    return "MET" if v.passed else "INCONCLUSIVE" if v.inconclusive else "NOT MET"


def head_of_line(results: Lab03Results) -> list[dict[str, Any]]:
    """Per open-loop load (sorted), the best static against the best continuous by length class: p95 (median over
    runs, with range), and the continuous/static ratio. Head-of-line blocking shows as a short request's p95 under
    static batching near a long one's: it waited for the batch's longest member."""
    s, c, _ = _pair(results)
    out = []
    for load in sorted(results.params.open_loop_loads):
        entry: dict[str, Any] = {"load_fraction": load, "judged": load == results.params.judged_load,
                                 "rate_rps": results.rate_rps(load), "static": s.key if s else None,
                                 "continuous": c.key if c else None}
        for cls in (None, *LENGTH_CLASSES):
            name = cls or "all"
            vals = {}
            for side, row in (("static", s), ("continuous", c)):
                loop = row.open_by_load.get(load) if row else None
                spread = class_p95(loop, cls)
                vals[side] = spread
                entry[f"{side}_{name}_p95_ms"] = round(spread.median, 2) if spread else None
                entry[f"{side}_{name}_p95_ms_range"] = [round(spread.min, 2), round(spread.max, 2)] if spread else None
            st, co = vals["static"], vals["continuous"]
            entry[f"{name}_ratio"] = round(co.median / st.median, 3) if st and co and st.median > 0 else None
        out.append(entry)
    return out
