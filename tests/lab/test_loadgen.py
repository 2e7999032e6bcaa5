"""Load generator: payloads, arrivals, the loopback guard, and closed/open loop against a real uvicorn process.

The server is this module's own `noop_app` (served by `uvicorn --app-dir tests test_loadgen:noop_app`), so these
tests do not depend on the model or on miniserve.server.app.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from miniserve.lab import latency, loadgen
from miniserve.cli import main

# --- the test server (runs in the uvicorn subprocess) ---------------------------------------------------------------

_seen: Counter[str] = Counter()
_stalled: set[str] = set()
_inflight = {"now": 0, "max": 0}


async def _noop(request: Request) -> JSONResponse:
    _seen[(await request.json())["sentence"]] += 1
    _inflight["now"] += 1
    _inflight["max"] = max(_inflight["max"], _inflight["now"])
    await asyncio.sleep(0.001)  # a yield, so overlapping requests can be observed as in flight together
    _inflight["now"] -= 1
    return JSONResponse({"corrected": "He went to school yesterday.", "explanation": "fixed", "was_correct": False})


async def _stall(request: Request) -> JSONResponse:
    # Blocks the whole server's event loop once per key: a server-wide stall, like a long GC pause
    key = request.path_params["key"]
    if key not in _stalled:
        _stalled.add(key)
        time.sleep(float(request.query_params.get("s", "0.5")))
    return JSONResponse({"ok": True})


async def _hang(request: Request) -> JSONResponse:
    await asyncio.sleep(30)
    return JSONResponse({"ok": True})


async def _stats(request: Request) -> JSONResponse:
    body = {"requests": sum(_seen.values()), "distinct": len(_seen), "max_inflight": _inflight["max"]}
    _seen.clear()
    _inflight["max"] = 0
    return JSONResponse(body)


noop_app = Starlette(routes=[
    Route("/noop", _noop, methods=["POST"]), Route("/correct", _noop, methods=["POST"]),
    Route("/stall/{key}", _stall, methods=["POST"]), Route("/hang", _hang, methods=["POST"]),
    Route("/stats", _stats, methods=["GET"]),
])


# --- fixtures ---------------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> str:
    port = _free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(__file__).parent), "test_loadgen:noop_app",
           "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
           "--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "1"]
    proc = subprocess.Popen(cmd, cwd=Path(__file__).parents[2])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, "uvicorn exited during startup"
            try:
                if httpx.get(f"{base}/stats", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "uvicorn did not start within 15 s"
            time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stats(base: str) -> dict:
    return httpx.get(f"{base}/stats", timeout=5).json()


# --- payloads and arrivals ------------------------------------------------------------------------------------------


def test_default_payloads_fixed_and_large_enough() -> None:
    payloads = loadgen.default_payloads()
    assert len(payloads) >= 100 and len({p["sentence"] for p in payloads}) == len(payloads)
    assert payloads == loadgen.default_payloads()
    assert all(1 <= len(p["sentence"]) <= 500 for p in payloads)


def test_poisson_arrivals_seeded_and_at_rate() -> None:
    a = loadgen.poisson_arrivals(1000, 2.0, seed=7)
    assert a == loadgen.poisson_arrivals(1000, 2.0, seed=7) != loadgen.poisson_arrivals(1000, 2.0, seed=8)
    assert 1800 < len(a) < 2200 and a == sorted(a) and 0 < a[0] and a[-1] < 2.0
    with pytest.raises(ValueError, match="exceeds"):
        loadgen.poisson_arrivals(1e6, 10, seed=0)


# --- loopback guard ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://127.9.8.7:1/correct", "http://[::1]:8000",
                                 "http://localhost:8000"])
def test_loopback_accepted(url: str) -> None:
    assert loadgen.check_loopback(url) == url


@pytest.mark.parametrize("url, why", [("http://10.0.0.1:8000", "10.0.0.1"), ("http://8.8.8.8", "8.8.8.8"),
                                      ("http://[2001:db8::1]:80", "2001:db8::1"),
                                      ("http://no-such-host.invalid", "cannot resolve"),
                                      ("ftp://127.0.0.1", "http://"), ("127.0.0.1:8000", "http://")])
def test_non_loopback_refused(url: str, why: str) -> None:
    with pytest.raises(ValueError, match="refus") as e:
        loadgen.check_loopback(url)
    assert why in str(e.value)


async def test_runs_refuse_before_sending() -> None:
    with pytest.raises(ValueError, match="loopback"):
        await loadgen.run_closed_loop("http://192.0.2.1:8000/correct", 1, 1, timeout_s=0.1)
    with pytest.raises(ValueError, match="loopback"):
        await loadgen.run_open_loop("http://192.0.2.1:8000/correct", 10, 0.1, timeout_s=0.1)


def test_cli_refuses_non_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["loadtest", "--url", "http://192.0.2.1:8000", "--total", "1"]) == 2
    assert "loopback" in capsys.readouterr().err


# --- against the real server ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("client", loadgen.CLIENTS)
async def test_closed_loop_exact_count_bounded_concurrency_cycling_payloads(server: str, client: str) -> None:
    _stats(server)
    records = await loadgen.run_closed_loop(server, 8, 240, timeout_s=5, client=client)  # bare URL -> /correct
    stats = _stats(server)
    assert len(records) == 240 and all(r.status == 200 for r in records)
    assert stats["requests"] == 240 and stats["distinct"] == len(loadgen.default_payloads())
    assert 2 <= stats["max_inflight"] <= 8
    assert all(r.scheduled_s == r.sent_s and r.latency_s > 0 for r in records)
    assert latency.summarize(records).throughput_rps > 0


async def test_closed_loop_timeouts_are_status_zero_and_bounded(server: str) -> None:
    t = time.perf_counter()
    records = await loadgen.run_closed_loop(f"{server}/hang", 3, 3, timeout_s=0.3)
    assert time.perf_counter() - t < 3
    assert [r.status for r in records] == [0, 0, 0] and all(0.25 < r.latency_s < 2 for r in records)


async def test_closed_loop_stops_at_max_wall(server: str) -> None:
    records = await loadgen.run_closed_loop(f"{server}/hang", 2, 1000, timeout_s=0.2, max_wall_s=0.5)
    assert 2 <= len(records) <= 10 and all(r.status == 0 for r in records)


async def test_open_loop_sends_the_schedule(server: str) -> None:
    _stats(server)
    records = await loadgen.run_open_loop(f"{server}/noop", 200, 1.0, seed=3, timeout_s=5)
    scheduled = loadgen.poisson_arrivals(200, 1.0, seed=3)
    assert sorted(r.scheduled_s for r in records) == scheduled
    assert all(r.status == 200 for r in records) and _stats(server)["requests"] == len(scheduled)
    assert max(r.sent_s - r.scheduled_s for r in records) < 0.5  # generous: the machine is shared


async def test_open_loop_server_stall_shows_in_latency_of_requests_scheduled_during_it(server: str) -> None:
    # The first request blocks the server for 0.6 s. A closed-loop-style generator would send little during the
    # stall and hide it; here every request scheduled in it carries the wait it would have seen.
    records = await loadgen.run_open_loop(f"{server}/stall/a?s=0.6", 100, 1.2, seed=1, timeout_s=5)
    assert all(r.status == 200 for r in records)
    first = min(r.scheduled_s for r in records)
    during = [r for r in records if r.scheduled_s < first + 0.4]
    assert len(during) >= 15  # ~40 expected: they were sent on schedule, not held back
    for r in during:
        assert r.scheduled_s + r.latency_s >= first + 0.55, r  # completed only after the stall ended
    after = sorted(r.latency_s for r in records if r.scheduled_s > first + 0.9)
    assert after and after[len(after) // 2] < 0.2  # the server recovered; the slow ones are the stall's


async def test_open_loop_latency_counts_from_schedule_when_the_generator_itself_is_late(server: str) -> None:
    # Block the generator's own event loop for 0.4 s: requests due meanwhile are sent late, and that lateness
    # must be in their latency (coordinated omission), not dropped by measuring from the actual send.
    async def freeze() -> None:
        await asyncio.sleep(0.2)
        time.sleep(0.4)

    freezer = asyncio.create_task(freeze())
    records = await loadgen.run_open_loop(f"{server}/noop", 100, 1.0, seed=2, timeout_s=5)
    await freezer
    late = [r for r in records if r.sent_s - r.scheduled_s > 0.1]
    assert len(late) >= 10 and all(r.status == 200 for r in records)
    assert max(r.sent_s - r.scheduled_s for r in late) > 0.3  # the freeze is visible as send lag
    for r in late:  # measured from the actual send, these would be a few ms
        assert r.latency_s >= r.sent_s - r.scheduled_s, r


async def test_open_loop_over_cap_is_counted_not_waited_for(server: str) -> None:
    t = time.perf_counter()
    records = await loadgen.run_open_loop(f"{server}/hang", 100, 0.5, seed=0, timeout_s=0.3, max_outstanding=5)
    assert time.perf_counter() - t < 0.5 + 0.3 + 2  # bounded: duration + timeout + slack
    assert len(records) == len(loadgen.poisson_arrivals(100, 0.5, seed=0)) and {r.status for r in records} == {0}
    not_sent = [r for r in records if r.latency_s < 0.1]
    assert len(not_sent) >= len(records) - 25  # ~5 in flight per 0.3 s; the rest were refused at once


async def test_calibrate_measures_noop(server: str) -> None:
    s = await loadgen.calibrate(f"{server}/correct", concurrency=10, total=300)  # base URL path is replaced
    assert s.count == 300 and s.by_status == {200: 300} and s.throughput_rps > 50


def test_cli_closed_loop_json_and_records(server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "records.jsonl"
    assert main(["loadtest", "--url", server, "--concurrency", "4", "--total", "50", "--json",
                 "--records", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["count"] == 50 and summary["by_status"] == {"200": 50} and summary["p95_ms"] > 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 50 and set(lines[0]) == {"scheduled_s", "sent_s", "latency_s", "status", "payload"}


def test_cli_open_loop_text_and_calibrate(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["loadtest", "--url", server, "--rate", "50", "--duration", "0.5", "--client", "httpx"]) == 0
    assert "open loop: httpx" in capsys.readouterr().out
    assert main(["loadtest", "--url", server, "--calibrate", "--concurrency", "10", "--calibrate-total", "200",
                 "--best-rps", "1"]) == 0
    text = capsys.readouterr().out
    assert "calibration" in text and "throughput" in text and "x 1 req/s" in text
    assert main(["loadtest", "--url", server, "--rate", "5"]) == 2


def test_lab02_payloads_are_the_frozen_single_clause_set() -> None:
    payloads = loadgen.default_payloads()
    assert len(payloads) == 200 and all(set(p) == {"sentence"} for p in payloads)
    # the corpus lab 02's criteria were set on: single clauses of 2-13 words, one error at most
    assert max(len(p["sentence"].split()) for p in payloads) <= 13
    assert payloads[0] == {"sentence": "They will visits the market in two days"}
