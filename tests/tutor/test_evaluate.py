"""Bucketed held-out scoring, on a rule-based fake model (the real model's numbers come from `miniserve eval`)."""

from __future__ import annotations

import math

import pytest

from miniserve.tutor.corpus import Pair, generate_pairs
from miniserve.tutor.evaluate import (MULTI, OOD, Case, format_table, multi_cases, raw_outputs, reference_cases, score,
                                      single_case)
from miniserve.tutor.sentences import split_sentences
from tests.tutor.test_agent import WEIGHTS_DIR, FakeGenerator, needs_weights


def test_single_pairs_count_in_their_length_and_error_buckets() -> None:
    assert single_case(Pair("He goed home.", "He went home.", "error", "overregularized_past")).buckets == (
        "length: <= 10 words", "errors per sentence: 1", "errors fixed, length: <= 10 words")
    long = " ".join(["word"] * 30)
    assert single_case(Pair(long, long, "correct", None)).buckets == ("length: 26-60 words", "errors per sentence: 0")
    assert single_case(Pair("What a day!", "What a day!", "ood", None)).buckets == (OOD,)


def test_multi_sentence_inputs_join_whole_held_out_sentences() -> None:
    pairs = generate_pairs(300, "heldout", 1)
    cases = multi_cases(pairs, 50, seed=1)
    assert len(cases) == 50 and all(c.kind == "multi" and c.buckets == (MULTI,) for c in cases)
    target_of = {p.source: p.target for p in pairs}
    for c in cases:
        # every input is 2-3 whole held-out sentences joined by a space, and its target joins their targets
        parts = [s.text for s in split_sentences(c.source)]
        assert 2 <= len(parts) <= 3 and all(p in target_of and p[-1] in ".!?" for p in parts), c.source
        assert c.source == " ".join(parts) and c.target == " ".join(target_of[p] for p in parts)
    assert multi_cases(pairs, 50, seed=1) == cases  # seeded


def test_the_reference_draw_is_the_one_the_model_card_counts() -> None:
    # every checkpoint, of any training seed, is scored on this draw (MODEL.md: 3,062 errors, 1,246 correct, 692
    # out-of-domain, 500 multi-sentence inputs); another draw is asked for by seed
    counts: dict[str, int] = {}
    cases = reference_cases()
    for c in cases:
        counts[c.kind] = counts.get(c.kind, 0) + 1
    assert counts == {"error": 3062, "correct": 1246, "ood": 692, "multi": 500}
    assert reference_cases(200, 20, seed=4) != reference_cases(200, 20)


def test_raw_outputs_run_each_sentence_and_keep_the_gaps() -> None:
    gen = FakeGenerator(lambda s: s.replace("goed", "went"), max_chars=20)
    assert raw_outputs(gen, ["He goed home.  I goed too!", "x" * 30]) == ["He went home.  I went too!", "x" * 30]
    assert gen.calls == [(["He goed home.", "I goed too!"], True)]  # the too-long sentence never reached it


def test_score_reports_raw_and_tutor_by_bucket() -> None:
    gen = FakeGenerator(lambda s: s.replace("goed", "went").replace("is", "was"))  # "is" -> "was": guard rejects
    cases = [
        single_case(Pair("He goed home.", "He went home.", "error", "overregularized_past")),
        single_case(Pair("She is home.", "She is home.", "correct", None)),
        Case("He goed home. She is here.", "He went home. She is here.", "multi", (MULTI,)),
    ]
    s = score(gen, cases, batch_size=2)
    # a generator without a source constraint: its constrained column is its raw one
    assert s["kind: error"] == {"n": 1, "raw": 1.0, "constrained": 1.0, "tutor": 1.0, "tutor_valid": 1.0}
    assert s["kind: correct"] == {"n": 1, "raw": 0.0, "constrained": 0.0, "tutor": 1.0, "tutor_valid": 1.0}
    assert s[MULTI] == {"n": 1, "raw": 0.0, "constrained": 0.0, "tutor": 1.0, "tutor_valid": 1.0}
    assert s["length: <= 10 words"]["n"] == 2 and s["errors fixed, length: <= 10 words"]["n"] == 1
    table = format_table(s)
    assert "multi-sentence inputs" in table and "100.0%" in table


@needs_weights
def test_the_raw_column_is_the_same_model_decoding_freely() -> None:
    from miniserve.tutor.evaluate import _free
    from miniserve.tutor.generate import Generator

    gen = Generator.load(WEIGHTS_DIR)
    free = _free(gen)
    assert gen.constrained and not free.constrained and free.model is gen.model and _free(free) is free
    assert gen.constraint("He goed home.") is not None and free.constraint("He goed home.") is None


def test_other_correct_readings_count_in_their_own_column_only() -> None:
    # "call" in a clause with no time word of its own is as well fixed by "called" as by "calls" (Pair.also)
    p = Pair("She call home and he cook.", "She calls home and he cooks.", "error", "missing_third_person_s",
             ((1, "called"), (5, "cooked.")))
    case = single_case(p)
    assert case.also == {"She called home and he cooks.", "She calls home and he cooked.",
                         "She called home and he cooked."}
    assert case.accepts("She called home and he cooked.") and not case.accepts("She called home and he cook.")
    pairs = [p, Pair("I goed.", "I went.", "error", "overregularized_past"),
             Pair("He go.", "He goes.", "error", "missing_third_person_s", ((1, "went."),))]
    readings = {q.source: 1 + len(single_case(q).also) for q in pairs}  # 4, 1 and 2
    for c in multi_cases(pairs, 20, seed=0):  # a joined input reads every way its sentences do
        assert len(c.also) + 1 == math.prod(readings[x.text] for x in split_sentences(c.source)), c
    gen = FakeGenerator(lambda s: s.replace("call", "called").replace("cook", "cooks"))
    s = score(gen, [case], batch_size=1)
    assert s["kind: error"]["tutor"] == 0.0 and s["kind: error"]["tutor_valid"] == 1.0  # judged on "tutor"
    assert "any valid" in format_table(s)


def test_eval_and_training_score_the_reference_draw_whatever_the_training_seed(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    # Seed 0's draw and the reference draw are the same, so only a checkpoint of another seed tells "the reference
    # draw" from "the training seed + 1" (the rule before 2026-12-02). The model and the scoring are faked: this
    # checks which sentences are scored, not the scores.
    import json

    from miniserve.cli import build_parser, main
    from miniserve.tutor import evaluate, train

    drawn: list[tuple[int, int, int]] = []

    def cases(n: int = evaluate.REFERENCE_PAIRS, n_multi: int = evaluate.REFERENCE_MULTI,
              seed: int = evaluate.REFERENCE_DRAW_SEED) -> list[Case]:
        drawn.append((n, n_multi, seed))
        return []

    monkeypatch.setattr(evaluate, "reference_cases", cases)
    monkeypatch.setattr(evaluate, "score", lambda gen, cases: {})
    monkeypatch.setattr(evaluate.Generator, "load", classmethod(lambda cls, path=None: object()))
    (tmp_path / "model.json").write_text(json.dumps({"train_config": {"seed": 2}}))

    defaults = build_parser().parse_args(["eval"])
    assert (defaults.n, defaults.n_multi, defaults.draw_seed, defaults.split) == (
        evaluate.REFERENCE_PAIRS, evaluate.REFERENCE_MULTI, None, "heldout")  # None: the reference draw, below
    assert main(["eval", "--weights", str(tmp_path), "--json"]) == 0
    assert main(["eval", "--weights", str(tmp_path), "--draw-seed", "4", "--n", "12", "--n-multi", "2"]) == 0
    train.record_heldout(tmp_path)
    assert drawn == [(5000, 500, 1), (12, 2, 4), (5000, 500, 1)]
    assert json.loads((tmp_path / "model.json").read_text())["heldout_draw"] == {"seed": 1, "pairs": 5000, "multi": 500}


def test_the_training_split_is_the_start_of_the_checkpoints_own_pool() -> None:
    from miniserve.tutor.evaluate import training_cases

    recipe = {"seed": 3, "augment": True, "correct_share": 0.35, "error_counts": [0.3, 0.35, 0.35],
              "train_pairs": 200_000}
    # train.train draws its pool as generate_pairs(train_pairs, "train", seed, ...): a longer draw starts the same
    pool = generate_pairs(300, "train", 3, True, 0.35, None, (0.3, 0.35, 0.35))
    cases = training_cases(recipe, 120, 10)
    assert [c.source for c in cases[:120]] == [p.source for p in pool[:120]]
    assert [c.kind for c in cases[120:]] == ["multi"] * 10
    assert training_cases(recipe, 120, 10) == cases  # drawn again, the same
    other_seed = training_cases(recipe | {"seed": 4}, 120, 0)
    assert [c.source for c in other_seed] != [c.source for c in cases[:120]]
    with pytest.raises(ValueError, match="200,000 pairs"):
        training_cases(recipe, 200_001, 0)
    with pytest.raises(ValueError, match="does not know"):  # a pool this code cannot redraw is refused
        training_cases(recipe | {"pool_shuffle": True}, 10, 0)


def test_eval_on_the_training_split_reads_the_checkpoints_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from miniserve.cli import main
    from miniserve.tutor import evaluate

    recipes: list[tuple[dict, int, int]] = []
    real_load = evaluate.Generator.load
    monkeypatch.setattr(evaluate, "training_cases", lambda c, n, m: recipes.append((c, n, m)) or [])
    monkeypatch.setattr(evaluate, "score", lambda gen, cases: {})
    monkeypatch.setattr(evaluate.Generator, "load", classmethod(lambda cls, path=None: object()))
    (tmp_path / "model.json").write_text(json.dumps({"train_config": {"seed": 2, "train_pairs": 1000}}))

    assert main(["eval", "--weights", str(tmp_path), "--split", "train", "--n", "40", "--json"]) == 0
    assert recipes == [({"seed": 2, "train_pairs": 1000}, 40, 500)]
    # a held-out draw seed means nothing on the training split: refused, not ignored
    assert main(["eval", "--weights", str(tmp_path), "--split", "train", "--draw-seed", "2"]) == 2
    assert "--draw-seed" in capsys.readouterr().err
    # a checkpoint that is not there is said in one line, on either split, not a traceback
    monkeypatch.setattr(evaluate.Generator, "load", real_load)  # the real one fails on the missing file at once
    for split in ("train", "heldout"):
        assert main(["eval", "--weights", str(tmp_path / "absent"), "--split", split, "--n", "5"]) == 2
        assert "cannot score" in capsys.readouterr().err
