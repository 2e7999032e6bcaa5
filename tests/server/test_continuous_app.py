"""Continuous mode in-process (httpx.ASGITransport + the app's lifespan) on the real shipped model.

Each sentence of a request is a row of the real TutorEngine. To set up "running", "queued" and "failed" exactly,
a test wraps the runner's engine (`runner.engine.inner`): a gate holds every decode step until the test opens it,
and a step can be made to raise. Everything else (tokenizer, model, KV cache, scheduler, agent) is the real one.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from typing import Any

import pytest
import torch
from tests._service_fakes import (GATE_TIMEOUT_S, WEIGHTS_DIR, client_for, config, error_of, needs_model, serving,
                                  wait_until)

from miniserve.server.app import create_app
from miniserve.server.batching.errors import DeadlineExceeded, QueueFull
from miniserve.server.errors import classify
from miniserve.server.payload import CorrectRequest

pytestmark = needs_model

SENTENCES = [
    "Yesterday I goed to the store.",
    "She walk to school every day.",
    "I like green tea.",
    "The sky is blue. I walk to school. My sister take the bus.",  # three rows, answered together
    "He have went home.  Tom eated an apple!",
    # a long sentence (too long for the shipped model's context: not given to it) next to a short one
    "My grandmother and my grandfather and all of my many cousins walked slowly along the very long river "
    "yesterday evening after a big dinner. I goed.",
]


def cont(tmp_path: Any, **kw: Any):
    kw.setdefault("weights_dir", WEIGHTS_DIR)
    return config(tmp_path, mode="continuous", **kw)


class WrappedEngine:
    """The real engine behind a gate: `gate` holds each step until set; `fail_steps` steps raise; records what
    each step saw of torch in its thread."""

    def __init__(self, inner: Any, gate: threading.Event | None = None, fail_steps: int = 0) -> None:
        self.inner, self.gate, self.fail_steps = inner, gate, fail_steps
        self.entered = threading.Event()
        self.steps: list[int] = []  # rows per step call
        self.torch_state: set[tuple[bool, bool, int, bool]] = set()

    def prefill(self, items):
        return self.inner.prefill(items)

    def step(self, rows):
        self.steps.append(len(rows))
        self.torch_state.add((torch.is_inference_mode_enabled(), torch.is_grad_enabled(), torch.get_num_threads(),
                              threading.current_thread() is threading.main_thread()))
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(GATE_TIMEOUT_S), "gate never opened"
        if self.fail_steps:
            self.fail_steps -= 1
            raise RuntimeError("injected step fault /secret/path")
        return self.inner.step(rows)

    def release(self, rows):
        self.inner.release(rows)


def wrap(app, **kw: Any) -> WrappedEngine:
    runner = app.state.service.runner
    wrapped = WrappedEngine(runner.engine.inner, **kw)
    runner.engine.inner = wrapped
    return wrapped


async def entered(engine: WrappedEngine) -> None:
    assert await asyncio.to_thread(engine.entered.wait, 5.0), "no decode step started"


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    found = re.search(re.escape(name + (f"{{{want}}}" if want else "")) + r" ([0-9.e+-]+)$", text, re.MULTILINE)
    assert found, f"{name}{{{want}}} not in metrics"
    return float(found.group(1))


def free_rows(app) -> int:
    return app.state.service.runner._tutor.free_rows


async def test_answers_equal_the_unbatched_modes(tmp_path):
    answers = {}
    for mode in ("unbatched", "continuous"):
        cfg = config(tmp_path, mode=mode, weights_dir=WEIGHTS_DIR, max_running=3, max_prefill_tokens=24,
                     db_path=str(tmp_path / f"{mode}.sqlite3"))  # same learner history on both sides
        async with serving(cfg, None) as (c, app):
            # one learner per input: repeat counts must not depend on which concurrent request finished first
            rs = await asyncio.gather(*(c.post("/correct", json={"sentence": s, "learner_id": f"t{i}"})
                                        for i, s in enumerate(SENTENCES)))
            assert [r.status_code for r in rs] == [200] * len(SENTENCES), [r.text for r in rs]
            answers[mode] = [r.json() for r in rs]
            if mode == "continuous":
                assert app.state.service.runner.running == 0 and free_rows(app) == 3
    # 3 rows for 12 sentences: rows joined and left mid-flight, and every answer is still the unbatched one
    assert answers["continuous"] == answers["unbatched"]
    assert answers["continuous"][3]["corrected"] == "The sky is blue. I walk to school. My sister takes the bus."


async def test_input_with_nothing_for_the_model_is_answered_without_a_row(tmp_path):
    async with serving(cont(tmp_path, max_running=2), None) as (c, app):
        engine = wrap(app)
        generator = app.state.service.agent.generator  # this app's own (weights_dir given: not the shared one)
        generator.fits = lambda source: "river" not in source  # as if too long for the model
        r = await c.post("/correct", json={"sentence": "We walked along the river."})
        assert r.status_code == 200
        assert [(k["status"], k["reason"]) for k in r.json()["checks"]] == [("not_checked", "too_long")]
        text = (await c.get("/metrics")).text
    assert engine.steps == [] and metric(text, "miniserve_time_to_first_token_seconds_count") == 0


async def test_full_queue_is_503_with_retry_after_and_readyz_says_so(tmp_path):
    gate = threading.Event()
    async with serving(cont(tmp_path, max_running=1, max_queue=2, retry_after_s=2), None) as (c, app):
        engine = wrap(app, gate=gate)
        runner = app.state.service.runner
        try:
            accepted = [asyncio.create_task(c.post("/correct", json={"sentence": "I goed home."}))]
            await entered(engine)  # one row running ...
            accepted += [asyncio.create_task(c.post("/correct", json={"sentence": s}))
                         for s in ("She walk home.", "I eated it.")]
            await wait_until(lambda: runner.depth == 2)  # ... two sentences waiting: the queue is full
            r = await c.post("/correct", json={"sentence": "He goed."})
            assert r.status_code == 503 and r.headers["retry-after"] == "2"
            assert error_of(r)["type"] == "overloaded"
            ready = await c.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["reason"] == "load 2 at or above high-water mark 1 (of 2)"
            text = (await c.get("/metrics")).text
            assert metric(text, "miniserve_queue_depth") == 2
            assert metric(text, "miniserve_kv_cache_slots_used") == 1
            assert metric(text, "miniserve_inflight") == 3
        finally:
            gate.set()
        assert [r.status_code for r in await asyncio.gather(*accepted)] == [200] * 3
        assert (await c.post("/correct", json={"sentence": "The sky is blue. I goed."})).status_code == 200
        assert (await c.get("/readyz")).status_code == 200


async def test_a_request_that_only_partly_fits_is_refused_whole(tmp_path):
    gate = threading.Event()
    async with serving(cont(tmp_path, max_running=1, max_queue=3), None) as (c, app):
        engine = wrap(app, gate=gate)
        runner = app.state.service.runner
        try:
            blocker = asyncio.create_task(c.post("/correct", json={"sentence": "I goed home."}))
            await entered(engine)
            # Two requests of 2 sentences each, started in the same tick, for 3 places: A's two are queued, B is
            # refused whole (checked and queued with no await between, so B never holds a place).
            a = asyncio.create_task(runner.run(CorrectRequest("I goed. She walk.", None), 10.0))
            b = asyncio.create_task(runner.run(CorrectRequest("He eated. We goed.", None), 10.0))
            with pytest.raises(QueueFull):
                await b
            assert classify(b.exception())[:2] == (503, "overloaded")
            assert runner.depth == 2  # A's two sentences only
            # with the queue at 2 of 3, a 2-sentence request is refused before it submits anything
            r = await c.post("/correct", json={"sentence": "I goed. She walk."})
            assert r.status_code == 503 and error_of(r)["type"] == "overloaded" and r.headers["retry-after"]
            assert runner.depth == 2
            # more sentences than the queue ever holds: retrying cannot help, so 413, not 503
            r = await c.post("/correct", json={"sentence": "I goed. She walk. He eated. We goed."})
            assert r.status_code == 413 and "4 sentences" in error_of(r)["message"] and "retry-after" not in r.headers
            assert runner.depth == 2
        finally:
            gate.set()
        assert (await a).text == "I went. She walks."
        assert (await blocker).status_code == 200
        await wait_until(lambda: runner.running == 0 and free_rows(app) == 1)


async def test_past_the_deadline_is_504_queued_or_running_and_rows_come_back(tmp_path):
    gate = threading.Event()
    async with serving(cont(tmp_path, max_running=2, request_timeout_s=0.3), None) as (c, app):
        engine = wrap(app, gate=gate)
        runner = app.state.service.runner
        try:
            running = asyncio.create_task(runner.run(CorrectRequest("I goed home.", None), 0.5))
            await entered(engine)
            with pytest.raises(DeadlineExceeded, match="while running"):
                await running  # its row passed the deadline mid-step
            assert classify(running.exception()) == (504, "deadline_exceeded",
                                                     "the request was not answered within its deadline")
            late = await c.post("/correct", json={"sentence": "She walk home."})  # queued behind the held step
            assert late.status_code == 504 and error_of(late)["type"] == "deadline_exceeded"
        finally:
            gate.set()
        # the scheduler counts a dropped row free as it hands it to the engine thread, just before its release
        await wait_until(lambda: runner.running == 0 and runner.depth == 0 and free_rows(app) == 2)
        ok = await c.post("/correct", json={"sentence": "She walk home."})
        assert ok.status_code == 200 and ok.json()["corrected"] == "She walks home."


async def test_a_failing_step_is_500_for_its_rows_and_the_next_request_is_served(tmp_path):
    async with serving(cont(tmp_path, max_running=4), None) as (c, app):
        wrap(app, fail_steps=1)
        first = await c.post("/correct", json={"sentence": "I goed home. She walk."})
        second = await c.post("/correct", json={"sentence": "I goed home. She walk."})
        assert first.status_code == 500 and error_of(first)["type"] == "model_error"
        assert "secret" not in first.text and "injected" not in first.text
        assert second.status_code == 200 and second.json()["corrected"] == "I went home. She walks."
        assert app.state.service.runner.running == 0 and free_rows(app) == 4


async def call_then_disconnect(app, body: bytes, leave: asyncio.Event) -> list[dict]:
    """Raw ASGI call whose client sends the body, then goes away when `leave` is set (what uvicorn reports)."""
    sent = False
    messages: list[dict] = []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/correct", "raw_path": b"/correct", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        messages.append(message)

    await app(scope, receive, send)
    return messages


async def test_client_that_leaves_frees_its_rows_at_the_next_step(tmp_path):
    gate = threading.Event()
    async with serving(cont(tmp_path, max_running=4), None) as (c, app):
        engine = wrap(app, gate=gate)
        runner = app.state.service.runner
        try:
            leave = asyncio.Event()
            body = json.dumps({"sentence": "Yesterday I goed to the big store. She walk to school every day."})
            gone = asyncio.create_task(call_then_disconnect(app, body.encode(), leave))
            await entered(engine)  # both sentences in rows, their first decode step held
            assert runner.running == 2
            assert metric((await c.get("/metrics")).text, "miniserve_kv_cache_slots_used") == 2
            leave.set()
            assert (await asyncio.wait_for(gone, 5))[0]["status"] == 499
        finally:
            gate.set()
        await wait_until(lambda: runner.running == 0 and free_rows(app) == 4)
        text = (await c.get("/metrics")).text
    assert metric(text, "miniserve_kv_cache_slots_used") == 0
    assert engine.steps == [2]  # the held step was their last: dropped before another one, not run to the end
    assert metric(text, "miniserve_requests_total", route="/correct", status="499") == 1


async def test_shutdown_answers_every_accepted_request_and_refuses_new(tmp_path):
    gate = threading.Event()
    app = create_app(cont(tmp_path, max_running=1, max_queue=8), agent_factory=None)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    try:
        engine = wrap(app, gate=gate)
        runner = app.state.service.runner
        async with client_for(app) as c:
            texts = ["I goed home.", "She walk. He eated.", "We goed. They walks. I has a cat."]
            calls = [asyncio.create_task(c.post("/correct", json={"sentence": texts[0]}))]
            await entered(engine)
            calls += [asyncio.create_task(c.post("/correct", json={"sentence": t})) for t in texts[1:]]
            await wait_until(lambda: runner.depth == 5)
            stopping = asyncio.create_task(lifespan.__aexit__(None, None, None))
            await wait_until(lambda: app.state.service.stopping)
            refused = await c.post("/correct", json={"sentence": "I goed."})
            assert refused.status_code == 503 and error_of(refused)["type"] == "shutting_down"
            assert (await c.get("/readyz")).json()["reason"] == "shutting down"
            gate.set()
            answers = await asyncio.wait_for(asyncio.gather(*calls), 10)
            await asyncio.wait_for(stopping, 10)
    finally:
        gate.set()
    assert [r.status_code for r in answers] == [200] * 3
    assert [r.json()["corrected"] for r in answers] == ["I went home.", "She walks. He ate.",
                                                        "We went. They walk. I have a cat."]
    assert runner.running == 0 and runner.depth == 0


async def test_metrics_move_and_the_engine_runs_under_inference_mode_with_the_servers_threads(tmp_path):
    async with serving(cont(tmp_path, max_running=8, torch_threads=1), None) as (c, app):
        engine = wrap(app)
        before = (await c.get("/metrics")).text
        rs = await asyncio.gather(*(c.post("/correct", json={"sentence": s}) for s in SENTENCES[:4]))
        assert [r.status_code for r in rs] == [200] * 4
        text = (await c.get("/metrics")).text
        gen = app.state.service.agent.generator
    for name in ("miniserve_batch_rows_per_step_count", "miniserve_step_seconds_count",
                 "miniserve_time_to_first_token_seconds_count"):
        assert metric(before, name) == 0
    assert metric(before, "miniserve_tokens_total", kind="prompt") == 0
    assert metric(before, "miniserve_tokens_total", kind="completion") == 0
    sentences = ["Yesterday I goed to the store.", "She walk to school every day.", "I like green tea.",
                 "The sky is blue.", "I walk to school.", "My sister take the bus."]
    assert metric(text, "miniserve_time_to_first_token_seconds_count") == len(sentences)  # one per sentence
    assert metric(text, "miniserve_tokens_total", kind="prompt") == sum(len(gen.prompt_ids(s)) for s in sentences)
    completion = metric(text, "miniserve_tokens_total", kind="completion")
    assert sum(len(gen.tok.encode(s)) for s in sentences) <= completion  # each output about as long as its source
    assert metric(text, "miniserve_step_seconds_count") == len(engine.steps) > 0
    assert metric(text, "miniserve_batch_rows_per_step_count") == len(engine.steps)
    assert metric(text, "miniserve_batch_rows_per_step_sum") == sum(engine.steps)
    assert max(engine.steps) > 1  # rows of different requests shared steps
    assert metric(text, "miniserve_kv_cache_slots_used") == 0 and metric(text, "miniserve_queue_depth") == 0
    # every step: inference mode, no grad, the configured thread count, off the event loop's thread
    assert engine.torch_state == {(True, False, 1, False)}
