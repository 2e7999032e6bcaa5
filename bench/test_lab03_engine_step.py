"""Lab 03's step-overhead benchmark: how much of one continuous-batching iteration is the model, at 32 running rows.

No HTTP: the server's own pieces in one process -- ContinuousBatchScheduler over TorchThreadEngine over TutorEngine,
one torch thread, as `miniserve serve --mode continuous --max-running 32` runs them -- serving every sentence of the
lab-03 payloads, all submitted at once so the 32 rows stay full while the queue lasts. Every model call (a decode
step's forward, a prefill's) is timed where the engine makes it; the scheduler reports each iteration as it ends.
Per iteration with all 32 rows running:
- wall: from the end of the previous iteration to the end of this one (what a running row waits per token);
- model: the forward passes inside it;
- engine Python: the engine calls' time minus the model's (building the step's tensors, argmax, bookkeeping, the
  server's per-call torch checks);
- scheduler: the rest (the thread hop, admission, delivering outputs on the event loop).
A prefill is part of the iteration that admits it, as in the server, so `model` includes the prefills of the
sentences that take the rows freed in the iteration before.
The issue's goal is overhead = 1 - model / wall < 10% (medians over the full iterations). The numbers land in the
benchmark JSON (`"kind": "engine_step"`), which the lab-03 report reads.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

import pytest
import torch

from miniserve.server.batching.continuous import ContinuousBatchScheduler
from miniserve.server.continuous_runner import TorchThreadEngine
from miniserve.tutor import engine as engine_mod
from miniserve.tutor.agent import GrammarTutorAgent
from miniserve.tutor.engine import TutorEngine
from miniserve.tutor.generate import Generator
from miniserve.tutor.memory import LearnerMemory
from miniserve.lab.workloads import Workload

MAX_RUNNING = 32  # the measuring point
MAX_PREFILL_TOKENS = 512  # the server's default
TORCH_THREADS = 1  # the continuous server's default (miniserve.server.config.DEFAULT_TORCH_THREADS)


class Timed:
    """Wraps an engine-module function; records (end perf_counter, seconds) of every call."""

    def __init__(self, fn: Any, calls: list[tuple[float, float]]) -> None:
        self.fn, self.calls = fn, calls

    def __call__(self, *args: Any) -> Any:
        start = time.perf_counter()
        out = self.fn(*args)
        end = time.perf_counter()
        self.calls.append((end, end - start))
        return out


def serve_all(engine: TutorEngine, sources: list[str],
              engine_calls: list[tuple[float, float]]) -> tuple[list[tuple[float, int]], float]:
    """Every source through the scheduler at once; per iteration (end perf_counter, rows stepped)."""
    iterations: list[tuple[float, int]] = []

    async def main() -> None:
        inner = TorchThreadEngine(engine, TORCH_THREADS, TutorEngine.cost, lambda kind, n: None)
        inner.prefill, inner.step = Timed(inner.prefill, engine_calls), Timed(inner.step, engine_calls)
        sched = ContinuousBatchScheduler(inner, max_running=MAX_RUNNING, max_queue=len(sources),
                                         max_prefill_tokens=MAX_PREFILL_TOKENS, cost=TutorEngine.cost,
                                         on_step=lambda rows, s: iterations.append((time.perf_counter(), rows)))
        await sched.start()
        outs = await sched.submit_all([engine.item(s) for s in sources])
        await sched.shutdown()
        assert len(outs) == len(sources)

    started = time.perf_counter()
    asyncio.run(main())
    return iterations, started


def per_iteration(iterations: list[tuple[float, int]], started: float, decode_calls: list[tuple[float, float]],
                  prefill_calls: list[tuple[float, float]],
                  engine_calls: list[tuple[float, float]]) -> list[dict[str, float]]:
    """Each iteration's wall, model (decode + prefill) and engine time (ms), with the rows it stepped: a call
    belongs to the iteration it ended in."""
    out, prev = [], started
    pending = {"decode_ms": sorted(decode_calls), "prefill_ms": sorted(prefill_calls), "engine_ms": sorted(engine_calls)}
    for end, rows in iterations:
        it = {"rows": rows, "wall_ms": (end - prev) * 1e3}
        for key, calls in pending.items():
            n = next((i for i, (t, _) in enumerate(calls) if t > end), len(calls))
            it[key] = sum(s for _, s in calls[:n]) * 1e3
            del calls[:n]
        it["model_ms"] = it["decode_ms"] + it["prefill_ms"]
        out.append(it)
        prev = end
    return out


def test_lab03_engine_step(benchmark: Any, lab03_workload: Workload, sweep_store: Any, progress: Any,
                           monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(TORCH_THREADS)
    request.addfinalizer(lambda: torch.set_num_threads(before))
    gen = Generator.load(os.environ.get("MINISERVE_WEIGHTS_DIR"))
    agent = GrammarTutorAgent(gen, LearnerMemory(":memory:"))
    sources = [s for body in lab03_workload.bodies for s in agent.begin_correction(body["sentence"]).sources]
    engine = TutorEngine(gen, MAX_RUNNING)
    decode_calls: list[tuple[float, float]] = []
    prefill_calls: list[tuple[float, float]] = []
    engine_calls: list[tuple[float, float]] = []
    monkeypatch.setattr(engine_mod, "decode_rows", Timed(engine_mod.decode_rows, decode_calls))
    monkeypatch.setattr(engine_mod, "prefill_rows", Timed(engine_mod.prefill_rows, prefill_calls))
    serve_all(engine, sources[:MAX_RUNNING * 2], [])  # warm-up: allocator, kernels, the thread pool

    runs: list[tuple[list[tuple[float, int]], float]] = []

    def run_once() -> None:
        for c in (decode_calls, prefill_calls, engine_calls):
            c.clear()
        iterations, started = serve_all(engine, sources, engine_calls)
        runs.append((iterations, started))

    benchmark.group = "lab03-engine-step"
    benchmark.pedantic(run_once, rounds=1, iterations=1)
    iterations, started = runs[0]
    its = per_iteration(iterations, started, decode_calls, prefill_calls, engine_calls)[1:]  # the first also waited for the loop to start
    full = [it for it in its if it["rows"] == MAX_RUNNING]
    assert len(full) >= 50, f"only {len(full)} iterations ran {MAX_RUNNING} rows: too few to measure"
    med = {k: statistics.median(it[k] for it in full) for k in ("wall_ms", "model_ms", "decode_ms")}
    overheads = [1 - it["model_ms"] / it["wall_ms"] for it in full]
    info = {
        "lab": "03", "kind": "engine_step", "max_running": MAX_RUNNING, "torch_threads": TORCH_THREADS,
        "max_prefill_tokens": MAX_PREFILL_TOKENS, "sentences": len(sources), "iterations": len(its),
        "full_iterations": len(full),
        "wall_ms": round(med["wall_ms"], 3), "model_ms": round(med["model_ms"], 3),
        "decode_ms": round(med["decode_ms"], 3),
        "prefill_share": round(sum(it["prefill_ms"] for it in full) / sum(it["model_ms"] for it in full), 4),
        "engine_python_ms": round(statistics.median(it["engine_ms"] - it["model_ms"] for it in full), 3),
        "scheduler_ms": round(statistics.median(it["wall_ms"] - it["engine_ms"] for it in full), 3),
        "overhead": round(statistics.median(overheads), 4),
        "overhead_total": round(1 - sum(it["model_ms"] for it in full) / sum(it["wall_ms"] for it in full), 4),
        "mean_rows": round(statistics.fmean(it["rows"] for it in its), 2),
    }
    benchmark.extra_info.update(info)
    sweep_store.add(request.node.name, benchmark.extra_info)
    progress(f"[lab03 engine step] {MAX_RUNNING} rows: iteration {info['wall_ms']:.2f} ms = model "
             f"{info['model_ms']:.2f} (decode step {info['decode_ms']:.2f}; prefills {info['prefill_share']:.0%} of "
             f"model time) + engine Python {info['engine_python_ms']:.2f} + scheduler "
             f"{info['scheduler_ms']:.2f} (medians over {len(full)} full iterations); overhead "
             f"{info['overhead']:.1%} (goal < 10%)")
