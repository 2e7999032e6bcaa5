from __future__ import annotations

import random

import pytest
import torch

from miniserve.tutor.corpus import generate_pairs
from miniserve.tutor.generate import Generator
from miniserve.tutor.train import (
    TrainConfig, length_grouped_batches, make_batch, native_bf16, precision_warning, remaining,
)  # fmt: skip


@pytest.fixture(scope="module")
def tok():
    return Generator.load().tok


def test_length_grouped_batches_are_full_and_cut_padding(tok) -> None:
    pool = generate_pairs(2000, "train", seed=0)
    cfg = TrainConfig(batch_size=32, length_group=16, bpe_dropout=0.0)  # the recipe's grouping
    batches = length_grouped_batches(tok, pool, cfg, random.Random(0))
    grouped = [next(batches) for _ in range(16)]
    assert all(len(b) == 32 for b in grouped)

    def fill(batch) -> float:  # real tokens / padded slots
        x, _ = make_batch(batch, tok.pad_id)
        return sum(len(ids) - 1 for ids, _, _ in batch) / x.numel()

    plain = length_grouped_batches(tok, pool, TrainConfig(batch_size=32, length_group=1, bpe_dropout=0.0),
                                   random.Random(0))
    ungrouped = [next(plain) for _ in range(16)]
    assert sum(map(fill, grouped)) / 16 > 0.85 > sum(map(fill, ungrouped)) / 16


def test_config_rejects_nonsense() -> None:
    for bad in ({"length_group": 0}, {"steps": 0}, {"lr_min": 0.0}, {"caps_share": -0.1},
                {"error_counts": (0.5, 0.5)}, {"s_name_share": 2.0}):
        with pytest.raises(ValueError):
            TrainConfig(**bad)


def test_tutor_scores_count_what_the_guard_returns() -> None:
    from tests.tutor.test_agent import FakeGenerator
    from miniserve.tutor.evaluate import score, single_case
    from miniserve.tutor.train import evaluate

    pairs = generate_pairs(300, "heldout", seed=1)
    oracle = {p.source: p.target for p in pairs}
    # the model fixes every error but also mangles every correct sentence's last character
    def rule(src: str) -> str:
        target = oracle[src]
        return target if target != src else src[:-1] + ("x" if src[-1] != "x" else "y")

    gen = FakeGenerator(rule)
    gen.fits = lambda s: True  # every held-out sentence reaches the fake, whatever its length
    raw, scored = evaluate(gen, pairs), score(gen, [single_case(p) for p in pairs])
    assert raw["error_exact"] == 1.0 and raw["correct_exact"] == 0.0
    assert scored["kind: error"]["raw"] == 1.0 and scored["kind: correct"]["raw"] == 0.0  # the same raw scores
    # the guard rejects a rewrite that touches no covered verb form: the learner gets the sentence back unchanged
    assert all(scored[f"kind: {k}"]["tutor"] == 1.0 for k in ("correct", "ood", "error"))


def test_train_config_refuses_an_impossible_correct_share_before_training() -> None:
    with pytest.raises(ValueError, match=r"correct_share must be in \[0, 0.85\]"):
        TrainConfig(correct_share=0.9)
    assert TrainConfig(correct_share=0.85).correct_share == 0.85  # every training pair correct or out-of-domain


def test_train_command_refuses_bad_options_with_a_message(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    from miniserve.cli import main

    assert main(["train", "--correct-share", "0.9", "--out", str(tmp_path)]) == 2
    assert "miniserve train: error: correct_share must be in [0, 0.85], got 0.9" in capsys.readouterr().err
    assert main(["train", "--length-group", "0", "--out", str(tmp_path)]) == 2
    assert main(["train", "--error-counts", "0.5,0.5,0.5", "--out", str(tmp_path)]) == 2
    assert "error_counts must be three shares" in capsys.readouterr().err
    assert main(["train", "--ema-decay", "1", "--out", str(tmp_path)]) == 2
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


def test_decision_tokens_are_the_covered_verb_forms_and_the_token_after_each(tok) -> None:
    from miniserve.tutor.corpus import Pair
    from miniserve.tutor.train import encode_pair, loss_weights, make_batch

    p = Pair("Yesterday Giovanni goed to the market and buyed tomatoes.",
             "Yesterday Giovanni went to the market and bought tomatoes.", "error", "overregularized_past")
    plain = encode_pair(tok, p, 0.0, random.Random(0))
    ids, start, marks = encode_pair(tok, p, 0.0, random.Random(0), decisions=True)
    assert ids == plain[0] and start == plain[1] and plain[2] == ()  # the same tokens: only the marks are new
    target = ids[start:]
    assert [tok.decode([target[m]]) for m in marks] == [" went", " to", " bought", " tom"]
    # with BPE-dropout the word-by-word segmentation still concatenates to one valid target
    for seed in range(20):
        ids, start, marks = encode_pair(tok, p, 0.5, random.Random(seed), decisions=True)
        assert tok.decode(ids[start:-1]) == p.target and " went".startswith(tok.decode([ids[start + marks[0]]]))
    x, y = make_batch([plain, (ids, start, marks)], tok.pad_id)
    w = loss_weights([plain, (ids, start, marks)], x.shape[1], 5.0)
    assert w[0].eq(1).all() and int(w[1].eq(5).sum()) == len(marks) and bool((y[1][w[1] == 5] != -100).all())


def test_train_config_refuses_a_decision_weight_below_one() -> None:
    for bad in (0.5, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="decision_weight"):
            TrainConfig(decision_weight=bad)


def test_a_pair_encodes_to_its_source_and_target_tokens() -> None:
    from miniserve.tutor.train import encode_pair

    tok = Generator.load().tok
    for p in generate_pairs(300, "train", seed=2, augment=True):
        ids, start, _ = encode_pair(tok, p, 0.0, random.Random(0))
        assert ids == [tok.bos_id, *tok.encode(p.source), tok.sep_id, *tok.encode(p.target), tok.eos_id]
        assert start == len(tok.encode(p.source)) + 2


def test_a_bf16_step_keeps_float32_weights_and_the_fp32_loss(tok) -> None:
    from miniserve.tutor.model import MiniGPT, ModelConfig
    from miniserve.tutor.train import encode_pair, train_step

    rng = random.Random(0)
    batch = [encode_pair(tok, p, 0.0, rng, decisions=True) for p in generate_pairs(16, "train", 0)]
    losses = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = MiniGPT(ModelConfig(vocab_size=tok.vocab_size, d_model=64, max_seq_len=256))
        before = [p.detach().clone() for p in model.parameters()]
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        losses[precision] = train_step(model, opt, batch, TrainConfig(precision=precision), tok.pad_id).item()
        assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast changes the arithmetic only
        assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the step moved the weights
    assert losses["bf16"] != losses["fp32"]  # the forward really ran in bf16 ...
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.02)  # ... which keeps ~3 significant digits


def test_train_config_refuses_an_unknown_precision() -> None:
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(precision="fp16")


def test_weight_average_follows_the_weights_and_ships_the_average() -> None:
    from miniserve.tutor.train import WeightAverage

    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.fill_(0.0)
    avg = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    for _ in range(200):
        avg.update(model)
    avg.copy_to(model)
    assert torch.allclose(model.weight, torch.ones(2, 3), atol=1e-6)  # a constant signal: the average is it
    with torch.no_grad():
        model.weight.fill_(0.0)
    avg.update(model)  # one step away: the average moves by (1 - decay) only
    avg.copy_to(model)
    assert torch.allclose(model.weight, torch.full((2, 3), 0.9))
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)


def test_committed_defaults_are_the_shipped_checkpoints_recipe() -> None:
    """`miniserve train` with no options must repeat the run that made weights/ (MODEL.md says so). A field added
    after that run is absent from its record: its default must be None, the behaviour before the field existed."""
    import json
    from dataclasses import asdict

    from miniserve.tutor.generate import META_FILE, WEIGHTS_DIR

    shipped = json.loads((WEIGHTS_DIR / META_FILE).read_text())["train_config"]
    defaults = json.loads(json.dumps(asdict(TrainConfig())))  # tuples as the record's lists
    assert {k: shipped.get(k) for k in defaults} == defaults


def test_a_step_takes_the_weighted_loss_over_the_target_tokens_only(tok) -> None:
    """train_step turns only target positions into logits; its loss must be the weighted mean over every position's
    loss with the prompt and padding masked out, as computed from the full logits."""
    import torch.nn.functional as F

    from miniserve.tutor.model import MiniGPT, ModelConfig
    from miniserve.tutor.train import encode_pair, loss_weights, train_step

    rng = random.Random(0)
    batch = [encode_pair(tok, p, 0.0, rng, decisions=True) for p in generate_pairs(12, "train", 0)]
    x, y = make_batch(batch, tok.pad_id)
    for weight in (1.0, 10.0):
        torch.manual_seed(0)
        model = MiniGPT(ModelConfig(vocab_size=tok.vocab_size, d_model=64, max_seq_len=256))
        with torch.no_grad():
            per_token = F.cross_entropy(model(x).flatten(0, 1), y.flatten(), ignore_index=-100, reduction="none")
            w = loss_weights(batch, x.shape[1], weight).flatten() * (y.flatten() != -100)
            expected = ((per_token * w).sum() / w.sum()).item()
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        cfg = TrainConfig(precision="fp32", decision_weight=weight)
        assert train_step(model, opt, batch, cfg, tok.pad_id).item() == pytest.approx(expected, rel=1e-5)


def test_bf16_on_a_cpu_without_bf16_instructions_is_warned_about(monkeypatch: pytest.MonkeyPatch) -> None:
    assert precision_warning("fp32", native=False) is None
    assert precision_warning("bf16", native=True) is None
    warning = precision_warning("bf16", native=False)
    assert warning is not None and "--precision fp32" in warning
    # either probe counts; a torch without the private probes reads as "no bf16"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert native_bf16()
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not native_bf16()
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert not native_bf16()


def test_the_progress_line_says_how_long_the_steps_left_take() -> None:
    assert remaining(15.0, 1, 7000) == ""  # step 1 carries first-call setup
    assert remaining(50.0, 100, 7000) == " (~58 min of steps left)"  # 0.5 s/step, 6,900 left
    assert remaining(115.0, 100, 7000) == " (~2.2 h of steps left)"  # 1.15 s/step
    assert remaining(3500.0, 7000, 7000) == ""
    assert remaining(119.8 * 60 / 6900 * 100, 100, 7000) == " (~2.0 h of steps left)"  # rounds to 120 min: hours
