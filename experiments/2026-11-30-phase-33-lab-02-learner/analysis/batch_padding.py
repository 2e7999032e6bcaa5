"""How long a static batch runs against what its rows need, on the frozen and the learner payload sets.

Sentences as the tutor splits them, each a model row of its source's tokens (shipped tokenizer); a batch of b
requests runs as many decode steps as its longest row (plus the same few tokens of slack for every row, left out
here). 2,000 random batches per size, seed 0. Run from the repository root:
    python experiments/2026-11-30-phase-33-lab-02-learner/analysis/batch_padding.py > …/analysis/batch_padding.txt
"""
import json
import random
import statistics as st
from pathlib import Path

from miniserve.tutor.agent import model_input
from miniserve.tutor.sentences import split_sentences
from miniserve.tutor.tokenizer import ByteBPETokenizer

tok = ByteBPETokenizer.load(Path("miniserve/tutor/weights/tokenizer.json"))
for name in ("lab02", "learner"):
    texts = [p["sentence"] for p in json.loads(Path(f"bench/payloads/{name}.json").read_text())["payloads"]]
    reqs = [[len(tok.encode(model_input(s.text))) for s in split_sentences(t)] for t in texts]
    rows = [n for r in reqs for n in r]
    print(f"{name}: {len(reqs)} requests, {len(rows) / len(reqs):.3f} rows/request, tokens per row median "
          f"{st.median(rows)} mean {st.mean(rows):.1f} max {max(rows)}; a request alone runs its longest row: "
          f"mean {st.mean(max(r) for r in reqs):.1f} steps")
    rng = random.Random(0)
    for b in (4, 8, 16, 32, 50):
        steps, useful = [], []
        for _ in range(2000):
            batch = [n for r in rng.sample(reqs, b) for n in r]
            steps.append(max(batch))
            useful.append(st.mean(batch) / max(batch))
        print(f"  batch of {b} requests: {st.mean(len(r) for r in reqs) * b:.0f} rows expected, steps (longest row) "
              f"median {st.median(steps)}, share of row-steps doing useful work {st.mean(useful):.2f}")
