"""The model behind the routes: one runner per mode, readiness, deadlines, and client-disconnect handling.

Routes (app.py) stay thin: they parse, call `Service.answer`, and serialize. Every runner exposes the same small
surface (run / depth / load / start / shutdown), so nothing outside this file branches on the mode. The continuous
runner lives in continuous_runner.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from starlette.types import Receive

from miniserve.server.config import ServerConfig
from miniserve.server.continuous_runner import ContinuousRunner
from miniserve.server.errors import ClientGone, DeadlinePassed, ModelFailed, NotReady, Overloaded, ServerShuttingDown
from miniserve.server.metrics import Metrics
from miniserve.server.payload import CorrectRequest
from miniserve.server.batching.static import StaticBatchScheduler

log = logging.getLogger(__name__)

AgentFactory = Callable[[ServerConfig], Any]  # config -> object with correct() and correct_batch()


class Runner(Protocol):
    async def start(self) -> None: ...
    async def run(self, req: CorrectRequest, timeout_s: float) -> Any: ...
    async def shutdown(self) -> None: ...
    @property
    def depth(self) -> int: ...  # waiting for the model, not yet running
    @property
    def load(self) -> int: ...  # what the admission bound (config.admission_bound) is compared with


@dataclass(slots=True)
class _Job:
    req: CorrectRequest
    waiter: asyncio.Future[Any] | None = None  # what the request awaits; cancelled when it gives up


class UnbatchedRunner:
    """agent.correct per request on a dedicated pool of `workers` threads, at most `max_inflight` accepted.

    A slot is freed when the model call finishes, not when the HTTP request ends: a request that timed out
    still occupies a thread, and counting it keeps the bound honest about the work actually queued.
    """

    def __init__(self, agent: Any, workers: int, max_inflight: int, on_call: Callable[[int, float], None]) -> None:
        self._agent = agent
        self._workers = workers
        self._max_inflight = max_inflight
        self._on_call = on_call
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="miniserve-model")
        self._inflight = 0  # touched on the event loop thread only
        self._closing = False

    @property
    def depth(self) -> int:
        # The pool's idle threads take work at once, so everything beyond `workers` is waiting.
        return max(0, self._inflight - self._workers)

    @property
    def load(self) -> int:
        return self._inflight

    async def start(self) -> None:
        return None

    async def run(self, req: CorrectRequest, timeout_s: float) -> Any:
        if self._closing:
            raise ServerShuttingDown("the server is shutting down")
        if self._inflight >= self._max_inflight:
            raise Overloaded(f"{self._inflight} requests in flight (max_inflight={self._max_inflight}); retry later")
        loop = asyncio.get_running_loop()
        self._inflight += 1
        job = _Job(req)
        cf = self._executor.submit(self._call, job)
        # Fires in the worker thread (or here, if cancelled before it started); the counter lives on the loop.
        cf.add_done_callback(lambda _: loop.call_soon_threadsafe(self._release))
        job.waiter = asyncio.wrap_future(cf)
        return await job.waiter

    def _release(self) -> None:
        self._inflight -= 1

    def _call(self, job: _Job) -> Any:
        # Cancelling the awaiting task cancels `waiter` at once, but wrap_future passes that on to `cf` only a
        # loop iteration later; a thread freed in between would run a request nobody waits for. Check here.
        if job.waiter is not None and job.waiter.cancelled():
            return None
        started = time.perf_counter()
        try:
            return self._agent.correct(job.req.sentence, job.req.learner_id)
        except Exception as exc:
            log.exception("agent.correct failed")
            raise ModelFailed(f"the model failed on this request ({type(exc).__name__}); try again") from exc
        finally:
            self._on_call(1, time.perf_counter() - started)

    async def shutdown(self) -> None:
        self._closing = True
        # Only calls whose HTTP request already gave up can still be here (uvicorn waited for the rest).
        await asyncio.to_thread(self._executor.shutdown, wait=True)


class StaticRunner:
    """Requests through StaticBatchScheduler into agent.correct_batch; the scheduler owns queueing and draining."""

    def __init__(self, agent: Any, config: ServerConfig, on_batch: Callable[[int, float], None]) -> None:
        self._agent = agent
        self.scheduler: StaticBatchScheduler[CorrectRequest, Any] = StaticBatchScheduler(
            self._batch, config.max_batch, config.max_wait_ms, config.max_queue, max_running=config.workers,
            on_batch=on_batch)

    def _batch(self, items: list[CorrectRequest]) -> list[Any]:
        return self._agent.correct_batch([r.sentence for r in items], [r.learner_id for r in items])

    @property
    def depth(self) -> int:
        return self.scheduler.depth

    @property
    def load(self) -> int:
        return self.scheduler.depth

    async def start(self) -> None:
        await self.scheduler.start()

    async def run(self, req: CorrectRequest, timeout_s: float) -> Any:
        return await self.scheduler.submit(req, timeout_s=timeout_s)

    async def shutdown(self) -> None:
        await self.scheduler.shutdown()


def default_agent_factory(config: ServerConfig) -> Any:
    # imports torch: only when the server really starts, never at `import miniserve.server.app`
    from miniserve.tutor.agent import GrammarTutorAgent

    if config.weights_dir is None:
        return GrammarTutorAgent.load_default(db_path=config.db_path)  # shipped weights, cached per process
    from miniserve.tutor.generate import Generator
    from miniserve.tutor.memory import LearnerMemory

    return GrammarTutorAgent(Generator.load(config.weights_dir), LearnerMemory(config.db_path))


# The settings that shape each mode's batching and admission, in the start-up line; an unknown mode shows them all.
MODE_SETTINGS: dict[str, tuple[str, ...]] = {
    "static": ("workers", "max_batch", "max_wait_ms", "max_queue"),
    "unbatched": ("workers", "max_inflight"),
    "continuous": ("max_running", "max_queue", "max_prefill_tokens"),
}


# `uvicorn app:app` starts the lifespan before it binds, and never tells the app where: its own log line does.
LISTEN_UNKNOWN = "(see the ASGI server's log)"


def describe_weights(config: ServerConfig) -> str:
    """The checkpoint the default agent loads: its folder and a short sha256 of its weights (4 MB: ~10 ms)."""
    from miniserve.tutor.generate import MODEL_FILE, WEIGHTS_DIR  # torch is imported by then: the agent loaded

    folder = Path(config.weights_dir) if config.weights_dir is not None else WEIGHTS_DIR
    try:
        digest = hashlib.sha256((folder / MODEL_FILE).read_bytes()).hexdigest()[:12]
    except OSError as e:
        return f"weights={folder} (unreadable: {e.strerror or e})"
    return f"weights={folder} sha256={digest}"


def startup_line(config: ServerConfig, listen: str | None, weights: str, load_s: float) -> str:
    """One line that says what this server is: mode, batching/admission settings, address, checkpoint."""
    names = MODE_SETTINGS.get(config.mode) or tuple(n for fields in MODE_SETTINGS.values() for n in fields)
    settings = " ".join(f"{name}={getattr(config, name):g}" for name in dict.fromkeys(names))
    return (f"miniserve ready: mode={config.mode} {settings} torch_threads={config.torch_threads} "
            f"request_timeout_s={config.request_timeout_s:g} listen={listen or LISTEN_UNKNOWN} "
            f"{weights} agent_load_s={load_s:.2f}")


def set_torch_threads(n: int) -> None:
    # OpenMP's default ACTIVE wait makes idle worker threads spin. On this shared 2-core box (load generator,
    # other processes) a spinning thread steals the core its partner needs: measured, one correct_batch of 8 with
    # 2 torch threads took 5.2 s ACTIVE vs 79 ms PASSIVE (78 ms with 1 thread) while another process used a core.
    # libgomp reads the variable once, when torch loads, so it must be set before the first `import torch`.
    if "torch" in sys.modules:
        if "OMP_WAIT_POLICY" not in os.environ and n > 1:
            log.warning("torch was imported before the server set OMP_WAIT_POLICY=PASSIVE; %d threads may spin", n)
    else:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch  # only here: importing miniserve.server.app must stay cheap (CLI, tests with fake agents)

    torch.set_num_threads(n)


class Service:
    def __init__(self, config: ServerConfig, metrics: Metrics, agent_factory: AgentFactory | None = None,
                 listen: str | None = None) -> None:
        self.config = config
        self.metrics = metrics
        self.agent_factory = agent_factory or default_agent_factory
        self.listen = listen  # "host:port" when the caller knows it (`miniserve serve`); for the start-up line
        self.agent: Any = None
        self.runner: Runner | None = None
        self.stopping = False

    async def start(self) -> None:
        # A lifespan may run more than once on one app (test clients entered per test): each start is a fresh one.
        self.runner, self.stopping = None, False
        assert self.config.torch_threads is not None
        set_torch_threads(self.config.torch_threads)
        started = time.perf_counter()
        self.agent = await asyncio.to_thread(self.agent_factory, self.config)
        load_s = time.perf_counter() - started
        cfg = self.config
        runner: Runner
        if cfg.mode == "static":
            runner = StaticRunner(self.agent, cfg, self.metrics.observe_batch)
        elif cfg.mode == "continuous":
            runner = ContinuousRunner(self.agent, cfg, self.metrics)
        else:
            runner = UnbatchedRunner(self.agent, cfg.workers, cfg.max_inflight, self.metrics.observe_batch)
        await runner.start()
        self.metrics.bind_queue_depth(lambda: runner.depth)
        self.runner = runner
        if self.agent_factory is default_agent_factory:
            weights = await asyncio.to_thread(describe_weights, cfg)
        else:
            weights = f"agent={getattr(self.agent_factory, '__qualname__', type(self.agent_factory).__name__)}"
        log.info("%s", startup_line(cfg, self.listen, weights, load_s))

    async def stop(self) -> None:
        self.stopping = True
        if self.runner is not None:
            await self.runner.shutdown()  # drains: queued and running work is answered before this returns

    def readiness(self) -> tuple[bool, str]:
        if self.stopping:
            return False, "shutting down"
        if self.runner is None:
            return False, "model not loaded"
        if (crash := getattr(self.runner, "crashed", None)) is not None:
            return False, f"the batching loop stopped ({type(crash).__name__}); restart the server"
        bound = self.config.admission_bound
        high_water = max(1, int(bound * self.config.ready_high_water))
        if self.runner.load >= high_water:
            return False, f"load {self.runner.load} at or above high-water mark {high_water} (of {bound})"
        return True, "ready"

    def _runner(self) -> Runner:
        if self.stopping:
            raise ServerShuttingDown("the server is shutting down; retry on another instance")
        if self.runner is None:
            raise NotReady("the model is not loaded yet; retry later")
        return self.runner

    async def answer(self, receive: Receive, req: CorrectRequest, deadline: float) -> Any:
        """The Correction for `req` by loop-time `deadline`; cancels the work if the client disconnects."""
        runner = self._runner()
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise DeadlinePassed(f"no answer within request_timeout_s={self.config.request_timeout_s:g} s")
        work = asyncio.ensure_future(runner.run(req, remaining))
        watcher = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            done, _ = await asyncio.wait((work, watcher), timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            if not work.done():
                work.cancel()  # the scheduler drops a cancelled request before it runs
        if not done:
            raise DeadlinePassed(f"no answer within request_timeout_s={self.config.request_timeout_s:g} s")
        if work in done:
            return work.result()
        if watcher.exception() is not None:  # a broken receive channel: the client is as good as gone
            log.warning("receive failed while waiting for the model: %r", watcher.exception())
        raise ClientGone("client disconnected before the answer was ready")


async def _wait_disconnect(receive: Receive) -> None:
    # The body is fully read, so the next message can only be http.disconnect (the server holds it until then).
    while (await receive())["type"] != "http.disconnect":
        pass
