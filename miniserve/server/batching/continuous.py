"""Continuous (iteration-level) batching: requests join and leave the running batch between decode steps.

Static batching runs a batch until its *longest* request is done, so short answers wait for long ones and new
arrivals wait for the whole batch. Here the unit of work is one decode step over `max_running` KV-cache rows
(as in nano-vllm/Orca): each iteration drops abandoned rows, admits waiting requests into free rows (their
prefill bounded by a token budget, so a burst of long prompts cannot stall the running rows for long), and steps
every running row once; a row that finishes is answered and freed at once. When nothing can change the batch --
no row finished, nothing new to admit, no request arrived, expired or left -- the worker thread runs the next step
at once instead of handing back to the event loop first (at most `max_steps_per_call` steps per hand-over, as
vLLM's multi-step scheduling does): a hand-over costs ~0.4 ms, a quarter of a small batch's step.
No torch or HTTP here: the model arrives as a `ContinuousEngine`, so the scheduler is tested with fakes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Protocol, TypeVar

from miniserve.server.batching.errors import BatchFailed, DeadlineExceeded, QueueFull, ShuttingDown

In = TypeVar("In")
Out = TypeVar("Out")
In_contra = TypeVar("In_contra", contravariant=True)
Out_co = TypeVar("Out_co", covariant=True)
H = TypeVar("H")  # the engine's opaque row handle; the scheduler only hands it back

log = logging.getLogger(__name__)


class ContinuousEngine(Protocol[In_contra, Out_co, H]):
    """The model as the scheduler needs it: rows of a KV cache with `max_running` rows reserved up front.

    Synchronous: the scheduler calls it from one worker thread at a time, never concurrently, so it needs no locks.
    """

    def prefill(self, items: list[In_contra]) -> list[H]:
        """Allocate a row per item and run the prompts; one handle per item, same order. If it raises, it must
        free whatever it allocated: the scheduler fails these items and never sees their rows."""
        ...

    def step(self, handles: list[H]) -> list[Out_co | None]:
        """One decode step for these rows: per row its final output if it just finished, else None. Finished rows
        are released and never stepped again. If it raises, every row in the step fails and is released."""
        ...

    def release(self, handles: list[H]) -> None:
        """Free rows (finished, cancelled, expired or failed); each handle is released exactly once."""
        ...


@dataclass(slots=True, eq=False)
class _Request(Generic[In, Out]):
    item: In
    cost: int                                    # prefill tokens, from `cost(item)` at submit
    future: asyncio.Future[Out]
    submitted_s: float                           # perf_counter() at submit: on_admit's waits count from here
    expiry: asyncio.TimerHandle | None = field(default=None)
    admitted: bool = False                       # left the queue (prefilling or running)
    handle: Any = None                           # the engine row, once prefilled


@dataclass(slots=True)
class _Iteration:
    """What one engine call in the worker thread did; applied to the scheduler's state back on the event loop."""
    handles: list[Any] | None = None             # new rows, one per admitted item; None if prefill failed
    prefill_error: BaseException | None = None
    prefill_done_s: float = 0.0
    outputs: list[Any] | None = None             # the last step's, one per row; None if a step failed or none ran
    step_error: BaseException | None = None
    step_s: list[float] = field(default_factory=list)  # each step's wall time (the steps before the last finished
                                                       # no row: every step stepped the same rows)


class ContinuousBatchScheduler(Generic[In, Out]):
    """Serves `submit`ted items through a `ContinuousEngine`, at most `max_running` rows at a time.

    Bounds: at most max_queue requests wait (QueueFull beyond) plus max_running in rows. One iteration's prefill
    costs at most max_prefill_tokens (by `cost(item)`), except that a free row always takes the head of the queue,
    however long its prompt, so nothing starves. Admission is FIFO: a long head is not overtaken by shorter ones.
    Same public shape as StaticBatchScheduler (start/submit/shutdown/depth), so the server runs either.
    `max_steps_per_call`: decode steps one worker-thread call may run while nothing changes the batch (1: hand
    back to the event loop after every step).
    """

    def __init__(self, engine: ContinuousEngine[In, Out, Any], max_running: int, max_queue: int,
                 max_prefill_tokens: int, cost: Callable[[In], int], *,
                 on_step: Callable[[int, float], None] | None = None,
                 on_admit: Callable[[list[float]], None] | None = None, max_steps_per_call: int = 16) -> None:
        for name in ("prefill", "step", "release"):
            if not callable(getattr(engine, name, None)):
                raise TypeError(f"engine must have a callable {name}()")
        if not callable(cost):
            raise TypeError("cost must be callable")
        for name, value in (("max_running", max_running), ("max_queue", max_queue),
                            ("max_prefill_tokens", max_prefill_tokens), ("max_steps_per_call", max_steps_per_call)):
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self._engine, self._cost, self._on_step, self._on_admit = engine, cost, on_step, on_admit
        self.max_running, self.max_queue, self.max_prefill_tokens = max_running, max_queue, max_prefill_tokens
        self.max_steps_per_call = max_steps_per_call
        # Set on the event loop when the batch should change (an arrival, a running request expired or left,
        # shutdown); the worker reads it between steps. A plain bool: one writer thread, one reader, no compound
        # update, so the GIL is all the synchronisation it needs.
        self._interrupt = False
        self._waiting: deque[_Request[In, Out]] = deque()
        self._rows: list[_Request[In, Out]] = []       # running, in step order
        self._admitting: list[_Request[In, Out]] = []  # popped from the queue, prefill in flight
        self._in_use = 0
        self._wakeup = asyncio.Event()  # set by submit and shutdown: the only things that end an idle sleep
        self._closing = False
        self._crash: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def depth(self) -> int:
        """Requests waiting for a row."""
        return len(self._waiting)

    @property
    def running(self) -> int:
        """Engine rows in use (running or being prefilled): the server's kv_cache_slots_used."""
        return self._in_use

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="miniserve-continuous")

    async def submit(self, item: In, timeout_s: float | None = None) -> Out:
        """Queue `item` and wait for its output; `timeout_s` bounds the whole wait, queued and running."""
        return (await self.submit_all([item], timeout_s))[0]

    async def submit_all(self, items: list[In], timeout_s: float | None = None) -> list[Out]:
        """Queue every item at once and wait for all their outputs, in order. All or none: QueueFull unless every
        item fits the queue now (checked and queued with no await between, so concurrent callers cannot split it).
        The first failure (in item order) fails the call; the other items then leave the queue, or their rows at
        the next iteration, as they do when the caller is cancelled."""
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 or None, got {timeout_s!r}")
        if self._closing:
            raise ShuttingDown("the server is shutting down")
        if self._task is None:
            raise RuntimeError("scheduler not started")
        if len(self._waiting) + len(items) > self.max_queue:
            raise QueueFull(f"queue is full: {len(items)} more do not fit ({len(self._waiting)} of "
                            f"{self.max_queue} places taken)")
        costs = [self._cost(item) for item in items]  # here, not in the loop: a bad item fails its own submit
        if bad := [c for c in costs if not _is_int(c) or c < 0]:
            raise ValueError(f"cost(item) must be an int >= 0, got {bad[0]!r}")
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        reqs = [_Request(item, cost, loop.create_future(), now) for item, cost in zip(items, costs)]
        for req in reqs:
            if timeout_s is not None:
                req.expiry = loop.call_later(timeout_s, self._expire, req, timeout_s)
            self._waiting.append(req)
        self._interrupt = True
        self._wakeup.set()
        futures = [req.future for req in reqs]
        try:
            await asyncio.wait(futures, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            # Cancelled (client gone) or one failed: every unfinished item leaves now. Queued: its slot frees at
            # once. Running: the cancelled future marks the row, which the next iteration releases (never
            # mid-step: the engine may be using it right now).
            for req in reqs:
                if not req.future.done():
                    self._leave_queue(req)
                    self._settle(req, cancel=True)
                    self._interrupt = True
        # Every failure is retrieved (no "exception never retrieved"); a cancelled one was cancelled for a sibling.
        errors = [e for f in futures if not f.cancelled() and (e := f.exception()) is not None]
        if errors:
            raise errors[0]
        if any(f.cancelled() for f in futures):
            raise asyncio.CancelledError()
        return [f.result() for f in futures]

    async def shutdown(self) -> None:
        """Stop accepting, finish running and queued work (every accepted request gets an answer), then return."""
        self._closing = True
        self._interrupt = True
        self._wakeup.set()
        if self._task is not None and self._crash is None:
            # shield: a cancelled caller must not cancel the loop halfway through draining.
            await asyncio.shield(self._task)

    # -- engine loop: drop -> admit -> prefill + step (one worker-thread call) -> deliver ----------------------

    @property
    def crashed(self) -> BaseException | None:
        """What stopped the engine loop, if something other than shutdown() did (then nothing more is served)."""
        return self._crash

    async def _loop(self) -> None:
        try:
            while True:
                if self._rows or self._waiting:
                    await self._iterate()
                elif self._closing:
                    return
                else:
                    # No await between the checks above and clear(), so no wakeup can be lost.
                    self._wakeup.clear()
                    await self._wakeup.wait()
        except BaseException as exc:  # not a failing step (those fail their rows): the loop itself broke
            if not isinstance(exc, asyncio.CancelledError):
                log.critical("continuous batching loop stopped", exc_info=exc)
            self._crash = exc
            raise
        finally:
            # Normally nothing is left; something is only if the loop itself was cancelled or crashed.
            self._closing = True
            for req in (*self._waiting, *self._admitting, *self._rows):
                self._settle(req, error=ShuttingDown("the scheduler stopped before this request finished"))
            self._waiting.clear()

    async def _iterate(self) -> None:
        live: list[_Request[In, Out]] = []
        dropped: list[Any] = []
        for req in self._rows:  # a done future here means cancelled or expired: nobody wants the rest
            if req.future.done():
                dropped.append(req.handle)
            else:
                live.append(req)
        admitted = self._admit(self.max_running - len(live))
        self._rows, self._admitting = live, admitted
        self._in_use = len(live) + len(admitted)
        # Left waiting with rows free (the prefill budget ran out): admit more after one step.
        can_admit = bool(self._waiting) and self._in_use < self.max_running
        self._interrupt = False
        # One thread hop per iteration: release, prefill and the steps run back to back, off the event loop.
        it = await asyncio.to_thread(self._engine_call, dropped, [r.item for r in admitted],
                                     [r.handle for r in live], 1 if can_admit else self.max_steps_per_call)
        self._admitting = []
        stepped = live
        if admitted:
            if it.handles is None:
                self._fail(admitted, f"prefill of {len(admitted)} items", it.prefill_error)
            else:
                for req, handle in zip(admitted, it.handles):
                    req.handle = handle
                stepped = live + admitted
                self._notify(self._on_admit, [it.prefill_done_s - req.submitted_s for req in admitted])
        if stepped:
            if it.outputs is None:
                self._fail(stepped, f"decode step of {len(stepped)} rows", it.step_error)
                self._rows = []
            else:
                rows = []
                for req, out in zip(stepped, it.outputs):
                    if out is None:
                        rows.append(req)
                    else:
                        self._settle(req, result=out)
                self._rows = rows
            for step_s in it.step_s:
                self._notify(self._on_step, len(stepped), step_s)
        self._in_use = len(self._rows)

    def _admit(self, free: int) -> list[_Request[In, Out]]:
        """FIFO into free rows while the prefill budget lasts; the head always fits a free row (no starvation)."""
        admitted: list[_Request[In, Out]] = []
        budget = self.max_prefill_tokens
        while self._waiting and len(admitted) < free:
            head = self._waiting[0]
            if head.future.done():  # cancelled, its submit not yet resumed to remove it
                self._waiting.popleft()
                continue
            if admitted and head.cost > budget:
                break
            self._waiting.popleft()
            head.admitted = True
            budget -= head.cost
            admitted.append(head)
        return admitted

    def _engine_call(self, dropped: list[Any], items: list[In], handles: list[Any], max_steps: int) -> _Iteration:
        """Worker thread: touches only the engine, its arguments and `_interrupt` (read), never the rest of the
        scheduler's state. Steps again while no row finished and nothing interrupted, up to max_steps steps."""
        it = _Iteration()
        if dropped:
            self._release(dropped)
        if items:
            try:
                new = list(self._engine.prefill(items))
            except Exception as exc:
                log.exception("prefill of %d items failed", len(items))
                it.prefill_error = exc
                max_steps = 1  # their rows are free again: hand back so waiting requests can take them
            else:
                if len(new) == len(items):
                    it.handles = new
                    handles = handles + new
                else:
                    self._release(new)
                    it.prefill_error = ValueError(f"prefill returned {len(new)} handles for {len(items)} items")
                    log.error("%s", it.prefill_error)
                    max_steps = 1
            it.prefill_done_s = time.perf_counter()
        for n in range(max_steps if handles else 0):
            started = time.perf_counter()
            try:
                outputs = list(self._engine.step(handles))
                if len(outputs) != len(handles):
                    raise ValueError(f"step returned {len(outputs)} outputs for {len(handles)} rows")
            except Exception as exc:
                it.step_s.append(time.perf_counter() - started)
                it.step_error = exc
                log.exception("decode step of %d rows failed", len(handles))
                self._release(handles)
                return it
            it.step_s.append(time.perf_counter() - started)
            finished = [h for h, out in zip(handles, outputs) if out is not None]
            if finished or self._interrupt or n == max_steps - 1:
                it.outputs = outputs
                if finished:
                    self._release(finished)
                break
        return it

    def _release(self, handles: list[Any]) -> None:
        try:
            self._engine.release(handles)
        except Exception:
            # Nothing to answer for: these rows' requests are done. The engine may leak rows; say so loudly.
            log.exception("release of %d rows failed", len(handles))

    # -- request bookkeeping ---------------------------------------------------------------------------------

    def _expire(self, req: _Request[In, Out], timeout_s: float) -> None:
        req.expiry = None
        where = "in the queue" if self._leave_queue(req) else "while running"
        self._interrupt = True  # running: its row is freed at the next iteration, so end the current one
        # Running: answered now; the row is released at the next iteration (the future is done).
        self._settle(req, error=DeadlineExceeded(f"request passed its {timeout_s:g} s deadline {where}"))

    def _leave_queue(self, req: _Request[In, Out]) -> bool:
        """Remove a still-waiting request (O(depth), bounded by max_queue). False if it already left the queue."""
        if req.admitted:
            return False
        try:
            self._waiting.remove(req)
        except ValueError:  # cancelled at the head of the queue: admission already dropped it
            return False
        return True

    def _fail(self, reqs: list[_Request[In, Out]], what: str, error: BaseException | None) -> None:
        for req in reqs:
            self._settle(req, error=BatchFailed(f"{what} failed: {error!r}", error or RuntimeError(what)))

    @staticmethod
    def _settle(req: _Request, *, result: object = None, error: BaseException | None = None,
                cancel: bool = False) -> None:
        if req.expiry is not None:
            req.expiry.cancel()
            req.expiry = None
        # The future may be done already (client gone, deadline passed); answering it then must not raise.
        if req.future.done():
            return
        if cancel:
            req.future.cancel()
        elif error is not None:
            req.future.set_exception(error)
        else:
            req.future.set_result(result)

    @staticmethod
    def _notify(callback: Callable[..., None] | None, *args: Any) -> None:
        if callback is not None:
            try:
                callback(*args)
            except Exception:
                log.exception("observability callback failed; scheduler continues")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
