"""Start-up: one log line that says what the server is (mode, batching/admission settings, address, checkpoint),
visible under `miniserve serve` and plain `uvicorn miniserve.server.app:app`; and a lifespan that runs twice."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests._service_fakes import FakeAgent, config, needs_model, serving

import miniserve
from miniserve.server.app import create_app
from miniserve.server.serve import uvicorn_config
from miniserve.server.service import describe_weights, startup_line

REPO = Path(miniserve.__file__).parent.parent


def _startup_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("miniserve ready:")]


async def test_static_line_names_the_batching_settings(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="miniserve")
    cfg = config(tmp_path, mode="static", workers=1, max_batch=4, max_wait_ms=7.5, max_queue=16, request_timeout_s=9)
    async with serving(cfg, FakeAgent()):
        pass
    [line] = _startup_lines(caplog)
    assert line.startswith("miniserve ready: mode=static workers=1 max_batch=4 max_wait_ms=7.5 max_queue=16 "
                           "torch_threads=1 request_timeout_s=9 listen=(see the ASGI server's log) agent=")
    assert "max_inflight" not in line


async def test_unbatched_line_names_its_admission_bound_and_the_address(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="miniserve")
    app = create_app(config(tmp_path, mode="unbatched", max_inflight=7), agent_factory=lambda _c: FakeAgent(),
                     listen="127.0.0.1:8123")
    async with app.router.lifespan_context(app):
        pass
    [line] = _startup_lines(caplog)
    assert "mode=unbatched workers=2 max_inflight=7 " in line and "listen=127.0.0.1:8123 " in line
    assert "max_batch" not in line and "max_queue" not in line


def test_serve_tells_the_app_its_address(tmp_path):
    assert uvicorn_config(config(tmp_path), "127.0.0.1", 8123).app.state.service.listen == "127.0.0.1:8123"
    assert uvicorn_config(config(tmp_path), "::1", 8123).app.state.service.listen == "[::1]:8123"


def test_weights_are_named_with_a_short_hash(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"not really weights")
    digest = hashlib.sha256(b"not really weights").hexdigest()[:12]
    assert describe_weights(config(tmp_path, weights_dir=str(tmp_path))) == f"weights={tmp_path} sha256={digest}"
    missing = tmp_path / "nothing"
    assert describe_weights(config(tmp_path, weights_dir=str(missing))).startswith(f"weights={missing} (unreadable")
    line = startup_line(config(tmp_path), None, "weights=w sha256=abc", 1.234)
    assert line.endswith("weights=w sha256=abc agent_load_s=1.23")


def _lifespan_in_a_fresh_interpreter(tmp_path: Path, setup: str) -> str:
    code = ("import asyncio, uvicorn\n"
            "from tests._service_fakes import FakeAgent\n"
            "from miniserve.server.app import create_app\n"
            "from miniserve.server.config import ServerConfig\n"
            f"app = create_app(ServerConfig(mode='static', db_path={str(tmp_path / 'l.sqlite3')!r}), "
            "agent_factory=lambda _c: FakeAgent())\n"
            f"{setup}\n"
            "async def main():\n"
            "    async with app.router.lifespan_context(app):\n"
            "        pass\n"
            "asyncio.run(main())\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stderr


@pytest.mark.parametrize(("setup", "shown"), [
    ("uvicorn.Config(app)", True),  # uvicorn's logging, as `uvicorn app:app` sets it up: INFO
    ("uvicorn.Config(app, log_level='warning')", False),  # --log-level warning hides it, like uvicorn's own INFO
    ("", True),  # nothing configured logging at all
])
def test_line_is_visible_under_uvicorn_logging(tmp_path, setup, shown):
    stderr = _lifespan_in_a_fresh_interpreter(tmp_path, setup)
    line = "miniserve ready: mode=static workers=2 max_batch=8 max_wait_ms=20 max_queue=256"
    assert (line in stderr) is shown, stderr
    if shown and setup:
        assert f"INFO:     {line}" in stderr  # formatted like uvicorn's own lines


async def test_lifespan_can_run_again_after_a_shutdown(tmp_path):
    agent = FakeAgent()
    app = create_app(config(tmp_path), agent_factory=lambda _c: agent)
    for _ in range(2):  # e.g. a test client entered once per test on one module-level app
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                assert (await c.get("/readyz")).status_code == 200
                assert (await c.post("/correct", json={"sentence": "I goed"})).status_code == 200
    assert len(agent.calls) == 2


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_model
@pytest.mark.parametrize("how", ["miniserve serve", "uvicorn app:app"])
def test_real_server_logs_the_line_at_startup(tmp_path, how):
    port = _free_port()
    if how == "miniserve serve":
        cmd = [sys.executable, "-m", "miniserve", "serve", "--mode", "static", "--max-batch", "16", "--port", str(port)]
    else:
        cmd = [sys.executable, "-m", "uvicorn", "miniserve.server.app:app", "--port", str(port)]
    env = {**os.environ, "MINISERVE_DB_PATH": str(tmp_path / "l.sqlite3"), "MINISERVE_MODE": "static",
           "MINISERVE_MAX_BATCH": "16", "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    text = log.read_text()
    lines = [line for line in text.splitlines() if "miniserve ready:" in line]
    assert len(lines) == 1, text
    assert "mode=static workers=2 max_batch=16 max_wait_ms=20 max_queue=256" in lines[0]
    assert " sha256=" in lines[0] and "weights=" in lines[0]
    if how == "miniserve serve":
        assert f"listen=127.0.0.1:{port} " in lines[0]
    assert text.index("miniserve ready:") < text.index("Uvicorn running on")
