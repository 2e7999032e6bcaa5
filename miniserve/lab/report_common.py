"""What both labs' experiment folders share (report.py: lab 02 and `miniserve report`, report_lab03.py: lab 03): the
folder's name, the one writer that fills it, the manifest's common parts and the number formats of the CSVs.

Rules both keep: a report only reads the benchmark JSON; the JSON is copied into the folder as benchmark.json, so
the folder regenerates from its own contents; a sweep never replaces an existing folder (`-2`, `-3`, ...), and one
with other than the lab's parameters writes a `-quick` folder, so a quick check is never mistaken for the lab's
deliverable.
"""

from __future__ import annotations

import csv
import importlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from miniserve.lab.criteria import Verdict, outcome
from miniserve.lab.results import Calibration, Spread


@dataclass(frozen=True, slots=True)
class LabReport:
    """One lab's experiment folder: what differs between the labs, for `default_experiment_dir` and
    `write_experiment`."""

    experiment: str  # the folder's name after its date, e.g. "phase-33-lab-02"
    results: Callable[[dict[str, Any]], Any]  # the lab's table from a benchmark JSON (its params: is_lab_default())
    write_tables: Callable[[Any, Path], None]  # the lab's CSVs into the folder
    plots_module: str  # the module whose write_plots(results, folder) draws the figures (imported only to write)
    manifest: Callable[[dict[str, Any], Any, Path], dict[str, Any]]  # (benchmark JSON, table, folder) -> manifest
    dump_benchmark_json: Callable[[dict[str, Any]], str]  # the JSON's copy, as text


def sweep_datetime(benchmark_json: Mapping[str, Any]) -> datetime:
    """When pytest-benchmark saved the sweep, in local time (the folder is named after the sweep, not the report)."""
    raw = benchmark_json.get("datetime")
    return datetime.fromisoformat(raw).astimezone() if raw else datetime.now().astimezone()


def next_free_dir(base: Path) -> Path:
    """base, or base-2, base-3, ... : the first that does not exist yet."""
    # A second sweep on the same day gets a new folder: committed results are never replaced by a later run.
    # (Regenerating a folder on purpose names it: `miniserve report <dir>/benchmark.json --out <dir>`.)
    n = 2
    target = base
    while target.exists():
        target, n = base.with_name(f"{base.name}-{n}"), n + 1
    return target


def default_experiment_dir(lab: LabReport, benchmark_json: dict[str, Any], root: str | Path = "experiments") -> Path:
    """<root>/<date>-<experiment> (…-quick when the sweep ran with other than the lab's parameters), with -2, -3, …
    when that folder already exists."""
    suffix = "" if lab.results(benchmark_json).params.is_lab_default() else "-quick"
    return next_free_dir(Path(root) / f"{sweep_datetime(benchmark_json):%Y-%m-%d}-{lab.experiment}{suffix}")


def write_experiment(lab: LabReport, benchmark_json: dict[str, Any], out_dir: str | Path | None = None) -> Path:
    """Write the lab's experiment folder (default: default_experiment_dir under ./experiments) and return its path:
    the tables, the figures, manifest.json and the benchmark JSON's copy."""
    out = Path(out_dir) if out_dir is not None else default_experiment_dir(lab, benchmark_json)
    out.mkdir(parents=True, exist_ok=True)
    results = lab.results(benchmark_json)
    lab.write_tables(results, out)
    importlib.import_module(lab.plots_module).write_plots(results, out)  # matplotlib only when a report is written
    manifest = lab.manifest(benchmark_json, results, out)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    (out / "benchmark.json").write_text(lab.dump_benchmark_json(clean_json(benchmark_json)), encoding="utf-8")
    return out


# -- numbers and tables ---------------------------------------------------------------------------------------------

def rounded(x: float | None, nd: int = 2) -> float | None:
    """x to nd decimals; None for a missing or non-finite number."""
    return None if x is None or not math.isfinite(x) else round(x, nd)


def rounded_median(s: Spread | None) -> float | None:
    return rounded(s.median) if s else None


def status_text(counts: Mapping[str, int]) -> str:
    """HTTP status counts as one CSV cell, "200=98;503=2", by status."""
    return ";".join(f"{k}={v}" for k, v in sorted(counts.items(), key=lambda kv: int(kv[0])))


def write_csv(rows: Iterable[Mapping[str, Any]], columns: tuple[str, ...], path: Path) -> None:
    """One row per mapping, in `columns` order; a missing or None value is an empty cell."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for row in rows:
            w.writerow({k: "" if row.get(k) is None else row[k] for k in columns})


# -- the manifest -----------------------------------------------------------------------------------------------------

def clean_json(x: Any) -> Any:
    """JSON has no NaN/Infinity: a missing or undefined number is null."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): clean_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean_json(v) for v in x]
    if x is None or isinstance(x, (str, int, bool)):
        return x
    return str(x)  # anything else a plugin put in the JSON is kept readable rather than failing the report


def shown_path(path: Path) -> str:
    """Relative to the working directory when inside it, so a committed manifest names no machine's paths."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def manifest_head(benchmark_json: Mapping[str, Any], experiment: str, params_keys: Iterable[str]) -> dict[str, Any]:
    """The manifest's first entries: experiment, date, git, environment (machine_info["miniserve"] without the
    sweep parameters under `params_keys`, which the manifest gives on their own) and model_sha256."""
    machine = benchmark_json.get("machine_info") or {}
    env = dict(machine.get("miniserve") or {})
    for key in params_keys:
        env.pop(key, None)
    commit = benchmark_json.get("commit_info") or {}
    return {
        "experiment": experiment,
        "date": sweep_datetime(benchmark_json).isoformat(timespec="seconds"),
        "git": {"commit": commit.get("id"), "dirty": commit.get("dirty"), "branch": commit.get("branch")},
        "environment": {**env, "system": machine.get("system"), "release": machine.get("release"),
                        "machine": machine.get("machine"), "python_implementation":
                        machine.get("python_implementation"), "pytest_benchmark": benchmark_json.get("version")},
        "model_sha256": env.get("model_sha256"),
    }


def servers(rows: Iterable[Any]) -> dict[str, Any]:
    """Per configuration row (.key, .config.label, .server): its label and the server settings it ran with."""
    return {r.key: {"label": r.config.label, **r.server} for r in rows}


def load_generator(cal: Calibration | None) -> dict[str, Any] | None:
    """The load generator's own ceiling, measured against POST /noop (None: not calibrated)."""
    return None if cal is None else {
        "client": cal.client, "concurrency": cal.concurrency, "requests": cal.requests,
        "ceiling_rps": cal.throughput_rps, "p50_ms": cal.p50_ms, "p95_ms": cal.p95_ms, "statuses": cal.statuses,
        "endpoint": "POST /noop"}


def acceptance(verdicts: list[Verdict]) -> dict[str, Any]:
    """The gated criteria: the outcome (one rule, both labs), whether all passed, and each verdict."""
    return {"outcome": outcome(verdicts), "all_passed": all(v.passed for v in verdicts),
            "verdicts": [v.to_dict() for v in verdicts]}


def manifest_tail(files: Iterable[str], out_dir: Path) -> dict[str, Any]:
    """The manifest's last entries: the folder's files and the command that regenerates it."""
    return {"files": list(files),
            "regenerate": f"miniserve report {shown_path(out_dir / 'benchmark.json')} --out {shown_path(out_dir)}"}


def status_line(status: str, criterion: str, message: str) -> str:
    """One verdict or goal as the sweep and `miniserve report` print it."""
    return f"  {status:<12} {criterion}: {message}"
