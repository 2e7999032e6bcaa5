from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest

from miniserve.server.batching.continuous import ContinuousBatchScheduler
from miniserve.server.batching.errors import BatchFailed, DeadlineExceeded, QueueFull, ShuttingDown


@dataclass(frozen=True)
class Job:
    name: str
    steps: int = 1    # decode steps until the row finishes
    tokens: int = 1   # prompt length: the scheduler's cost(item)


class FakeEngine:
    """A KV cache of `rows` rows that records every call (by job name) and checks the scheduler's contract.

    Contract violations (no free row, stepping a finished or unknown row, double release, empty calls, two calls
    at once) are collected in `violations`; `check()` asserts there were none and every row was given back.
    With `paced`, each step blocks until the test `allow`s it, so tests move the scheduler one iteration at a time.
    """

    def __init__(self, rows: int, *, paced: bool = False, fail_prefill: frozenset[str] = frozenset(),
                 fail_steps: frozenset[int] = frozenset(), short_steps: frozenset[int] = frozenset()) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.violations: list[str] = []
        self.free = list(range(rows))
        self.job: dict[int, Job] = {}
        self.done: dict[int, int] = {}
        self.rows, self.most_in_use, self.steps_entered = rows, 0, 0
        self.fail_prefill, self.fail_steps, self.short_steps = fail_prefill, fail_steps, short_steps
        self.paced, self.permits = paced, threading.Semaphore(0)
        self._busy = threading.Lock()

    @property
    def in_use(self) -> int:
        return self.rows - len(self.free)

    def allow(self, steps: int = 1) -> None:
        self.permits.release(steps)

    def run_free(self) -> None:
        self.paced = False
        self.permits.release(1000)

    def check(self) -> None:
        assert self.violations == [] and self.in_use == 0

    def _enter(self, op: str, names: list[str]) -> None:
        if not self._busy.acquire(blocking=False):
            self.violations.append(f"{op} while another engine call ran")
        if not names:
            self.violations.append(f"{op} with no rows")
        self.calls.append((op, names))

    def prefill(self, items: list[Job]) -> list[int]:
        self._enter("prefill", [j.name for j in items])
        try:
            if len(items) > len(self.free):
                self.violations.append(f"prefill of {len(items)} with {len(self.free)} free rows")
            handles = [self.free.pop() for _ in items]
            self.most_in_use = max(self.most_in_use, self.in_use)
            if any(j.name in self.fail_prefill for j in items):
                self.free.extend(handles)  # the contract: a failing prefill frees what it allocated
                raise RuntimeError("prefill exploded")
            for h, j in zip(handles, items):
                self.job[h], self.done[h] = j, 0
            return handles
        finally:
            self._busy.release()

    def step(self, handles: list[int]) -> list[str | None]:
        self._enter("step", [self.job[h].name if h in self.job else f"?{h}" for h in handles])
        try:
            call, self.steps_entered = self.steps_entered, self.steps_entered + 1
            if self.paced and not self.permits.acquire(timeout=5):
                self.violations.append("test never allowed a step")
            if call in self.fail_steps:
                raise RuntimeError("step exploded")
            out: list[str | None] = []
            for h in handles:
                if h not in self.job or self.done[h] >= self.job[h].steps:
                    self.violations.append(f"stepped row {h} that is free or finished")
                    out.append(None)
                    continue
                self.done[h] += 1
                out.append(f"{self.job[h].name}:{self.done[h]}" if self.done[h] == self.job[h].steps else None)
            return out[:-1] if call in self.short_steps else out
        finally:
            self._busy.release()

    def release(self, handles: list[int]) -> None:
        self._enter("release", [self.job[h].name if h in self.job else f"?{h}" for h in handles])
        try:
            for h in handles:
                if h not in self.job:
                    self.violations.append(f"released row {h} twice or never allocated")
                    continue
                del self.job[h], self.done[h]
                self.free.append(h)
        finally:
            self._busy.release()

    def ops(self, op: str) -> list[list[str]]:
        return [names for o, names in self.calls if o == op]


async def wait_until(cond, timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.002)


async def started(engine: FakeEngine, max_running: int = 4, max_queue: int = 64, max_prefill_tokens: int = 1000,
                  **kw) -> ContinuousBatchScheduler[Job, str]:
    sched = ContinuousBatchScheduler(engine, max_running, max_queue, max_prefill_tokens, lambda j: j.tokens, **kw)
    await sched.start()
    return sched


def submit(sched: ContinuousBatchScheduler, name: str, steps: int = 1, tokens: int = 1, **kw) -> asyncio.Task:
    return asyncio.create_task(sched.submit(Job(name, steps, tokens), **kw))


def test_importing_the_module_imports_neither_torch_nor_http():
    code = ("import sys, miniserve.server.batching.continuous; "
            "bad = [m for m in ('torch', 'starlette', 'uvicorn', 'prometheus_client') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_rows_join_and_leave_between_steps():
    eng = FakeEngine(2, paced=True)
    sched = await started(eng, max_running=2)
    a = submit(sched, "a", steps=3)
    await wait_until(lambda: eng.steps_entered == 1)
    b, c = submit(sched, "b"), submit(sched, "c")
    await wait_until(lambda: sched.depth == 2)
    eng.allow()
    await wait_until(lambda: eng.steps_entered == 2)  # b joined a's second step; c waits for a row
    assert sched.depth == 1 and sched.running == 2
    eng.allow()
    assert await asyncio.wait_for(b, 2) == "b:1"  # b leaves after its one step, a keeps running
    await wait_until(lambda: eng.steps_entered == 3)
    assert not a.done()
    eng.allow()
    assert await asyncio.wait_for(asyncio.gather(a, c), 2) == ["a:3", "c:1"]
    assert eng.calls == [("prefill", ["a"]), ("step", ["a"]),
                         ("prefill", ["b"]), ("step", ["a", "b"]), ("release", ["b"]),
                         ("prefill", ["c"]), ("step", ["a", "c"]), ("release", ["a", "c"])]
    await sched.shutdown()
    eng.check()


def count_hops(sched: ContinuousBatchScheduler) -> list[int]:
    """Wrap the scheduler's worker-thread call; the list holds the steps each call ran."""
    hops: list[int] = []
    inner = sched._engine_call

    def call(*args):
        it = inner(*args)
        hops.append(len(it.step_s))
        return it

    sched._engine_call = call
    return hops


async def test_steps_run_back_to_back_while_nothing_changes_the_batch():
    eng = FakeEngine(2)
    steps: list[int] = []
    sched = await started(eng, max_running=2, max_steps_per_call=16, on_step=lambda n, s: steps.append(n))
    hops = count_hops(sched)
    assert await asyncio.wait_for(sched.submit(Job("a", steps=40)), 2) == "a:40"
    assert hops == [16, 16, 8] and steps == [1] * 40  # 3 hand-overs for 40 steps, every step still observed
    one = await started(FakeEngine(2), max_running=2, max_steps_per_call=1)
    hops = count_hops(one)
    assert await asyncio.wait_for(one.submit(Job("b", steps=5)), 2) == "b:5" and hops == [1] * 5
    for s in (sched, one):
        await s.shutdown()
    eng.check()


async def test_an_arrival_ends_the_run_of_steps_so_it_joins_at_the_next_one():
    eng = FakeEngine(2, paced=True)
    sched = await started(eng, max_running=2, max_steps_per_call=16)
    hops = count_hops(sched)
    a = submit(sched, "a", steps=6)
    await wait_until(lambda: eng.steps_entered == 1)
    eng.allow(2)
    await wait_until(lambda: eng.steps_entered == 3)  # three steps in one hand-over, the third held
    b = submit(sched, "b")
    await wait_until(lambda: sched.depth == 1)
    eng.run_free()
    assert await asyncio.wait_for(asyncio.gather(a, b), 2) == ["a:6", "b:1"]
    assert eng.calls[:6] == [("prefill", ["a"]), ("step", ["a"]), ("step", ["a"]), ("step", ["a"]),
                             ("prefill", ["b"]), ("step", ["a", "b"])]
    assert hops[:2] == [3, 1]  # b's arrival ended the first run; b finished in the next step, which ended that one
    await sched.shutdown()
    eng.check()


async def test_many_requests_of_different_lengths_each_get_their_own_output():
    rng = random.Random(7)
    eng = FakeEngine(4)
    sched = await started(eng, max_running=4, max_queue=500, max_prefill_tokens=40)
    jobs = [Job(f"j{i}", rng.randint(1, 12), rng.randint(1, 30)) for i in range(300)]
    tasks = []
    for job in jobs:  # arrivals keep joining while earlier rows run
        tasks.append(asyncio.create_task(sched.submit(job)))
        if rng.random() < 0.2:
            await asyncio.sleep(0)
    results = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert results == [f"{j.name}:{j.steps}" for j in jobs]
    assert eng.most_in_use <= 4 and max(len(s) for s in eng.ops("step")) == 4
    assert len({len(s) for s in eng.ops("step")}) > 1  # the batch really shrank and grew
    cost = {j.name: j.tokens for j in jobs}
    assert all(len(p) == 1 or sum(cost[n] for n in p) <= 40 for p in eng.ops("prefill"))
    assert [n for p in eng.ops("prefill") for n in p] == [j.name for j in jobs]  # FIFO admission
    await sched.shutdown()
    eng.check()


async def test_prefill_budget_is_fifo_and_always_admits_the_head():
    eng = FakeEngine(8, paced=True)
    sched = await started(eng, max_running=8, max_prefill_tokens=10)
    blocker = submit(sched, "z", steps=6)
    await wait_until(lambda: eng.steps_entered == 1)
    tasks = [submit(sched, f"t{tokens}_{i}", steps=6, tokens=tokens) for i, tokens in enumerate([4, 5, 3, 20, 2, 2])]
    await wait_until(lambda: sched.depth == 6)
    for n in range(2, 6):
        eng.allow()
        await wait_until(lambda: eng.steps_entered == n)
    # 4+5 fit; 3 then waits since 3+20 does not; 20 alone exceeds the budget but heads the queue, so it goes
    # alone rather than starve; the 2s never overtake it.
    assert eng.ops("prefill") == [["z"], ["t4_0", "t5_1"], ["t3_2"], ["t20_3"], ["t2_4", "t2_5"]]
    eng.run_free()
    await asyncio.wait_for(asyncio.gather(blocker, *tasks), 2)
    await sched.shutdown()
    eng.check()


async def test_queue_full_is_immediate_and_memory_bounded():
    eng = FakeEngine(1, paced=True)
    sched = await started(eng, max_running=1, max_queue=3)
    first = submit(sched, "a")
    await wait_until(lambda: eng.steps_entered == 1)
    queued = [submit(sched, f"q{i}") for i in range(10)]
    await wait_until(lambda: sum(t.done() for t in queued) == 7)
    assert all(isinstance(t.exception(), QueueFull) for t in queued[3:]) and sched.depth == 3
    with pytest.raises(QueueFull):
        await sched.submit(Job("x"))
    eng.run_free()
    assert await asyncio.wait_for(asyncio.gather(first, *queued[:3]), 2) == ["a:1", "q0:1", "q1:1", "q2:1"]
    assert await sched.submit(Job("y")) == "y:1"  # room again once drained
    await sched.shutdown()
    eng.check()


async def test_submit_all_queues_every_item_or_none_and_one_failure_fails_the_rest():
    eng = FakeEngine(1, paced=True, fail_prefill=frozenset({"bad"}))
    sched = await started(eng, max_running=1, max_queue=3)
    first = submit(sched, "a")
    await wait_until(lambda: eng.steps_entered == 1)
    # two callers in the same tick, 2 items each, 3 places: the first gets both, the second none
    both = asyncio.create_task(sched.submit_all([Job("b1"), Job("b2", steps=3)]))
    refused = asyncio.create_task(sched.submit_all([Job("c1"), Job("c2")]))
    with pytest.raises(QueueFull):
        await refused
    assert sched.depth == 2
    eng.run_free()
    assert await asyncio.wait_for(both, 2) == ["b1:1", "b2:3"] and await first == "a:1"
    # a failing item fails the call; its sibling leaves its row or the queue, and nothing is left behind
    with pytest.raises(BatchFailed):
        await asyncio.wait_for(sched.submit_all([Job("bad"), Job("ok", steps=50)]), 2)  # "ok" is still queued
    await wait_until(lambda: sched.running == 0 and sched.depth == 0)
    await sched.shutdown()
    eng.check()


async def test_deadline_while_waiting_is_exceeded_and_never_runs():
    eng = FakeEngine(1, paced=True)
    sched = await started(eng, max_running=1)
    running = submit(sched, "a")
    await wait_until(lambda: eng.steps_entered == 1)
    with pytest.raises(DeadlineExceeded):
        await asyncio.wait_for(sched.submit(Job("late"), timeout_s=0.05), 1)
    assert sched.depth == 0
    eng.run_free()
    assert await running == "a:1" and await sched.submit(Job("b")) == "b:1"
    assert ["late"] not in eng.ops("prefill")
    await sched.shutdown()
    eng.check()


async def test_deadline_while_running_answers_at_once_and_frees_the_row_at_the_next_iteration():
    eng = FakeEngine(2, paced=True)
    sched = await started(eng, max_running=2)
    slow = submit(sched, "slow", steps=50, timeout_s=0.05)
    await wait_until(lambda: eng.steps_entered == 1)
    with pytest.raises(DeadlineExceeded):
        await asyncio.wait_for(slow, 1)  # answered while its step is still in the engine...
    assert eng.ops("release") == [] and sched.running == 1  # ...whose row is not touched mid-step
    nxt = submit(sched, "next")
    eng.allow()
    await wait_until(lambda: eng.steps_entered == 2)
    assert eng.calls[-3:] == [("release", ["slow"]), ("prefill", ["next"]), ("step", ["next"])]
    eng.allow()
    assert await asyncio.wait_for(nxt, 2) == "next:1"
    await sched.shutdown()
    eng.check()


async def test_client_disconnect_while_waiting_frees_its_queue_slot():
    eng = FakeEngine(1, paced=True)
    sched = await started(eng, max_running=1, max_queue=1)
    running = submit(sched, "a")
    await wait_until(lambda: eng.steps_entered == 1)
    gone = submit(sched, "gone")
    await wait_until(lambda: sched.depth == 1)
    with pytest.raises(QueueFull):
        await sched.submit(Job("x"))
    gone.cancel()
    await wait_until(lambda: sched.depth == 0)
    kept = submit(sched, "kept")
    await wait_until(lambda: sched.depth == 1)
    eng.run_free()
    assert await asyncio.wait_for(asyncio.gather(running, kept), 2) == ["a:1", "kept:1"]
    assert gone.cancelled() and ["gone"] not in eng.ops("prefill")
    await sched.shutdown()
    eng.check()


async def test_client_disconnect_while_running_frees_the_row_at_the_next_iteration():
    eng = FakeEngine(1, paced=True)
    sched = await started(eng, max_running=1)
    gone = submit(sched, "gone", steps=50)
    await wait_until(lambda: eng.steps_entered == 1)
    waiting = submit(sched, "b")
    gone.cancel()
    await asyncio.sleep(0.02)
    assert gone.cancelled() and eng.ops("release") == [] and sched.depth == 1  # not mid-step
    eng.allow()
    await wait_until(lambda: eng.steps_entered == 2)
    assert eng.calls[-3:] == [("release", ["gone"]), ("prefill", ["b"]), ("step", ["b"])]
    eng.allow()
    assert await asyncio.wait_for(waiting, 2) == "b:1"
    await sched.shutdown()
    eng.check()


async def test_shutdown_finishes_running_and_queued_work_and_rejects_new_work():
    eng = FakeEngine(2, paced=True)
    sched = await started(eng, max_running=2)
    tasks = [submit(sched, f"r{i}", steps=3) for i in range(2)]
    await wait_until(lambda: eng.steps_entered == 1)
    tasks += [submit(sched, f"q{i}", steps=2) for i in range(3)]
    await wait_until(lambda: sched.depth == 3)
    stopping = asyncio.create_task(sched.shutdown())
    await asyncio.sleep(0.01)
    with pytest.raises(ShuttingDown):
        await sched.submit(Job("new"))
    assert not stopping.done()
    eng.run_free()
    await asyncio.wait_for(stopping, 2)
    assert [t.result() for t in tasks] == ["r0:3", "r1:3", "q0:2", "q1:2", "q2:2"]
    assert sched.depth == 0 and sched.running == 0
    await sched.shutdown()  # a second call returns at once
    with pytest.raises(ShuttingDown):
        await sched.submit(Job("later"))
    eng.check()


async def test_failing_prefill_fails_only_its_items_and_running_rows_continue():
    eng = FakeEngine(3, paced=True, fail_prefill=frozenset({"bad1"}))
    sched = await started(eng, max_running=3, max_prefill_tokens=10)
    a = submit(sched, "a", steps=3)
    await wait_until(lambda: eng.steps_entered == 1)
    bad = [submit(sched, "bad1", tokens=5), submit(sched, "bad2", tokens=5)]
    c = submit(sched, "c", tokens=5)  # over the budget of the failing prefill: its own, next iteration
    await wait_until(lambda: sched.depth == 3)
    eng.allow(3)
    errors = await asyncio.wait_for(asyncio.gather(*bad, return_exceptions=True), 2)
    assert all(isinstance(e, BatchFailed) and isinstance(e.cause, RuntimeError) for e in errors)
    assert await asyncio.wait_for(asyncio.gather(a, c), 2) == ["a:3", "c:1"]
    assert eng.calls[2:6] == [("prefill", ["bad1", "bad2"]), ("step", ["a"]),
                              ("prefill", ["c"]), ("step", ["a", "c"])]
    await sched.shutdown()
    eng.check()


async def test_failing_step_fails_only_its_rows_and_the_next_iteration_serves_others():
    eng = FakeEngine(2, paced=True, fail_steps=frozenset({1}), short_steps=frozenset({2}))
    sched = await started(eng, max_running=2, max_prefill_tokens=1)
    a = submit(sched, "a", steps=5)
    await wait_until(lambda: eng.steps_entered == 1)
    b, c, d = submit(sched, "b", steps=5), submit(sched, "c"), submit(sched, "d")
    await wait_until(lambda: sched.depth == 3)
    eng.run_free()  # step 1 = [a, b] raises; step 2 = [c] returns no output; step 3 = [d] is fine
    failed = await asyncio.wait_for(asyncio.gather(a, b, c, return_exceptions=True), 2)
    assert [type(e.cause) for e in failed] == [RuntimeError, RuntimeError, ValueError]
    assert all(isinstance(e, BatchFailed) for e in failed) and "step exploded" in str(failed[0])
    assert await asyncio.wait_for(d, 2) == "d:1"
    assert ("release", ["a", "b"]) in eng.calls and ("release", ["c"]) in eng.calls
    assert await sched.submit(Job("e")) == "e:1"
    await sched.shutdown()
    eng.check()


async def test_observability_hooks_and_properties():
    steps: list[tuple[int, float]] = []
    admits: list[list[float]] = []
    eng = FakeEngine(2, paced=True)
    sched = await started(eng, max_running=2, on_step=lambda n, s: steps.append((n, s)), on_admit=admits.append)
    assert (sched.depth, sched.running) == (0, 0)
    a = submit(sched, "a", steps=2)
    await wait_until(lambda: eng.steps_entered == 1)
    b, c = submit(sched, "b"), submit(sched, "c")
    await wait_until(lambda: sched.depth == 2)
    assert sched.running == 1
    await asyncio.sleep(0.03)
    eng.run_free()
    await asyncio.wait_for(asyncio.gather(a, b, c), 2)
    assert [n for n, _ in steps] == [len(s) for s in eng.ops("step")] == [1, 2, 1]
    assert all(s >= 0 for _, s in steps)
    assert [len(w) for w in admits] == [len(p) for p in eng.ops("prefill")] == [1, 1, 1]
    # b and c waited behind a's held step (c also for a's row): each wait counts from its own submit, so it is
    # positive; no clock comparison between them, since c was submitted later by a few microseconds
    assert admits[0][0] >= 0 and admits[1][0] > 0 and admits[2][0] > 0
    assert (sched.depth, sched.running) == (0, 0)
    await sched.shutdown()
    eng.check()


async def test_failing_callbacks_do_not_stop_the_loop():
    def broken(*args) -> None:
        raise RuntimeError("metrics down")

    eng = FakeEngine(2)
    sched = await started(eng, on_step=broken, on_admit=broken)
    assert await sched.submit(Job("a", 2)) == "a:2" and await sched.submit(Job("b")) == "b:1"
    await sched.shutdown()
    eng.check()


async def test_idle_loop_makes_no_engine_calls():
    eng = FakeEngine(2)
    sched = await started(eng)
    assert await sched.submit(Job("a", 3)) == "a:3"
    calls = len(eng.calls)
    await asyncio.sleep(0.05)
    assert len(eng.calls) == calls  # asleep on its wakeup event, not stepping an empty batch
    assert await sched.submit(Job("b")) == "b:1"  # and a submit wakes it
    await sched.shutdown()
    eng.check()


@pytest.mark.parametrize("args", [(0, 10, 10), (-1, 10, 10), (1.5, 10, 10), (True, 10, 10), (4, 0, 10),
                                  (4, 10, 0), (4, 10, 2.0), (4, None, 10)])
def test_constructor_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        ContinuousBatchScheduler(FakeEngine(4), *args, lambda j: j.tokens)


def test_constructor_rejects_a_bad_engine_or_cost():
    with pytest.raises(TypeError):
        ContinuousBatchScheduler(object(), 4, 10, 10, lambda j: 1)
    with pytest.raises(TypeError):
        ContinuousBatchScheduler(FakeEngine(4), 4, 10, 10, 5)


async def test_submit_validates_timeout_and_cost_and_requires_start():
    sched = ContinuousBatchScheduler(FakeEngine(2), 2, 10, 10, lambda j: j.tokens)
    with pytest.raises(RuntimeError):
        await sched.submit(Job("a"))
    await sched.start()
    with pytest.raises(ValueError):
        await sched.submit(Job("a"), timeout_s=0)
    with pytest.raises(ValueError):
        await sched.submit(Job("a", tokens=-1))
    assert sched.depth == 0 and await sched.submit(Job("b")) == "b:1"
    await sched.shutdown()


class LoopBreaker(BaseException):
    """Not an Exception: a failing step is caught and fails its rows; this stands for what is not (a crash)."""


async def test_a_crashed_loop_answers_everyone_says_so_and_shutdown_still_returns():
    eng = FakeEngine(2)
    sched = await started(eng, max_running=2)
    assert await sched.submit(Job("a")) == "a:1" and sched.crashed is None

    def broken(handles):
        raise LoopBreaker()

    eng.step = broken
    with pytest.raises(ShuttingDown):
        await asyncio.wait_for(sched.submit(Job("b")), 2)  # answered, never left hanging
    assert isinstance(sched.crashed, LoopBreaker)
    with pytest.raises(ShuttingDown):
        await sched.submit(Job("c"))  # refused at once from now on
    await asyncio.wait_for(sched.shutdown(), 2)
