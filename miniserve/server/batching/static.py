"""Static request batching: queue requests, run them through batch_fn in batches, `max_running` batches at a time.

The engine loop is schedule -> run -> deliver (as in nano-vllm). Only `StaticBatchPolicy` decides *what* goes into
the next batch and *when* it closes. A batch runs whole, so its members wait for its longest one; continuous.py
schedules per decode step instead.
No torch or HTTP here: the model arrives as a plain `batch_fn`, so the scheduler is tested with fakes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Generic, TypeVar

from miniserve.server.batching.errors import BatchFailed, DeadlineExceeded, QueueFull, ShuttingDown

In = TypeVar("In")
Out = TypeVar("Out")

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class _Request(Generic[In, Out]):
    item: In
    future: asyncio.Future[Out]
    enqueued_s: float                                # loop.time() at submit: max_wait counts from here
    expiry: asyncio.TimerHandle | None = field(default=None)


class StaticBatchPolicy:
    """The scheduling decision of static batching: FIFO, up to max_batch requests, closed by size or by age.

    A batch closes when it is full, or max_wait after its *first* request was enqueued (not after the loop noticed
    it: time spent waiting behind a running batch counts), or at once while draining for shutdown.
    """

    def __init__(self, max_batch: int, max_wait_s: float) -> None:
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s

    def closes_at(self, waiting: deque[_Request], draining: bool) -> float:
        """Loop time at which the batch at the head of a non-empty queue should run."""
        if draining or len(waiting) >= self.max_batch:
            return -math.inf
        return waiting[0].enqueued_s + self.max_wait_s

    def take(self, waiting: deque[_Request]) -> list[_Request]:
        batch: list[_Request] = []
        while waiting and len(batch) < self.max_batch:
            req = waiting.popleft()
            if not req.future.done():  # cancelled or expired: nobody is waiting for its answer
                batch.append(req)
        return batch


class StaticBatchScheduler(Generic[In, Out]):
    """Batches `submit`ted items through `batch_fn(items) -> results` (same order), up to `max_running` at once.

    max_running is the number of engine loops sharing the queue: while one loop's batch runs in a worker thread,
    another collects and runs the next, exactly as the unbatched server's `workers` threads overlap requests.
    Bounds: at most max_queue requests wait (QueueFull beyond), plus at most max_batch in each running batch.
    max_queue must be >= max_batch: a smaller queue could never fill a batch, so every batch would silently pay
    the full max_wait. max_batch=1, max_wait_ms=0 degenerates to one request per batch_fn call, no waiting.
    """

    def __init__(self, batch_fn: Callable[[list[In]], list[Out]], max_batch: int, max_wait_ms: float,
                 max_queue: int, *, max_running: int = 1,
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        if not callable(batch_fn):
            raise TypeError("batch_fn must be callable")
        if not _is_int(max_batch) or max_batch < 1:
            raise ValueError(f"max_batch must be an int >= 1, got {max_batch!r}")
        if isinstance(max_wait_ms, bool) or not isinstance(max_wait_ms, (int, float)) \
                or not math.isfinite(max_wait_ms) or max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be a finite number >= 0, got {max_wait_ms!r}")
        if not _is_int(max_queue) or max_queue < max_batch:
            raise ValueError(f"max_queue must be an int >= max_batch ({max_batch}), got {max_queue!r}")
        if not _is_int(max_running) or max_running < 1:
            raise ValueError(f"max_running must be an int >= 1, got {max_running!r}")
        self._batch_fn = batch_fn
        self._on_batch = on_batch
        self._policy = StaticBatchPolicy(max_batch, max_wait_ms / 1000.0)
        self.max_batch = max_batch
        self.max_wait_ms = max_wait_ms
        self.max_queue = max_queue
        self.max_running = max_running
        self._waiting: deque[_Request[In, Out]] = deque()
        self._wakeup = asyncio.Event()  # set on anything that can change the scheduling decision
        self._closing = False
        self._task: asyncio.Future[list[None]] | None = None

    @property
    def depth(self) -> int:
        """Requests waiting (not yet in a running batch)."""
        return len(self._waiting)

    async def start(self) -> None:
        if self._task is not None:
            return
        loop = asyncio.get_running_loop()
        self._task = asyncio.gather(
            *(loop.create_task(self._loop(), name=f"miniserve-scheduler-{i}") for i in range(self.max_running)))

    async def submit(self, item: In, timeout_s: float | None = None) -> Out:
        """Queue `item` and wait for its result; `timeout_s` bounds only the time spent waiting in the queue."""
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 or None, got {timeout_s!r}")
        if self._closing:
            raise ShuttingDown("the server is shutting down")
        if self._task is None:
            raise RuntimeError("scheduler not started")
        if len(self._waiting) >= self.max_queue:
            raise QueueFull(f"queue is full ({self.max_queue} requests waiting)")
        loop = asyncio.get_running_loop()
        req: _Request[In, Out] = _Request(item, loop.create_future(), loop.time())
        if timeout_s is not None:
            req.expiry = loop.call_at(req.enqueued_s + timeout_s, self._expire, req, timeout_s)
        self._waiting.append(req)
        self._wakeup.set()
        try:
            return await req.future
        except asyncio.CancelledError:
            # The client went away: drop the request now so it neither runs for nobody nor holds a queue slot.
            self._discard(req)
            raise

    async def shutdown(self) -> None:
        """Stop accepting, finish queued and running work (every accepted request gets an answer), then return."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            # shield: a cancelled caller must not cancel the loop halfway through draining.
            await asyncio.shield(self._task)

    # -- engine loop: schedule -> run -> deliver -------------------------------------------------------------

    async def _loop(self) -> None:
        try:
            while True:
                batch = await self._schedule()
                if not batch:
                    return  # draining and nothing left
                await self._run(batch)
        finally:
            # Normally empty; non-empty only if the loop itself was cancelled. Leave no accepted request hanging.
            self._closing = True
            while self._waiting:
                req = self._waiting.popleft()
                self._settle(req, error=ShuttingDown("the scheduler stopped before this request ran"))

    async def _schedule(self) -> list[_Request[In, Out]]:
        loop = asyncio.get_running_loop()
        while True:
            if self._waiting:
                delay = self._policy.closes_at(self._waiting, self._closing) - loop.time()
                if delay <= 0:
                    batch = self._policy.take(self._waiting)
                    if batch:
                        for req in batch:
                            if req.expiry is not None:
                                req.expiry.cancel()  # from here on the request is answered, however long it runs
                        return batch
                    continue
            elif self._closing:
                return []
            else:
                delay = None
            # No await between the checks above and clear(), so no wakeup can be lost.
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _run(self, batch: list[_Request[In, Out]]) -> None:
        started = time.perf_counter()
        try:
            # A worker thread keeps the event loop accepting (and queueing) while the model runs.
            results = list(await asyncio.to_thread(self._batch_fn, [req.item for req in batch]))
            if len(results) != len(batch):
                raise ValueError(f"batch_fn returned {len(results)} results for {len(batch)} items")
        except Exception as exc:
            log.exception("batch of %d failed", len(batch))
            for req in batch:
                self._settle(req, error=BatchFailed(f"batch of {len(batch)} failed: {exc!r}", exc))
        except asyncio.CancelledError:
            for req in batch:
                self._settle(req, error=ShuttingDown("the scheduler stopped while this request ran"))
            raise
        else:
            for req, result in zip(batch, results):
                self._settle(req, result=result)
        run_s = time.perf_counter() - started
        if self._on_batch is not None:
            try:
                self._on_batch(len(batch), run_s)
            except Exception:
                log.exception("on_batch callback failed; scheduler continues")

    # -- request bookkeeping ---------------------------------------------------------------------------------

    def _expire(self, req: _Request[In, Out], timeout_s: float) -> None:
        if self._discard(req):
            self._settle(req, error=DeadlineExceeded(f"request waited in the queue longer than {timeout_s:g} s"))

    def _discard(self, req: _Request[In, Out]) -> bool:
        """Remove a still-waiting request (O(depth), bounded by max_queue). False if it is already in a batch."""
        if req.expiry is not None:
            req.expiry.cancel()
        try:
            self._waiting.remove(req)
        except ValueError:
            return False
        self._wakeup.set()  # the head may have changed, and with it when the next batch closes
        return True

    @staticmethod
    def _settle(req: _Request, *, result: object = None, error: BaseException | None = None) -> None:
        # The future may have been cancelled meanwhile (client gone); answering it then must not raise.
        if req.future.done():
            return
        if error is not None:
            req.future.set_exception(error)
        else:
            req.future.set_result(result)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
