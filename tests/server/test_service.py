"""Service behaviour under pressure, in-process: admission bounds, deadlines, client disconnects, shutdown draining.

A gated FakeAgent holds model calls until the test releases them, so "running", "queued" and "rejected" are
states the test sets up exactly, not timing guesses.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading

import pytest
from tests._service_fakes import FakeAgent, client_for, config, error_of, serving, wait_entered, wait_until

from miniserve.server.app import create_app
from miniserve.server.config import DEFAULT_TORCH_THREADS

BODY = {"sentence": "I goed home."}


@pytest.mark.parametrize(("mode", "bounds"), [("unbatched", {"workers": 1, "max_inflight": 2}),
                                              ("static", {"workers": 1, "max_batch": 1, "max_wait_ms": 0,
                                                          "max_queue": 1})])
async def test_over_the_admission_bound_is_503_with_retry_after(tmp_path, mode, bounds):
    gate = threading.Event()
    agent = FakeAgent(gate=gate)
    async with serving(config(tmp_path, mode=mode, retry_after_s=2, **bounds), agent) as (c, app):
        try:
            accepted = [asyncio.create_task(c.post("/correct", json=BODY))]
            await wait_entered(agent)  # one running ...
            accepted.append(asyncio.create_task(c.post("/correct", json=BODY)))
            await wait_until(lambda: app.state.service.runner.depth == 1)  # ... one waiting: the bound is full
            r = await c.post("/correct", json=BODY)
            assert r.status_code == 503
            assert r.headers["retry-after"] == "2"
            err = error_of(r)
            assert err["type"] == "overloaded" and "retry later" in err["message"]
        finally:
            gate.set()
        assert [r.status_code for r in await asyncio.gather(*accepted)] == [200, 200]
        assert (await c.post("/correct", json=BODY)).status_code == 200  # capacity is back


@pytest.mark.parametrize("mode", ["unbatched", "static"])
async def test_past_the_deadline_is_504_and_queued_work_is_dropped(tmp_path, mode):
    gate = threading.Event()
    agent = FakeAgent(gate=gate)
    cfg = config(tmp_path, mode=mode, workers=1, max_batch=1, max_wait_ms=0, request_timeout_s=0.3)
    async with serving(cfg, agent) as (c, _):
        try:
            running = asyncio.create_task(c.post("/correct", json={"sentence": "first"}))
            await wait_entered(agent)
            queued = await c.post("/correct", json={"sentence": "second"})  # waits behind the gated call
            assert queued.status_code == 504
            assert error_of(queued)["type"] == "deadline_exceeded"
            late = await running  # the running call is still gated: its answer would be late too
            assert late.status_code == 504
            assert "within request_timeout_s=0.3 s" in error_of(late)["message"]
        finally:
            gate.set()
        assert (await c.post("/correct", json=BODY)).status_code == 200
    assert "second" not in agent.sentences_run  # dropped before it ran: nobody was waiting for it


def http_scope(body: bytes) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/correct", "raw_path": b"/correct", "query_string": b"", "root_path": "",
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}


async def call_then_disconnect(app, body: bytes, leave: asyncio.Event) -> list[dict]:
    """Raw ASGI call whose client sends the body, then goes away when `leave` is set (what uvicorn reports)."""
    sent = False
    messages: list[dict] = []

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        messages.append(message)

    await app(http_scope(body), receive, send)
    return messages


@pytest.mark.parametrize("mode", ["unbatched", "static"])
async def test_client_that_leaves_is_cancelled_before_its_model_call(tmp_path, mode):
    gate = threading.Event()
    agent = FakeAgent(gate=gate)
    cfg = config(tmp_path, mode=mode, workers=1, max_batch=1, max_wait_ms=0)
    async with serving(cfg, agent) as (c, app):
        runner = app.state.service.runner
        try:
            running = asyncio.create_task(c.post("/correct", json={"sentence": "stays"}))
            await wait_entered(agent)
            leave = asyncio.Event()
            gone = asyncio.create_task(call_then_disconnect(app, json.dumps({"sentence": "leaves"}).encode(), leave))
            await wait_until(lambda: runner.depth == 1)
            leave.set()
            await asyncio.wait_for(gone, 5)  # the handler returns while the model is still busy
            assert gone.result()[0]["status"] == 499
            await wait_until(lambda: runner.depth == 0)  # its queue slot is free again
        finally:
            gate.set()
        assert (await running).status_code == 200
        metrics = (await c.get("/metrics")).text
    assert "leaves" not in agent.sentences_run
    assert 'miniserve_requests_total{route="/correct",status="499"} 1.0' in metrics


async def test_shutdown_answers_queued_and_running_work_and_refuses_new(tmp_path):
    gate = threading.Event()
    agent = FakeAgent(gate=gate)
    # max_wait is long: only draining (or a full batch) can close the batch holding the third request
    app = create_app(config(tmp_path, mode="static", max_batch=2, max_wait_ms=60_000, max_queue=8),
                     agent_factory=lambda _c: agent)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    try:
        async with client_for(app) as c:
            calls = [asyncio.create_task(c.post("/correct", json={"sentence": f"I goed {i}"})) for i in range(3)]
            await wait_entered(agent)
            await wait_until(lambda: app.state.service.runner.depth == 1)
            stopping = asyncio.create_task(lifespan.__aexit__(None, None, None))
            await wait_until(lambda: app.state.service.stopping)
            refused = await c.post("/correct", json=BODY)
            assert refused.status_code == 503 and error_of(refused)["type"] == "shutting_down"
            assert (await c.get("/readyz")).json()["reason"] == "shutting down"
            gate.set()
            answers = await asyncio.wait_for(asyncio.gather(*calls), 5)
            await asyncio.wait_for(stopping, 5)
    finally:
        gate.set()
    assert [r.json()["corrected"] for r in answers] == [f"I went {i}" for i in range(3)]
    assert [len(call) for call in agent.calls] == [2, 1]


async def test_lifespan_sets_torch_threads_from_config(tmp_path):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        async with serving(config(tmp_path, mode="static"), FakeAgent()) as (_, app):
            assert app.state.service.config.torch_threads == DEFAULT_TORCH_THREADS["static"]
            assert torch.get_num_threads() == DEFAULT_TORCH_THREADS["static"]
        async with serving(config(tmp_path, mode="static", torch_threads=2), FakeAgent()):
            assert torch.get_num_threads() == 2
        async with serving(config(tmp_path, mode="unbatched", torch_threads=1), FakeAgent()):
            assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(("preset", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_torch_threads_never_spin_unless_asked(preset, expected):
    # A fresh process: the policy only counts if it is set before torch is first imported.
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    code = ("import os, sys; from miniserve.server.service import set_torch_threads; assert 'torch' not in sys.modules; "
            "set_torch_threads(2); import torch; print(os.environ['OMP_WAIT_POLICY'], torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [expected, "2"]
