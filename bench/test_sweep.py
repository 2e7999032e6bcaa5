"""Lab 02's batching sweep: closed- and open-loop load against a real server per configuration.

All configurations' servers stay up for the session and their runs are interleaved: closed-loop run 1 of every
configuration (the unbatched baseline first, then static (max_batch, max_wait_ms)), then run 2, ..., then the open
loop the same way. Each run is one benchmark (one pytest-benchmark round), so machine noise in one stretch of time
hits one run of every configuration, and every ratio the criteria take is measured side by side.
- closed loop: `--sweep-concurrency` clients, `--sweep-total` requests, `--sweep-runs` runs per configuration; per
  run the latency percentiles, throughput, status counts, wall time, and the run's delta of the server's
  miniserve_batch_size histogram (read from /metrics before and after).
- open loop: Poisson arrivals at fixed fractions of the baseline's median closed-loop throughput measured in this
  session (`--open-loop-loads`, default one fifth -- where the p95 criterion is judged -- and one half), for
  `--open-loop-duration` seconds, `--sweep-runs` runs per load (seed = run index, so every configuration gets the
  same arrival sequences); load by load, each round of runs interleaved like the closed loop's.
- once, against the baseline server: the load generator's ceiling on POST /noop.
Everything lands in the benchmark's extra_info (and the session store); acceptance and the report read it there.
"""

from __future__ import annotations

from typing import Any

import pytest

from miniserve.lab import latency
from miniserve.lab.results import SweepResults, histogram_delta, parse_batch_histogram
from miniserve.lab.sweep_params import SweepConfig, parse_configs, parse_loads

CDF_MAX_BATCH = 8  # per-request latencies are kept for the baseline and this max_batch (the CDF plot)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "config_key" not in metafunc.fixturenames:
        return
    # keys, not SweepConfig objects, so the benchmark JSON's "params" stay plain strings
    keys = [c.key for c in parse_configs(metafunc.config.getoption("sweep_configs"))]  # baseline first
    if "run" not in metafunc.fixturenames:  # the calibration: once, against the baseline's server
        metafunc.parametrize("config_key", keys[:1])
        return
    runs = range(1, metafunc.config.getoption("sweep_runs") + 1)
    # Run-major order: round r measures every configuration before round r + 1 starts.
    if "load" not in metafunc.fixturenames:
        metafunc.parametrize(("run", "config_key"), [(r, k) for r in runs for k in keys],
                             ids=[f"r{r}-{k}" for r in runs for k in keys])
        return
    loads = parse_loads(metafunc.config.getoption("open_loop_loads"))
    cases = [(f, r, k) for f in loads for r in runs for k in keys]
    metafunc.parametrize(("load", "run", "config_key"), cases, ids=[f"{f:g}x-r{r}-{k}" for f, r, k in cases])


def batch_histogram(server: Any) -> dict[str, Any]:
    """The server's cumulative miniserve_batch_size histogram right now."""
    status, text = server.get("/metrics")
    assert status == 200, f"GET /metrics answered {status}: {text[:200]}"
    return parse_batch_histogram(text)


def run_record(run: int, records: list[latency.RequestRecord], hist: dict[str, Any]) -> dict[str, Any]:
    return {"run": run, **latency.summarize(records).run_fields(), "batch_size": hist,
            "mean_batch_size": hist["sum"] / hist["count"] if hist["count"] else None}


def latencies_ms(records: list[latency.RequestRecord]) -> list[float]:
    return sorted(round(r.latency_s * 1000, 2) for r in records if r.status == 200)


def wants_cdf(config: SweepConfig) -> bool:
    return config.is_baseline or config.max_batch == CDF_MAX_BATCH


def _where(config: SweepConfig, store: Any) -> str:
    keys = [c.key for c in store.params.config_list]
    return f"[{config.key} {keys.index(config.key) + 1}/{len(keys)}]"


def _line(what: str, run: dict[str, Any]) -> str:
    fmt = lambda v: "n/a" if v is None else f"{v:.1f}"  # noqa: E731
    statuses = ", ".join(f"{k}: {v}" for k, v in run["by_status"].items())
    return (f"{what}: {fmt(run['throughput_rps'])} req/s, p50 {fmt(run['p50_ms'])} ms, p95 {fmt(run['p95_ms'])} ms,"
            f" p99 {fmt(run['p99_ms'])} ms, status {statuses}, mean batch {fmt(run['mean_batch_size'])}, "
            f"wall {run['wall_s']:.1f} s")


def _base_info(server: Any, kind: str) -> dict[str, Any]:
    c: SweepConfig = server.config
    return {"kind": kind, "config": c.key, "mode": c.mode, "max_batch": c.max_batch, "max_wait_ms": c.max_wait_ms,
            "server": dict(server.info), "runs": []}


def test_closed_loop(run: int, server: Any, benchmark: Any, sweep_store: Any, payloads: list[dict], progress: Any,
                     request: pytest.FixtureRequest) -> None:
    p, config = sweep_store.params, server.config
    info = _base_info(server, "closed_loop") | {"concurrency": p.concurrency, "total": p.total}

    def run_once() -> None:
        before = batch_histogram(server)
        records = server.closed_loop(p.concurrency, p.total, payloads)
        info["runs"].append(run_record(run, records, histogram_delta(before, batch_histogram(server))))
        if wants_cdf(config):  # the report keeps the median-throughput run's sample for the CDF plot
            info.update(latencies_ms=latencies_ms(records), latencies_run=run)

    benchmark.group = "closed-loop"
    benchmark.pedantic(run_once, rounds=1, iterations=1)
    record = info["runs"][0]
    progress(_line(f"{_where(config, sweep_store)} closed loop run {run}/{p.runs}", record))
    benchmark.extra_info.update(info)
    sweep_store.add(request.node.name, benchmark.extra_info)
    if config.is_baseline and run == p.runs:  # the median over the baseline's runs, as the criteria take it
        base = SweepResults.from_benchmarks(sweep_store.records, p).baseline
        sweep_store.baseline_rps = base.closed.throughput_rps.median if base and base.closed else None
    assert server.alive(), f"the {config.label} server died during the closed loop (exit {server.proc.returncode})"
    assert record["requests"] == p.total, f"closed-loop run {run} stopped early: {record['requests']}/{p.total}"


def test_open_loop(load: float, run: int, server: Any, benchmark: Any, sweep_store: Any, payloads: list[dict],
                   progress: Any, request: pytest.FixtureRequest) -> None:
    p, config = sweep_store.params, server.config
    rate = sweep_store.open_loop_rate_rps(load)
    if rate is None:
        pytest.fail(f"the open-loop rate is {load:g} x the baseline's closed-loop throughput measured in this "
                    "session, and the baseline's closed loop has not completed (did test_closed_loop[r*-baseline] "
                    "fail?)")
    info = _base_info(server, "open_loop") | {"rate_fraction": load, "rate_rps": rate,
                                              "duration_s": p.open_loop_duration_s}
    seed = run - 1  # the same arrival sequence for every configuration in a round

    def run_once() -> None:
        before = batch_histogram(server)
        records = server.open_loop(rate, p.open_loop_duration_s, seed, payloads)
        record = run_record(run, records, histogram_delta(before, batch_histogram(server)))
        record["seed"] = seed
        info["runs"].append(record)
        if run == 1 and load == p.judged_load and wants_cdf(config):
            info.update(latencies_ms=latencies_ms(records), latencies_run=1)

    benchmark.group = "open-loop"
    benchmark.pedantic(run_once, rounds=1, iterations=1)
    progress(_line(f"{_where(config, sweep_store)} open loop {load:g} x baseline = {rate:.1f} req/s run "
                   f"{run}/{p.runs}", info["runs"][0]))
    benchmark.extra_info.update(info)
    sweep_store.add(request.node.name, benchmark.extra_info)
    assert server.alive(), f"the {config.label} server died during the open loop (exit {server.proc.returncode})"


def test_loadgen_ceiling(server: Any, sweep_store: Any, calibrate: Any) -> None:
    """The generator's own ceiling on POST /noop (parsing, no model), same client and loop as the sweep."""
    p = sweep_store.params
    calibrate(server, "calibration", p.calibration_concurrency, p.calibration_total, "[calibration]")
