"""The lab-03 sweep's own code (bench/test_lab03_sweep.py and bench/conftest.py's fixtures), run for real against
tiny fake servers: a stdlib HTTP process per configuration that answers /correct after a millisecond or two and
serves Prometheus text with the metric names the real server exposes. No model, no benchmark of anything: this
checks that a session records what the criteria and the report read -- length classes, metric deltas, gauge
samples, rates from the best static configuration -- and ends in a lab-03 folder."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]

FAKE_SERVER = r'''
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, MODE, ROWS = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
lock, state = threading.Lock(), {"inflight": 0, "done": 0, "sum": 0.0, "steps": 0, "tokens": 0}

def metrics():
    with lock:
        s = dict(state)
    lines = ["# TYPE miniserve_queue_depth gauge", "miniserve_queue_depth 0.0",
             "# TYPE miniserve_inflight gauge", f"miniserve_inflight {s['inflight']}.0",
             "# TYPE miniserve_kv_cache_slots_used gauge",
             f"miniserve_kv_cache_slots_used {min(s['inflight'], ROWS) if MODE == 'continuous' else 0}.0"]
    name = "miniserve_batch_rows_per_step" if MODE == "continuous" else "miniserve_batch_size"
    lines += [f"# TYPE {name} histogram", f'{name}_bucket{{le="1.0"}} {s["done"]}.0',
              f'{name}_bucket{{le="+Inf"}} {s["done"]}.0', f"{name}_count {s['done']}.0", f"{name}_sum {s['done']}.0"]
    if MODE == "continuous":
        lines += ["# TYPE miniserve_step_seconds histogram", f'miniserve_step_seconds_bucket{{le="+Inf"}} {s["steps"]}.0',
                  f"miniserve_step_seconds_count {s['steps']}.0", f"miniserve_step_seconds_sum {s['steps'] * 0.001}",
                  "# TYPE miniserve_tokens_total counter", f'miniserve_tokens_total{{kind="prompt"}} {s["tokens"]}.0',
                  f'miniserve_tokens_total{{kind="completion"}} {s["done"]}.0']
    return ("\n".join(lines) + "\n").encode()

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def _send(self, status, body, ctype="application/json"):
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/metrics":
            return self._send(200, metrics(), "text/plain; version=0.0.4")
        return self._send(200, b"{}")
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        if self.path == "/correct":
            assert set(body) <= {"sentence", "learner_id"}, body
            with lock:
                state["inflight"] += 1
            time.sleep(0.001 + 0.0001 * len(body["sentence"].split()))
            with lock:
                state["inflight"] -= 1
                state["done"] += 1
                state["steps"] += 3
                state["tokens"] += len(body["sentence"].split())
        self._send(200, b"{}")
    def log_message(self, *a):
        pass

ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 256  # 50 clients connect at once: the default backlog of 5 drops SYNs
ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
'''

FAKE_START = '''

import subprocess as _sp


class _FakeFleet(Fleet):
    def start(self, config):
        port = free_port()
        mode = config.mode
        proc = _sp.Popen([sys.executable, {script!r}, str(port), mode, str(config.rows)], start_new_session=True,
                         stdout=_sp.DEVNULL, stderr=_sp.DEVNULL)
        log = self.log_dir / f"{{config.key}}.log"
        log.write_text("fake server\\n")
        return ServerProcess(config, port, proc, log, {{"fake": True}})


@pytest.fixture(scope="module")
def lab03_fleet(request, sweep_store, progress, lab03_workload, server_log_dir):
    f = _FakeFleet(sweep_store.lab03, server_log_dir, lab03_workload.bodies, progress, 30.0, sweep_store.server_pids)
    try:
        yield f
    finally:
        f.stop_all()
'''


@pytest.fixture()
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\n")
    (pytester.path / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    bench = pytester.mkdir("bench")
    (bench / "payloads").mkdir()
    shutil.copy(ROOT / "bench" / "payloads" / "lab03.json", bench / "payloads" / "lab03.json")
    script = pytester.path / "fake_server.py"
    script.write_text(FAKE_SERVER)
    (bench / "conftest.py").write_text((ROOT / "bench" / "conftest.py").read_text()
                                       + FAKE_START.format(script=str(script)))
    shutil.copy(ROOT / "bench" / "test_lab03_sweep.py", bench / "test_lab03_sweep.py")
    acceptance = pytester.mkdir("test_acceptance")
    for name in ("conftest.py", "test_lab03.py"):
        shutil.copy(ROOT / "test_acceptance" / name, acceptance / name)
    return pytester


def test_a_small_lab03_session_records_what_the_report_reads(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess(
        "bench", "test_acceptance", "--lab", "03", "--benchmark-json=out.json", "--lab03-experiment-dir=exp",
        "--lab03-configs", "baseline,4:5,cont:4", "--lab03-total", "40", "--lab03-runs", "1",
        "--lab03-open-loop-duration", "0.6", "--lab03-judged-duration", "0.8", "--lab03-open-loop-loads", "0.2,0.1",
        "--lab03-sample-interval", "0.05",
        "--lab03-calibration-total", "100", "-p", "no:cacheprovider", "-p", "no:randomly", timeout=240)
    # 3 closed-loop runs, 2 configs x 2 loads open, 1 calibration; acceptance: 2 + 3 configs. The fake's numbers
    # decide the verdicts, not this test: only that each was computed.
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) + outcomes.get("xfailed", 0) == 8 + 5, \
        result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(["*lab-03 experiment*", "written to *exp"])
    saved = json.loads((project.path / "out.json").read_text())
    infos = [b["extra_info"] for b in saved["benchmarks"]]
    assert all(i["lab"] == "03" for i in infos)
    closed = {i["config"]: i for i in infos if i["kind"] == "closed_loop"}
    assert set(closed) == {"baseline", "static-4-5", "continuous-4"}
    for info in closed.values():
        assert info["runs"][0]["by_status"] == {"200": 40}, info["runs"][0]["by_status"]
    run = closed["continuous-4"]["runs"][0]
    assert set(run["by_class"]) <= {"short", "long"} and sum(p["requests"] for p in run["by_class"].values()) == 40
    assert sum(len(v) for v in run["latencies_ms"].values()) == 40
    assert run["metrics"]["rows_per_step"]["count"] == 40 and run["metrics"]["batch_size"] is None
    assert run["metrics"]["tokens"]["completion"] == 40
    assert closed["static-4-5"]["runs"][0]["metrics"]["batch_size"]["count"] == 40
    opened = [i for i in infos if i["kind"] == "open_loop"]
    assert {(i["config"], i["rate_fraction"]) for i in opened} == {(k, f) for k in ("static-4-5", "continuous-4")
                                                                   for f in (0.2, 0.1)}
    assert {i["best_static"] for i in opened} == {"static-4-5"}
    assert {(i["rate_fraction"], i["duration_s"]) for i in opened} == {(0.2, 0.8), (0.1, 0.6)}  # judged: longer
    rate = closed["static-4-5"]["runs"][0]["throughput_rps"]
    assert all(i["rate_rps"] == pytest.approx(rate * i["rate_fraction"]) for i in opened)
    sampled = [i for i in opened if i["runs"][0].get("samples")]
    assert {i["config"] for i in sampled} == {"static-4-5", "continuous-4"} and {i["rate_fraction"] for i in sampled} \
        == {0.2}  # run 1 at the judged (first) load, every batching configuration
    samples = next(i for i in sampled if i["config"] == "continuous-4")["runs"][0]["samples"]
    assert samples["interval_s"] == 0.05 and len(samples["t_s"]) >= 5
    assert all(v is not None for v in samples["miniserve_kv_cache_slots_used"])
    assert saved["machine_info"]["miniserve"]["lab03"]["configs"] == "baseline,4:5,cont:4"
    assert saved["machine_info"]["miniserve"]["lab03_workload"]["counts"] == {"short": 280, "long": 120}
    manifest = json.loads((project.path / "exp" / "manifest.json").read_text())
    assert manifest["experiment"] == "phase-33-lab-03" and manifest["sweep"]["lab_defaults"] is False
    assert manifest["load_generator"]["requests"] == 100
    assert (project.path / "exp" / "rows_in_use.png").stat().st_size > 10_000
    assert not list(project.path.glob("**/fake_server.py.*"))  # nothing odd left behind
    assert sys.executable  # the fake servers ran on this interpreter
