"""Continuous mode: every sentence of a request is its own KV-cache row in one ContinuousBatchScheduler.

A request is split by the agent (`begin_correction`); each sentence that needs the model is submitted on its own,
so sentences of one request decode side by side with other requests' sentences and leave the batch as soon as
they end. The request is answered when its last sentence is done (`finish_correction`, off the event loop: it
writes the learner memory). The unit of every bound here is the sentence: `max_queue` sentences wait, and
`max_running` decode at once.

The same guarantees as the other modes, sentence by sentence: a request is admitted whole or not at all (503; 413
when it has more sentences than the queue ever holds);
one failed or expired sentence fails the request and cancels its siblings, whose rows the scheduler frees at its
next step; a cancelled request (client gone, server deadline) does the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from miniserve.server.batching.continuous import ContinuousBatchScheduler
from miniserve.server.config import ServerConfig
from miniserve.server.errors import ModelFailed, PayloadTooLarge, ServerShuttingDown
from miniserve.server.metrics import Metrics
from miniserve.server.payload import CorrectRequest

log = logging.getLogger(__name__)


class TorchThreadEngine:
    """The scheduler's engine: `inner` (a TutorEngine), run as the server runs torch in every mode.

    The scheduler calls the engine from a worker thread (asyncio.to_thread, any of the default executor's). Grad
    and inference mode are per-thread in torch, so each call enters `torch.inference_mode()` itself; the intra-op
    thread count is process-wide (set by the lifespan before the engine exists, OMP_WAIT_POLICY with it), and is
    checked per call so a thread can never run with another count. It also counts tokens for /metrics: prompt
    tokens when a prefill succeeds, completion tokens when a row finishes (its ids, plus one for end-of-sequence
    when it ended with it: every token the model produced for the row).
    `inner` is a plain attribute on purpose: tests wrap it to gate or fail steps of the real engine.
    """

    def __init__(self, inner: Any, torch_threads: int, cost: Callable[[Any], int],
                 count_tokens: Callable[[str, int], None]) -> None:
        self.inner = inner
        self._threads = torch_threads
        self._cost = cost
        self._count_tokens = count_tokens

    @contextmanager
    def _torch(self) -> Iterator[None]:
        import torch  # loaded already: the agent (and TutorEngine) imported it

        if torch.get_num_threads() != self._threads:
            torch.set_num_threads(self._threads)
        with torch.inference_mode():
            yield

    def prefill(self, items: list[Any]) -> list[Any]:
        with self._torch():
            rows = self.inner.prefill(items)
        self._count("prompt", sum(self._cost(item) for item in items))
        return rows

    def step(self, rows: list[Any]) -> list[Any]:
        with self._torch():
            outputs = self.inner.step(rows)
        self._count("completion", sum(len(out.ids) + int(out.ended) for out in outputs if out is not None))
        return outputs

    def release(self, rows: list[Any]) -> None:
        self.inner.release(rows)

    def _count(self, kind: str, n: int) -> None:
        if n:
            try:
                self._count_tokens(kind, n)
            except Exception:  # never let a metric turn a good prefill or step into a failed one
                log.exception("counting %s tokens failed", kind)


class ContinuousRunner:
    """Requests through ContinuousBatchScheduler over the tutor's TutorEngine, one row per sentence."""

    def __init__(self, agent: Any, config: ServerConfig, metrics: Metrics) -> None:
        from miniserve.tutor.engine import TutorEngine  # torch: only when a continuous server really starts

        assert config.torch_threads is not None
        self._agent = agent
        self._max_queue = config.max_queue
        self._tutor = TutorEngine(agent.generator, config.max_running)  # reserves max_running cache rows now
        self.engine = TorchThreadEngine(self._tutor, config.torch_threads, TutorEngine.cost, metrics.count_tokens)
        self.scheduler: ContinuousBatchScheduler[Any, Any] = ContinuousBatchScheduler(
            self.engine, max_running=config.max_running, max_queue=config.max_queue,
            max_prefill_tokens=config.max_prefill_tokens, cost=TutorEngine.cost,
            on_step=metrics.observe_step, on_admit=metrics.observe_admit)
        metrics.bind_kv_cache_slots(lambda: self.scheduler.running)
        self._closing = False
        self._active = 0  # requests between admission and their answer: shutdown waits for them
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def depth(self) -> int:
        """Sentences waiting for a row."""
        return self.scheduler.depth

    @property
    def load(self) -> int:
        return self.scheduler.depth

    @property
    def running(self) -> int:
        """KV-cache rows in use."""
        return self.scheduler.running

    @property
    def crashed(self) -> BaseException | None:
        """Set when the engine loop stopped by itself: /readyz then says so."""
        return self.scheduler.crashed

    async def start(self) -> None:
        await self.scheduler.start()

    async def run(self, req: CorrectRequest, timeout_s: float) -> Any:
        if self._closing:
            raise ServerShuttingDown("the server is shutting down")
        # Splitting, the length check and each sentence's decoding automaton (`item`, ~70 us a sentence) tokenize a
        # few hundred characters: cheap enough for the event loop.
        inflight = self._agent.begin_correction(req.sentence, req.learner_id)
        sources = inflight.sources
        if not sources:
            # Nothing for the model, so no edit and no memory write: finishing is pure Python, done here.
            return self._agent.finish_correction(inflight, [])
        if len(sources) > self._max_queue:
            # Retrying cannot help: the queue never holds this many sentences at once.
            raise PayloadTooLarge(f"this input has {len(sources)} sentences to check and this server queues at "
                                  f"most {self._max_queue} (max_queue); send fewer sentences per request")
        items = [self._tutor.item(s) for s in sources]
        self._active += 1
        self._idle.clear()
        try:
            outputs = await self._generate(items, timeout_s)
            return await asyncio.to_thread(self._finish, inflight, [out.text for out in outputs])
        finally:
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    async def _generate(self, items: list[Any], timeout_s: float) -> list[Any]:
        """Every item's output, in order. All sentences are queued at once or none (QueueFull: 503 + Retry-After);
        the first failure fails them all and frees the others' places and rows."""
        return await self.scheduler.submit_all(items, timeout_s)

    def _finish(self, inflight: Any, outputs: list[str]) -> Any:
        try:
            return self._agent.finish_correction(inflight, outputs)
        except Exception as exc:
            log.exception("agent.finish_correction failed")
            raise ModelFailed(f"the model failed on this request ({type(exc).__name__}); try again") from exc

    async def shutdown(self) -> None:
        """Refuse new requests; the scheduler finishes running and queued sentences, then the last requests'
        finish_correction runs; returns when every admitted request has its answer."""
        self._closing = True
        await self.scheduler.shutdown()
        await self._idle.wait()
