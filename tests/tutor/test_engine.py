"""TutorEngine (continuous batching) on the shipped model: rows join and leave a reserved KV cache at different
steps, and every sentence still comes out token for token as `Generator.generate([s])` alone."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import miniserve
from miniserve.server.batching.continuous import ContinuousBatchScheduler
from miniserve.tutor import engine as engine_mod
from miniserve.tutor.agent import GrammarTutorAgent, correction_to_dict
from miniserve.tutor.corpus import generate_pairs
from miniserve.tutor.engine import (SentenceItem, SentenceOutput, TutorEngine, decode_rows, move_row,
                                    prefill_rows)
from miniserve.tutor.generate import Generator
from miniserve.tutor.memory import LearnerMemory

# As in test_agent.py: the shipped checkpoint, or MINISERVE_WEIGHTS_DIR to test a fresh one before it ships.
WEIGHTS_DIR = os.environ.get("MINISERVE_WEIGHTS_DIR") or str(Path(miniserve.__file__).parent / "tutor" / "weights")
pytestmark = pytest.mark.skipif(not (Path(WEIGHTS_DIR) / "model.safetensors").exists(),
                                reason=f"no trained checkpoint yet ({WEIGHTS_DIR}/model.safetensors missing)")


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # Two OpenMP threads on this shared 2-core box spin against each other on a one-row decode (seen: ~100x
    # slower per sentence alone); one thread keeps the module in seconds. Both sides of every comparison run alike.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def gen() -> Generator:
    if os.environ.get("MINISERVE_WEIGHTS_DIR"):
        return Generator.load(WEIGHTS_DIR)
    from miniserve.tutor.generate import default_generator

    return default_generator()


def alone_ids(gen: Generator, source: str, steps: int | None = None) -> list[int]:
    """What Generator.generate([source]) decodes, as token ids (with its own budget unless `steps` is given)."""
    prompt = gen.prompt_ids(source)
    return gen._generate_ids([prompt], steps or gen.budget(prompt), True, [gen.constraint(source)])[0]


def run(engine: TutorEngine, items: list[SentenceItem], arrivals: int = 2) -> tuple[list[SentenceOutput], dict]:
    """A minimal scheduler: FIFO into free rows, at most `arrivals` prefilled together per iteration, then one step
    of every running row; a finished row is released at once. Returns the outputs in item order and, per item,
    (iteration joined, iteration left, cache row)."""
    waiting, running = deque(enumerate(items)), []
    out: list[SentenceOutput | None] = [None] * len(items)
    trace: dict[int, tuple[int, int, int]] = {}
    it = 0
    while waiting or running:
        new = [waiting.popleft() for _ in range(min(arrivals, engine.free_rows, len(waiting)))]
        running += [(i, h, it) for (i, _), h in zip(new, engine.prefill([item for _, item in new]))]
        still = []
        for (i, h, joined), o in zip(running, engine.step([h for _, h, _ in running])):
            if o is None:
                still.append((i, h, joined))
            else:
                out[i], trace[i] = o, (joined, it, h.row)
                engine.release([h])
        running, it = still, it + 1
    assert engine.free_rows == engine.max_running
    return out, trace  # type: ignore[return-value]


TEXTS = [  # single sentences of many lengths, then inputs of several sentences (one too long for the model)
    *[p.source for p in generate_pairs(44, "heldout", seed=23)],
    "He goed to school", "i eat", "Go", "The sky is blue.",
    "They have ate all the cookies at Zoë's birthday party in Kraków!",
    "Yesterday I goed home. She has went to Gdańsk. The sky is blue.",
    "We eated pizza.\nMy brother is a doctor in Wrocław. He don't like it!",
    "She walk to work every day. " + "This one goes on and on " * 12 + ". I has a cat.",
]


def test_continuous_rows_equal_each_sentence_alone(gen: Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    moves = []
    monkeypatch.setattr(engine_mod, "move_row", lambda *a: (moves.append(a), move_row(*a)))
    agent = GrammarTutorAgent(gen, LearnerMemory(":memory:"))
    inflight = [agent.begin_correction(t) for t in TEXTS]
    sources = [s for f in inflight for s in f.sources]
    assert len(sources) >= 50 and len({len(gen.prompt_ids(s)) for s in sources}) > 12
    engine = TutorEngine(gen, max_running=5)
    outs, trace = run(engine, [engine.item(s) for s in sources])

    for s, o in zip(sources, outs):
        assert o.ids == alone_ids(gen, s), s
        assert o.text == gen.generate([s])[0], s
    # rows really came and went: many join and leave steps, joins while others ran, every row reused
    assert len({j for j, _, _ in trace.values()}) > 10 and len({lv for _, lv, _ in trace.values()}) > 10
    assert any(j1 < j2 <= l1 < l2 for j1, l1, _ in trace.values() for j2, l2, _ in trace.values())
    assert all(sum(r == row for _, _, r in trace.values()) > 3 for row in range(5))
    assert len(moves) > 10  # rows left from the middle, and the last row moved into their place

    # the agent side: a request finished from its sentences' outputs is what correct() returns
    pending = iter(outs)
    for text, f in zip(TEXTS, inflight):
        got = agent.finish_correction(f, [next(pending).text for _ in f.sources])
        assert correction_to_dict(got) == correction_to_dict(agent.correct(text)), text  # edits' offsets too


def test_finish_correction_records_to_memory_like_correct(gen: Generator) -> None:
    texts = ["He goed to school. She goed home.", "I eated it.", "The sky is blue.", "He goed away."]
    a, b = (GrammarTutorAgent(gen, LearnerMemory(":memory:")) for _ in range(2))
    engine = TutorEngine(gen, max_running=3)
    for text in texts:
        f = a.begin_correction(text, "ana")
        outs, _ = run(engine, [engine.item(s) for s in f.sources])
        got = a.finish_correction(f, [o.text for o in outs])
        assert correction_to_dict(got) == correction_to_dict(b.correct(text, "ana"))
    with pytest.raises(ValueError, match="outputs"):
        a.finish_correction(a.begin_correction("He goed."), [])


def test_per_row_cache_matches_full_recomputation(gen: Generator) -> None:
    """Rows join, leave (the last row moving into the freed one) and reuse rows mid-run; at every prefill and
    decode step each row's logits match the model run on that row's whole sequence without a cache."""
    model = gen.model
    srcs = ["She has went to the big market with her two little brothers.", "i eat",
            "We goed to the park and played football all afternoon.", "He walk."]
    seqs = {n: gen.prompt_ids(s) for n, s in enumerate(srcs)}
    caches = model.new_caches(4, model.cfg.max_seq_len)
    rows: list[int] = []  # sentence in each cache row, packed as the engine keeps them
    worst = 0.0

    def check(names: list[int], logits: torch.Tensor) -> None:
        nonlocal worst
        for n, lg in zip(names, logits):
            full = model(torch.tensor([seqs[n]]))[0, -1]  # (V,) causal pass, no cache, no mask
            torch.testing.assert_close(lg, full, rtol=1e-4, atol=1e-4)
            worst = max(worst, float((lg - full).abs().max()))
            seqs[n].append(int(lg.argmax()))  # greedy: the next token is fed back

    def prefill(names: list[int]) -> None:
        first = len(rows)
        rows.extend(names)
        T = max(len(seqs[n]) for n in names)
        idx = torch.tensor([seqs[n] + [gen.tok.pad_id] * (T - len(seqs[n])) for n in names])
        check(names, prefill_rows(model, idx, torch.tensor([len(seqs[n]) for n in names]), first, caches))

    def decode() -> None:
        tok = torch.tensor([[seqs[n][-1]] for n in rows])
        lengths = torch.tensor([len(seqs[n]) - 1 for n in rows])  # the newest token is not cached yet
        check(rows, decode_rows(model, tok, lengths, caches))

    def leave(n: int) -> None:
        i, last = rows.index(n), rows.pop()
        if last != n:
            move_row(caches, len(rows), i, len(seqs[last]) - 1)
            rows[i] = last

    with torch.inference_mode():
        prefill([0, 1])  # a long and a short prompt together
        for _ in range(3):
            decode()
        prefill([2])  # joins while 0 and 1 are mid-generation
        for _ in range(4):
            decode()
        leave(0)  # the first row leaves: the last one (2) moves into it
        assert rows == [2, 1]
        prefill([3])  # row 2 held sentence 2's longer keys: stale now, reused by a shorter prompt
        for _ in range(5):
            decode()
    assert worst < 1e-4


def test_a_released_row_is_reused_without_leakage(gen: Generator) -> None:
    engine = TutorEngine(gen, max_running=2)
    long_s, short_s, new_s = ("They have ate all the cookies at the birthday party yesterday!", "He goed to school.",
                              "i eat")
    a, b = engine.prefill([engine.item(long_s), engine.item(short_s)])
    while not b.done:
        assert engine.step([a, b])[0] is None
    out_b = engine.output(b)
    engine.release([b])
    assert engine.free_rows == 1 and b.length > len(gen.prompt_ids(new_s))  # stale keys beyond the newcomer's
    (c,) = engine.prefill([engine.item(new_s)])
    assert c.row == b.row
    outs = {}
    while len(outs) < 2:
        live = [r for r in (a, c) if r not in outs]
        for r, o in zip(live, engine.step(live)):
            if o is not None:
                outs[r] = o
    engine.release([a, c])
    assert out_b.ids == alone_ids(gen, short_s)
    assert outs[c].ids == alone_ids(gen, new_s) and outs[a].ids == alone_ids(gen, long_s)
    with pytest.raises(ValueError, match="released"):
        engine.step([c])


def test_a_row_left_out_of_a_step_is_unharmed(gen: Generator) -> None:
    """A step runs cache rows [0, n) as one slice: a row in there that is not stepped gets a dummy write at its next
    slot, which its next real step overwrites. Its output must not change."""
    engine = TutorEngine(gen, max_running=3)
    srcs = ["She has went to the big market with her two little brothers.", "He goed to school.", "i eat"]
    a, b, c = engine.prefill([engine.item(s) for s in srcs])
    for _ in range(3):
        engine.step([c])  # rows 0 and 1 sit in the slice, not stepped
    outs = {}
    while len(outs) < 3:
        live = [r for r in (a, b, c) if r not in outs]
        for r, o in zip(live, engine.step(live)):
            if o is not None:
                outs[r] = o
                engine.release([r])
    assert [outs[r].ids for r in (a, b, c)] == [alone_ids(gen, s) for s in srcs]
    assert engine.free_rows == 3


def test_prefill_together_equals_one_by_one(gen: Generator) -> None:
    srcs = ["i eat", "She has went to the big market with her two little brothers.", "He goed to school.",
            "We eated pizza at Zoë's house."]
    together, apart = TutorEngine(gen, max_running=4), TutorEngine(gen, max_running=4)
    rows_t = together.prefill([together.item(s) for s in srcs])
    rows_a = [apart.prefill([apart.item(s)])[0] for s in srcs]
    assert [r.row for r in rows_t] == [r.row for r in rows_a] == [0, 1, 2, 3]
    assert [r.ids for r in rows_t] == [r.ids for r in rows_a]
    for r in rows_t:  # every layer's keys and values of each prompt, padding slots aside
        for ct, ca in zip(together.caches, apart.caches):
            torch.testing.assert_close(ct.k[r.row, :, : r.length], ca.k[r.row, :, : r.length], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(ct.v[r.row, :, : r.length], ca.v[r.row, :, : r.length], rtol=1e-5, atol=1e-5)
    # and the first logits themselves
    model, prompts = gen.model, [gen.prompt_ids(s) for s in srcs]
    T = max(map(len, prompts))
    idx = torch.tensor([p + [gen.tok.pad_id] * (T - len(p)) for p in prompts])
    lengths = torch.tensor([len(p) for p in prompts])
    joint = prefill_rows(model, idx, lengths, 0, model.new_caches(4, T))
    for i, p in enumerate(prompts):
        single = prefill_rows(model, torch.tensor([p]), lengths[i : i + 1], 0, model.new_caches(1, T))
        torch.testing.assert_close(joint[i], single[0], rtol=1e-4, atol=1e-4)
    # the rest of the run agrees too
    for rt, ra in zip(rows_t, rows_a):
        while not rt.done:
            together.step([rt])
            apart.step([ra])
        assert rt.ids == ra.ids


def test_budget(gen: Generator) -> None:
    L = gen.model.cfg.max_seq_len
    engine = TutorEngine(gen, max_running=2)
    item = engine.item("He goed to school.")
    assert item.budget == gen.budget(list(item.prompt))  # one budget rule for the static and continuous paths
    with pytest.raises(ValueError, match="does not fit"):
        engine.item("go " * L)
    s = "She has went to the big market with her two little brothers."
    for budget in (1, 3):  # a row stops at its own budget exactly as generate(max_new_tokens=budget) does
        (row,) = engine.prefill([dataclasses.replace(engine.item(s), budget=budget)])
        steps = 0
        while (o := engine.step([row])[0]) is None:
            steps += 1
        engine.release([row])
        assert o.ids == alone_ids(gen, s, budget) and len(o.ids) == budget and not o.ended
        assert o.text == gen.generate([s], max_new_tokens=budget)[0] and steps == max(budget - 2, 0)


def test_step_corrections_reports_each_rows_newest_token(gen: Generator) -> None:
    engine = TutorEngine(gen, max_running=2)
    rows = engine.prefill([engine.item("He goed to school."), engine.item("i eat")])
    streams: list[list[int]] = [[r.ids[0]] for r in rows]  # prefill's first token
    live = list(range(2))
    while live:
        for i, (tok, done) in zip(list(live), engine.step_corrections([rows[i] for i in live])):
            streams[i].append(tok)
            if done:
                live.remove(i)
    assert [s[: s.index(gen.tok.eos_id)] for s in streams] == [alone_ids(gen, "He goed to school."),
                                                               alone_ids(gen, "i eat")]


def test_prefill_allocates_nothing_when_it_cannot_or_fails(gen: Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = TutorEngine(gen, max_running=2)
    items = [engine.item(s) for s in ("i eat", "He goed.", "We eated.")]
    with pytest.raises(RuntimeError, match="free rows"):
        engine.prefill(items)
    assert engine.free_rows == 2 and engine.prefill([]) == []

    def boom(*args: object) -> None:
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(engine_mod, "prefill_rows", boom)
    with pytest.raises(RuntimeError, match="exploded"):
        engine.prefill(items[:2])
    assert engine.free_rows == 2
    with pytest.raises(ValueError):
        TutorEngine(gen, max_running=0)


async def test_under_the_continuous_scheduler(gen: Generator) -> None:
    """The engine fits server.batching's ContinuousEngine Protocol: through the real scheduler, outputs as alone."""
    engine = TutorEngine(gen, max_running=3)
    sched: ContinuousBatchScheduler[SentenceItem, SentenceOutput] = ContinuousBatchScheduler(
        engine, max_running=3, max_queue=64, max_prefill_tokens=40, cost=TutorEngine.cost)
    await sched.start()
    sources = [p.source for p in generate_pairs(12, "heldout", seed=3)]
    outs = await asyncio.gather(*(sched.submit(engine.item(s)) for s in sources))
    await sched.shutdown()
    assert [o.ids for o in outs] == [alone_ids(gen, s) for s in sources]
    assert engine.free_rows == 3
