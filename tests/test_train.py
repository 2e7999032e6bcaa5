from __future__ import annotations

import random

import pytest

from miniserve.corpus import generate_pairs
from miniserve.generate import Generator
from miniserve.train import TrainConfig, length_grouped_batches, make_batch


@pytest.fixture(scope="module")
def tok():
    return Generator.load().tok


def test_length_grouped_batches_are_full_and_cut_padding(tok) -> None:
    pool = generate_pairs(2000, "train", seed=0)
    cfg = TrainConfig(batch_size=32, length_group=8, bpe_dropout=0.0)
    batches = length_grouped_batches(tok, pool, cfg, random.Random(0))
    grouped = [next(batches) for _ in range(16)]
    assert all(len(b) == 32 for b in grouped)

    def fill(batch) -> float:  # real tokens / padded slots
        x, _ = make_batch(batch, tok.pad_id)
        return sum(len(ids) - 1 for ids, _ in batch) / x.numel()

    plain = length_grouped_batches(tok, pool, TrainConfig(batch_size=32, length_group=1, bpe_dropout=0.0),
                                   random.Random(0))
    ungrouped = [next(plain) for _ in range(16)]
    assert sum(map(fill, grouped)) / 16 > 0.85 > sum(map(fill, ungrouped)) / 16


def test_config_rejects_nonsense() -> None:
    for bad in ({"length_group": 0}, {"steps": 0}, {"lr_min": 0.0}):
        with pytest.raises(ValueError):
            TrainConfig(**bad)
