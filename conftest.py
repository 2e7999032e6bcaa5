"""Shared pytest options and the sweep's in-session results store.

One session does it all: `pytest bench test_acceptance --benchmark-json=out.json` runs the sweep (bench/), then the
acceptance tests assert on the records the sweep left in the store (never on files from earlier runs), then
`pytest_sessionfinish` writes the experiment folder with miniserve.lab.report.write_experiment from the very JSON
pytest-benchmark saved, so `miniserve report out.json` regenerates the same folder later.

Two labs share the suite: lab 02 (static batching: bench/test_sweep.py and its offline and tuning benchmarks,
test_acceptance/test_lab02.py) and lab 03 (continuous batching: the `*lab03*` modules). `--lab 02|03|all` picks;
without it a session runs lab 02 as it always did, unless only lab-03 paths were given. A session of both labs
writes one experiment folder per lab from the one benchmark JSON.

Store records have the shape of the benchmark JSON's entries ({"name", "extra_info"}) and hold the same
extra_info dicts, so acceptance in-session and the report from the JSON read identical data.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import platform
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from miniserve.lab.benchmark_doc import LAB_02, LAB_03, LABS, benchmark_lab
from miniserve.lab.sweep_params import LAB_CONFIGS, SweepParams, parse_loads
from miniserve.lab.results_lab03 import Lab03Params

ACCEPTANCE_DIR = "test_acceptance"
LAB_DIRS = ("bench", ACCEPTANCE_DIR)  # where the labs' modules live; tests/ is never selected by --lab
PACKAGES = ("torch", "safetensors", "starlette", "uvicorn", "uvloop", "httptools", "aiohttp", "httpx",
            "prometheus-client", "numpy", "pytest", "pytest-benchmark", "matplotlib", "miniserve")


@dataclass(slots=True)
class SweepStore:
    params: SweepParams
    records: list[dict[str, Any]] = field(default_factory=list)  # like benchmark JSON entries, in run order
    baseline_rps: float | None = None  # the baseline's median closed-loop throughput, once measured
    server_pids: set[int] = field(default_factory=set)  # process-group leaders of running servers
    benchmark_json: dict[str, Any] | None = None  # what pytest-benchmark saved, when --benchmark-json was given
    experiment_dirs: dict[str, Path] = field(default_factory=dict)  # by lab, once written
    experiment_errors: dict[str, str] = field(default_factory=dict)  # by lab: why its folder could not be written
    lab03: Lab03Params = field(default_factory=Lab03Params)
    lab03_rate_base: tuple[str, float] | None = None  # (best static config, its median closed-loop req/s), once known

    def add(self, name: str, extra_info: dict[str, Any]) -> None:
        self.records.append({"name": name, "extra_info": extra_info})

    def labs(self) -> set[str]:
        return {benchmark_lab(r) for r in self.records}

    def open_loop_rate_rps(self, load: float) -> float | None:
        """The Poisson rate of an open-loop load (a fraction of the baseline's throughput), once that is measured."""
        return None if self.baseline_rps is None else self.baseline_rps * load


SWEEP_STORE = pytest.StashKey[SweepStore]()


def pytest_addoption(parser: pytest.Parser) -> None:
    d = SweepParams()
    g = parser.getgroup("miniserve sweep", "lab-02 batching sweep (defaults are the lab's)")
    g.addoption("--sweep-concurrency", type=int, default=d.concurrency, help="closed loop: concurrent clients")
    g.addoption("--sweep-total", type=int, default=d.total, help="closed loop: requests per run")
    g.addoption("--sweep-runs", type=int, default=d.runs, help="runs per configuration (closed and open loop)")
    g.addoption("--sweep-configs", default=LAB_CONFIGS, help="'baseline' and MAX_BATCH:MAX_WAIT_MS, comma-separated")
    g.addoption("--open-loop-duration", type=float, default=d.open_loop_duration_s, help="open loop: seconds/run")
    g.addoption("--open-loop-loads", default=",".join(f"{f:g}" for f in d.open_loop_loads),
                help="open-loop rates as fractions of the baseline's throughput, comma-separated; the p95 criterion "
                "is judged at the first")
    g.addoption("--sweep-payloads", default=d.payloads, help="payload file (relative to the repository root)")
    g.addoption("--calibration-total", type=int, default=d.calibration_total, help="load-generator calibration "
                "requests on POST /noop")
    g.addoption("--server-ready-timeout", type=float, default=180.0, help="seconds to wait for a server's /readyz")
    g.addoption("--experiment-dir", default=None, help="experiment folder (default: experiments/<date>-phase-33-"
                "lab-02, with a -quick suffix when the sweep parameters are not the lab's)")
    g.addoption("--no-experiment", action="store_true", help="do not write the experiment folder")
    g.addoption("--sweep-json", default=None, help="acceptance only: judge this benchmark JSON instead of a sweep "
                "run in this session (must be of the current commit and recent)")
    g.addoption("--sweep-max-age-hours", type=float, default=24.0, help="--sweep-json older than this is stale")
    g.addoption("--lab", choices=("02", "03", "all"), default=None,
                help="which lab's sweep and acceptance to run (default: lab 02, or lab 03 when only lab-03 paths are "
                     "given, or the labs --sweep-json holds)")
    d3 = Lab03Params()
    g3 = parser.getgroup("miniserve lab 03", "lab-03 continuous-batching sweep (defaults are the lab's)")
    g3.addoption("--lab03-concurrency", type=int, default=d3.concurrency, help="closed loop: concurrent clients")
    g3.addoption("--lab03-total", type=int, default=d3.total, help="closed loop: requests per run")
    g3.addoption("--lab03-runs", type=int, default=d3.runs, help="runs per configuration (closed and open loop)")
    g3.addoption("--lab03-configs", default=d3.configs,
                 help="'baseline', static MAX_BATCH:MAX_WAIT_MS and continuous cont:MAX_RUNNING, comma-separated")
    g3.addoption("--lab03-open-loop-duration", type=float, default=d3.open_loop_duration_s,
                 help="open loop: seconds per run at the reported loads")
    g3.addoption("--lab03-judged-duration", type=float, default=d3.judged_duration_s,
                 help="open loop: seconds per run at the judged load (the first of --lab03-open-loop-loads)")
    g3.addoption("--lab03-open-loop-loads", default=",".join(f"{f:g}" for f in d3.open_loop_loads),
                 help="open-loop rates as fractions of the best static configuration's closed-loop throughput, "
                      "comma-separated; the p95 criterion is judged at the first")
    g3.addoption("--lab03-payloads", default=d3.payloads, help="payload file (relative to the repository root)")
    g3.addoption("--lab03-sample-interval", type=float, default=d3.sample_interval_s,
                 help="seconds between /metrics samples during the sampled run")
    g3.addoption("--lab03-calibration-total", type=int, default=d3.calibration_total,
                 help="load-generator calibration requests on POST /noop")
    g3.addoption("--lab03-experiment-dir", default=None, help="lab-03 experiment folder (default: experiments/"
                 "<date>-phase-33-lab-03, -quick when the parameters are not the lab's)")


def pytest_configure(config: pytest.Config) -> None:
    try:
        params = SweepParams(
            concurrency=config.getoption("sweep_concurrency"), total=config.getoption("sweep_total"),
            runs=config.getoption("sweep_runs"), configs=config.getoption("sweep_configs"),
            open_loop_duration_s=config.getoption("open_loop_duration"),
            open_loop_loads=parse_loads(config.getoption("open_loop_loads")),
            calibration_total=config.getoption("calibration_total"), payloads=config.getoption("sweep_payloads"))
        lab03 = Lab03Params(
            concurrency=config.getoption("lab03_concurrency"), total=config.getoption("lab03_total"),
            runs=config.getoption("lab03_runs"), configs=config.getoption("lab03_configs"),
            open_loop_duration_s=config.getoption("lab03_open_loop_duration"),
            judged_duration_s=config.getoption("lab03_judged_duration"),
            open_loop_loads=parse_loads(config.getoption("lab03_open_loop_loads")),
            payloads=config.getoption("lab03_payloads"), sample_interval_s=config.getoption("lab03_sample_interval"),
            calibration_total=config.getoption("lab03_calibration_total"))
    except ValueError as e:
        raise pytest.UsageError(f"sweep options: {e}") from None
    store = SweepStore(params, lab03=lab03)
    config.stash[SWEEP_STORE] = store
    atexit.register(kill_leftover_servers, store)  # last resort if the session dies without teardown


def item_lab(item: pytest.Item, root: Path) -> str | None:
    """The lab a sweep or acceptance item belongs to (lab 03's modules have 'lab03' in their name); None outside
    bench/ and test_acceptance/ (unit tests belong to no lab and are never deselected)."""
    if not any(root / d in item.path.parents for d in LAB_DIRS):
        return None
    return LAB_03 if "lab03" in item.path.name else LAB_02


def selected_labs(config: pytest.Config, items: list[pytest.Item]) -> set[str]:
    chosen = config.getoption("lab")
    if chosen:
        return set(LABS) if chosen == "all" else {chosen}
    bench = config.rootpath / "bench"
    measured = {item_lab(i, config.rootpath) for i in items if bench in i.path.parents}
    if measured:  # lab 02 alone unless asked: `pytest bench test_acceptance` is what it always was
        return {LAB_02} if LAB_02 in measured else measured - {None}
    path = config.getoption("sweep_json")
    if path:  # acceptance of a saved run: the labs it holds
        from miniserve.lab.benchmark_doc import labs_in

        try:
            return set(labs_in(json.loads(Path(path).read_text(encoding="utf-8")))) or {LAB_02}
        except (OSError, ValueError, AttributeError):
            return {LAB_02}  # the acceptance tests then say what is wrong with the file
    return {LAB_02}


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    labs = selected_labs(config, items)
    deselected = [i for i in items if item_lab(i, root) not in (None, *labs)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [i for i in items if item_lab(i, root) in (None, *labs)]
    # Acceptance judges what the sweep measured, so it runs after every benchmark whatever the order of the paths
    # on the command line, and lab 02 before lab 03 (stable sort: each group keeps its own order).
    acceptance = root / ACCEPTANCE_DIR
    items.sort(key=lambda item: (acceptance in item.path.parents, item_lab(item, root) or ""))


@pytest.fixture(scope="session")
def sweep_store(request: pytest.FixtureRequest) -> SweepStore:
    return request.config.stash[SWEEP_STORE]


@pytest.fixture(scope="session")
def progress(request: pytest.FixtureRequest):
    """print(...) that reaches the terminal while pytest captures output, so a long sweep shows where it is."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")

    def say(text: str) -> None:
        # with fd capture, even the terminal reporter's stdout is redirected while a test runs: suspend it
        if capture is not None:
            with capture.global_and_fixture_disabled():
                _write(text)
        else:
            _write(text)

    def _write(text: str) -> None:
        if reporter is not None:
            reporter.write_line(text)
        else:
            print(text, flush=True)

    return say


def kill_leftover_servers(store: SweepStore, grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, every server process group a fixture did not get to stop."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in list(store.server_pids):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                store.server_pids.discard(pid)
        deadline = time.monotonic() + grace_s
        while store.server_pids and time.monotonic() < deadline:
            for pid in list(store.server_pids):
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        store.server_pids.discard(pid)
                except ChildProcessError:
                    store.server_pids.discard(pid)
            time.sleep(0.05)


def weights_dir() -> Path:
    """The checkpoint the servers load: MINISERVE_WEIGHTS_DIR (they inherit the env) or the shipped one."""
    import miniserve

    return Path(os.environ.get("MINISERVE_WEIGHTS_DIR") or Path(miniserve.__file__).parent / "tutor" / "weights")


def model_sha256() -> str | None:
    """The checkpoint's hash, as training wrote it into model.json."""
    meta = weights_dir() / "model.json"
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("model_sha256")
    except (OSError, ValueError):
        return None


def environment_info() -> dict[str, Any]:
    """What the sweep ran on, recorded at sweep time (the report may be regenerated elsewhere, later)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": platform.python_version(), "torch": versions["torch"], "packages": versions,
            "cpu_count": os.cpu_count(), "cpu_affinity": len(os.sched_getaffinity(0)),
            "model_sha256": model_sha256(), "weights_dir": str(weights_dir())}


def workload_info(root: Path, payloads: str) -> dict[str, Any]:
    """What a lab sent: the payload file, its hash and its length classes (the report's manifest names them)."""
    from miniserve.lab.workloads import WorkloadError, load_workload

    path = root / payloads
    try:
        w = load_workload(path)
        return {"file": payloads, "name": w.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "payloads": len(w.payloads), "counts": w.counts()}
    except (OSError, WorkloadError) as e:
        return {"file": payloads, "error": str(e)}


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    info = environment_info()
    store = config.stash[SWEEP_STORE]
    labs = store.labs()
    if LAB_02 in labs:
        info["sweep"] = store.params.to_dict()
        info["lab02_workload"] = workload_info(config.rootpath, store.params.payloads)
    if LAB_03 in labs:
        info["lab03"] = store.lab03.to_dict()
        info["lab03_workload"] = workload_info(config.rootpath, store.lab03.payloads)
    machine_info["miniserve"] = info


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list, output_json: dict[str, Any]) -> None:
    store = config.stash[SWEEP_STORE]
    if store.records and store.benchmark_json is None:  # the --benchmark-json document (called first, with data)
        store.benchmark_json = output_json


def _session_json(config: pytest.Config, store: SweepStore) -> dict[str, Any]:
    """Without --benchmark-json: the same document pytest-benchmark would have written, from the store."""
    machine_info = config.hook.pytest_benchmark_generate_machine_info(config=config)
    config.hook.pytest_benchmark_update_machine_info(config=config, machine_info=machine_info)
    commit_info = config.hook.pytest_benchmark_generate_commit_info(config=config)
    config.hook.pytest_benchmark_update_commit_info(config=config, commit_info=commit_info)
    return {"machine_info": machine_info, "commit_info": commit_info, "benchmarks": list(store.records),
            "datetime": datetime.now(timezone.utc).isoformat(), "version": metadata.version("pytest-benchmark")}


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # pytest-benchmark's own sessionfinish (a wrapper) has saved the JSON by now.
    config = session.config
    store = config.stash.get(SWEEP_STORE, None)
    if store is None:
        return
    kill_leftover_servers(store)
    if not store.records or config.getoption("no_experiment") or store.experiment_dirs or store.experiment_errors:
        return
    from miniserve.lab.report import write_lab_experiment
    from miniserve.lab.benchmark_doc import split_by_lab

    try:
        docs = split_by_lab(store.benchmark_json or _session_json(config, store))
    except Exception as e:  # noqa: BLE001 - a failed report must not hide the test results; it is shown below
        store.experiment_errors[LAB_02] = f"{type(e).__name__}: {e}"
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    for lab, doc in docs.items():  # one folder per lab; one lab's failure does not stop the other's
        try:
            target = config.getoption("experiment_dir" if lab == LAB_02 else "lab03_experiment_dir")
            store.experiment_dirs[lab] = write_lab_experiment(lab, doc, target, config.rootpath / "experiments")
        except Exception as e:  # noqa: BLE001
            store.experiment_errors[lab] = f"{type(e).__name__}: {e}"
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    store = config.stash.get(SWEEP_STORE, None)
    if store is None:
        return
    for lab in LABS:
        if lab in store.experiment_errors:
            terminalreporter.write_sep("=", f"lab-{lab} experiment report FAILED", red=True)
            terminalreporter.write_line(store.experiment_errors[lab])
        elif lab in store.experiment_dirs:
            terminalreporter.write_sep("=", f"lab-{lab} experiment")
            from miniserve.lab.report import lab_summary_lines

            folder = store.experiment_dirs[lab]
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            terminalreporter.write_line(f"written to {folder}")
            for line in lab_summary_lines(lab, manifest):
                terminalreporter.write_line(line)
