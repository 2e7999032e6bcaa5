"""Step-wise generation for continuous batching: sentences join and leave a reserved KV cache between decode steps.

The cache holds `max_running` rows, reserved once (as in nano-vllm, without paging or preemption). A row is one
sentence: its prompt is prefilled into slots [0, n) of its own row, so a row's slot is its position and its key
mask is "slot <= its length"; nothing moves when other rows come and go. A decode step runs only the rows given
to it and attends over their longest current length, so its cost follows the running rows and their lengths, not
max_running x max_seq_len. Several arrivals prefill together as one right-padded batch: under the causal mask a
real token never sees the padding after it, and a row's padding slots are overwritten as it decodes.
Greedy like `Generator`: a row's output equals `Generator.generate([source])` alone (tests/tutor/test_engine.py).

`TutorEngine` is the tutor's `server.batching.continuous.ContinuousEngine`: item `SentenceItem` (from
`TutorEngine.item`), handle `Row`, output `SentenceOutput`, `cost` = prompt tokens. Not thread-safe: the scheduler
calls it from one thread at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from miniserve.tutor.generate import Generator
from miniserve.tutor.model import KVCache, MiniGPT, RowSlots


@torch.inference_mode()
def prefill_rows(model: MiniGPT, idx: Tensor, lengths: Tensor, rows: Tensor, caches: list[KVCache]) -> Tensor:
    """Right-padded prompts idx (b, T) of `lengths` (b,) into slots [0, T) of cache rows `rows` (b,);
    return each prompt's last logits (b, V)."""
    b, T = idx.shape
    pos = torch.arange(T).expand(b, T)  # (b, T) a row's positions are its slots
    # Causal is enough: a real token only sees the tokens before it, never the padding after it; a padding
    # query sees at least slot 0, so no softmax row is fully masked (its output is never used).
    mask = torch.ones(T, T, dtype=torch.bool).tril().expand(b, 1, T, T)  # (b, 1, T, T)
    logits = model(idx, pos, mask, RowSlots(rows, torch.zeros_like(rows), T), caches)  # (b, T, V)
    return logits[torch.arange(b), lengths - 1]  # (b, V)


@torch.inference_mode()
def decode_rows(model: MiniGPT, tok: Tensor, lengths: Tensor, rows: Tensor, caches: list[KVCache]) -> Tensor:
    """One step for these rows only: tok (b, 1) goes to slot lengths[i] of cache row rows[i]; return logits (b, V)."""
    end = int(lengths.max()) + 1  # slots attended: the longest of these rows, not the cache's whole length
    key_ok = torch.arange(end)[None, :] <= lengths[:, None]  # (b, end) each row's own slots, its new token included
    at = RowSlots(rows, lengths, end)
    return model(tok, lengths[:, None], key_ok[:, None, None], at, caches)[:, -1]  # (b, V)


@dataclass(frozen=True, slots=True)
class SentenceItem:
    """One sentence for the model (the scheduler's item): build it with `TutorEngine.item`."""

    source: str  # the model input: one sentence, single-spaced (agent.model_input)
    prompt: tuple[int, ...]  # <bos> source <sep>
    budget: int  # new tokens this row may generate, end-of-sequence included


@dataclass(frozen=True, slots=True)
class SentenceOutput:
    """A finished row (the scheduler's output)."""

    ids: list[int]  # generated token ids, end-of-sequence excluded
    text: str  # decoded ids: what Generator.generate returns for the source
    ended: bool  # True: it emitted end-of-sequence; False: it stopped at its budget


@dataclass(slots=True, eq=False)
class Row:
    """A sentence in flight (the scheduler's handle): its cache row and what it generated so far."""

    row: int  # index into the reserved cache
    item: SentenceItem
    length: int  # tokens in its cache row: the prompt plus every generated token fed back so far
    ids: list[int] = field(default_factory=list)  # generated so far; the last one is not in the cache yet
    done: bool = False
    released: bool = False


class TutorEngine:
    """The tutor's continuous-batching engine over `generator`'s model: `max_running` cache rows reserved up front."""

    def __init__(self, generator: Generator, max_running: int) -> None:
        if isinstance(max_running, bool) or not isinstance(max_running, int) or max_running < 1:
            raise ValueError(f"max_running must be an int >= 1, got {max_running!r}")
        self.generator, self.model, self.tok = generator, generator.model, generator.tok
        self.max_running, self.max_seq_len = max_running, generator.model.cfg.max_seq_len
        self.caches = self.model.new_caches(max_running, self.max_seq_len)  # (max_running, H, L, D) per layer
        self._free = list(range(max_running - 1, -1, -1))  # a stack: the lowest row first, a freed row reused next

    @property
    def free_rows(self) -> int:
        return len(self._free)

    def item(self, source: str) -> SentenceItem:
        """The scheduler's item for one model input; ValueError if its prompt leaves no room to generate."""
        prompt = tuple(self.generator.prompt_ids(source))
        budget = self.generator.budget(list(prompt))  # the same per-row budget as the static path
        if budget < 1:
            raise ValueError(f"a prompt of {len(prompt)} tokens does not fit the {self.max_seq_len}-token context")
        return SentenceItem(source, prompt, budget)

    @staticmethod
    def cost(item: SentenceItem) -> int:
        """Prefill tokens: the scheduler's `cost(item)`."""
        return len(item.prompt)

    def prefill(self, items: list[SentenceItem]) -> list[Row]:
        """Allocate a row per item and prefill them together; each row holds its first token. Nothing stays
        allocated if this raises."""
        if not items:
            return []
        if len(items) > len(self._free):
            raise RuntimeError(f"prefill of {len(items)} items with {len(self._free)} free rows")
        for it in items:
            if it.budget < 1 or len(it.prompt) + it.budget > self.max_seq_len:
                raise ValueError(f"item does not fit the context: {len(it.prompt)} + {it.budget} tokens")
        rows = [Row(self._free.pop(), it, len(it.prompt)) for it in items]
        try:
            T = max(len(it.prompt) for it in items)
            idx = torch.tensor([[*it.prompt] + [self.tok.pad_id] * (T - len(it.prompt)) for it in items])  # (b, T)
            lengths = torch.tensor([len(it.prompt) for it in items])  # (b,)
            logits = prefill_rows(self.model, idx, lengths, torch.tensor([r.row for r in rows]), self.caches)
            for r, t in zip(rows, logits.argmax(dim=-1).tolist()):
                self._emit(r, t)
        except BaseException:
            self._free.extend(r.row for r in reversed(rows))
            raise
        return rows

    def step_corrections(self, rows: list[Row]) -> list[tuple[int, bool]]:
        """One decode step for the unfinished ones among `rows`; per row (its newest token id, done). A row that
        finished at prefill (first token end-of-sequence, or a budget of 1) is not decoded: (that token, True)."""
        if any(r.released for r in rows):
            raise ValueError("step of a released row")
        todo = [r for r in rows if not r.done]
        if todo:
            tok = torch.tensor([[r.ids[-1]] for r in todo])  # (b, 1) each row's newest token, fed back
            lengths = torch.tensor([r.length for r in todo])  # (b,) its slot = its position
            logits = decode_rows(self.model, tok, lengths, torch.tensor([r.row for r in todo]), self.caches)
            for r, t in zip(todo, logits.argmax(dim=-1).tolist()):
                r.length += 1
                self._emit(r, t)
        return [(r.ids[-1], r.done) for r in rows]

    def step(self, rows: list[Row]) -> list[SentenceOutput | None]:
        """The scheduler's step: per row its output if it is done (release it then), else None."""
        return [self.output(r) if done else None for r, (_, done) in zip(rows, self.step_corrections(rows))]

    def release(self, rows: list[Row]) -> None:
        """Give rows back; their stale cache slots need no clearing (a new row's mask never reaches them)."""
        for r in rows:
            if not r.released:
                r.released = True
                self._free.append(r.row)

    def output(self, row: Row) -> SentenceOutput:
        ended = row.ids[-1] == self.tok.eos_id
        ids = row.ids[:-1] if ended else list(row.ids)
        return SentenceOutput(ids, self.tok.decode(ids), ended)

    def _emit(self, row: Row, tok: int) -> None:
        row.ids.append(tok)
        row.done = tok == self.tok.eos_id or len(row.ids) >= row.item.budget
