"""Decoding constrained to the source: every correct answer stays reachable, and nothing outside the guard's shape
(the source's words, covered verb forms changed into real forms of the same verb) is."""

from __future__ import annotations

import pytest
from pathlib import Path

from miniserve.tutor.constraint import ACCEPT, SourceConstraint, word_alternatives
from miniserve.tutor.corpus import generate_pairs
from miniserve.tutor.tokenizer import ByteBPETokenizer
from tests.tutor.test_agent import WEIGHTS_DIR, needs_weights


@pytest.fixture(scope="module")
def tok() -> ByteBPETokenizer:
    return ByteBPETokenizer.load(Path(WEIGHTS_DIR) / "tokenizer.json")


def walks(tok: ByteBPETokenizer, source: str, output: str) -> bool:
    """Is `output` (then end-of-sequence) a path of `source`'s automaton?"""
    c = SourceConstraint.build(tok, source)
    assert c is not None
    state = 0
    for t in [*tok.encode(output), tok.eos_id]:
        if state == ACCEPT or t not in c.moves[state]:
            return False
        state = c.moves[state][t]
    return state == ACCEPT


def test_a_covered_verb_may_become_any_real_form_of_its_verb_in_its_own_case_and_punctuation() -> None:
    assert word_alternatives("Goed,") == ["Goed,", "Go,", "Goes,", "Went,", "Gone,"]  # never the learner's "goed"
    assert word_alternatives("(SAW") == ["(SAW", "(SEE", "(SEES", "(SEEN"]
    assert word_alternatives("walked.") == ["walked.", "walk.", "walks."]  # past and participle are one form
    assert word_alternatives("has") == ["has", "have", "had"]
    assert word_alternatives("Patagonia!") == ["Patagonia!"] and word_alternatives("went-ish") == ["went-ish"]


@needs_weights
def test_every_held_out_target_is_reachable_from_its_source(tok: ByteBPETokenizer) -> None:
    pairs = generate_pairs(1500, "heldout", seed=5)
    assert {p.kind for p in pairs} == {"error", "correct", "ood"}
    assert any(sum(a != b for a, b in zip(p.source.split(), p.target.split())) == 3 for p in pairs)
    for p in pairs:
        assert walks(tok, p.source, p.target), p


@needs_weights
def test_nothing_but_the_source_with_verb_forms_changed_is_reachable(tok: ByteBPETokenizer) -> None:
    src = "Yesterday Giovanni goed to the market and buyed tomatoes."
    assert walks(tok, src, "Yesterday Giovanni went to the market and bought tomatoes.")
    assert walks(tok, src, src) and walks(tok, src, "Yesterday Giovanni goes to the market and buys tomatoes.")
    for wrong in ("Yesterday Giovani went to the market and bought tomatoes.",  # a name re-spelled
                  "Yesterday Giovanni went to market and bought tomatoes.",  # a word dropped
                  "Yesterday Giovanni went to the market and bought tomatoes",  # punctuation lost
                  "Yesterday Giovanni walked to the market and bought tomatoes.",  # another verb
                  "Yesterday Giovanni went to the market and bought tomatoes. Then",  # longer
                  "Yesterday Giovanni went to the market and bought"):  # ended early
        assert not walks(tok, src, wrong), wrong
    # a sentence without a covered verb can only be copied: the model has no choice at all
    c = SourceConstraint.build(tok, "Professor Okonkwo met Wrocław's mayor at 9.30.")
    assert c is not None and c.branching == 0


@needs_weights
def test_pick_keeps_the_models_choice_when_allowed_and_else_the_best_allowed(tok: ByteBPETokenizer) -> None:
    c = SourceConstraint.build(tok, "She go home.")
    assert c is not None and c.branching == 1
    never = lambda ids: pytest.fail("scores are read only when the model strays with a choice to make")  # noqa: E731
    only = next(iter(c.moves[0]))
    assert c.pick(0, tok.eos_id, never) == (only, c.moves[0][only])  # one way out: forced, whatever was preferred
    state = 0
    while len(c.moves[state]) == 1:
        state = next(iter(c.moves[state].values()))
    go, goes, went = (tok.encode(" " + w)[0] for w in ("go", "goes", "went"))
    branch = c.moves[state]
    assert {go, goes, went} <= set(branch)
    assert c.pick(state, went, never) == (went, branch[went])  # the model's argmax is allowed: kept
    best = max(branch, key=lambda t: t == went)
    assert c.pick(state, tok.eos_id, lambda ids: [float(i == went) for i in ids])[0] == best == went  # strayed
    assert c.pick(ACCEPT, 7, never) == (7, ACCEPT)  # after end-of-sequence nothing is constrained


@needs_weights
def test_odd_spacing_is_copied_and_an_empty_source_is_left_unconstrained(tok: ByteBPETokenizer) -> None:
    assert walks(tok, "two  spaces", "two  spaces") and not walks(tok, "two  spaces", "two spaces")
    assert SourceConstraint.build(tok, "") is None
