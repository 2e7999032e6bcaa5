"""How long a training step of the shipped recipe takes on this host, in bf16 autocast and in fp32.

    OMP_WAIT_POLICY=PASSIVE python bench/train_step_precision.py [--steps 8] [--rounds 3]

Run it alone on the machine, before a `miniserve train` (40 min to several hours, by the host): it says which
`--precision` to train in here and roughly how long 7,000 steps take. The precisions run in turns (bf16, fp32, bf16,
...) on the same batches of learner-length pairs, drawn and formed by length as training draws them, from a fresh
model each turn, so a slow spell of the host reaches both. Prints the median step per precision; writes nothing.
Read the ratio: a few batches' mean follows their lengths (training's 16-batch groups run ~0.16 s under 60 tokens
and ~0.9 s over 120 on a fast host), and training ran slower than this script on the one host where both were timed
(2026-12-03, AVX2: 1.15 s/step over its first 200 fp32 steps against 0.61–0.73 here; drawing and encoding a batch,
which this script leaves out, took 15 ms, so not that; the rest is unexplained). So the minutes printed for a whole
run are a lower bound.
Not collected by pytest: a timing is a benchmark's, never a unit test's.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

from miniserve.tutor.generate import Generator
from miniserve.tutor.model import MiniGPT, ModelConfig
from miniserve.tutor.train import (
    MODEL_RECIPE, TrainConfig, length_grouped_batches, native_bf16, train_step, training_pool,
)  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=8, help="timed steps per turn (default 8)")
    p.add_argument("--rounds", type=int, default=3, help="turns per precision (default 3)")
    p.add_argument("--pairs", type=int, default=20_000, help="training pairs the batches are drawn from")
    args = p.parse_args()
    torch.manual_seed(0)
    tok = Generator.load().tok  # the shipped tokenizer: the same token lengths as a real run
    cfg = TrainConfig()
    model_cfg = ModelConfig(vocab_size=tok.vocab_size, **MODEL_RECIPE)
    batches_iter = length_grouped_batches(tok, training_pool(cfg, args.pairs), cfg, random.Random(0),
                                          model_cfg.max_seq_len)
    batches = [next(batches_iter) for _ in range(args.steps)]
    times: dict[str, list[float]] = {"bf16": [], "fp32": []}
    for _ in range(args.rounds):
        for precision in times:
            run_cfg = TrainConfig(precision=precision)
            model = MiniGPT(model_cfg)
            opt = torch.optim.AdamW(model.parameters(), lr=run_cfg.lr)
            train_step(model, opt, batches[0], run_cfg, tok.pad_id)  # warm-up: first-call allocations
            t0 = time.perf_counter()
            for batch in batches:
                train_step(model, opt, batch, run_cfg, tok.pad_id)
            times[precision].append((time.perf_counter() - t0) / len(batches))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}, bf16 instructions: {native_bf16()}")
    print(f"bf16 / fp32: {statistics.median(times['bf16']) / statistics.median(times['fp32']):.2f}x")
    for precision, ts in times.items():
        med = statistics.median(ts)
        turns = ", ".join(f"{t:.3f}" for t in ts)
        print(f"{precision}: {med:.3f} s/step (median of {len(ts)} turns of {args.steps} steps; {turns}) "
              f"-> at least ~{med * cfg.steps / 60:.0f} min for {cfg.steps:,} steps")


if __name__ == "__main__":
    main()
