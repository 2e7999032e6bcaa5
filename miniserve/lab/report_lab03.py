"""The lab-03 experiment folder, written from a pytest-benchmark JSON of the lab-03 sweep (`miniserve report` picks
this module when the JSON holds lab-03 records; report.py does lab 02).

Same rules and the same writer as lab 02's report (report_common.py): it only reads the JSON, the JSON is copied
into the folder as benchmark.json so the folder regenerates from its own contents, a sweep never replaces an
existing folder (`-2`, `-3`, ...), and one with other than the lab's parameters writes a `-quick` folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from miniserve.lab import criteria_lab03, report_common
from miniserve.lab.report_common import (LabReport, clean_json, load_generator, manifest_head, manifest_tail, rounded,
                                         rounded_median, servers, status_line, status_text, write_csv)
from miniserve.lab.results import Spread
from miniserve.lab.results_lab03 import LENGTH_CLASSES, Lab03Results, Lab03Row, class_result

EXPERIMENT = "phase-33-lab-03"
FILES = ("lab03_sweep.csv", "open_loop_by_load.csv", "p95_vs_load.png", "latency_cdf_by_length.png",
         "rows_in_use.png", "throughput_vs_max_running.png", "manifest.json", "benchmark.json")
SWEEP_COLUMNS = (
    "config", "mode", "max_batch", "max_wait_ms", "max_running", "max_prefill_tokens", "torch_threads", "workers",
    "best", "runs", "throughput_rps", "throughput_rps_min", "throughput_rps_max", "x_best_static", "x_baseline",
    "p50_ms", "p95_ms", "p99_ms", "p95_ms_min", "p95_ms_max", "short_p95_ms", "long_p95_ms", "requests",
    "status_counts", "mean_rows_per_call", "mean_step_ms", "mean_ttft_ms", "completion_tokens", "prompt_tokens",
)
OPEN_LOOP_COLUMNS = (
    "config", "mode", "max_batch", "max_wait_ms", "max_running", "best", "load_fraction", "judged", "rate_rps",
    "runs", "p50_ms", "p95_ms", "p95_ms_min", "p95_ms_max", "p99_ms", "short_p50_ms", "short_p95_ms",
    "short_p95_ms_min", "short_p95_ms_max", "long_p50_ms", "long_p95_ms", "long_p95_ms_min", "long_p95_ms_max",
    "p95_x_best_static", "short_p95_x_best_static", "long_p95_x_best_static", "mean_rows_per_call", "requests",
    "short_requests", "long_requests", "status_counts",
)


def default_experiment_dir(benchmark_json: dict[str, Any], root: str | Path = "experiments") -> Path:
    return report_common.default_experiment_dir(LAB03, benchmark_json, root)


def _best(results: Lab03Results, row: Lab03Row) -> str:
    s, c = results.best_static, results.best_continuous
    return "best static" if s is row else "best continuous" if c is row else ""


def _ratio(a: float | None, b: float | None, nd: int = 3) -> float | None:
    return rounded(a / b, nd) if a is not None and b else None


def sweep_rows(results: Lab03Results) -> list[dict[str, Any]]:
    best_s = results.best_static.tput.median if results.best_static else None
    base = results.baseline.tput.median if results.baseline and results.baseline.tput else None
    out = []
    for row in results.configs:
        c, closed, t = row.config, row.closed, row.tput
        step = row.metric_mean(closed, "step_seconds")
        ttft = row.metric_mean(closed, "ttft_seconds")
        tokens = row.tokens(closed)
        classes = {cls: class_result(closed, cls) for cls in LENGTH_CLASSES}
        out.append({
            "config": c.key, "mode": c.mode, "max_batch": c.max_batch, "max_wait_ms": c.max_wait_ms,
            "max_running": c.max_running, "max_prefill_tokens": c.max_prefill_tokens,
            "torch_threads": row.server.get("torch_threads"), "workers": row.server.get("workers"),
            "best": _best(results, row), "runs": len(closed.runs) if closed else 0,
            "throughput_rps": rounded_median(t), "throughput_rps_min": rounded(t.min) if t else None,
            "throughput_rps_max": rounded(t.max) if t else None,
            "x_best_static": _ratio(t.median if t else None, best_s),
            "x_baseline": _ratio(t.median if t else None, base),
            "p50_ms": rounded_median(closed.p50_ms) if closed else None,
            "p95_ms": rounded_median(closed.p95_ms) if closed else None,
            "p99_ms": rounded_median(closed.p99_ms) if closed else None,
            "p95_ms_min": rounded(closed.p95_ms.min) if closed and closed.p95_ms else None,
            "p95_ms_max": rounded(closed.p95_ms.max) if closed and closed.p95_ms else None,
            "short_p95_ms": rounded_median(classes["short"].p95_ms) if classes["short"] else None,
            "long_p95_ms": rounded_median(classes["long"].p95_ms) if classes["long"] else None,
            "requests": closed.requests if closed else 0,
            "status_counts": status_text(closed.statuses) if closed else "",
            "mean_rows_per_call": rounded(row.rows_per_call.median, 2) if row.rows_per_call else None,
            "mean_step_ms": rounded(step.median * 1000, 3) if step else None,
            "mean_ttft_ms": rounded(ttft.median * 1000, 2) if ttft else None,
            "completion_tokens": tokens.get("completion"), "prompt_tokens": tokens.get("prompt"),
        })
    return out


def open_loop_rows(results: Lab03Results) -> list[dict[str, Any]]:
    """One row per (batching configuration, load), loads in ascending order."""
    s = results.best_static
    out = []
    for load in sorted(results.params.open_loop_loads):
        ref = s.open_by_load.get(load) if s else None
        ref_cls = {cls: class_result(ref, cls) for cls in LENGTH_CLASSES}
        for row in results.configs:
            loop, c = row.open_by_load.get(load), row.config
            if loop is None:
                continue
            cls = {k: class_result(loop, k) for k in LENGTH_CLASSES}

            def p(part: Any, attr: str = "p95_ms") -> Spread | None:
                return getattr(part, attr) if part else None

            r: dict[str, Any] = {
                "config": c.key, "mode": c.mode, "max_batch": c.max_batch, "max_wait_ms": c.max_wait_ms,
                "max_running": c.max_running, "best": _best(results, row), "load_fraction": load,
                "judged": load == results.params.judged_load, "rate_rps": rounded(loop.rate_rps),
                "runs": len(loop.runs),
                "p50_ms": rounded_median(loop.p50_ms), "p95_ms": rounded_median(loop.p95_ms),
                "p95_ms_min": rounded(loop.p95_ms.min) if loop.p95_ms else None,
                "p95_ms_max": rounded(loop.p95_ms.max) if loop.p95_ms else None, "p99_ms": rounded_median(loop.p99_ms),
                "p95_x_best_static": _ratio(rounded_median(loop.p95_ms), rounded_median(ref.p95_ms) if ref else None),
                "mean_rows_per_call": rounded_median(row.metric_mean(loop, "rows_per_step" if c.is_continuous
                                                           else "batch_size")),
                "requests": loop.requests, "status_counts": status_text(loop.statuses),
            }
            for k in LENGTH_CLASSES:
                s95 = p(cls[k])
                r[f"{k}_p50_ms"] = rounded_median(p(cls[k], "p50_ms"))
                r[f"{k}_p95_ms"] = rounded_median(s95)
                r[f"{k}_p95_ms_min"] = rounded(s95.min) if s95 else None
                r[f"{k}_p95_ms_max"] = rounded(s95.max) if s95 else None
                r[f"{k}_p95_x_best_static"] = _ratio(rounded_median(s95), rounded_median(p(ref_cls[k])))
                r[f"{k}_requests"] = cls[k].requests if cls[k] else 0
            out.append(r)
    return out


def write_tables(results: Lab03Results, out: Path) -> None:
    write_csv(sweep_rows(results), SWEEP_COLUMNS, out / "lab03_sweep.csv")
    write_csv(open_loop_rows(results), OPEN_LOOP_COLUMNS, out / "open_loop_by_load.csv")


def _goal_dict(v: criteria_lab03.Verdict) -> dict[str, Any]:
    return {**v.to_dict(), "status": criteria_lab03.goal_status(v)}


def build_manifest(benchmark_json: dict[str, Any], results: Lab03Results, out_dir: Path) -> dict[str, Any]:
    verdicts = criteria_lab03.evaluate(results)
    goals = criteria_lab03.goals(results)
    s, c = results.best_static, results.best_continuous
    return clean_json({
        **manifest_head(benchmark_json, EXPERIMENT, ["sweep", "lab03", "lab03_workload"]),
        "workload": results.workload,
        "sweep": {**results.params.to_dict(), "lab_defaults": results.params.is_lab_default()},
        "best": {"definition": "highest median closed-loop throughput over runs, per mode (first in sweep order on "
                               "a tie)",
                 "static": {"config": s.key, "label": s.config.label, "throughput_rps": s.tput.median} if s else None,
                 "continuous": {"config": c.key, "label": c.config.label, "throughput_rps": c.tput.median}
                 if c else None},
        "open_loop_rates": [{"load_fraction": f, "judged": f == results.params.judged_load,
                             "rate_rps": results.rate_rps(f)} for f in sorted(results.params.open_loop_loads)],
        "head_of_line": criteria_lab03.head_of_line(results),
        "servers": servers(results.configs),
        "load_generator": load_generator(results.calibration),
        "engine_step": results.engine_step,
        "acceptance": report_common.acceptance(verdicts),
        "goals": [_goal_dict(v) for v in goals],
        **manifest_tail(FILES, out_dir),
    })


def write_experiment(benchmark_json: dict[str, Any], out_dir: str | Path | None = None) -> Path:
    return report_common.write_experiment(LAB03, benchmark_json, out_dir)


def dump_benchmark_json(doc: dict[str, Any]) -> str:
    """One JSON document with one benchmark per line: the runs keep every request's latency, which indented JSON
    would spread over ~100,000 lines."""
    parts = [f"{json.dumps(k)}: {json.dumps(v, indent=1)}" for k, v in doc.items() if k != "benchmarks"]
    benches = ",\n".join(json.dumps(b, separators=(",", ":")) for b in doc.get("benchmarks") or [])
    return "{" + ",\n".join(parts) + ',\n"benchmarks": [\n' + benches + "\n]}\n"


LAB03 = LabReport(EXPERIMENT, Lab03Results.from_benchmark_json, write_tables, "miniserve.lab.plots_lab03",
                  build_manifest, dump_benchmark_json)


def goal_lines(manifest: dict[str, Any]) -> list[str]:
    return [status_line(g["status"], g["criterion"], g["message"]) for g in manifest.get("goals") or []]
