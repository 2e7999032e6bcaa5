"""Synthetic lab-03 sweeps shaped exactly like bench/test_lab03_sweep.py's benchmark JSON (one benchmark per run, run-major,
closed loop first, then the open loop load by load), for the criteria, results, report and session tests."""

from __future__ import annotations

import copy
import math
from typing import Any

from miniserve.lab.sweep_params import SweepConfig
from miniserve.lab.results_lab03 import INFLIGHT, KV_SLOTS, QUEUE_DEPTH, Lab03Params

# median closed-loop throughput (req/s) of a healthy lab-03 sweep: best static 32:50, best continuous cont:32 (1.3x)
GOOD_THROUGHPUT = {"baseline": 40.0, "static-8-20": 120.0, "static-16-20": 180.0, "static-32-50": 200.0,
                   "continuous-8": 150.0, "continuous-16": 230.0, "continuous-32": 260.0, "continuous-64": 250.0}
LOADS = (0.5, 0.2, 0.8)
BEST_STATIC_RPS = 200.0
# open-loop p95 (ms) per config and load: (all, short, long). Static: a short request waits for its batch's longest
# member, so its p95 is near the long one's; continuous: short requests leave early.
GOOD_OPEN_P95: dict[str, dict[float, tuple[float, float, float]]] = {
    "static-8-20": {0.2: (150.0, 140.0, 170.0), 0.5: (400.0, 380.0, 420.0), 0.8: (3000.0, 2900.0, 3100.0)},
    "static-16-20": {0.2: (160.0, 150.0, 175.0), 0.5: (320.0, 300.0, 340.0), 0.8: (900.0, 880.0, 930.0)},
    "static-32-50": {0.2: (180.0, 170.0, 190.0), 0.5: (300.0, 280.0, 320.0), 0.8: (500.0, 480.0, 520.0)},
    "continuous-8": {0.2: (90.0, 40.0, 120.0), 0.5: (200.0, 90.0, 260.0), 0.8: (1500.0, 1400.0, 1600.0)},
    "continuous-16": {0.2: (80.0, 30.0, 110.0), 0.5: (160.0, 70.0, 210.0), 0.8: (300.0, 150.0, 380.0)},
    "continuous-32": {0.2: (80.0, 30.0, 110.0), 0.5: (150.0, 60.0, 200.0), 0.8: (260.0, 120.0, 330.0)},
    "continuous-64": {0.2: (85.0, 32.0, 115.0), 0.5: (155.0, 65.0, 205.0), 0.8: (270.0, 125.0, 340.0)},
}
SPREAD = (1.0, 0.95, 1.05)  # run i's factor: runs spread +-5% around the median


def config_of(key: str) -> SweepConfig:
    if key == "baseline":
        return SweepConfig("unbatched")
    mode, *rest = key.split("-")
    if mode == "static":
        return SweepConfig("static", int(rest[0]), float(rest[1]))
    return SweepConfig("continuous", max_running=int(rest[0]))


def _fields(c: SweepConfig) -> dict[str, Any]:
    return {"config": c.key, "mode": c.mode, "max_batch": c.max_batch, "max_wait_ms": c.max_wait_ms,
            "max_running": c.max_running, "max_prefill_tokens": c.max_prefill_tokens}


def _class(n: int, p95: float, statuses: dict[str, int] | None = None) -> dict[str, Any]:
    return {"requests": n, "by_status": statuses or {"200": n}, "p50_ms": p95 / 2, "p95_ms": p95, "p99_ms": p95 * 1.2}


def _lat(n: int, p95: float) -> list[float]:
    """n latencies whose 95th percentile is about p95."""
    return [round(p95 * (i + 1) / (0.95 * n), 2) for i in range(n)]


def _metrics(c: SweepConfig, requests: int) -> dict[str, Any]:
    rows = min(c.rows, 50)
    calls = math.ceil(requests / rows)
    hist = {"buckets": {str(rows): calls}, "count": calls, "sum": float(calls * rows)}
    if c.is_continuous:
        steps = calls * 12
        return {"batch_size": None, "rows_per_step": {"buckets": {str(rows): steps}, "count": steps,
                                                      "sum": float(steps * rows)},
                "step_seconds": {"buckets": {"0.01": steps}, "count": steps, "sum": steps * 0.008},
                "ttft_seconds": {"buckets": {"0.05": requests}, "count": requests, "sum": requests * 0.03},
                "tokens": {"completion": requests * 14, "prompt": requests * 20}}
    return {"batch_size": hist, "rows_per_step": None, "step_seconds": None, "ttft_seconds": None, "tokens": None}


def _run(i: int, c: SweepConfig, tput: float, p95: tuple[float, float, float], requests: int,
         statuses: dict[str, int] | None, samples: bool) -> dict[str, Any]:
    f = SPREAD[i % 3]
    n_long = round(requests * 0.3)
    n_short = requests - n_long
    statuses = statuses or {"200": requests}
    bad = {k: v for k, v in statuses.items() if k != "200"}
    run = {"run": i + 1, "requests": requests, "by_status": statuses, "wall_s": requests / (tput * f),
           "throughput_rps": tput * f, "p50_ms": p95[0] * f / 2, "p95_ms": p95[0] * f, "p99_ms": p95[0] * f * 1.3,
           "mean_ms": p95[0] * f / 1.8, "max_ms": p95[0] * f * 1.6, "send_lag_p99_ms": 1.0,
           "by_class": {"long": _class(n_long, p95[2] * f), "short": _class(n_short, p95[1] * f,
                                                                             {"200": n_short - sum(bad.values()),
                                                                              **bad} if bad else None)},
           "latencies_ms": {"long": _lat(n_long, p95[2] * f), "short": _lat(n_short - sum(bad.values()), p95[1] * f)},
           "metrics": _metrics(c, requests)}
    if samples:
        ts = [round(0.1 * k, 3) for k in range(100)]
        run["samples"] = {"interval_s": 0.1, "t_s": ts,
                          KV_SLOTS: [float(min(c.rows, (k * c.rows // 7) % (c.rows + 1))) if c.is_continuous else None
                                     for k in range(100)],
                          QUEUE_DEPTH: [float(k % 4) for k in range(100)], INFLIGHT: [float(3 + k % 9)
                                                                                      for k in range(100)]}
    return run


def fake_lab03_json(throughput: dict[str, float] | None = None,
                    open_p95: dict[str, dict[float, tuple[float, float, float]]] | None = None, *,
                    runs: int = 3, total: int = 500, duration_s: float = 10.0, judged_duration_s: float = 25.0,
                    loads: tuple[float, ...] = LOADS,
                    statuses: dict[tuple[str, str, float | None], dict[str, int]] | None = None,
                    drop: tuple[str, ...] = (), ceiling_rps: float | None = 4000.0,
                    open_rate: dict[str, float] | None = None, with_lab02: dict[str, Any] | None = None,
                    params: dict[str, Any] | None = None, step_overhead: float | None = 0.05) -> dict[str, Any]:
    """A pytest-benchmark document of a lab-03 sweep. `statuses[(kind, key, load)]` replaces one loop's status
    counts in every run ('closed' with load None, or 'open'); `drop` removes loops: 'closed:KEY' / 'open:LOAD:KEY';
    `open_rate` overrides a config's offered rate factor (1.0 = as everyone else); `step_overhead` is the engine-step
    benchmark's overhead (None: no such benchmark); `with_lab02` merges a lab-02 document
    into the same session (both labs' records and parameters)."""
    throughput = dict(GOOD_THROUGHPUT if throughput is None else throughput)
    open_p95 = copy.deepcopy(GOOD_OPEN_P95 if open_p95 is None else open_p95)
    statuses = statuses or {}
    configs = [config_of(k) for k in throughput]
    p = Lab03Params(concurrency=50, total=total, runs=runs, configs=",".join(c.token for c in configs),
                    open_loop_duration_s=duration_s, judged_duration_s=judged_duration_s, open_loop_loads=loads,
                    **(params or {}))
    static = [k for k in throughput if k.startswith("static")]
    best_static = max(static, key=lambda k: throughput[k]) if static else None
    benchmarks: list[dict[str, Any]] = []
    for r in range(runs):
        for c in configs:
            if f"closed:{c.key}" in drop:
                continue
            tput = throughput[c.key]
            little = 50 / tput * 1000 * 1.3
            info = {"lab": "03", "kind": "closed_loop", **_fields(c), "server": {"torch_threads": 1, "workers": 2},
                    "concurrency": 50, "total": total,
                    "runs": [_run(r, c, tput, (little, little * 0.9, little * 1.2), total,
                                  statuses.get(("closed", c.key, None)), False)]}
            benchmarks.append({"name": f"test_lab03_closed_loop[r{r + 1}-{c.key}]", "group": "lab03-closed-loop",
                               "extra_info": info, "stats": {"median": 1.0}})
    for load in loads:
        seconds = p.duration_s(load)
        for r in range(runs):
            for c in configs:
                if c.is_baseline or f"open:{load:g}:{c.key}" in drop:
                    continue
                rate = BEST_STATIC_RPS * load * (open_rate or {}).get(c.key, 1.0)
                n = int(rate * seconds)
                info = {"lab": "03", "kind": "open_loop", **_fields(c), "server": {"torch_threads": 1, "workers": 2},
                        "rate_fraction": load, "rate_rps": rate, "duration_s": seconds,
                        "best_static": best_static, "best_static_rps": BEST_STATIC_RPS,
                        "runs": [_run(r, c, rate, open_p95[c.key][load], n, statuses.get(("open", c.key, load)),
                                      samples=r == 0 and load == loads[0]) | {"seed": r}]}
                benchmarks.append({"name": f"test_lab03_open_loop[{load:g}x-r{r + 1}-{c.key}]",
                                   "group": "lab03-open-loop", "extra_info": info, "stats": {"median": 1.0}})
    if ceiling_rps is not None:
        benchmarks.append({"name": "test_lab03_loadgen_ceiling[baseline]", "group": "lab03-calibration",
                           "extra_info": {"lab": "03", "kind": "calibration", "client": "aiohttp", "concurrency": 50,
                                          "requests": 5000, "by_status": {"200": 5000}, "throughput_rps": ceiling_rps,
                                          "p50_ms": 9.0, "p95_ms": 15.0}})
    if step_overhead is not None:
        wall = 10.0
        benchmarks.append({"name": "test_lab03_engine_step", "group": "lab03-engine-step", "extra_info": {
            "lab": "03", "kind": "engine_step", "max_running": 32, "torch_threads": 1, "full_iterations": 300,
            "wall_ms": wall, "model_ms": wall * (1 - step_overhead), "decode_ms": wall * 0.6, "prefill_share": 0.35,
            "engine_python_ms": wall * step_overhead / 2, "scheduler_ms": wall * step_overhead / 2,
            "overhead": step_overhead}})
    doc = {
        "machine_info": {"node": "test", "miniserve": {
            "lab03": p.to_dict(), "lab03_workload": {"file": "bench/payloads/lab03.json", "sha256": "cd" * 32,
                                                     "counts": {"short": 280, "long": 120}},
            "python": "3.11.0", "torch": "2.13.0", "packages": {"starlette": "0.47"}, "cpu_count": 2,
            "cpu_affinity": 2, "model_sha256": "ab" * 32}},
        "commit_info": {"id": "0123456789abcdef0123456789abcdef01234567", "dirty": False},
        "benchmarks": benchmarks,
        "datetime": "2025-11-30T15:00:00+00:00",
        "version": "5.3.1",
    }
    if with_lab02 is not None:
        doc["benchmarks"] = with_lab02["benchmarks"] + doc["benchmarks"]
        doc["machine_info"]["miniserve"]["sweep"] = with_lab02["machine_info"]["miniserve"]["sweep"]
    return copy.deepcopy(doc)
