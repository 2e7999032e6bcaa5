"""Batched greedy generation with the KV cache, and loading the shipped checkpoint.

A prompt is `<bos> sentence <sep>`; the model writes the corrected sentence and `<eos>`. Prompts of different
lengths are left-padded so that every row's next token lands in the same cache slot; each row's positions start
at its first real token and its padding is masked out of every attention, so a row's output in a batch equals
its output alone.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor

from miniserve.tutor.constraint import SourceConstraint
from miniserve.tutor.model import KVCache, MiniGPT, ModelConfig
from miniserve.tutor.tokenizer import ByteBPETokenizer

WEIGHTS_DIR = Path(__file__).parent / "weights"
MODEL_FILE, TOKENIZER_FILE, META_FILE = "model.safetensors", "tokenizer.json", "model.json"
SLACK_TOKENS = 4  # how much longer than its source a correction may come out, in tokens


@torch.inference_mode()
def prefill(model: MiniGPT, idx: Tensor, pos: Tensor, key_ok: Tensor, caches: list[KVCache]) -> Tensor:
    """Run the padded prompts (B, T) through the model, filling the caches; return the last logits (B, V)."""
    T = idx.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T)
    # A padding query may attend to itself only: its output is never used, but a fully masked row would be NaN.
    mask = (causal & key_ok[:, None, :T]) | torch.eye(T, dtype=torch.bool)  # (B, T, T)
    return model(idx, pos, mask[:, None], 0, caches)[:, -1]  # (B, V)


@torch.inference_mode()
def decode_one_token(
    model: MiniGPT, tok: Tensor, pos: Tensor, key_ok: Tensor, start: int, caches: list[KVCache]
) -> Tensor:
    """One step for the whole batch: tok (B, 1) at cache slot `start`; return its logits (B, V)."""
    mask = key_ok[:, None, None, : start + 1]  # (B, 1, 1, start + 1)
    return model(tok, pos, mask, start, caches)[:, -1]  # (B, V)


class Generator:
    """Greedy generation over one checkpoint. `constrained` (the product's setting): each row may only copy its source
    or change its covered verb forms (`constraint.py`); False decodes freely, as the raw model (for evaluation)."""

    def __init__(self, model: MiniGPT, tokenizer: ByteBPETokenizer, max_new_tokens: int, constrained: bool = True) -> None:
        self.model = model.eval()
        self.tok = tokenizer
        self.max_new_tokens = max_new_tokens
        self.constrained = constrained

    @classmethod
    def load(cls, weights_dir: str | Path | None = None, constrained: bool = True) -> Generator:
        d = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
        meta = json.loads((d / META_FILE).read_text())
        model = MiniGPT(ModelConfig(**meta["model_config"]))
        # safetensors holds plain tensors only: loading it cannot run code. Tied weights are stored once.
        state = {k: v.float() for k, v in load_file(d / MODEL_FILE).items()}  # stored as float16
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or set(missing) - {"lm_head.weight"}:
            raise ValueError(f"{d / MODEL_FILE}: missing {missing}, unexpected {unexpected}")
        model.lm_head.weight = model.tok_emb.weight
        return cls(model, ByteBPETokenizer.load(d / TOKENIZER_FILE), int(meta["max_new_tokens"]), constrained)

    def prompt_ids(self, source: str) -> list[int]:
        return [self.tok.bos_id, *self.tok.encode(source), self.tok.sep_id]

    def constraint(self, source: str) -> SourceConstraint | None:
        """The decoding constraint of one model input, or None when this generator decodes freely."""
        return SourceConstraint.build(self.tok, source) if self.constrained else None

    def budget(self, prompt: list[int]) -> int:
        """New tokens (end-of-sequence included) a row may generate. A correction is as long as its source, give or
        take a re-spelled verb ("goed" -> "went"), so: the source's length + SLACK_TOKENS + 1, within the checkpoint's
        max_new_tokens and the model's context. Sized per row, so a short sentence never pays for a long one's room."""
        source_len = len(prompt) - 2  # <bos> source <sep>
        return min(self.max_new_tokens, source_len + SLACK_TOKENS + 1, self.model.cfg.max_seq_len - len(prompt))

    def fits(self, source: str) -> bool:
        """Can the model's correction of `source` be generated whole: is its budget at least the source plus
        end-of-sequence?"""
        prompt = self.prompt_ids(source)
        return self.budget(prompt) >= len(prompt) - 1

    def generate(self, sources: list[str], max_new_tokens: int | None = None, stop_at_eos: bool = True) -> list[str]:
        """Greedy-decode each source's correction; each row ends at its end-of-sequence or its own budget.

        stop_at_eos=False runs the batch until its longest budget is spent, whatever ended before (the
        static-batching cost the lab wants visible: a batch pays for its longest member); True stops once every row
        has ended. max_new_tokens, when given, is every row's budget instead of `budget()`.
        """
        if not sources:
            return []
        prompts = [self.prompt_ids(s) for s in sources]
        budgets = [self.budget(p) if max_new_tokens is None else max_new_tokens for p in prompts]
        too_long = [i for i, (p, b) in enumerate(zip(prompts, budgets)) if len(p) + b > self.model.cfg.max_seq_len]
        if too_long:
            raise ValueError(f"sources {too_long} do not fit the model context; check Generator.fits first")
        out = self._generate_ids(prompts, budgets, stop_at_eos, [self.constraint(s) for s in sources])
        return [self.tok.decode(ids) for ids in out]

    @torch.inference_mode()
    def _generate_ids(self, prompts: list[list[int]], budgets: int | list[int], stop_at_eos: bool,
                      constraints: list[SourceConstraint | None] | None = None) -> list[list[int]]:
        B, T = len(prompts), max(len(p) for p in prompts)
        budget = torch.tensor([budgets] * B if isinstance(budgets, int) else budgets)  # (B,) new tokens per row
        steps = int(budget.max())
        pad = torch.tensor([T - len(p) for p in prompts])  # (B,)
        idx = torch.tensor([[self.tok.pad_id] * (T - len(p)) + p for p in prompts])  # (B, T)
        slots = torch.arange(T + steps)  # (L,)
        key_ok = slots[None, :] >= pad[:, None]  # (B, L) False on left padding
        pos = (slots[None, :T] - pad[:, None]).clamp(min=0)  # (B, T)
        caches = self.model.new_caches(B, T + steps)

        logits = prefill(self.model, idx, pos, key_ok, caches)
        next_pos = T - pad  # (B,) each row's own position of the next token
        out = torch.empty(B, steps, dtype=torch.long)
        done = torch.zeros(B, dtype=torch.bool)
        cons = constraints if constraints and any(c is not None for c in constraints) else None
        states = [0] * B  # each constrained row's automaton state
        n = 0
        for n in range(steps):
            tok = logits.argmax(dim=-1)  # (B,)
            if cons is not None:
                tok = torch.tensor(constrain_step(cons, states, tok.tolist(), logits))
            out[:, n] = tok
            done |= (tok == self.tok.eos_id) | (budget <= n + 1)
            if n == steps - 1 or (stop_at_eos and bool(done.all())):
                break
            # A row past its own budget keeps stepping (its tokens are cut off below) but must not step past the
            # model's context: its position is clamped, which changes nothing it returns.
            step_pos = (next_pos + n).clamp(max=self.model.cfg.max_seq_len - 1)  # (B,)
            logits = decode_one_token(self.model, tok[:, None], step_pos[:, None], key_ok, T + n, caches)
        rows = [r[:b] for r, b in zip(out[:, : n + 1].tolist(), budget.tolist())]
        return [r[: r.index(self.tok.eos_id)] if self.tok.eos_id in r else r for r in rows]


def constrain_step(constraints: list[SourceConstraint | None], states: list[int], preferred: list[int],
                   logits: Tensor) -> list[int]:
    """Each row's next token under its constraint (state updated in place); a free row, or one past its
    end-of-sequence, keeps its argmax `preferred`. logits (B, V) are read only where the model strays."""
    out = list(preferred)
    for r, c in enumerate(constraints):
        if c is not None:
            out[r], states[r] = c.pick(states[r], preferred[r], lambda ids, r=r: logits[r, ids].tolist())
    return out


_default: Generator | None = None
_default_lock = threading.Lock()


def default_generator() -> Generator:
    """The shipped checkpoint, loaded once per process."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Generator.load()
        return _default
