"""Synthetic sweep results shaped exactly like bench/test_sweep.py's benchmark JSON, for criteria and report tests."""

from __future__ import annotations

import copy
from typing import Any

from miniserve.lab.sweep_params import SweepParams

# median closed-loop throughput (req/s) and open-loop p95 (ms) per configuration: a healthy lab-02 sweep
GOOD_THROUGHPUT = {"baseline": 100.0, "static-1-0": 95.0, "static-2-10": 140.0, "static-4-10": 180.0,
                   "static-8-20": 205.0, "static-16-20": 212.0, "static-32-50": 208.0,
                   "static-64-50": 205.0}
GOOD_OPEN_P95 = {"baseline": 29.0, "static-1-0": 31.0, "static-2-10": 40.0, "static-4-10": 45.0,
                 "static-8-20": 54.0, "static-16-20": 60.0, "static-32-50": 90.0,
                 "static-64-50": 95.0}
# at half load the baseline queues: its p95 is as long as the batches' (reported, not judged)
HALF_LOAD_P95 = {"baseline": 80.0, "static-1-0": 82.0, "static-2-10": 78.0, "static-4-10": 75.0,
                 "static-8-20": 79.0, "static-16-20": 85.0, "static-32-50": 110.0,
                 "static-64-50": 115.0}
RATE = 20.0  # the judged load: one fifth of the baseline's throughput
HALF_RATE = 50.0
BOUNDS = ("1", "2", "3", "4", "6", "8", "12", "16", "24", "32", "48", "64", "+Inf")  # miniserve_batch_size buckets


def _config_fields(key: str) -> dict[str, Any]:
    if key == "baseline":
        return {"mode": "unbatched", "max_batch": None, "max_wait_ms": None}
    _, b, w = key.split("-")
    return {"mode": "static", "max_batch": int(b), "max_wait_ms": float(w)}


def _run(i: int, tput: float, p95: float, requests: int, statuses: dict[str, int] | None,
         batch: int | None) -> dict[str, Any]:
    # runs spread +-5% around the median so min/max differ from it
    f = (1.0, 0.95, 1.05)[i % 3]
    run = {"run": i + 1, "requests": requests, "by_status": statuses or {"200": requests},
           "wall_s": requests / (tput * f), "throughput_rps": tput * f, "p50_ms": p95 * f / 2,
           "p95_ms": p95 * f, "p99_ms": p95 * f * 1.3, "mean_ms": p95 * f / 1.8, "max_ms": p95 * f * 1.6}
    if batch is not None:
        n_batches = requests // batch
        buckets = {b: 0 for b in BOUNDS}  # every bound, as the server's /metrics delta has them
        buckets["1"] += requests - n_batches * batch
        buckets[str(batch)] += n_batches
        run["batch_size"] = {"buckets": buckets, "count": n_batches + requests - n_batches * batch, "sum": requests}
    return run


def fake_benchmark_json(throughput: dict[str, float] | None = None, open_p95: dict[str, float] | None = None,
                        *, ceiling_rps: float | None = 4000.0, runs: int = 3, total: int = 500,
                        closed_statuses: dict[str, dict[str, int]] | None = None,
                        drop: tuple[str, ...] = (), open_rate: dict[str, float] | None = None,
                        half_load: bool = True) -> dict[str, Any]:
    """A pytest-benchmark document. `drop` removes records: 'closed:KEY' / 'open:KEY' (the judged load) /
    'half:KEY'. `half_load=False`: a sweep of one open-loop load, as sweeps before open_loop_loads recorded it
    (no rate_fraction in the records, open_loop_rate_fraction in the parameters)."""
    throughput = dict(GOOD_THROUGHPUT if throughput is None else throughput)
    open_p95 = dict(GOOD_OPEN_P95 if open_p95 is None else open_p95)
    closed_statuses = closed_statuses or {}
    configs = ",".join("baseline" if k == "baseline" else "{max_batch}:{max_wait_ms:g}".format(**_config_fields(k))
                       for k in throughput)
    params = SweepParams(concurrency=50, total=total, runs=runs, configs=configs,
                         open_loop_loads=(0.2, 0.5) if half_load else (0.2,))
    benchmarks: list[dict[str, Any]] = []
    for key, tput in throughput.items():
        fields = _config_fields(key)
        server = {"torch_threads": 1 if key == "baseline" else 2, "workers": 2, "max_queue": 256}
        batch = fields["max_batch"] or 1
        closed = {"kind": "closed_loop", "config": key, **fields, "server": server, "concurrency": 50,
                  "total": total, "runs": [_run(i, tput, 300.0 * 100 / tput, total, closed_statuses.get(key), batch)
                                           for i in range(runs)]}
        if key == "baseline" or fields["max_batch"] == 8:
            closed["latencies_ms"] = [10.0 + i for i in range(total)]
            closed["latencies_run"] = 1
        rate = (open_rate or {}).get(key, RATE)
        opened = {"kind": "open_loop", "config": key, **fields, "server": server, "rate_rps": rate,
                  "duration_s": 15.0, "runs": [_run(i, rate, open_p95[key], int(rate * 15), None, batch // 4 or 1)
                                               for i in range(runs)]}
        if half_load:
            opened["rate_fraction"] = 0.2
        if key == "baseline" or fields["max_batch"] == 8:
            opened["latencies_ms"] = [open_p95[key] * (i + 1) / 100 for i in range(100)]
            opened["latencies_run"] = 1
        half = {"kind": "open_loop", "config": key, **fields, "server": server, "rate_rps": HALF_RATE,
                "rate_fraction": 0.5, "duration_s": 15.0,
                "runs": [_run(i, HALF_RATE, HALF_LOAD_P95.get(key, 80.0), int(HALF_RATE * 15), None, batch // 2 or 1)
                         for i in range(runs)]}
        records = [("closed", closed), ("open", opened)] + ([("half", half)] if half_load else [])
        for kind, info in records:
            if f"{kind}:{key}" not in drop:
                loop = "closed" if kind == "closed" else "open"
                benchmarks.append({"name": f"test_{loop}_loop[{kind}-{key}]", "group": f"{loop}-loop",
                                   "extra_info": info, "stats": {"median": 1.0}})
    if ceiling_rps is not None:
        benchmarks.append({"name": "test_loadgen_ceiling[baseline]", "group": "calibration", "extra_info": {
            "kind": "calibration", "client": "aiohttp", "concurrency": 50, "requests": 5000,
            "by_status": {"200": 5000}, "throughput_rps": ceiling_rps, "p50_ms": 9.0, "p95_ms": 15.0}})
    sweep = params.to_dict()
    if not half_load:
        del sweep["open_loop_loads"]
        sweep["open_loop_rate_fraction"] = 0.2
    return copy.deepcopy({
        "machine_info": {"node": "test", "miniserve": {
            "sweep": sweep, "python": "3.11.0", "torch": "2.13.0", "packages": {"starlette": "0.47"},
            "cpu_count": 2, "cpu_affinity": 2, "model_sha256": "ab" * 32}},
        "commit_info": {"id": "0123456789abcdef0123456789abcdef01234567", "dirty": False},
        "benchmarks": benchmarks,
        "datetime": "2025-11-28T15:00:00+00:00",
        "version": "5.3.1",
    })


def per_run_records(doc: dict[str, Any]) -> dict[str, Any]:
    """The same sweep as the interleaved bench/test_sweep.py records it: one benchmark per run, in run-major order,
    closed-loop CDF samples on every run of a CDF configuration (offset by run, to tell them apart), open-loop on
    run 1 only."""
    doc = copy.deepcopy(doc)
    split: list[dict[str, Any]] = []
    for bench in doc["benchmarks"]:
        info = bench["extra_info"]
        if info.get("kind") not in ("closed_loop", "open_loop"):
            split.append(bench)
            continue
        sample = info.pop("latencies_ms", None)
        info.pop("latencies_run", None)
        for run in info["runs"]:
            one = dict(info, runs=[run])
            n = run["run"]
            if sample is not None and (info["kind"] == "closed_loop" or n == 1):
                one.update(latencies_ms=[x + 1000 * (n - 1) for x in sample], latencies_run=n)
            split.append({**bench, "name": bench["name"].replace("[", f"[r{n}-"), "extra_info": one})
    doc["benchmarks"] = sorted(split, key=lambda b: (b["extra_info"].get("kind") != "closed_loop",
                                                      b["extra_info"].get("kind") != "open_loop",
                                                      (b["extra_info"].get("runs") or [{}])[0].get("run", 0)))
    return doc
