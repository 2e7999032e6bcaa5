"""Generation budgets sized per row from the source's length, on the shipped model."""

from __future__ import annotations

import pytest

from miniserve.tutor.corpus import generate_pairs
from miniserve.tutor.generate import SLACK_TOKENS, Generator
from tests.tutor.test_agent import WEIGHTS_DIR, needs_weights


@pytest.fixture(scope="module")
def gen() -> Generator:
    return Generator.load(WEIGHTS_DIR)


@needs_weights
def test_a_rows_budget_follows_its_own_source(gen: Generator) -> None:
    short, long = gen.prompt_ids("I eat."), gen.prompt_ids("my brother has went to the old market with his friends")
    assert gen.budget(short) == len(short) - 2 + SLACK_TOKENS + 1 < gen.budget(long)
    assert gen.budget(long) <= gen.max_new_tokens and len(long) + gen.budget(long) <= gen.model.cfg.max_seq_len
    # a source whose correction could not end within its budget is not given to the model
    assert not gen.fits("x " * 200) and gen.fits("He goed home.")  # 200 tokens: over max_new_tokens


@needs_weights
def test_rows_of_very_different_lengths_in_one_batch_equal_each_alone(gen: Generator) -> None:
    pairs = generate_pairs(200, "heldout", seed=3)
    sources = sorted({p.source for p in pairs if gen.fits(p.source)}, key=len)
    batch = sources[:4] + sources[-4:] + ["Go", "i eat"]  # the shortest and the longest held-out sentences
    assert max(map(len, batch)) > 4 * min(map(len, batch))
    alone = [gen.generate([s])[0] for s in batch]
    assert gen.generate(batch, stop_at_eos=True) == alone
    # the static-batching regime (run to the longest budget) trims each row at its own end: same outputs
    assert gen.generate(batch, stop_at_eos=False) == alone
