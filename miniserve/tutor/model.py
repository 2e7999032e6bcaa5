"""Mini-GPT: a decoder-only, pre-LN transformer with a KV cache, built for batched greedy generation.

Batches of prompts of different lengths are left-padded. Each row carries its own positions (counted from its
first real token) and a key mask that hides its padding, so a sentence's computation in a batch is the same as
alone. `prefill` and `decode_one_token` are the two steps of generation, as in gpt-fast. For continuous
batching (`engine.py`) the same cache is reserved for many rows that join and leave at different steps: each
write then says, through `RowSlots`, which rows and which slots it fills.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(slots=True)
class ModelConfig:
    vocab_size: int
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    max_seq_len: int = 128  # tokens: prompt + separator + generated
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if min(self.vocab_size, self.n_layer, self.n_head, self.d_model, self.max_seq_len) < 1:
            raise ValueError(f"ModelConfig sizes must be positive: {self}")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_head={self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RowSlots:
    """Where one step writes in a cache reserved for many rows (continuous batching, `engine.py`): the step's b
    rows are cache rows first .. first + b - 1, and row i's T new keys go to slots start[i] .. start[i] + T - 1;
    attention then reads slots [0, end) of those rows. The engine keeps its rows packed at the front of the cache,
    so a step's rows are a slice of it: read in place, never gathered, and a step costs what its rows cost."""

    first: int  # cache row of the step's row 0
    start: Tensor  # (b,) first slot written, per row (= that row's length so far)
    end: int  # slots read back: max(start) + T


Where = int | RowSlots  # an int: every row writes at the same slot (the static path, left-padded rows)


class KVCache(nn.Module):
    """Keys and values of every layer-step so far; one instance per layer, sized for one generate call
    (static path) or reserved for `batch` rows that come and go (continuous path, written through RowSlots)."""

    def __init__(self, batch: int, n_head: int, max_len: int, head_dim: int, dtype: torch.dtype) -> None:
        super().__init__()
        shape = (batch, n_head, max_len, head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype), persistent=False)  # (B, H, L, D)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype), persistent=False)  # (B, H, L, D)

    def update(self, start: Where, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write k, v (B, H, t, D) at [start, start + t) and return everything cached up to there."""
        if isinstance(start, RowSlots):
            return self._update_rows(start, k, v)
        end = start + k.shape[2]
        self.k[:, :, start:end] = k
        self.v[:, :, start:end] = v
        return self.k[:, :, :end], self.v[:, :, :end]  # (B, H, end, D)

    def _update_rows(self, at: RowSlots, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Scatter k, v (b, H, t, D) into rows first .. first + b - 1, each at its own slots; return views of those
        rows' slots [0, at.end): no copy (a gather of the running rows' keys was 62% of a 32-row decode step)."""
        b, t = k.shape[0], k.shape[2]
        ck, cv = self.k[at.first : at.first + b], self.v[at.first : at.first + b]  # (b, H, L, D) views
        rows = torch.arange(b, device=k.device)[:, None]  # (b, 1)
        slots = at.start[:, None] + torch.arange(t, device=k.device)  # (b, t)
        # Advanced indices split by a slice put the indexed dims first: ck[rows, :, slots] is (b, t, H, D).
        ck[rows, :, slots] = k.transpose(1, 2)
        cv[rows, :, slots] = v.transpose(1, 2)
        return ck[:, :, : at.end], cv[:, :, : at.end]  # (b, H, end, D)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head, self.head_dim = cfg.n_head, cfg.head_dim
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(self, x: Tensor, mask: Tensor | None, start: Where, cache: KVCache | None) -> Tensor:
        B, T, C = x.shape  # (B, T, C)
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, self.head_dim).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        if cache is not None:
            k, v = cache.update(start, k, v)  # (B, H, start + T, D); per-row: (B, H, end, D)
        if mask is None:  # training: plain causal attention over right-padded rows
            y = causal_attention(q, k, v, self.dropout if self.training else 0.0)
        else:  # mask: (B, 1, T, start + T) or (B, 1, T, end) bool, True = may attend
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


def causal_attention(q: Tensor, k: Tensor, v: Tensor, dropout: float) -> Tensor:
    """softmax(q kᵀ/√D, causal) v for q, k, v (B, H, T, D), written out rather than SDPA's fused kernel: on 2 CPU
    threads in bf16 autocast, that kernel's backward pass was a third of a training step (2026-12-02, batches of 64
    learner-length pairs), and a step with this one is ~15% faster. Generation keeps SDPA (its masks, no backward)."""
    T = q.shape[2]
    att = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5  # (B, H, T, T)
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)  # (T, T) True = may not attend
    att = att.float().masked_fill(future, float("-inf")).softmax(dim=-1).to(v.dtype)  # softmax in float32
    if dropout:
        att = F.dropout(att, dropout)
    return att @ v  # (B, H, T, D)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, 4 * cfg.d_model), nn.GELU(), nn.Linear(4 * cfg.d_model, cfg.d_model)
        )
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor | None, start: Where, cache: KVCache | None) -> Tensor:
        x = x + self.drop(self.attn(self.ln1(x), mask, start, cache))
        return x + self.drop(self.mlp(self.ln2(x)))


class MiniGPT(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.max_seq_len, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # tied: fewer parameters, better with a small corpus
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):  # GPT-2's scaled residual init
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def forward(
        self,
        idx: Tensor,
        pos: Tensor | None = None,
        mask: Tensor | None = None,
        start: Where = 0,
        caches: list[KVCache] | None = None,
    ) -> Tensor:
        """idx (B, T) token ids → logits (B, T, V). Without mask: causal full-sequence pass (training).

        Caches are passed in, not kept on the modules, so that threads can generate with one model at once.
        """
        return self.lm_head(self.hidden(idx, pos, mask, start, caches))  # (B, T, V)

    def hidden(
        self,
        idx: Tensor,
        pos: Tensor | None = None,
        mask: Tensor | None = None,
        start: Where = 0,
        caches: list[KVCache] | None = None,
    ) -> Tensor:
        """`forward` without the output layer: normed hidden states (B, T, C). Training turns into logits only the
        positions that have a target (about half: the prompt has none), ~10% of a step saved."""
        if pos is None:
            pos = torch.arange(idx.shape[1], device=idx.device).expand_as(idx)  # (B, T)
        x = self.tok_emb(idx) + self.pos_emb(pos)  # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, mask, start, caches[i] if caches is not None else None)
        return self.ln_f(x)  # (B, T, C)

    def new_caches(self, batch: int, max_len: int) -> list[KVCache]:
        dtype = self.tok_emb.weight.dtype
        return [KVCache(batch, self.cfg.n_head, max_len, self.cfg.head_dim, dtype) for _ in self.blocks]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
