"""Step-wise generation for continuous batching: sentences join and leave a reserved KV cache between decode steps.

The cache holds `max_running` rows, reserved once (as in nano-vllm, without paging or preemption). A row is one
sentence: its prompt is prefilled into slots [0, n) of its own row, so a row's slot is its position and its key
mask is "slot <= its length". The engine keeps its rows packed at the front of the cache: a newcomer takes the
next row, and when a row leaves, the last row's keys move into its place (one row copied per departure). A decode
step therefore runs cache rows [0, n) as one slice, read in place, attending over their longest current length:
its cost follows the running rows and their lengths, not max_running x max_seq_len. (The first version gathered
the running rows out of wherever they sat, every step: 62% of a 32-row decode step in torch's profiler; the lab-03
step benchmark, bench/test_lab03_engine_step.py, measures whole iterations.)
Several arrivals prefill together as one right-padded batch: under the causal mask a real token never sees the
padding after it, and a row's padding slots are overwritten as it decodes.
Greedy like `Generator`, under the same source constraint (`constraint.py`): a row's output equals
`Generator.generate([source])` alone (tests/tutor/test_engine.py).

`TutorEngine` is the tutor's `server.batching.continuous.ContinuousEngine`: item `SentenceItem` (from
`TutorEngine.item`), handle `Row`, output `SentenceOutput`, `cost` = prompt tokens. Not thread-safe: the scheduler
calls it from one thread at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from miniserve.tutor.constraint import SourceConstraint
from miniserve.tutor.generate import Generator
from miniserve.tutor.model import KVCache, MiniGPT, RowSlots


@torch.inference_mode()
def prefill_rows(model: MiniGPT, idx: Tensor, lengths: Tensor, first: int, caches: list[KVCache]) -> Tensor:
    """Right-padded prompts idx (b, T) of `lengths` (b,) into slots [0, T) of cache rows first .. first + b - 1;
    return each prompt's last logits (b, V)."""
    b, T = idx.shape
    pos = torch.arange(T).expand(b, T)  # (b, T) a row's positions are its slots
    # Causal is enough: a real token only sees the tokens before it, never the padding after it; a padding
    # query sees at least slot 0, so no softmax row is fully masked (its output is never used).
    mask = torch.ones(T, T, dtype=torch.bool).tril().expand(b, 1, T, T)  # (b, 1, T, T)
    logits = model(idx, pos, mask, RowSlots(first, torch.zeros(b, dtype=torch.long), T), caches)  # (b, T, V)
    return logits[torch.arange(b), lengths - 1]  # (b, V)


@torch.inference_mode()
def decode_rows(model: MiniGPT, tok: Tensor, lengths: Tensor, caches: list[KVCache]) -> Tensor:
    """One step for cache rows 0 .. b - 1: tok (b, 1) goes to slot lengths[i] of row i; return logits (b, V)."""
    end = int(lengths.max()) + 1  # slots attended: the longest of these rows, not the cache's whole length
    key_ok = torch.arange(end)[None, :] <= lengths[:, None]  # (b, end) each row's own slots, its new token included
    return model(tok, lengths[:, None], key_ok[:, None, None], RowSlots(0, lengths, end), caches)[:, -1]  # (b, V)


@torch.inference_mode()
def move_row(caches: list[KVCache], src: int, dst: int, n: int) -> None:
    """Copy slots [0, n) of cache row `src` to row `dst`, in every layer (a row moving to keep the rows packed)."""
    for c in caches:
        c.k[dst, :, :n] = c.k[src, :, :n]  # (H, n, D)
        c.v[dst, :, :n] = c.v[src, :, :n]


@dataclass(frozen=True, slots=True)
class SentenceItem:
    """One sentence for the model (the scheduler's item): build it with `TutorEngine.item`."""

    source: str  # the model input: one sentence, single-spaced (agent.model_input)
    prompt: tuple[int, ...]  # <bos> source <sep>
    budget: int  # new tokens this row may generate, end-of-sequence included
    constraint: SourceConstraint | None = field(default=None, compare=False)  # what the row may emit; None: free


@dataclass(frozen=True, slots=True)
class SentenceOutput:
    """A finished row (the scheduler's output)."""

    ids: list[int]  # generated token ids, end-of-sequence excluded
    text: str  # decoded ids: what Generator.generate returns for the source
    ended: bool  # True: it emitted end-of-sequence; False: it stopped at its budget


@dataclass(slots=True, eq=False)
class Row:
    """A sentence in flight (the scheduler's handle): its cache row and what it generated so far."""

    row: int  # index into the reserved cache; the engine changes it when it moves the row to keep rows packed
    item: SentenceItem
    length: int  # tokens in its cache row: the prompt plus every generated token fed back so far
    ids: list[int] = field(default_factory=list)  # generated so far; the last one is not in the cache yet
    done: bool = False
    released: bool = False
    state: int = 0  # its constraint's state after its newest token


class TutorEngine:
    """The tutor's continuous-batching engine over `generator`'s model: `max_running` cache rows reserved up front."""

    def __init__(self, generator: Generator, max_running: int) -> None:
        if isinstance(max_running, bool) or not isinstance(max_running, int) or max_running < 1:
            raise ValueError(f"max_running must be an int >= 1, got {max_running!r}")
        self.generator, self.model, self.tok = generator, generator.model, generator.tok
        self.max_running, self.max_seq_len = max_running, generator.model.cfg.max_seq_len
        self.caches = self.model.new_caches(max_running, self.max_seq_len)  # (max_running, H, L, D) per layer
        self._rows: list[Row] = []  # the rows in use, packed: self._rows[i].row == i

    @property
    def free_rows(self) -> int:
        return self.max_running - len(self._rows)

    def item(self, source: str) -> SentenceItem:
        """The scheduler's item for one model input; ValueError if its prompt leaves no room to generate."""
        prompt = tuple(self.generator.prompt_ids(source))
        budget = self.generator.budget(list(prompt))  # the same per-row budget as the static path
        if budget < 1:
            raise ValueError(f"a prompt of {len(prompt)} tokens does not fit the {self.max_seq_len}-token context")
        return SentenceItem(source, prompt, budget, self.generator.constraint(source))

    @staticmethod
    def cost(item: SentenceItem) -> int:
        """Prefill tokens: the scheduler's `cost(item)`."""
        return len(item.prompt)

    def prefill(self, items: list[SentenceItem]) -> list[Row]:
        """Take the next free rows, one per item, and prefill them together; each row holds its first token.
        Nothing stays allocated if this raises."""
        if not items:
            return []
        if len(items) > self.free_rows:
            raise RuntimeError(f"prefill of {len(items)} items with {self.free_rows} free rows")
        for it in items:
            if it.budget < 1 or len(it.prompt) + it.budget > self.max_seq_len:
                raise ValueError(f"item does not fit the context: {len(it.prompt)} + {it.budget} tokens")
        first = len(self._rows)
        rows = [Row(first + i, it, len(it.prompt)) for i, it in enumerate(items)]
        T = max(len(it.prompt) for it in items)
        idx = torch.tensor([[*it.prompt] + [self.tok.pad_id] * (T - len(it.prompt)) for it in items])  # (b, T)
        lengths = torch.tensor([len(it.prompt) for it in items])  # (b,)
        logits = prefill_rows(self.model, idx, lengths, first, self.caches)  # raises before any row is taken
        for i, (r, t) in enumerate(zip(rows, logits.argmax(dim=-1).tolist())):
            self._emit(r, t, logits, i)
        self._rows += rows
        return rows

    def step_corrections(self, rows: list[Row]) -> list[tuple[int, bool]]:
        """One decode step for the unfinished ones among `rows`; per row (its newest token id, done). A row that
        finished at prefill (first token end-of-sequence, or a budget of 1) is not decoded: (that token, True).

        The step runs cache rows [0, n) as one slice, n = the highest row to decode + 1. A row in there that is not
        decoded (finished, or not passed) gets a dummy token written at its slot `length`, which its mask does not
        reach and its own next step overwrites: it changes nothing. The scheduler passes every row, so n is the
        rows in use."""
        for r in rows:
            if r.released or r.row >= len(self._rows) or self._rows[r.row] is not r:
                raise ValueError("step of a released row, or of another engine's")
        todo = [r for r in rows if not r.done]
        if todo:
            n = max(r.row for r in todo) + 1
            newest = [self.tok.pad_id] * n
            for r in todo:
                newest[r.row] = r.ids[-1]
            tok = torch.tensor(newest)[:, None]  # (n, 1) each row's newest token, fed back
            # (n,) a row's slot = its position; a finished row's stays below the context (nothing reads it)
            lengths = torch.tensor([min(r.length, self.max_seq_len - 1) for r in self._rows[:n]])
            logits = decode_rows(self.model, tok, lengths, self.caches)  # (n, V)
            next_tok = logits.argmax(dim=-1).tolist()
            for r in todo:
                r.length += 1
                self._emit(r, next_tok[r.row], logits, r.row)
        return [(r.ids[-1], r.done) for r in rows]

    def step(self, rows: list[Row]) -> list[SentenceOutput | None]:
        """The scheduler's step: per row its output if it is done (release it then), else None."""
        return [self.output(r) if done else None for r, (_, done) in zip(rows, self.step_corrections(rows))]

    def release(self, rows: list[Row]) -> None:
        """Give rows back. The last row in use moves into each freed row, so the rows stay packed; stale slots need
        no clearing (a row's mask never reaches past its own length)."""
        for r in rows:
            if r.released:
                continue
            r.released = True
            last = self._rows.pop()
            if last is not r:
                move_row(self.caches, last.row, r.row, last.length)
                last.row = r.row
                self._rows[r.row] = last

    def output(self, row: Row) -> SentenceOutput:
        ended = row.ids[-1] == self.tok.eos_id
        ids = row.ids[:-1] if ended else list(row.ids)
        return SentenceOutput(ids, self.tok.decode(ids), ended)

    def _emit(self, row: Row, tok: int, logits: Tensor, i: int) -> None:
        """Append the row's next token: the model's argmax `tok`, unless its constraint forbids it. logits (n, V):
        row i is this row's, read only if the model strays (indexing a row per step would cost more than the rest)."""
        c = row.item.constraint
        if c is not None:
            tok, row.state = c.pick(row.state, tok, lambda ids: logits[i, ids].tolist())
        row.ids.append(tok)
        row.done = tok == self.tok.eos_id or len(row.ids) >= row.item.budget
