"""Offline model throughput: the physical limit the server is compared against (no HTTP, no queueing).

`correct_batch` at batch 1..32 runs until its longest member's budget is spent (by design: a static batch pays for
its longest member); `correct` at batch 1 stops at end-of-sequence. requests/s = batch size / median time of one call.
`decode_step` is one decode step of the model at batch 1/8/32 with a typical prompt in the cache: the per-token cost
every serving mode pays. `constraint_cost` times `correct_batch` at batch 1/8/32 with decoding constrained to the
source (the product) and free (the same model), side by side: what the constraint adds to a whole generation.
Batches of 8 and 32 run to their budget either way; batch 1 stops at its end-of-sequence, so there a different
output length moves the time too. MINISERVE_WEIGHTS_DIR benchmarks another checkpoint (to compare two side by side).
"""

from __future__ import annotations

import os

import pytest
import torch

from miniserve.lab.loadgen import default_payloads
from miniserve.tutor.agent import GrammarTutorAgent
from miniserve.tutor.generate import Generator, decode_one_token, prefill
from miniserve.tutor.memory import LearnerMemory

BATCH_SIZES = [1, 2, 4, 8, 16, 32]
# On 2 cores, intra-op threads help large matmuls and hurt tiny ones; the servers pick per mode from these numbers.
THREADS = [1, 2]


@pytest.fixture(params=THREADS, ids=lambda n: f"threads{n}")
def torch_threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def agent() -> GrammarTutorAgent:
    return GrammarTutorAgent(Generator.load(os.environ.get("MINISERVE_WEIGHTS_DIR")), LearnerMemory(":memory:"))


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    return [p["sentence"] for p in default_payloads()]


def _record(benchmark, batch: int, kind: str, threads: int) -> None:
    median_s = benchmark.stats.stats.median
    benchmark.group = f"offline-{kind}"
    benchmark.extra_info.update(
        kind=kind, batch_size=batch, torch_threads=threads, requests_per_s=round(batch / median_s, 2)
    )


@pytest.mark.parametrize("batch", BATCH_SIZES)
def test_correct_batch_throughput(benchmark, agent, sentences: list[str], batch: int, torch_threads: int) -> None:
    group = [sentences[i % len(sentences)] for i in range(batch)]
    result = benchmark.pedantic(
        agent.correct_batch, args=(group, [None] * batch), rounds=max(5, 64 // batch), warmup_rounds=1
    )
    assert len(result) == batch
    _record(benchmark, batch, "correct_batch", torch_threads)


def test_correct_throughput(benchmark, agent, sentences: list[str], torch_threads: int) -> None:
    it = iter(range(10**9))
    result = benchmark.pedantic(lambda: agent.correct(sentences[next(it) % len(sentences)]), rounds=64, warmup_rounds=2)
    assert result.text
    _record(benchmark, 1, "correct", torch_threads)


@pytest.mark.parametrize("batch", [1, 8, 32])
def test_decode_step(benchmark, agent, sentences: list[str], batch: int, torch_threads: int) -> None:
    """One decode step for `batch` rows whose cache holds the payloads' median prompt (the same slot is rewritten
    each round, so every round does the same work)."""
    gen = agent.generator
    prompts = sorted(len(gen.prompt_ids(s)) for s in sentences)
    T = prompts[len(prompts) // 2]  # (median prompt, in tokens)
    with torch.inference_mode():
        idx = torch.randint(4, gen.tok.vocab_size, (batch, T))  # (B, T): token ids do not change the cost
        pos = torch.arange(T).expand(batch, T)  # (B, T)
        key_ok = torch.ones(batch, T + 1, dtype=torch.bool)  # (B, L)
        caches = gen.model.new_caches(batch, T + 1)
        tok = prefill(gen.model, idx, pos, key_ok, caches).argmax(-1)[:, None]  # (B, 1)
        next_pos = torch.full((batch, 1), T)  # (B, 1)
    benchmark.pedantic(decode_one_token, args=(gen.model, tok, next_pos, key_ok, T, caches), rounds=200,
                       warmup_rounds=10)
    median_s = benchmark.stats.stats.median
    benchmark.group = "offline-decode_step"
    benchmark.extra_info.update(kind="decode_step", batch_size=batch, torch_threads=torch_threads, prompt_tokens=T,
                                ms_per_step=round(median_s * 1e3, 3), ms_per_token=round(median_s * 1e3 / batch, 4))


@pytest.mark.parametrize("constrained", [True, False], ids=["constrained", "free"])
@pytest.mark.parametrize("batch", [1, 8, 32])
def test_constraint_cost(benchmark, agent, sentences: list[str], batch: int, constrained: bool) -> None:
    gen = agent.generator
    timed = agent if constrained else GrammarTutorAgent(
        Generator(gen.model, gen.tok, gen.max_new_tokens, constrained=False), LearnerMemory(":memory:"))
    group = [sentences[i % len(sentences)] for i in range(batch)]
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the servers run a model call
    try:
        result = benchmark.pedantic(timed.correct_batch, args=(group, [None] * batch), rounds=max(5, 64 // batch),
                                    warmup_rounds=1)
    finally:
        torch.set_num_threads(before)
    assert len(result) == batch
    benchmark.group = "offline-constraint_cost"
    benchmark.extra_info.update(kind="constraint_cost", batch_size=batch, constrained=constrained, torch_threads=1,
                                ms_per_call=round(benchmark.stats.stats.median * 1e3, 2))
