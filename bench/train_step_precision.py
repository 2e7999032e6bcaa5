"""How long a training step of the shipped recipe takes on this host, in bf16 autocast and in fp32.

    OMP_WAIT_POLICY=PASSIVE python bench/train_step_precision.py [--groups 16] [--per-bin 2] [--rounds 3]

Run it alone on the machine, before a `miniserve train` (40 min to several hours, by the host): it says which
`--precision` to train in here and roughly how long 7,000 steps take. A step's time follows its batch's longest
sequence, steeply (fp32 on 2026-12-03's AVX2 host: ~0.3 s under 50 tokens, ~2 s at 150-200, ~4 s over 200, where
1 batch in 15 lies and a quarter of the time goes), so a few batches drawn at random misjudge the mean: this script
first timed 8 batches of one length group and said 0.65 s/step where training ran 1.15. Now it draws `--groups`
length groups as training does, bins their batches by longest sequence, times `--per-bin` batches of each bin, and
weighs each bin by its share of the draw: a stratified estimate of the mean step (on 128 batches timed one by one,
the plain mean was 0.86 s/step and this estimate, from the same timings, 0.83). The precisions run in turns (bf16,
fp32, bf16, ...) on the same batches, from a fresh model each turn warmed up on the longest batch, so a slow spell
of the host reaches both (where both get every turn). Prints the median estimate per precision; writes nothing.
Drawing and encoding a batch (~15 ms) is left out. On a CPU without bf16 instructions bf16 gets one turn only
(emulated, it is ~20x slower: there the script takes ~7 min, instead of ~17 with three).
Read the minutes as a floor. On that host this script said 0.95 s/step (~111 min); a version warmed up on a short
batch, drawing 8 groups, said 0.74-0.80 an hour earlier, and the same picked batches took 0.90 in a process that had
already stepped through 128 batches; `miniserve train`'s first 200 steps took 1.15. Which of warm-up, draw and the
host's own swings (MODEL.md) made the difference was not separated.
Not collected by pytest: a timing is a benchmark's, never a unit test's.
"""

from __future__ import annotations

import argparse
import bisect
import random
import statistics
import time

import torch

from miniserve.tutor.generate import Generator
from miniserve.tutor.model import MiniGPT, ModelConfig
from miniserve.tutor.train import (
    MODEL_RECIPE, Example, TrainConfig, length_grouped_batches, native_bf16, train_step, training_pool,
)  # fmt: skip

BIN_EDGES_TOKENS = (50, 100, 150, 200)  # a batch's longest sequence (prompt + target), as `make_batch` pads to it


def strata(batches: list[list[Example]], per_bin: int) -> list[tuple[float, list[list[Example]]]]:
    """(share of `batches`, up to `per_bin` of them spread evenly across the bin by length) for each non-empty bin."""
    bins: list[list[list[Example]]] = [[] for _ in range(len(BIN_EDGES_TOKENS) + 1)]
    by_length = sorted(((max(len(e[0]) for e in b), b) for b in batches), key=lambda nb: nb[0])
    for n, b in by_length:  # shortest first, so every bin is in length order too
        bins[bisect.bisect_right(BIN_EDGES_TOKENS, n)].append(b)
    out = []
    for members in filter(None, bins):
        k = min(per_bin, len(members))
        out.append((len(members) / len(batches), [members[(2 * i + 1) * len(members) // (2 * k)] for i in range(k)]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--groups", type=int, default=16, help="length groups drawn to bin (default 16)")
    p.add_argument("--per-bin", type=int, default=2, help="timed batches per length bin (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="turns per precision (default 3)")
    p.add_argument("--pairs", type=int, default=20_000, help="training pairs the batches are drawn from")
    args = p.parse_args()
    if min(args.groups, args.per_bin, args.rounds, args.pairs) < 1:
        p.error("--groups, --per-bin, --rounds and --pairs must be at least 1")
    torch.manual_seed(0)
    tok = Generator.load().tok  # the shipped tokenizer: the same token lengths as a real run
    cfg = TrainConfig()
    model_cfg = ModelConfig(vocab_size=tok.vocab_size, **MODEL_RECIPE)
    batches_iter = length_grouped_batches(tok, training_pool(cfg, args.pairs), cfg, random.Random(0),
                                          model_cfg.max_seq_len)
    drawn = [next(batches_iter) for _ in range(args.groups * cfg.length_group)]
    bins = strata(drawn, args.per_bin)
    estimates: dict[str, list[float]] = {"bf16": [], "fp32": []}
    native = native_bf16()
    for turn in range(args.rounds):
        for precision in estimates:
            if precision == "bf16" and turn and not native:
                continue  # emulated bf16 is ~20x fp32 (10+ s a step): one turn says so, three take ~17 min
            run_cfg = TrainConfig(precision=precision)
            model = MiniGPT(model_cfg)
            opt = torch.optim.AdamW(model.parameters(), lr=run_cfg.lr)
            train_step(model, opt, bins[-1][1][-1], run_cfg, tok.pad_id)  # warm-up: the largest allocations
            mean = 0.0
            for share, members in bins:
                ts = []
                for batch in members:
                    t0 = time.perf_counter()
                    train_step(model, opt, batch, run_cfg, tok.pad_id)
                    ts.append(time.perf_counter() - t0)
                mean += share * statistics.mean(ts)
            estimates[precision].append(mean)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}, bf16 instructions: {native}")
    print(f"{len(drawn)} batches drawn; by longest sequence: " + ", ".join(
        f"{100 * share:.0f}% (timed {len(m)})" for share, m in bins) + f" in bins split at {BIN_EDGES_TOKENS} tokens")
    print(f"bf16 / fp32: {statistics.median(estimates['bf16']) / statistics.median(estimates['fp32']):.2f}x")
    for precision, ts in estimates.items():
        med = statistics.median(ts)
        turns = ", ".join(f"{t:.3f}" for t in ts)
        print(f"{precision}: ~{med:.3f} s/step (median of {len(ts)} turn(s)' weighted means; {turns}) "
              f"-> at least ~{med * cfg.steps / 60:.0f} min for {cfg.steps:,} steps")


if __name__ == "__main__":
    main()
