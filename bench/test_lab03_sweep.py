"""Lab 03's sweep: continuous against static batching, on a mix of short and long requests.

Run with `pytest bench test_acceptance --lab 03` (alone: what `tox -e lab03` runs) or `--lab all` (after lab 02).
Same design as lab 02's bench/test_sweep.py: a real `python -m miniserve serve` per configuration, all up at once,
runs interleaved round by round, each run one benchmark whose extra_info (marked "lab": "03") holds everything the
criteria and the report read.
- payloads: the committed workload (`--lab03-payloads`, bench/payloads/lab03.json: ~70% short, ~30% long); every
  run's latencies are also recorded per length class, and every successful request's latency by class.
- closed loop: every configuration (the unbatched baseline too, for scale), `--lab03-concurrency` clients x
  `--lab03-total` requests x `--lab03-runs` runs; per run the server's metric deltas (batch sizes, rows per step,
  step time, time to first token, tokens).
- open loop: every batching configuration (not the baseline: the rates are fractions of the best *static*
  configuration's median closed-loop throughput from this session, several times what the baseline carries) at
  each of `--lab03-open-loop-loads` (1/2 judged, 1/5 and 4/5 reported), `--lab03-judged-duration` s per run at the
  judged load and `--lab03-open-loop-duration` s at the others,
  seed = run index so every configuration gets the same arrivals; in run 1 at the judged load the server's gauges
  (KV-cache rows in use, queue depth, in flight) are sampled every `--lab03-sample-interval` s, for every batching
  configuration alike (the scrapes cost each server the same).
- once, against the baseline's server: the load generator's ceiling on POST /noop.
"""

from __future__ import annotations

from typing import Any

import pytest

from miniserve.lab import latency
from miniserve.lab.sweep_params import parse_loads
from miniserve.lab.results_lab03 import (SAMPLED_GAUGES, Lab03Results, metrics_delta, parse_lab03_configs, scrape)
from miniserve.lab.workloads import Workload

# lab03_workload, lab03_fleet and lab03_server are bench/conftest.py's fixtures, beside lab 02's fleet


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "lab03_key" not in metafunc.fixturenames:
        return
    configs = parse_lab03_configs(metafunc.config.getoption("lab03_configs"))
    keys = [c.key for c in configs]
    if "run" not in metafunc.fixturenames:  # the calibration: once, against the baseline's (or the first) server
        metafunc.parametrize("lab03_key", keys[:1])
        return
    runs = range(1, metafunc.config.getoption("lab03_runs") + 1)
    if "load" not in metafunc.fixturenames:
        metafunc.parametrize(("run", "lab03_key"), [(r, k) for r in runs for k in keys],
                             ids=[f"r{r}-{k}" for r in runs for k in keys])
        return
    batching = [c.key for c in configs if not c.is_baseline]
    loads = parse_loads(metafunc.config.getoption("lab03_open_loop_loads"))
    cases = [(f, r, k) for f in loads for r in runs for k in batching]
    metafunc.parametrize(("load", "run", "lab03_key"), cases, ids=[f"{f:g}x-r{r}-{k}" for f, r, k in cases])


def server_metrics(server: Any) -> dict[str, Any]:
    status, text = server.get("/metrics")
    assert status == 200, f"GET /metrics answered {status}: {text[:200]}"
    return scrape(text)


def run_record(run: int, records: list[latency.RequestRecord], workload: Workload, before: dict[str, Any],
               after: dict[str, Any]) -> dict[str, Any]:
    parts = latency.summarize_by_class(records, workload.classes)
    by_class = {k: {key: v.to_dict()[key] for key in ("count", "by_status", "p50_ms", "p95_ms", "p99_ms")}
                for k, v in parts.items()}
    for part in by_class.values():
        part["requests"] = part.pop("count")
    latencies: dict[str, list[float]] = {}
    for r in records:
        if r.status == 200:
            cls = workload.classes[r.payload] if 0 <= r.payload < len(workload.classes) else "unknown"
            latencies.setdefault(cls, []).append(round(r.latency_s * 1000, 2))
    return {"run": run, **latency.summarize(records).run_fields(), "by_class": by_class,
            "latencies_ms": {k: sorted(v) for k, v in sorted(latencies.items())},
            "metrics": metrics_delta(before, after)}


def _base_info(server: Any, kind: str) -> dict[str, Any]:
    c = server.config
    return {"lab": "03", "kind": kind, "config": c.key, "mode": c.mode, "max_batch": c.max_batch,
            "max_wait_ms": c.max_wait_ms, "max_running": c.max_running, "max_prefill_tokens": c.max_prefill_tokens,
            "server": dict(server.info), "runs": []}


def _line(what: str, run: dict[str, Any]) -> str:
    fmt = lambda v: "n/a" if v is None else f"{v:.1f}"  # noqa: E731
    statuses = ", ".join(f"{k}: {v}" for k, v in run["by_status"].items())
    classes = "; ".join(f"{k} p95 {fmt(v['p95_ms'])} ms" for k, v in run["by_class"].items())
    return (f"{what}: {fmt(run['throughput_rps'])} req/s, p50 {fmt(run['p50_ms'])} ms, p95 {fmt(run['p95_ms'])} ms "
            f"({classes}), status {statuses}, wall {run['wall_s']:.1f} s")


def _where(key: str, store: Any) -> str:
    keys = [c.key for c in store.lab03.config_list]
    return f"[lab03 {key} {keys.index(key) + 1}/{len(keys)}]"


def test_lab03_closed_loop(run: int, lab03_server: Any, benchmark: Any, sweep_store: Any,
                           lab03_workload: Workload, progress: Any, request: pytest.FixtureRequest) -> None:
    p, server = sweep_store.lab03, lab03_server
    info = _base_info(server, "closed_loop") | {"concurrency": p.concurrency, "total": p.total}

    def run_once() -> None:
        before = server_metrics(server)
        records = server.closed_loop(p.concurrency, p.total, lab03_workload.bodies)
        info["runs"].append(run_record(run, records, lab03_workload, before, server_metrics(server)))

    benchmark.group = "lab03-closed-loop"
    benchmark.pedantic(run_once, rounds=1, iterations=1)
    record = info["runs"][0]
    progress(_line(f"{_where(server.config.key, sweep_store)} closed loop run {run}/{p.runs}", record))
    benchmark.extra_info.update(info)
    sweep_store.add(request.node.name, benchmark.extra_info)
    assert server.alive(), f"the {server.config.label} server died during the closed loop"
    assert record["requests"] == p.total, f"closed-loop run {run} stopped early: {record['requests']}/{p.total}"


def rate_base(store: Any) -> tuple[str, float]:
    """(best static configuration, its median closed-loop throughput): fixed at the first open-loop run, from every
    lab-03 closed-loop record of the session, so every open-loop run offers the same rates."""
    if store.lab03_rate_base is None:
        best = Lab03Results.from_benchmarks(store.records, store.lab03).best_static
        if best is None:
            pytest.fail("the open-loop rates are fractions of the best static configuration's closed-loop "
                        "throughput measured in this session, and no static configuration has one (did every "
                        "test_lab03_closed_loop[*-static-*] fail?)", pytrace=False)
        store.lab03_rate_base = (best.key, best.tput.median)
    return store.lab03_rate_base


def test_lab03_open_loop(load: float, run: int, lab03_server: Any, benchmark: Any, sweep_store: Any,
                         lab03_workload: Workload, progress: Any, request: pytest.FixtureRequest) -> None:
    p, server = sweep_store.lab03, lab03_server
    best, best_rps = rate_base(sweep_store)
    rate, duration_s = best_rps * load, p.duration_s(load)
    info = _base_info(server, "open_loop") | {"rate_fraction": load, "rate_rps": rate, "best_static": best,
                                              "best_static_rps": best_rps, "duration_s": duration_s}
    seed = run - 1  # the same arrival sequence for every configuration in a round
    sample = run == 1 and load == p.judged_load

    def run_once() -> None:
        before = server_metrics(server)
        samples = None
        if sample:
            records, samples = server.open_loop_sampled(rate, duration_s, seed, lab03_workload.bodies,
                                                        SAMPLED_GAUGES, p.sample_interval_s)
        else:
            records = server.open_loop(rate, duration_s, seed, lab03_workload.bodies)
        record = run_record(run, records, lab03_workload, before, server_metrics(server))
        record["seed"] = seed
        if samples is not None:
            record["samples"] = {"interval_s": p.sample_interval_s, **samples}
        info["runs"].append(record)

    benchmark.group = "lab03-open-loop"
    benchmark.pedantic(run_once, rounds=1, iterations=1)
    progress(_line(f"{_where(server.config.key, sweep_store)} open loop {load:g} x {best} = {rate:.1f} req/s run "
                   f"{run}/{p.runs}", info["runs"][0]))
    benchmark.extra_info.update(info)
    sweep_store.add(request.node.name, benchmark.extra_info)
    assert server.alive(), f"the {server.config.label} server died during the open loop"


def test_lab03_loadgen_ceiling(lab03_server: Any, sweep_store: Any, calibrate: Any) -> None:
    """The generator's own ceiling on POST /noop, same client and loop as the sweep (reported, not gated)."""
    p = sweep_store.lab03
    calibrate(lab03_server, "lab03-calibration", p.calibration_concurrency, p.calibration_total, "[lab03 calibration]",
              lab="03")
