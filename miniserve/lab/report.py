"""`miniserve report`: the lab-02 experiment folder, written from a pytest-benchmark JSON of the sweep, and the
command that writes each lab's folder (lab 03's tables and manifest are in report_lab03.py).

Benchmarks write data; this module only reads it. The same function runs at the end of the sweep's pytest session
(on the JSON pytest-benchmark is about to save) and from the command line on a saved JSON, so the folder can be
regenerated without rerunning the sweep: `miniserve report out.json`. The JSON itself is copied into the folder
as benchmark.json, which makes every experiment folder regenerable from its own contents (report_common.py: the
writer both labs use).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from miniserve.lab import criteria, report_common, report_lab03
from miniserve.lab.report_common import (LabReport, clean_json, load_generator, manifest_head, manifest_tail,
                                         rounded, rounded_median, servers, status_line, status_text, write_csv)
from miniserve.lab.benchmark_doc import LAB_02, LAB_03, labs_in, split_by_lab
from miniserve.lab.results import ConfigResult, Spread, SweepResults

EXPERIMENT = "phase-33-lab-02"
FILES = ("batch_sweep.csv", "open_loop_by_load.csv", "throughput_vs_batch.png", "p95_vs_batch.png",
         "p95_vs_load.png", "latency_cdf_baseline_vs_batch8.png", "batch_fill_histogram.png", "manifest.json",
         "benchmark.json")
CSV_COLUMNS = (
    "config", "mode", "max_batch", "max_wait_ms", "torch_threads", "workers", "runs",
    "p50_ms", "p95_ms", "p99_ms", "throughput_rps",
    "p50_ms_min", "p50_ms_max", "p95_ms_min", "p95_ms_max", "p99_ms_min", "p99_ms_max",
    "throughput_rps_min", "throughput_rps_max", "requests", "status_counts",
    "mean_batch_size", "mean_batch_fill", "open_loop_rate_fraction", "open_loop_rate_rps", "open_loop_runs",
    "open_loop_p50_ms", "open_loop_p95_ms", "open_loop_p95_ms_min", "open_loop_p95_ms_max",
    "open_loop_p99_ms", "open_loop_requests", "open_loop_status_counts",
)
# one row per (configuration, open-loop load): the latency cost of batching as the offered load grows
OPEN_LOOP_COLUMNS = (
    "config", "mode", "max_batch", "max_wait_ms", "load_fraction", "rate_rps", "runs", "p50_ms", "p95_ms",
    "p95_ms_min", "p95_ms_max", "p99_ms", "baseline_p95_ms", "p95_minus_baseline_ms", "mean_batch_size",
    "requests", "status_counts",
)


def default_experiment_dir(benchmark_json: dict[str, Any], root: str | Path = "experiments") -> Path:
    """experiments/<date>-phase-33-lab-02 (…-quick when the sweep ran with other than the lab's parameters, so a
    quick check is never mistaken for the lab's deliverable), with -2, -3, … when that folder already exists."""
    return report_common.default_experiment_dir(LAB02, benchmark_json, root)


def csv_row(row: ConfigResult, judged_load: float | None = None) -> dict[str, Any]:
    c, closed, opened = row.config, row.closed, row.open
    out: dict[str, Any] = {
        "config": c.key, "mode": c.mode, "max_batch": c.max_batch, "max_wait_ms": c.max_wait_ms,
        "torch_threads": row.server.get("torch_threads"), "workers": row.server.get("workers"),
        "runs": len(closed.runs) if closed else 0,
    }
    for name in ("p50_ms", "p95_ms", "p99_ms", "throughput_rps"):
        s: Spread | None = getattr(closed, name) if closed else None
        out[name] = rounded_median(s)
        out[f"{name}_min"], out[f"{name}_max"] = (rounded(s.min), rounded(s.max)) if s else (None, None)
    out["requests"] = closed.requests if closed else 0
    out["status_counts"] = status_text(closed.statuses) if closed else ""
    out["mean_batch_size"] = rounded_median(row.mean_batch_size)
    fill = row.mean_batch_size.median / c.max_batch if row.mean_batch_size and c.max_batch else None
    out["mean_batch_fill"] = rounded(fill, 3)
    out["open_loop_rate_fraction"] = judged_load if opened else None
    out["open_loop_rate_rps"] = rounded(opened.rate_rps) if opened and opened.rate_rps else None
    out["open_loop_runs"] = len(opened.runs) if opened else 0
    out["open_loop_p50_ms"] = rounded_median(opened.p50_ms) if opened else None
    out["open_loop_p95_ms"] = rounded_median(opened.p95_ms) if opened else None
    out["open_loop_p95_ms_min"] = rounded(opened.p95_ms.min) if opened and opened.p95_ms else None
    out["open_loop_p95_ms_max"] = rounded(opened.p95_ms.max) if opened and opened.p95_ms else None
    out["open_loop_p99_ms"] = rounded_median(opened.p99_ms) if opened else None
    out["open_loop_requests"] = opened.requests if opened else 0
    out["open_loop_status_counts"] = status_text(opened.statuses) if opened else ""
    return {k: out.get(k) for k in CSV_COLUMNS}


def csv_rows(results: SweepResults) -> list[dict[str, Any]]:
    return [csv_row(row, results.params.judged_load) for row in results.configs]


def open_loop_rows(results: SweepResults) -> list[dict[str, Any]]:
    base = results.baseline
    out = []
    for load in results.params.open_loop_loads:
        base_loop = base.open_by_load.get(load) if base else None
        base_p95 = base_loop.p95_ms.median if base_loop and base_loop.p95_ms else None
        for row in results.configs:
            loop, c = row.open_by_load.get(load), row.config
            if loop is None:
                continue
            p95 = loop.p95_ms
            batch = Spread.of(r["batch_size"]["sum"] / r["batch_size"]["count"] for r in loop.runs
                              if (r.get("batch_size") or {}).get("count"))
            out.append({
                "config": c.key, "mode": c.mode, "max_batch": c.max_batch, "max_wait_ms": c.max_wait_ms,
                "load_fraction": load, "rate_rps": rounded(loop.rate_rps), "runs": len(loop.runs),
                "p50_ms": rounded_median(loop.p50_ms), "p95_ms": rounded_median(p95),
                "p95_ms_min": rounded(p95.min) if p95 else None, "p95_ms_max": rounded(p95.max) if p95 else None,
                "p99_ms": rounded_median(loop.p99_ms), "baseline_p95_ms": rounded(base_p95),
                "p95_minus_baseline_ms": rounded(p95.median - base_p95) if p95 and base_p95 is not None else None,
                "mean_batch_size": rounded_median(batch), "requests": loop.requests,
                "status_counts": status_text(loop.statuses),
            })
    return out


def write_tables(results: SweepResults, out: Path) -> None:
    write_csv(csv_rows(results), CSV_COLUMNS, out / "batch_sweep.csv")
    write_csv(open_loop_rows(results), OPEN_LOOP_COLUMNS, out / "open_loop_by_load.csv")


def _open_loop_summary(results: SweepResults) -> list[dict[str, Any]]:
    """Per open-loop load: its rate, whether the p95 criterion is judged there, and which static configs had a
    p95 above the baseline's -- the trade-off at every load measured, not only the judged one."""
    rows = open_loop_rows(results)
    out = []
    for load in results.params.open_loop_loads:
        here = [r for r in rows if r["load_fraction"] == load]
        base = next((r for r in here if r["config"] == "baseline"), None)
        static = {r["config"]: r["p95_ms"] for r in here if r["config"] != "baseline"}
        base_p95 = base["p95_ms"] if base else None
        out.append({"load_fraction": load, "judged": load == results.params.judged_load,
                    "rate_rps": base["rate_rps"] if base else None, "baseline_p95_ms": base_p95,
                    "static_p95_ms": static,
                    "static_above_baseline": None if base_p95 is None else
                    sorted(k for k, v in static.items() if v is not None and v > base_p95)})
    return out


def build_manifest(benchmark_json: dict[str, Any], results: SweepResults, out_dir: Path) -> dict[str, Any]:
    base = results.baseline
    return clean_json({
        **manifest_head(benchmark_json, EXPERIMENT, ["sweep", "lab02_workload"]),
        "sweep": {**results.params.to_dict(), "lab_defaults": results.params.is_lab_default()},
        **_workload(benchmark_json),
        "open_loop_rate_rps": base.open.rate_rps if base and base.open else None,
        "open_loop_by_load": _open_loop_summary(results),
        "servers": servers(results.configs),
        "load_generator": load_generator(results.calibration),
        "acceptance": report_common.acceptance(criteria.evaluate(results)),
        **manifest_tail(FILES, out_dir),
    })


def _workload(benchmark_json: dict[str, Any]) -> dict[str, Any]:
    """The payload file's name, sha256 and counts; nothing for sweeps recorded before --sweep-payloads existed (they
    all sent bench/payloads/lab02.json, and their reports regenerate byte for byte)."""
    info = ((benchmark_json.get("machine_info") or {}).get("miniserve") or {}).get("lab02_workload")
    return {"workload": info} if info else {}


def dump_benchmark_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1) + "\n"


LAB02 = LabReport(EXPERIMENT, SweepResults.from_benchmark_json, write_tables, "miniserve.lab.plots", build_manifest,
                  dump_benchmark_json)
REPORTS = {LAB_02: LAB02, LAB_03: report_lab03.LAB03}


def write_experiment(benchmark_json: dict[str, Any], out_dir: str | Path | None = None) -> Path:
    """Write the experiment folder (default: default_experiment_dir under ./experiments) and return its path."""
    return report_common.write_experiment(LAB02, benchmark_json, out_dir)


def run_report(args: argparse.Namespace) -> int:
    try:
        data = json.loads(Path(args.benchmark_json).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"miniserve report: cannot read {args.benchmark_json}: {e}", file=sys.stderr)
        return 2
    if not isinstance(data, dict) or "benchmarks" not in data:
        print(f"miniserve report: {args.benchmark_json} is not a pytest-benchmark JSON (no 'benchmarks')",
              file=sys.stderr)
        return 2
    try:
        import matplotlib  # noqa: F401 - the lab's extra; checked here so the user gets the fix, not a traceback
    except ImportError:
        print("miniserve report: the figures need matplotlib; install the lab's extra: pip install 'miniserve[lab]'",
              file=sys.stderr)
        return 2
    labs = labs_in(data)
    wanted = getattr(args, "lab", None)
    if wanted and wanted not in labs:
        print(f"miniserve report: {args.benchmark_json} holds no lab-{wanted} records (it holds "
              f"{', '.join(f'lab {x}' for x in labs) or 'none'})", file=sys.stderr)
        return 2
    if not wanted and len(labs) > 1 and args.out:
        print(f"miniserve report: {args.benchmark_json} holds both labs' records; pick the one --out is for with "
              "--lab 02 or --lab 03 (without --out, each lab gets its own folder under experiments/)",
              file=sys.stderr)
        return 2
    docs = split_by_lab(data)
    for lab in [wanted] if wanted else labs or [LAB_02]:
        out = write_lab_experiment(lab, docs.get(lab, data), args.out)
        print(f"wrote {out}")
        print("\n".join(lab_summary_lines(lab, json.loads((out / "manifest.json").read_text(encoding="utf-8")))))
    return 0


def write_lab_experiment(lab: str, benchmark_json: dict[str, Any], out_dir: str | Path | None = None,
                         root: str | Path = "experiments") -> Path:
    """The lab's experiment folder from a document of that lab's records (split_by_lab), at out_dir or the next
    free default folder under root."""
    report = REPORTS.get(lab, LAB02)
    return report_common.write_experiment(report, benchmark_json, out_dir if out_dir is not None
                                          else report_common.default_experiment_dir(report, benchmark_json, root))


def lab_summary_lines(lab: str, manifest: dict[str, Any]) -> list[str]:
    """What the sweep and `miniserve report` print for a lab: one line per gated criterion, then (lab 03) the goals
    reported beside them, then the outcome."""
    lines = verdict_lines(manifest)
    if lab == LAB_03:
        goals = report_lab03.goal_lines(manifest)
        if goals:
            lines[-1:-1] = ["goals beyond the course (reported, not gated):", *goals]
    return lines


_OUTCOME_TEXT = {
    "pass": "every criterion passed",
    "pass with inconclusive": "no criterion failed; the INCONCLUSIVE ones missed their line by less than their runs' "
                              "spread, which the lab allows (docs/acceptance.md)",
    "fail": "a criterion failed outside its runs' spread (docs/acceptance.md)",
}


def verdict_lines(manifest: dict[str, Any]) -> list[str]:
    """One line per criterion, then the outcome: what the sweep and `miniserve report` print."""
    acceptance = manifest["acceptance"]
    verdicts = [criteria.Verdict(**{k: v for k, v in d.items() if k != "status"}) for d in acceptance["verdicts"]]
    result = acceptance.get("outcome") or criteria.outcome(verdicts)
    lines = [status_line(v.status, v.criterion, v.message) for v in verdicts]
    return [*lines, f"outcome: {result.upper()} -- {_OUTCOME_TEXT[result]}"]
