from __future__ import annotations

import asyncio
import threading
import time

import pytest

from miniserve.server.batching.static import (BatchFailed, DeadlineExceeded, QueueFull, ShuttingDown,
                                 StaticBatchScheduler)


class FakeModel:
    """batch_fn stand-in: records every batch; while `gate` is clear, a batch blocks in its worker thread."""

    def __init__(self, fail_calls: set[int] = frozenset(), wrong_count_calls: set[int] = frozenset()) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail_calls, self.wrong_count_calls = fail_calls, wrong_count_calls
        self._lock = threading.Lock()
        self.running = self.most_running = 0

    def __call__(self, items: list[int]) -> list[int]:
        with self._lock:
            call = len(self.batches)
            self.batches.append(list(items))
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            return self._answer(call, items)
        finally:
            with self._lock:
                self.running -= 1

    def _answer(self, call: int, items: list[int]) -> list[int]:
        assert self.gate.wait(5), "test left the gate closed"
        if call in self.fail_calls:
            raise RuntimeError("model exploded")
        if call in self.wrong_count_calls:
            return [x * 10 for x in items][:-1]
        return [x * 10 for x in items]


async def wait_until(cond, timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.002)


async def started(fake: FakeModel, max_batch=4, max_wait_ms=5.0, max_queue=64, **kw) -> StaticBatchScheduler:
    sched = StaticBatchScheduler(fake, max_batch, max_wait_ms, max_queue, **kw)
    await sched.start()
    return sched


async def hold_running_batch(sched: StaticBatchScheduler, fake: FakeModel, item: int = -1) -> asyncio.Task:
    """Close the gate and put one batch in flight, so later submits stay queued."""
    fake.gate.clear()
    task = asyncio.create_task(sched.submit(item))
    await wait_until(lambda: len(fake.batches) == 1 and sched.depth == 0)
    return task


async def test_batches_never_exceed_max_batch_and_results_match_requests():
    fake = FakeModel()
    sched = await started(fake, max_batch=4, max_wait_ms=20)
    results = await asyncio.gather(*(sched.submit(i) for i in range(50)))
    assert results == [i * 10 for i in range(50)]
    assert all(1 <= len(b) <= 4 for b in fake.batches)
    assert [x for b in fake.batches for x in b] == list(range(50))  # FIFO: batches keep request order
    await sched.shutdown()


async def test_lone_request_runs_after_about_max_wait():
    sched = await started(FakeModel(), max_batch=8, max_wait_ms=100)
    t0 = time.perf_counter()
    assert await sched.submit(3) == 30
    assert 0.09 <= time.perf_counter() - t0 < 0.6
    await sched.shutdown()


async def test_full_batch_runs_without_waiting_for_max_wait():
    fake = FakeModel()
    sched = await started(fake, max_batch=4, max_wait_ms=10_000)
    t0 = time.perf_counter()
    assert await asyncio.gather(*(sched.submit(i) for i in range(4))) == [0, 10, 20, 30]
    assert time.perf_counter() - t0 < 1.0 and fake.batches == [[0, 1, 2, 3]]
    await sched.shutdown()


async def test_max_wait_counts_from_enqueue_not_from_when_the_loop_is_free():
    fake = FakeModel()
    sched = await started(fake, max_batch=8, max_wait_ms=300)
    first = await hold_running_batch(sched, fake)
    late = asyncio.create_task(sched.submit(7))
    await asyncio.sleep(0.35)  # `late` has now waited longer than max_wait behind the running batch
    released = time.perf_counter()
    fake.gate.set()
    assert await late == 70
    assert time.perf_counter() - released < 0.2  # ran right away, not after another 300 ms
    assert await first == -10
    await sched.shutdown()


async def test_unbatched_configuration_runs_one_request_per_call():
    fake = FakeModel()
    sched = await started(fake, max_batch=1, max_wait_ms=0, max_queue=100)
    assert await asyncio.gather(*(sched.submit(i) for i in range(20))) == [i * 10 for i in range(20)]
    assert all(len(b) == 1 for b in fake.batches) and len(fake.batches) == 20
    await sched.shutdown()


async def test_queue_full_is_immediate_and_memory_bounded():
    fake = FakeModel()
    sched = await started(fake, max_batch=2, max_wait_ms=0, max_queue=5)
    first = await hold_running_batch(sched, fake)
    queued = [asyncio.create_task(sched.submit(i)) for i in range(100)]
    await asyncio.sleep(0.01)
    rejected = [t for t in queued if t.done() and isinstance(t.exception(), QueueFull)]
    assert len(rejected) == 95 and sched.depth == 5
    with pytest.raises(QueueFull):
        await sched.submit(999)
    fake.gate.set()
    accepted = [t for t in queued if t not in rejected]
    assert await asyncio.gather(*accepted) == [0, 10, 20, 30, 40]
    assert await first == -10 and await sched.submit(5) == 50  # room again once drained
    await sched.shutdown()


async def test_cancelled_requests_are_skipped_and_do_not_crash_the_loop():
    fake = FakeModel()
    sched = await started(fake, max_batch=8, max_wait_ms=0)
    running = await hold_running_batch(sched, fake)
    queued = {i: asyncio.create_task(sched.submit(i)) for i in (1, 2, 3)}
    await wait_until(lambda: sched.depth == 3)
    queued[2].cancel()
    running.cancel()  # its batch is already running: the result is set on a cancelled future
    await wait_until(lambda: sched.depth == 2)
    fake.gate.set()
    assert await asyncio.wait_for(asyncio.gather(queued[1], queued[3]), 2) == [10, 30]
    assert queued[2].cancelled() and running.cancelled()
    assert fake.batches[1] == [1, 3]  # the cancelled request never ran
    assert await sched.submit(4) == 40
    await sched.shutdown()


async def test_failing_batch_fails_only_its_requests_then_serving_continues():
    fake = FakeModel(fail_calls={0}, wrong_count_calls={1})
    sizes: list[int] = []
    sched = await started(fake, max_batch=2, max_wait_ms=50, on_batch=lambda n, s: sizes.append(n))
    failed = await asyncio.wait_for(asyncio.gather(sched.submit(1), sched.submit(2), return_exceptions=True), 2)
    assert all(isinstance(e, BatchFailed) and isinstance(e.cause, RuntimeError) for e in failed)
    assert "model exploded" in str(failed[0])
    wrong = await asyncio.wait_for(asyncio.gather(sched.submit(3), return_exceptions=True), 2)
    assert isinstance(wrong[0], BatchFailed) and isinstance(wrong[0].cause, ValueError)
    assert await asyncio.gather(sched.submit(4), sched.submit(5)) == [40, 50]
    assert sizes == [2, 1, 2]
    await sched.shutdown()


async def test_on_batch_exception_does_not_kill_the_loop():
    def broken_metrics(size: int, run_s: float) -> None:
        raise RuntimeError("metrics down")

    sched = await started(FakeModel(), max_wait_ms=0, on_batch=broken_metrics)
    assert await sched.submit(1) == 10 and await sched.submit(2) == 20
    await sched.shutdown()


async def test_deadline_while_queued_is_exceeded_but_a_running_request_is_answered():
    fake = FakeModel()
    sched = await started(fake, max_batch=1, max_wait_ms=0)
    fake.gate.clear()
    in_batch = asyncio.create_task(sched.submit(1, timeout_s=0.05))
    await wait_until(lambda: len(fake.batches) == 1)
    with pytest.raises(DeadlineExceeded):
        await asyncio.wait_for(sched.submit(2, timeout_s=0.05), 1)  # expires while batch 1 still holds the model
    assert sched.depth == 0
    await asyncio.sleep(0.05)  # in_batch is now past its deadline too, but it is running
    fake.gate.set()
    assert await in_batch == 10
    assert await sched.submit(3) == 30 and fake.batches == [[1], [3]]  # 2 never ran
    await sched.shutdown()


async def test_shutdown_drains_queued_work_rejects_new_work_and_is_idempotent():
    fake = FakeModel()
    sched = await started(fake, max_batch=3, max_wait_ms=10_000)
    fake.gate.clear()
    running = [asyncio.create_task(sched.submit(-1)) for _ in range(3)]  # a full batch starts without max_wait
    await wait_until(lambda: len(fake.batches) == 1)
    queued = [asyncio.create_task(sched.submit(i)) for i in range(7)]
    await wait_until(lambda: sched.depth == 7)
    stopping = asyncio.create_task(sched.shutdown())
    await asyncio.sleep(0.01)
    with pytest.raises(ShuttingDown):
        await sched.submit(100)
    assert not stopping.done()
    fake.gate.set()
    t0 = time.perf_counter()
    await asyncio.wait_for(stopping, 2)
    assert time.perf_counter() - t0 < 1.0  # draining does not wait out max_wait
    assert [t.result() for t in queued] == [i * 10 for i in range(7)] and [t.result() for t in running] == [-10] * 3
    assert all(len(b) <= 3 for b in fake.batches)
    await sched.shutdown()  # second call returns at once
    with pytest.raises(ShuttingDown):
        await sched.submit(1)


async def test_many_concurrent_submitters_each_answered_exactly_once():
    fake = FakeModel()
    sched = await started(fake, max_batch=16, max_wait_ms=2, max_queue=1000)
    results = await asyncio.wait_for(asyncio.gather(*(sched.submit(i) for i in range(1000))), 8)
    assert results == [i * 10 for i in range(1000)]
    assert sorted(x for b in fake.batches for x in b) == list(range(1000))
    assert max(len(b) for b in fake.batches) <= 16
    await sched.shutdown()


async def test_max_running_batches_run_at_once_and_never_more():
    fake = FakeModel()
    sched = await started(fake, max_batch=2, max_wait_ms=0, max_running=2)
    fake.gate.clear()
    tasks = [asyncio.create_task(sched.submit(i)) for i in range(7)]
    # Two engine loops: two batches enter the model together; the rest wait in the queue, not in a third batch.
    await wait_until(lambda: fake.running == 2 and sched.depth == 3)
    await asyncio.sleep(0.02)
    assert len(fake.batches) == 2 and fake.most_running == 2
    fake.gate.set()
    assert await asyncio.wait_for(asyncio.gather(*tasks), 2) == [i * 10 for i in range(7)]
    assert fake.most_running == 2 and all(len(b) <= 2 for b in fake.batches)
    assert sorted(x for b in fake.batches for x in b) == list(range(7))
    await sched.shutdown()


async def test_shutdown_with_several_loops_drains_everything_once():
    fake = FakeModel()
    sched = await started(fake, max_batch=3, max_wait_ms=10_000, max_running=3)
    fake.gate.clear()
    tasks = [asyncio.create_task(sched.submit(i)) for i in range(20)]
    await wait_until(lambda: fake.running == 3)
    stopping = asyncio.create_task(sched.shutdown())
    await asyncio.sleep(0.01)
    fake.gate.set()
    await asyncio.wait_for(stopping, 2)
    assert [t.result() for t in tasks] == [i * 10 for i in range(20)]
    assert sorted(x for b in fake.batches for x in b) == list(range(20))
    with pytest.raises(ShuttingDown):
        await sched.submit(1)


def test_constructor_rejects_bad_max_running():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            StaticBatchScheduler(FakeModel(), 2, 5, 10, max_running=bad)


@pytest.mark.parametrize("args", [(0, 5, 10), (2, -1, 10), (2, float("nan"), 10), (4, 5, 3), (1.5, 5, 10),
                                  (True, 5, 10)])
def test_constructor_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        StaticBatchScheduler(FakeModel(), *args)


async def test_submit_validates_timeout_and_requires_start():
    sched = StaticBatchScheduler(FakeModel(), 2, 5, 10)
    with pytest.raises(RuntimeError):
        await sched.submit(1)
    await sched.start()
    with pytest.raises(ValueError):
        await sched.submit(1, timeout_s=0)
    await sched.shutdown()
