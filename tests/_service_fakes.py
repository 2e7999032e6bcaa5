"""Shared helpers for the service tests: a controllable fake agent, an in-process client with lifespan, waits."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

import miniserve
from miniserve.server.app import create_app
from miniserve.server.config import ServerConfig
from miniserve.tutor.agent import SentenceCheck

# The real model: the shipped checkpoint, or MINISERVE_WEIGHTS_DIR (lets the real-model tests run against any
# checkpoint, e.g. a freshly trained one, before it is shipped).
WEIGHTS_DIR = os.environ.get("MINISERVE_WEIGHTS_DIR") or str(Path(miniserve.__file__).parent / "tutor" / "weights")
needs_model = pytest.mark.skipif(not (Path(WEIGHTS_DIR) / "model.safetensors").exists(),
                                 reason=f"real checkpoint not there yet (no {WEIGHTS_DIR}/model.safetensors)")
GATE_TIMEOUT_S = 10.0  # a fake model call never blocks longer than this, so a broken test fails instead of hanging


@dataclass(slots=True, frozen=True)
class FakeEdit:
    original: str
    corrected: str
    error_type: str
    start: int = 0


@dataclass(slots=True)
class FakeCorrection:
    text: str
    why: str
    was_correct: bool
    edits: list[FakeEdit] = field(default_factory=list)
    checks: list[SentenceCheck] = field(default_factory=list)


class FakeAgent:
    """Fixes "goed" -> "went". `gate` (when given) holds every model call until set; `fail_next` makes that many
    calls raise; `calls` lists the sentences of each model call, so tests see batch sizes and skipped requests."""

    def __init__(self, gate: threading.Event | None = None, fail_next: int = 0) -> None:
        self.gate = gate
        self.fail_next = fail_next
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def correct(self, sentence: str, learner_id: str | None = None) -> FakeCorrection:
        return self._run([sentence])[0]

    def correct_batch(self, sentences: list[str], learner_ids: list[str | None]) -> list[FakeCorrection]:
        assert len(sentences) == len(learner_ids)
        return self._run(sentences)

    def _run(self, sentences: list[str]) -> list[FakeCorrection]:
        with self._lock:
            self.calls.append(list(sentences))
            fail = self.fail_next > 0
            self.fail_next -= int(fail)
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(GATE_TIMEOUT_S)
        if fail:
            raise RuntimeError("secret internal detail /srv/model.bin")
        return [self._one(s) for s in sentences]

    @staticmethod
    def _one(sentence: str) -> FakeCorrection:
        if "goed" not in sentence:
            return FakeCorrection(sentence, "The sentence is already correct.", True, [],
                                  [SentenceCheck(0, len(sentence), "correct")])
        return FakeCorrection(sentence.replace("goed", "went"), "'go' is irregular: its past is 'went'.", False,
                              [FakeEdit("goed", "went", "overregularized_past", sentence.find("goed"))],
                              [SentenceCheck(0, len(sentence), "corrected")])

    @property
    def sentences_run(self) -> list[str]:
        return [s for call in self.calls for s in call]


def config(tmp_path: Any, **kw: Any) -> ServerConfig:
    kw.setdefault("db_path", str(tmp_path / "learners.sqlite3"))
    return ServerConfig(**kw)


def client_for(app: Starlette) -> httpx.AsyncClient:
    # raise_app_exceptions=False: ServerErrorMiddleware re-raises after sending our JSON 500 (so uvicorn logs it);
    # the client must see the response, as a real one would.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@asynccontextmanager
async def serving(cfg: ServerConfig, agent: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Starlette]]:
    """The app with its lifespan running (ASGITransport does not run lifespan itself); agent None = the real one."""
    app = create_app(cfg, agent_factory=None if agent is None else lambda _cfg: agent)
    async with app.router.lifespan_context(app):
        async with client_for(app) as client:
            yield client, app


async def wait_until(cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


async def wait_entered(agent: FakeAgent) -> None:
    assert await asyncio.to_thread(agent.entered.wait, 5.0), "the fake model was never called"


def error_of(resp: httpx.Response) -> dict[str, str]:
    body = resp.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["type"], str) and isinstance(body["error"]["message"], str)
    assert "Traceback" not in resp.text
    return body["error"]
