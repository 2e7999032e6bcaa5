"""A real `python -m miniserve serve` process on a free loopback port: driven by the load generator, and shut down
with SIGTERM while requests are still queued. Needs the shipped checkpoint (the server loads it in its lifespan)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tests._service_fakes import needs_model

import miniserve
from miniserve.lab.loadgen import default_payloads, run_closed_loop

REPO = Path(miniserve.__file__).parent.parent
pytestmark = needs_model  # the server subprocess inherits MINISERVE_WEIGHTS_DIR when it is set
START_TIMEOUT_S = 60.0  # torch import + checkpoint load on a busy 2-core machine
EXIT_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(tmp_path: Path, *flags: str) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    log = open(tmp_path / "server.log", "w+b")
    env = {**os.environ, "MINISERVE_DB_PATH": str(tmp_path / "learners.sqlite3"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "miniserve", "serve", "--port", str(port), *flags],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode} at startup:\n{server_log(log)}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready within {START_TIMEOUT_S} s:\n{server_log(log)}")
            time.sleep(0.2)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def server_log(log) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-4000:]


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=EXIT_TIMEOUT_S)


@pytest.mark.parametrize("mode", ["unbatched", "static"])
async def test_load_generator_gets_all_200_from_a_real_server(tmp_path, mode):
    with server(tmp_path, "--mode", mode, "--max-batch", "8", "--max-wait-ms", "20") as (base, proc):
        records = await run_closed_loop(base, concurrency=8, total=48, timeout_s=30, payloads=default_payloads())
        assert len(records) == 48
        assert sorted({r.status for r in records}) == [200]
        metrics = httpx.get(f"{base}/metrics").text
        assert 'miniserve_requests_total{route="/correct",status="200"} 48.0' in metrics
        assert stop(proc) == 0


async def test_sigterm_while_requests_are_queued_answers_every_one_and_exits_0(tmp_path):
    # max_batch above the request count and a long max_wait: all of them wait in the scheduler when SIGTERM arrives
    # (with a batch that fills, the first batches could finish before the last request is even accepted).
    flags = ("--mode", "static", "--max-batch", "16", "--max-wait-ms", "3000", "--max-queue", "64")
    with server(tmp_path, *flags) as (base, proc):
        sentences = [p["sentence"] for p in default_payloads()[:10]]
        async with httpx.AsyncClient(base_url=base, timeout=EXIT_TIMEOUT_S) as client:
            calls = [asyncio.create_task(client.post("/correct", json={"sentence": s})) for s in sentences]
            await asyncio.wait_for(wait_queued(client, at_least=len(sentences), inflight=len(sentences)), 20)
            proc.send_signal(signal.SIGTERM)
            answers = await asyncio.wait_for(asyncio.gather(*calls), EXIT_TIMEOUT_S)  # none hangs
        for r in answers:
            assert r.status_code in (200, 503), r.text
            if r.status_code == 503:  # clean refusal, never a dropped connection
                assert r.json()["error"]["type"] == "shutting_down"
            else:
                assert r.json()["corrected"]
        assert sum(r.status_code == 200 for r in answers) >= 1
        assert await asyncio.to_thread(proc.wait, EXIT_TIMEOUT_S) == 0
        log = server_log(open(tmp_path / "server.log", "rb"))
        assert "Traceback" not in log


async def wait_queued(client: httpx.AsyncClient, at_least: int, inflight: int) -> None:
    """Until /metrics shows `inflight` requests accepted and at least `at_least` of them waiting for a batch."""
    while True:
        text = (await client.get("/metrics")).text
        values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
                  if line.startswith(("miniserve_queue_depth ", "miniserve_inflight "))}
        if values.get("miniserve_queue_depth", 0) >= at_least and values.get("miniserve_inflight", 0) >= inflight:
            return
        await asyncio.sleep(0.05)
