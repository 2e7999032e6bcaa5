"""Server fixtures for the sweep: a real `python -m miniserve serve` process per configuration.

Each server gets a free loopback port, its own process group (so stopping it stops everything it started) and a
log file; the fleet waits for /readyz, warms the server up, keeps it for the session's interleaved runs, and always
stops it -- SIGTERM, then SIGKILL after a grace period -- even when a test fails. Whatever is still running at
session end is killed by the top-level conftest. The load itself comes from miniserve.lab.loadgen, run on uvloop like
`miniserve loadtest`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from miniserve.lab import latency, loadgen
from miniserve.server.config import ServerConfig
from miniserve.lab.sweep_params import SweepConfig
from miniserve.lab.workloads import Workload, load_workload

STOP_GRACE_S = 20.0  # idle servers exit at once on SIGTERM; this only bounds a stuck one
# The ServerConfig fields that shape each mode's performance (unbatched: a thread pool; static: `workers` batches
# at once; continuous: one engine loop over max_running KV-cache rows).
SERVER_FIELDS = {"unbatched": ("torch_threads", "workers", "max_inflight", "request_timeout_s"),
                 "static": ("torch_threads", "workers", "max_queue", "request_timeout_s"),
                 "continuous": ("torch_threads", "workers", "max_running", "max_prefill_tokens", "max_queue",
                                "request_timeout_s")}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(slots=True)
class ServerProcess:
    config: SweepConfig
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    info: dict[str, Any]  # the ServerConfig fields the server resolved (torch threads, workers, bounds)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            return f"(no server log: {e})"
        return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"

    def get(self, path: str, timeout_s: float = 5.0) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout_s) as r:  # noqa: S310 - loopback only
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def wait_ready(self, timeout_s: float) -> float:
        started = time.monotonic()
        last = "no answer yet"
        while time.monotonic() - started < timeout_s:
            if not self.alive():
                raise RuntimeError(f"server {self.config.label} exited with code {self.proc.returncode} before "
                                   f"it was ready")
            try:
                status, body = self.get("/readyz", timeout_s=2.0)
                if status == 200:
                    return time.monotonic() - started
                last = f"/readyz {status}: {body.strip()}"
            except (OSError, urllib.error.URLError) as e:
                last = f"/readyz: {e}"
            time.sleep(0.2)
        raise RuntimeError(f"server {self.config.label} not ready after {timeout_s:g} s (last: {last})")

    def stop(self) -> int | None:
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(STOP_GRACE_S)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    def closed_loop(self, concurrency: int, total: int, payloads: list[dict]) -> list[latency.RequestRecord]:
        return loadgen.run_async(loadgen.run_closed_loop(self.url, concurrency, total, payloads=payloads))

    def open_loop(self, rate_rps: float, duration_s: float, seed: int,
                  payloads: list[dict]) -> list[latency.RequestRecord]:
        return loadgen.run_async(loadgen.run_open_loop(self.url, rate_rps, duration_s, seed=seed, payloads=payloads))

    def open_loop_sampled(self, rate_rps: float, duration_s: float, seed: int, payloads: list[dict],
                          gauges: tuple[str, ...], interval_s: float) -> tuple[list[latency.RequestRecord], dict]:
        """The open loop while the server's `gauges` are read from /metrics every interval_s (lab 03)."""
        run = loadgen.run_open_loop(self.url, rate_rps, duration_s, seed=seed, payloads=payloads)
        return loadgen.run_async(loadgen.with_gauge_samples(run, self.url, gauges, interval_s))

    def calibrate(self, concurrency: int, total: int) -> latency.Summary:
        return loadgen.run_async(loadgen.calibrate(self.url, concurrency, total))


def start_server(config: SweepConfig, log_dir: Path, extra_env: dict[str, str] | None = None,
                 name: str | None = None) -> ServerProcess:
    port = free_port()
    name = name or config.key
    log_path = log_dir / f"{name}.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", MINISERVE_DATA_DIR=str(log_dir / "data"),
               MINISERVE_DB_PATH=str(log_dir / f"{name}.sqlite3"), **(extra_env or {}))
    # What the server will resolve from the same env + flags (torch threads and workers default per mode).
    resolved = ServerConfig.from_env(env, mode=config.mode, max_batch=config.max_batch,
                                     max_wait_ms=config.max_wait_ms, max_running=config.max_running,
                                     max_prefill_tokens=config.max_prefill_tokens)
    cmd = [sys.executable, "-m", "miniserve", "serve", *config.server_args(), "--port", str(port)]
    with log_path.open("wb") as log:
        log.write(f"$ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)  # own process group: killpg reaches all of it
    return ServerProcess(config, port, proc, log_path, {f: getattr(resolved, f) for f in SERVER_FIELDS[config.mode]})


@pytest.fixture(scope="session")
def launch_server():
    """start_server, for benchmarks that start servers of their own (bench/test_server_tuning.py)."""
    return start_server


@pytest.fixture(scope="session")
def payloads(request: pytest.FixtureRequest, sweep_store: Any) -> list[dict]:
    """Lab 02's payloads (--sweep-payloads: the frozen bench/payloads/lab02.json, or learner.json), sent in order."""
    return load_workload(request.config.rootpath / sweep_store.params.payloads).bodies


@pytest.fixture(scope="session")
def server_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


class Fleet:
    """One live server per configuration, all up at once, so the sweep can interleave their runs (run 1 of every
    configuration, then run 2, ...): a slow minute on a shared machine then lands on every configuration's run of
    that round instead of on all runs of one configuration, and the ratios the criteria take stay side by side.
    A server starts (and is warmed up) the first time a test asks for it; a failed start fails that
    configuration's tests with the server log, not the others'."""

    def __init__(self, params: Any, log_dir: Path, payloads: list[dict], progress: Any, ready_timeout_s: float,
                 pids: set[int]) -> None:
        self.params, self.log_dir, self.payloads, self.progress = params, log_dir, payloads, progress
        self.ready_timeout_s, self.pids = ready_timeout_s, pids
        self.servers: dict[str, ServerProcess] = {}
        self.failed: dict[str, str] = {}

    def get(self, key: str) -> ServerProcess:
        if key in self.failed:
            pytest.fail(self.failed[key], pytrace=False)
        srv = self.servers.get(key)
        if srv is not None:
            if not srv.alive():
                self._fail(key, f"{srv.config.label}: the server has exited (code {srv.proc.returncode})", srv)
            return srv
        config = next(c for c in self.params.config_list if c.key == key)
        srv = self.start(config)
        self.servers[key] = srv
        self.pids.add(srv.proc.pid)
        try:
            ready_s = srv.wait_ready(self.ready_timeout_s)
        except RuntimeError as e:
            self._fail(key, str(e), srv)
        warmup = max(2 * config.rows + 20, self.params.concurrency)
        records = srv.closed_loop(min(self.params.concurrency, warmup), warmup, self.payloads)
        if not srv.alive():
            self._fail(key, f"{config.label}: the server died during the warm-up (exit {srv.proc.returncode})", srv)
        # A slow or erroring warm-up is not a reason to skip the measurement: the runs record the same trouble
        # as data (status counts), which the acceptance criteria then report with numbers.
        statuses = latency.summarize(records).to_dict()["by_status"]
        srv.info["warmup"] = {"requests": warmup, "by_status": statuses}
        info = ", ".join(f"{k} {v}" for k, v in srv.info.items() if k != "warmup")
        ok = "ok" if statuses == {"200": warmup} else f"NOT all 200: {statuses}"
        self.progress(f"[{key}] server up on port {srv.port} (pid {srv.proc.pid}) in {ready_s:.1f} s; {info}; "
                      f"warm-up {warmup} requests {ok}; log {srv.log_path}")
        return srv

    def start(self, config: SweepConfig) -> ServerProcess:
        """Start (not yet ready) the server of one configuration; tests of the sweep's own code replace it."""
        return start_server(config, self.log_dir)

    def _fail(self, key: str, problem: str, srv: ServerProcess) -> None:
        self.failed[key] = f"{problem}\n--- server log {srv.log_path} ---\n{srv.log_tail()}"
        self._stop(key)
        pytest.fail(self.failed[key], pytrace=False)

    def _stop(self, key: str) -> None:
        srv = self.servers.pop(key, None)
        if srv is not None:
            code = srv.stop()
            self.pids.discard(srv.proc.pid)
            self.progress(f"[{key}] server stopped (exit code {code})")

    def stop_all(self) -> None:
        for key in list(self.servers):
            self._stop(key)


# Module scope: the servers stop once test_sweep.py's runs are done, so a session of both labs never keeps lab 02's
# fleet idling beside lab 03's.
@pytest.fixture(scope="module")
def fleet(request: pytest.FixtureRequest, sweep_store: Any, progress: Any, payloads: list[dict],
          server_log_dir: Path) -> Iterator[Fleet]:
    f = Fleet(sweep_store.params, server_log_dir, payloads, progress,
              request.config.getoption("server_ready_timeout"), sweep_store.server_pids)
    try:
        yield f
    finally:
        f.stop_all()


@pytest.fixture
def server(fleet: Fleet, config_key: str) -> ServerProcess:
    """The live server of the test's configuration (bench/test_sweep.py parametrizes `config_key`)."""
    return fleet.get(config_key)


@pytest.fixture(scope="module")
def lab03_workload(request: pytest.FixtureRequest, sweep_store: Any) -> Workload:
    """Lab 03's payloads (--lab03-payloads): sent in order and cycled, each with its length class."""
    return load_workload(request.config.rootpath / sweep_store.lab03.payloads)


@pytest.fixture(scope="module")
def lab03_fleet(request: pytest.FixtureRequest, sweep_store: Any, progress: Any, lab03_workload: Workload,
                server_log_dir: Path) -> Iterator[Fleet]:
    """Lab 03's servers (bench/test_lab03_sweep.py), warmed up with its own payloads, stopped when its runs are done;
    logs and learner databases in their own folder (the keys 'baseline', 'static-8-20' are lab 02's too)."""
    log_dir = server_log_dir / "lab03"
    log_dir.mkdir(exist_ok=True)
    f = Fleet(sweep_store.lab03, log_dir, lab03_workload.bodies, progress,
              request.config.getoption("server_ready_timeout"), sweep_store.server_pids)
    try:
        yield f
    finally:
        f.stop_all()


@pytest.fixture
def lab03_server(lab03_fleet: Fleet, lab03_key: str) -> ServerProcess:
    """The live server of the lab-03 test's configuration (bench/test_lab03_sweep.py parametrizes `lab03_key`)."""
    return lab03_fleet.get(lab03_key)


@pytest.fixture
def calibrate(benchmark: Any, sweep_store: Any, progress: Any, request: pytest.FixtureRequest) -> Any:
    """calibrate(server, group, concurrency, total, tag, **marks): the load generator's own ceiling on POST /noop (no
    model), same client and loop as the sweep, as one benchmark whose extra_info (with `marks`, e.g. lab="03") the
    session store keeps; fails unless every request got 200."""

    def run(server: ServerProcess, group: str, concurrency: int, total: int, tag: str, **marks: Any) -> None:
        result: list[latency.Summary] = []
        benchmark.group = group
        benchmark.pedantic(lambda: result.append(server.calibrate(concurrency, total)), rounds=1, iterations=1)
        s = result[0].run_fields()
        benchmark.extra_info.update(**marks, kind="calibration", client="aiohttp", endpoint="POST /noop",
                                    concurrency=concurrency, **s)
        sweep_store.add(request.node.name, benchmark.extra_info)
        progress(f"{tag} load generator on POST /noop: {s['throughput_rps']:.0f} req/s at concurrency {concurrency}, "
                 f"{s['requests']} requests, p95 {s['p95_ms']:.1f} ms, status {s['by_status']}")
        assert s["by_status"].get("200") == total, f"calibration requests failed: {s['by_status']}"

    return run


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    funcargs = getattr(item, "funcargs", {})
    srv = funcargs.get("server") or funcargs.get("lab03_server")
    if report.failed and isinstance(srv, ServerProcess):
        report.sections.append((f"server log ({srv.config.key}, {srv.log_path})", srv.log_tail()))
    return report
