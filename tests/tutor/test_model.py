"""Model numerics on a small random model: the KV cache and left padding must not change what is computed."""

from __future__ import annotations

import pytest
import torch

from miniserve.tutor.generate import decode_one_token, prefill
from miniserve.tutor.model import MiniGPT, ModelConfig


@pytest.fixture(scope="module")
def model() -> MiniGPT:
    torch.manual_seed(0)
    return MiniGPT(ModelConfig(vocab_size=50, n_layer=2, n_head=2, d_model=32, max_seq_len=40)).eval()


def _cached_logits(model: MiniGPT, rows: list[list[int]], steps: int, forced: torch.Tensor) -> torch.Tensor:
    """Left-pad `rows`, prefill, then feed `forced` tokens (B, steps) one at a time; return logits (B, steps+1, V)."""
    B, T = len(rows), max(map(len, rows))
    pad = torch.tensor([T - len(r) for r in rows])
    idx = torch.tensor([[0] * (T - len(r)) + r for r in rows])
    slots = torch.arange(T + steps)
    key_ok = slots[None, :] >= pad[:, None]
    pos = (slots[None, :T] - pad[:, None]).clamp(min=0)
    caches = model.new_caches(B, T + steps)
    out = [prefill(model, idx, pos, key_ok, caches)]
    for n in range(steps):
        p = (T - pad + n)[:, None]
        out.append(decode_one_token(model, forced[:, n : n + 1], p, key_ok, T + n, caches))
    return torch.stack(out, dim=1)


def test_kv_cache_matches_full_recomputation(model: MiniGPT) -> None:
    torch.manual_seed(1)
    seq = torch.randint(4, 50, (1, 20))
    full = model(seq)  # (1, 20, V) no cache, causal
    cached = _cached_logits(model, [seq[0, :8].tolist()], 12, seq[:, 8:])
    torch.testing.assert_close(cached[0], full[0, 7:], rtol=1e-4, atol=1e-5)


def test_left_padded_batch_matches_each_row_alone(model: MiniGPT) -> None:
    torch.manual_seed(2)
    rows = [torch.randint(4, 50, (n,)).tolist() for n in (3, 11, 7, 1, 15)]
    forced = torch.randint(4, 50, (len(rows), 6))
    batched = _cached_logits(model, rows, 6, forced)
    for i, row in enumerate(rows):
        alone = _cached_logits(model, [row], 6, forced[i : i + 1])
        torch.testing.assert_close(batched[i], alone[0], rtol=1e-4, atol=1e-5)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig(vocab_size=10, n_head=3, d_model=32)
    with pytest.raises(ValueError):
        ModelConfig(vocab_size=0)


def test_training_attention_is_sdpas_causal_attention_forward_and_backward() -> None:
    """Training writes causal attention out (faster on CPU); it must be the function SDPA computes, gradients too."""
    import torch.nn.functional as F

    from miniserve.tutor.model import causal_attention

    torch.manual_seed(3)
    q, k, v = (torch.randn(2, 3, 17, 8, requires_grad=True) for _ in range(3))  # (B, H, T, D)
    ours = causal_attention(q, k, v, dropout=0.0)
    grads = torch.autograd.grad(ours.square().sum(), (q, k, v))
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
    torch.testing.assert_close(ours, ref)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r)
    k2 = k.detach().clone()
    k2[:, :, 9:] += 5.0  # later keys changed: earlier positions must not see it
    torch.testing.assert_close(causal_attention(q, k2, v, 0.0)[:, :, :9], ours[:, :, :9])
