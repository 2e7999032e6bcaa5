from __future__ import annotations

from dataclasses import dataclass

import pytest

from miniserve.tutor import lexicon
from miniserve.tutor.lexicon import classify_edit, explain


@dataclass
class E:
    original: str
    corrected: str
    error_type: str


def test_table_has_the_twenty_verbs_of_the_issue() -> None:
    assert set(lexicon.REGULAR_VERBS) == {"work", "play", "watch", "walk", "study", "like", "cook", "clean",
                                          "visit", "finish", "call", "live"}  # fmt: skip
    assert set(lexicon.IRREGULAR_VERBS) == {"go", "eat", "see", "write", "take", "buy", "do", "have"}
    v = lexicon.VERBS
    assert (v["go"].past, v["go"].participle, v["buy"].participle, v["have"].third) == ("went", "gone", "bought", "has")
    assert (v["study"].third, v["study"].past, v["watch"].third, v["do"].third) == ("studies", "studied", "watches", "does")
    assert {"goed", "eated", "buyed", "taked", "writed", "haved", "doed", "seed"} == set(lexicon.WRONG_FORMS)
    assert len(lexicon.ERROR_TYPES) == 7


@pytest.mark.parametrize(
    ("before", "orig", "corr", "expected"),
    [
        ("He", "walk", "walks", "missing_third_person_s"),
        ("My sister always", "go", "goes", "missing_third_person_s"),
        ("he", "have", "has", "missing_third_person_s"),
        ("She", "have", "has", "missing_third_person_s"),  # auxiliary: "She have finished"
        ("I", "walks", "walk", "extra_third_person_s"),
        ("I", "has", "have", "extra_third_person_s"),
        ("He", "goed", "went", "overregularized_past"),
        ("they", "Eated", "Ate", "overregularized_past"),
        ("She has", "goed", "gone", "overregularized_past"),
        ("she", "walk", "walked", "base_for_past"),
        ("Yesterday, I", "go", "went", "base_for_past"),
        ("she has", "walk", "walked", "base_for_participle"),
        ("I have", "go", "gone", "base_for_participle"),
        ("They have already", "have", "had", "base_for_participle"),
        ("she has", "went", "gone", "past_for_participle"),
        ("they have", "ate", "eaten", "past_for_participle"),
        ("I've just", "saw", "seen", "past_for_participle"),
        ("he will", "goes", "go", "inflected_after_modal"),
        ("she will probably", "went", "go", "inflected_after_modal"),
        ("She'll", "walked", "walk", "inflected_after_modal"),
        ("she is going to", "walked", "walk", "inflected_after_modal"),
        ("He will", "has", "have", "inflected_after_modal"),
    ],
)
def test_classify_edit(before: str, orig: str, corr: str, expected: str) -> None:
    assert classify_edit(before.split(), orig, corr) == expected


def test_classify_ignores_case_and_attached_punctuation() -> None:
    assert classify_edit(["HE"], "GOED.", "WENT.") == "overregularized_past"
    assert classify_edit(["they", "have"], "ate!", "eaten!") == "past_for_participle"
    assert classify_edit(["I\u2019ve"], "went", "gone") == "past_for_participle"  # curly apostrophe


@pytest.mark.parametrize(
    ("before", "orig", "corr"),
    [
        ("He", "goed", "ate"),  # different verbs
        ("He", "went", "went"),  # no change
        ("He", "runned", "ran"),  # not a covered verb
        ("He", "went", "goed"),  # corrected form is not a real form
        ("He", "Anna", "went"),
        ("He", "goed", "gone"),  # participle without have/has
        ("she has", "goed", "went"),  # past where the participle is needed
        ("he will", "go", "goes"),  # inflecting after a modal is never a correction
        ("He", "went", "goes"),  # past -> 3rd person: no rule
        ("He always", "walks", "walk"),  # would break agreement with the pronoun
        ("they", "walk", "walks"),
        ("I", "have", "has"),
        ("After", "work", "works"),  # right after a preposition it is a noun ("after work")
        ("they came home from", "work", "worked"),
        ("she is good at", "cooks", "cook"),
    ],
)
def test_classify_rejects_edits_no_rule_explains(before: str, orig: str, corr: str) -> None:
    with pytest.raises(ValueError):
        classify_edit(before.split(), orig, corr)


def test_a_preposition_blocks_only_the_word_right_after_it() -> None:
    assert classify_edit("after work he".split(), "go", "goes") == "missing_third_person_s"
    assert classify_edit("I want to".split(), "works", "work") == "extra_third_person_s"  # "to" is not among them


def test_explain_uses_the_table() -> None:
    assert explain(E("goed", "went", "overregularized_past")) == "The past tense of 'go' is the irregular form 'went', not 'goed'."
    assert "past participle of 'go'" in explain(E("goed", "gone", "overregularized_past"))
    assert "'eaten'" in explain(E("ate", "eaten", "past_for_participle"))
    assert "'has'" in explain(E("have", "has", "missing_third_person_s"))
    assert "'walked'" in explain(E("walk", "walked", "base_for_past"))
    assert "'go'" in explain(E("goes", "go", "inflected_after_modal"))
    for t in lexicon.ERROR_TYPES:
        assert explain(E("walk", "walked", t))  # every type has an explanation
    with pytest.raises(ValueError):
        explain(E("walk", "walked", "no_such_type"))


def test_explain_mentions_repeats_from_the_second_time() -> None:
    e = E("goed", "went", "overregularized_past")
    assert "time" not in explain(e, 0) and "time" not in explain(e, 1)
    assert "second time" in explain(e, 2)
    assert explain(e, 3).endswith("This is the third time you've over-regularised a past tense.")
    assert "11th time" in explain(e, 11) and "22nd time" in explain(e, 22)


def test_coverage_checks() -> None:
    assert lexicon.is_covered_form("GOED.") and lexicon.is_covered_form("Has") and lexicon.is_covered_form("studies")
    assert not lexicon.is_covered_form("is") and not lexicon.is_covered_form("Wrocław")
    assert lexicon.is_real_form("went") and not lexicon.is_real_form("goed")
    for s in ("The sky is blue.", "Can you help me?", "My brother is a doctor in Wrocław.", "", "Hello"):
        assert not lexicon.contains_covered_verb(s), s
    for s in ("He goed to school", "she has went home!", "i like tea"):
        assert lexicon.contains_covered_verb(s), s


def test_match_case_and_affixes() -> None:
    assert lexicon.match_case("Goed", "went") == "Went"
    assert lexicon.match_case("GOED", "went") == "WENT"
    assert lexicon.match_case("goed", "Went") == "went"
    assert lexicon.split_affixes('"goed."') == ('"', "goed", '."')
    assert lexicon.split_affixes("...") == ("...", "", "")
