"""Where the acceptance tests get their numbers: the sweep run earlier in this same session, or -- only when asked
with --sweep-json -- a saved benchmark JSON that is of the current git commit and recent. Nothing else: with no
results every acceptance test FAILS, saying how to produce them."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from miniserve.lab import criteria, criteria_lab03
from miniserve.lab.benchmark_doc import LAB_02, LAB_03, benchmark_lab, stale_reason
from miniserve.lab.results import SweepResults
from miniserve.lab.sweep_params import SweepConfig, SweepParams
from miniserve.lab.results_lab03 import Lab03Params, Lab03Results

RUN_THE_SWEEP = "run `pytest bench test_acceptance --benchmark-json=out.json` (the sweep, then these tests)"
RUN_LAB03 = "run `pytest bench test_acceptance --lab 03 --benchmark-json=out.json` (the lab-03 sweep, then these tests)"


@dataclass(slots=True)
class Judged:
    """The verdicts to assert, or why there are none (each test then fails with `problem`)."""

    verdicts: list[criteria.Verdict] | None
    problem: str | None
    source: str


def git_head(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _read_json(path: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return None, f"cannot read --sweep-json {path}: {e}"
    if not isinstance(data, dict) or "benchmarks" not in data:
        return None, f"--sweep-json {path} is not a pytest-benchmark JSON"
    return data, None


def _saved_run(path: str, sweep_store: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The --sweep-json document either lab is judged on, or why it cannot be: one source of numbers per session."""
    if sweep_store.records:
        return None, "this session ran the sweep and was also given --sweep-json; drop one of them"
    return _read_json(path)


def _configs(config: pytest.Config) -> list[SweepConfig]:
    """The configurations to parametrize per-config tests with: those of the JSON judged, else this session's."""
    path = config.getoption("sweep_json")
    if path:
        data, _ = _read_json(path)
        if data is not None:
            return SweepResults.from_benchmark_json(data).params.config_list
    return SweepParams(configs=config.getoption("sweep_configs")).config_list


def _lab03_configs(config: pytest.Config) -> list[SweepConfig]:
    path = config.getoption("sweep_json")
    if path:
        data, _ = _read_json(path)
        if data is not None and any(benchmark_lab(b) == LAB_03 for b in data.get("benchmarks") or []):
            return Lab03Results.from_benchmark_json(data).params.config_list
    return Lab03Params(configs=config.getoption("lab03_configs")).config_list


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "lab03_config" in metafunc.fixturenames:
        metafunc.parametrize("lab03_config", [c.key for c in _lab03_configs(metafunc.config)])
        return
    configs = _configs(metafunc.config)
    if "gain_config" in metafunc.fixturenames:  # "none" still yields a (failing) test: nothing is skipped
        metafunc.parametrize("gain_config", [c.key for c in criteria.gain_configs(configs)] or ["none"])
    if "sweep_config" in metafunc.fixturenames:
        metafunc.parametrize("sweep_config", [c.key for c in configs])


@pytest.fixture(scope="session")
def judged(request: pytest.FixtureRequest, sweep_store: Any) -> Judged:
    config = request.config
    path = config.getoption("sweep_json")
    if path:
        data, problem = _saved_run(path, sweep_store)
        if data is None:
            return Judged(None, problem, path)
        if reason := stale_reason(data, git_head(config.rootpath), config.getoption("sweep_max_age_hours")):
            return Judged(None, f"refusing stale --sweep-json {path}: {reason}. Rerun the sweep: {RUN_THE_SWEEP}",
                          path)
        return Judged(criteria.evaluate(SweepResults.from_benchmark_json(data)), None, path)
    if not any(benchmark_lab(r) == LAB_02 for r in sweep_store.records):
        return Judged(None, f"no sweep results in this session: {RUN_THE_SWEEP}, or judge a fresh saved run of "
                      "this commit with `pytest test_acceptance --sweep-json out.json`", "nothing")
    results = SweepResults.from_benchmarks(sweep_store.records, sweep_store.params)
    return Judged(criteria.evaluate(results), None, "this session's sweep")


@pytest.fixture(scope="session")
def judged_lab03(request: pytest.FixtureRequest, sweep_store: Any) -> Judged:
    """Lab 03's verdicts, from this session's lab-03 sweep or a fresh --sweep-json holding lab-03 records."""
    config = request.config
    path = config.getoption("sweep_json")
    if path:
        data, problem = _saved_run(path, sweep_store)
        if data is None:
            return Judged(None, problem, path)
        if not any(benchmark_lab(b) == LAB_03 for b in data.get("benchmarks") or []):
            return Judged(None, f"--sweep-json {path} holds no lab-03 records: {RUN_LAB03}", path)
        if reason := stale_reason(data, git_head(config.rootpath), config.getoption("sweep_max_age_hours")):
            return Judged(None, f"refusing stale --sweep-json {path}: {reason}. Rerun the sweep: {RUN_LAB03}", path)
        return Judged(criteria_lab03.evaluate(Lab03Results.from_benchmark_json(data)), None, path)
    if not any(benchmark_lab(r) == LAB_03 for r in sweep_store.records):
        return Judged(None, f"no lab-03 sweep results in this session: {RUN_LAB03}, or judge a fresh saved run of "
                      "this commit with `pytest test_acceptance --lab 03 --sweep-json out.json`", "nothing")
    results = Lab03Results.from_benchmarks(sweep_store.records, sweep_store.lab03)
    return Judged(criteria_lab03.evaluate(results), None, "this session's lab-03 sweep")
