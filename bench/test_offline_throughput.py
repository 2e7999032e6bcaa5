"""Offline model throughput: the physical limit the server is compared against (no HTTP, no queueing).

`correct_batch` at batch 1..32 runs the fixed max_new_tokens for every member (by design); `correct` at batch 1
stops at end-of-sequence. requests/s = batch size / median time of one call.
"""

from __future__ import annotations

import pytest
import torch

from miniserve.tutor.agent import GrammarTutorAgent
from miniserve.lab.loadgen import default_payloads

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
    return GrammarTutorAgent.load_default(db_path=":memory:")


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
