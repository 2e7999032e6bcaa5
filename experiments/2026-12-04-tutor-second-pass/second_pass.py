"""Exploration (not shipped): does a second pass fix what the first left, if it may not undo the first's edits?

    OMP_WAIT_POLICY=PASSIVE python experiments/2026-12-04-tutor-second-pass/second_pass.py [--draw-seed 1]

The model card records a plain second pass (the tutor run again on its own output) as worse: the model changes verbs
it has just fixed. Here the second pass runs only on sentences the first pass edited (a sentence the first pass left
alone would get the same output again) and its output goes through the guard as always; then each word keeps the
first pass's edit where there was one and takes the second pass's elsewhere ("locked"). Prints the tutor's exact-match
and *any valid* scores by bucket for the tutor as served, the plain second pass and the locked one (on every edited
sentence, and only on those with two or more edits), and how many inputs each second pass turns from wrong to right
and from right to wrong. Writes nothing.
"""

from __future__ import annotations

import argparse
import re
import time

from miniserve.tutor.agent import Verdict, judge, model_input, readable_sentences
from miniserve.tutor.evaluate import bucket_groups, reference_cases
from miniserve.tutor.generate import default_generator
from miniserve.tutor.sentences import splice

WORD = re.compile(r"\S+")  # the guard's words: it changes a word's letters, never the word count


def verdicts(texts: list[str], batch_size: int = 64) -> list[Verdict | None]:
    """The guard's verdict on the model's output for each sentence that fits the model; None for one that does not."""
    gen = default_generator()
    fit = [i for i, t in enumerate(texts) if gen.fits(model_input(t))]
    out: list[Verdict | None] = [None] * len(texts)
    for j in range(0, len(fit), batch_size):
        rows = fit[j : j + batch_size]
        for i, o in zip(rows, gen.generate([model_input(texts[i]) for i in rows], stop_at_eos=True), strict=True):
            out[i] = judge(texts[i], o)
    return out


def locked(source: str, first: str, second: str) -> str:
    """`first` with the second pass's word wherever the first pass left the learner's word as written."""
    src, w1, w2 = WORD.findall(source), WORD.findall(first), WORD.findall(second)
    assert len(src) == len(w1) == len(w2)
    out = first
    for k, m in reversed(list(enumerate(WORD.finditer(first)))):
        if w1[k] == src[k] and w2[k] != w1[k]:
            out = out[: m.start()] + w2[k] + out[m.end() :]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draw-seed", type=int, default=1, help="held-out draw (1: the reference draw)")
    args = p.parse_args()
    cases = reference_cases(seed=args.draw_seed)
    split = [readable_sentences(c.source) for c in cases]
    flat = [s.text for ss in split for s in ss]
    t0 = time.perf_counter()
    first = verdicts(flat)
    t1 = time.perf_counter()
    redo = [i for i, v in enumerate(first) if v is not None and v.edits]
    second = dict(zip(redo, verdicts([first[i].text for i in redo]), strict=True))  # type: ignore[union-attr]
    t2 = time.perf_counter()
    print(f"draw {args.draw_seed}: first pass {t1 - t0:.0f} s over {len(flat)} sentences; second pass {t2 - t1:.0f} s "
          f"over the {len(redo)} the first edited")

    def as_served(i: int) -> str:
        return first[i].text if first[i] is not None else flat[i]  # type: ignore[union-attr]

    def twice(i: int, lock: bool, min_edits: int = 1) -> str:
        v2 = second.get(i)
        if v2 is None or len(first[i].edits) < min_edits:  # type: ignore[union-attr]
            return as_served(i)
        return locked(flat[i], as_served(i), v2.text) if lock else v2.text

    variants = {"as served": as_served, "plain 2nd": lambda i: twice(i, False),
                "locked 2nd": lambda i: twice(i, True), "locked, >= 2 edits": lambda i: twice(i, True, 2)}
    outs: dict[str, list[str]] = {}
    for name, fn in variants.items():
        it = iter([fn(i) for i in range(len(flat))])
        outs[name] = [splice(c.source, ss, [next(it) for _ in ss]) for c, ss in zip(cases, split, strict=True)]
    groups = bucket_groups(cases)
    print(f"\ntutor exact (any valid), {len(cases):,} inputs\n{'bucket':36}{'n':>6}"
          + "".join(f"{n:>22}" for n in variants))
    for g, ix in groups.items():
        cells = [f"{100 * sum(outs[n][i] == cases[i].target for i in ix) / len(ix):.1f} "
                 f"({100 * sum(cases[i].accepts(outs[n][i]) for i in ix) / len(ix):.1f})" for n in variants]
        print(f"{g:36}{len(ix):>6}" + "".join(f"{c:>22}" for c in cells))
    base = [o == c.target for o, c in zip(outs["as served"], cases, strict=True)]
    print("\ninputs changed against the tutor as served (exact match):")
    for name in list(variants)[1:]:
        now = [o == c.target for o, c in zip(outs[name], cases, strict=True)]
        fixed = sum(n and not b for b, n in zip(base, now))
        broken = sum(b and not n for b, n in zip(base, now))
        other = sum(o != s and b == n for o, s, b, n in zip(outs[name], outs["as served"], base, now))
        print(f"  {name}: {fixed} wrong -> right, {broken} right -> wrong, {other} changed but still wrong")


if __name__ == "__main__":
    main()
