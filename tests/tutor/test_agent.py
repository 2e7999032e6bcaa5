from __future__ import annotations

import argparse
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import miniserve
from miniserve.tutor import agent as agent_mod
from miniserve.tutor import lexicon
from miniserve.tutor.agent import Correction, Edit, GrammarTutorAgent, SentenceCheck, is_shouted, judge, model_input
from miniserve.tutor.corpus import generate_pairs
from miniserve.tutor.memory import LearnerMemory

# The shipped checkpoint, or MINISERVE_WEIGHTS_DIR (to run the real-model tests on a fresh one before it ships).
WEIGHTS_DIR = os.environ.get("MINISERVE_WEIGHTS_DIR") or str(Path(miniserve.__file__).parent / "tutor" / "weights")


class FakeGenerator:
    """Rewrites with `rule` (default: the corpus's corrections for a few known words); records its calls."""

    def __init__(self, rule: Callable[[str], str] | None = None, max_chars: int = 200) -> None:
        self.rule = rule or (lambda s: s.replace("goed", "went").replace("has went", "has gone"))
        self.max_chars = max_chars
        self.max_new_tokens = 40
        self.calls: list[tuple[list[str], bool]] = []
        self._lock = threading.Lock()

    def fits(self, source: str) -> bool:
        return len(source) <= self.max_chars

    def generate(self, sources: list[str], max_new_tokens: int | None = None, stop_at_eos: bool = True) -> list[str]:
        with self._lock:
            self.calls.append((list(sources), stop_at_eos))
        return [self.rule(s) for s in sources]


def make(rule: Callable[[str], str] | None = None, db: str = ":memory:", **kw) -> GrammarTutorAgent:
    return GrammarTutorAgent(FakeGenerator(rule, **kw), LearnerMemory(db))


# --- the guard (pure) ---------------------------------------------------------------------------------------


def test_accepts_one_covered_verb_edit() -> None:
    v = judge("He goed to school", "He went to school")
    assert v.text == "He went to school" and v.edits == (Edit("goed", "went", "overregularized_past"),)
    assert not v.was_correct


def test_splices_into_the_learners_own_string() -> None:
    # whitespace, case and attached punctuation of the original survive; the model saw single spaces
    assert judge("  He   goed\tto Wrocław.  ", "He went to Wrocław.").text == "  He   went\tto Wrocław.  "
    assert judge("HE GOED TO SCHOOL", "he went to school").text == "HE WENT TO SCHOOL"  # shouting: see below
    assert judge("she has went.", "she has gone.").text == "she has gone."
    v = judge("Yesterday I Go home!", "Yesterday I went home!")
    assert v.text == "Yesterday I Went home!" and v.edits == (Edit("Go", "Went", "base_for_past"),)


@pytest.mark.parametrize(
    ("sentence", "output"),
    [
        ("He goed to Wrocław", "He went to Wroclaw"),  # changed a name
        ("He goed to Wrocław", "He went to Warsaw"),  # changed a name, one covered edit elsewhere
        ("He goed to school", "She went to school"),  # two words
        ("He goed to school", "He went to the school"),  # added a word
        ("He goed to school", "He went school"),  # dropped a word
        ("He goed to school", "He wented to school"),  # not a real form
        ("He goed to school", "He ate to school"),  # another verb
        ("He goed to school", "He gone to school"),  # participle without have/has
        ("He goed to school.", "He went to school!"),  # punctuation changed
        ("He goed to school.", "He went. to school."),  # punctuation moved
        ("He goed to school", "He Goed to school"),  # capitalisation only
        ("She has went home", "She has goes home"),  # no rule explains the edit
        ("After work Brits go to the pub.", "After works Brits go to the pub."),  # a noun taken for a verb (run 26)
        ("He goed to school", "He w\ufffdnt to school"),  # undecodable bytes from the model
        ("He goed to school", ""),
    ],
)
def test_guard_rejects_everything_else(sentence: str, output: str) -> None:
    v = judge(sentence, output)
    assert v.text == sentence and v.edits == () and v.why == agent_mod.WHY_UNSAFE and not v.was_correct


def test_accepts_several_verb_edits_each_judged_in_its_own_clause() -> None:
    v = judge("Yesterday Giovanni goed to the market and eated two apples, but he have not buy bread.",
              "Yesterday Giovanni went to the market and ate two apples, but he has not bought bread.")
    assert v.text == "Yesterday Giovanni went to the market and ate two apples, but he has not bought bread."
    assert [(e.original, e.corrected, e.error_type) for e in v.edits] == [
        ("goed", "went", "overregularized_past"), ("eated", "ate", "overregularized_past"),
        ("have", "has", "missing_third_person_s"), ("buy", "bought", "base_for_participle")]
    # "has" + "bought": the later edit is judged after the first, as the learner will read the sentence
    v = judge("She have went home.", "She has gone home.")
    assert [e.error_type for e in v.edits] == ["missing_third_person_s", "past_for_participle"]


@pytest.mark.parametrize("output", [
    "Yesterday Giovanni went to the market and ate two apples, but she has not bought bread.",  # a verb edit + a pronoun
    "Yesterday Giovanni went to the market and eats two apples, but he has not bought bread.",  # one edit no rule explains
    "Yesterday Giovani went to the market and ate two apples, but he has not bought bread.",  # a name
])
def test_one_bad_change_among_good_ones_rejects_the_whole_sentence(output: str) -> None:
    sentence = "Yesterday Giovanni goed to the market and eated two apples, but he have not buy bread."
    v = judge(sentence, output)
    assert v.text == sentence and v.edits == () and v.why == agent_mod.WHY_UNSAFE


def test_identical_output() -> None:
    v = judge("He went to school.", "He went to school.")
    assert v.was_correct and v.why == agent_mod.WHY_LOOKS_RIGHT and v.text == "He went to school."
    v = judge("The sky is blue.", "The sky is blue.")
    assert not v.was_correct and v.why == agent_mod.WHY_OUT_OF_SCOPE and v.reason == "out_of_scope"  # not checked
    assert "outside what I cover" in v.why
    # a rewrite of an out-of-domain sentence is not even considered
    v = judge("The sky is blue.", "The sky was blue.")
    assert not v.was_correct and v.why == agent_mod.WHY_OUT_OF_SCOPE and v.reason == "out_of_scope"  # not checked
    assert v.text == "The sky is blue."
    v = judge("My brother lives in Wrocław.", "My brother lives in Wroclaw.")
    assert v.why == agent_mod.WHY_UNSAFE and v.text == "My brother lives in Wrocław."
    # an output that keeps a form that is never right is not "checked and right", even unchanged
    v = judge("Yesterday he goed home.", "Yesterday he goed home.")
    assert not v.was_correct and v.reason == "unsafe" and v.status == "not_checked" and not v.edits


def test_shouted_sentences_are_read_in_small_letters_and_answered_in_capitals() -> None:
    assert model_input("YESTERDAY  HE GOED HOME, 2 DAYS AGO!") == "yesterday he goed home, 2 days ago!"
    for kept in ("NASA says he goed home.", "I go.", "He goed to Łódź", "3 + 4"):  # a small letter, or one capital
        assert model_input(kept) == kept
    v = judge("YESTERDAY  HE GOED HOME AND EAT RICE!", "yesterday he went home and ate rice!")
    assert v.text == "YESTERDAY  HE WENT HOME AND ATE RICE!"
    assert v.edits == (Edit("GOED", "WENT", "overregularized_past"), Edit("EAT", "ATE", "base_for_past"))
    assert judge("HE WENT HOME.", "he went home.").was_correct
    assert judge("HE GOED HOME.", "he goed home.").reason == "unsafe"  # a never-right form left in place
    # the model read small letters: an answer in other capitals is not a verb edit
    for output in ("HE WENT HOME.", "He went home.", "he went Home."):
        assert judge("HE GOED HOME.", output).reason == "unsafe", output


def test_guard_accepts_every_corpus_correction() -> None:
    for p in generate_pairs(2000, "heldout", seed=5):
        v = judge(p.source, p.target.lower() if is_shouted(p.source) else p.target)  # as the model answers
        assert v.text == p.target, p
        assert (v.edits[0].error_type if v.edits else None) == p.error_type, p


# --- the agent with a fake model ----------------------------------------------------------------------------


def test_correct_calls_the_model_once_stopping_at_eos() -> None:
    a = make()
    c = a.correct("He goed to school", "ana")
    assert c == Correction("He went to school", "The past tense of 'go' is the irregular form 'went', not 'goed'.",
                           False, [Edit("goed", "went", "overregularized_past")],
                           [SentenceCheck(0, 17, "corrected")])  # fmt: skip
    assert a.generator.calls == [(["He goed to school"], True)]


def test_injected_bad_rewrite_is_rejected_by_the_agent() -> None:
    a = make(lambda s: s.replace("goed", "went").replace("Łódź", "Lodz"))
    c = a.correct("He goed to Łódź", "ana")
    assert c.text == "He goed to Łódź" and c.edits == [] and c.why == agent_mod.WHY_UNSAFE and not c.was_correct
    assert a.memory.counts("ana") == {}  # a rejected rewrite teaches the learner memory nothing


def test_correct_batch_is_one_fixed_length_call() -> None:
    a = make(max_chars=30)
    sents = ["He goed home", "  She has went  ", "The sky is blue.", "x" * 31, "", "I went home"]
    out = a.correct_batch(sents, ["ana", None, "ben", "ana", None, "ana"])
    assert a.generator.calls == [(["He goed home", "She has went", "The sky is blue.", "I went home"], False)]
    assert [c.text for c in out] == ["He went home", "  She has gone  ", "The sky is blue.", "x" * 31, "", "I went home"]
    # "The sky is blue." has no covered verb: unchanged, but not checked, so not "correct" either
    assert [c.was_correct for c in out] == [False, False, False, False, False, True]
    assert out[3].why == agent_mod.WHY_TOO_LONG and out[4].why == agent_mod.WHY_EMPTY
    assert [[(k.status, k.reason) for k in c.checks] for c in out] == [
        [("corrected", None)], [("corrected", None)], [("not_checked", "out_of_scope")],
        [("not_checked", "too_long")], [], [("correct", None)]]
    assert out[1].checks == [SentenceCheck(2, 14, "corrected")]  # offsets of the stripped sentence
    assert out[1].edits == [Edit("went", "gone", "past_for_participle")]
    assert a.correct_batch([], []) == [] and len(a.generator.calls) == 1
    with pytest.raises(ValueError):
        a.correct_batch(["a"], [])


def test_every_sentence_of_an_input_is_a_row_of_one_call_and_edits_splice_back() -> None:
    a = make(lambda s: s.replace("take", "takes").replace("goed", "went"), db=":memory:")
    text = "I walk to school.  My sister take the bus!\nYesterday Dr. Okafor goed home."
    (c,) = a.correct_batch([text], ["ana"])
    assert a.generator.calls == [(["I walk to school.", "My sister take the bus!",
                                   "Yesterday Dr. Okafor goed home."], True)]  # one input: stops at its ends
    assert c.text == "I walk to school.  My sister takes the bus!\nYesterday Dr. Okafor went home."
    assert [k.status for k in c.checks] == ["correct", "corrected", "corrected"] and not c.was_correct
    assert [e.corrected for e in c.edits] == ["takes", "went"]
    assert "'take'" in c.why and "'went'" in c.why  # one explanation per edit
    assert sum(a.memory.counts("ana").values()) == 2  # memory records each edit
    # several sentences: each explanation says which sentence it is about
    assert c.why.startswith("Sentence 2: ") and " Sentence 3: " in c.why and "Sentence 1" not in c.why


def test_a_piece_without_a_letter_or_digit_is_not_a_sentence() -> None:
    a = make()
    c = a.correct("He walks home.\x07")  # a bell after the full stop: the splitter makes it a piece of its own
    assert c.was_correct and c.text == "He walks home.\x07" and [(k.start, k.end) for k in c.checks] == [(0, 14)]
    c = a.correct("  .  .  ")
    assert c.checks == [] and c.why == agent_mod.WHY_EMPTY and c.text == "  .  .  " and not c.was_correct
    assert a.generator.calls == [(["He walks home."], True)]


def test_each_edit_says_where_its_word_starts_in_the_input() -> None:
    text = "  He goed home. She goed out! HE GOED AWAY."  # the shouted one reaches the model in small letters
    c = make(lambda s: s.replace("goed", "went")).correct(text)
    assert [(e.original, e.start) for e in c.edits] == [("goed", 5), ("goed", 20), ("GOED", 33)]
    assert all(text[e.start:e.start + len(e.original)] == e.original for e in c.edits)
    assert agent_mod.correction_to_dict(c)["edits"][1] == {"original": "goed", "corrected": "went",
                                                           "error_type": "overregularized_past", "start": 20}


def test_one_mistake_made_twice_in_a_sentence_is_explained_once() -> None:
    a = make()
    c = a.correct("He goed home and she goed out.")
    assert [e.corrected for e in c.edits] == ["went", "went"]
    assert c.why == lexicon.explain(c.edits[0], 0) and "Sentence" not in c.why  # one sentence: no label
    # with a learner, memory counts both; the one explanation carries the latest count
    c = a.correct("He goed home and she goed out.", "ana")
    assert a.memory.counts("ana") == {"overregularized_past": 2}
    assert c.why == lexicon.explain(c.edits[1], 2) != lexicon.explain(c.edits[1], 0)


def test_was_correct_only_when_every_sentence_was_checked_and_right() -> None:
    a = make(max_chars=30)
    ok = a.correct("I walk to school. She has a dog.")
    assert ok.was_correct and ok.why == agent_mod.WHY_LOOKS_RIGHT and [k.status for k in ok.checks] == ["correct"] * 2
    part = a.correct("I walk to school. " + "She has a very old and very lazy dog.")
    assert not part.was_correct and part.text == "I walk to school. She has a very old and very lazy dog."
    assert [(k.status, k.reason) for k in part.checks] == [("correct", None), ("not_checked", "too_long")]
    assert part.why == "Sentence 2: " + agent_mod.WHY_TOO_LONG


@pytest.mark.parametrize("text", [
    "   ", "...", "?!?!", ". . .", "x" * 500, " ".join(["go"] * 200), "He goed 🚀🚀 home.", "هو ذهب إلى المدرسة.",
    "He\x00 goed\x1b home.", "\u202eHe goed home.", "A.\u00a0.", "He goed home.\r\n\r\nShe runned.",
])
def test_odd_input_gets_an_answer_and_keeps_the_text(text: str) -> None:
    c = make(lambda s: s, max_chars=200).correct(text)  # a model that changes nothing: the text must survive whole
    assert c.text == text and isinstance(c.why, str) and c.why
    assert all(0 <= k.start < k.end <= len(text) for k in c.checks)
    assert all((k.status == "not_checked") == (k.reason is not None) for k in c.checks)


def test_a_batch_of_one_stops_at_its_end_of_sequence() -> None:
    # max_batch=1 must cost what the unbatched server costs: no other member to wait for.
    a = make()
    a.correct_batch(["He goed home", "x" * 600], [None, None])
    assert a.generator.calls == [(["He goed home"], True)]
    a.correct_batch(["He goed home. She goed too.", "I eat."], [None, None])  # two inputs: the batch runs it all
    a.correct_batch(["He goed home. She goed too."], [None])  # one input of two sentences: as `correct` does
    assert a.generator.calls[1:] == [(["He goed home.", "She goed too.", "I eat."], False),
                                     (["He goed home.", "She goed too."], True)]


def test_a_shouted_sentence_reaches_the_model_in_small_letters() -> None:
    a = make()
    c = a.correct("I walk to school. YESTERDAY HE GOED HOME!")
    assert a.generator.calls == [(["I walk to school.", "yesterday he goed home!"], True)]
    assert c.text == "I walk to school. YESTERDAY HE WENT HOME!"
    assert c.edits == [Edit("GOED", "WENT", "overregularized_past")]
    assert a.begin_correction("HE GOED HOME.").sources == ["he goed home."]  # continuous batching's rows too


def test_too_long_sentence_never_reaches_the_model() -> None:
    a = make(max_chars=10)
    c = a.correct("He goed to school every single day")
    assert c.text == "He goed to school every single day" and c.why == agent_mod.WHY_TOO_LONG and not a.generator.calls


def test_repeats_are_counted_per_learner() -> None:
    a = make()
    whys = [a.correct("I goed home", "ana").why for _ in range(3)]
    assert "time" not in whys[0] and "second time" in whys[1]
    assert whys[2].endswith("This is the third time you've over-regularised a past tense.")
    assert "time" not in a.correct("I goed home", "ben").why  # another learner
    for _ in range(3):
        assert "time" not in a.correct("I goed home", None).why  # no learner: nothing remembered
    assert a.memory.counts("ana") == {"overregularized_past": 3}


def test_batch_repeats_within_one_batch() -> None:
    a = make()
    out = a.correct_batch(["I goed home", "I goed home", "I went home"], ["ana", "ana", "ana"])
    assert "time" not in out[0].why and "second time" in out[1].why and out[2].was_correct


def test_memory_survives_a_new_agent(tmp_path: Path) -> None:
    db = str(tmp_path / "learners.sqlite3")
    a = make(db=db)
    a.correct("I goed home", "ana")
    a.correct_batch(["I goed home"], ["ana"])
    b = make(db=db)  # a restart: a new agent, a new connection, the same file
    assert "third time" in b.correct("They goed home", "ana").why
    assert "time" not in b.correct("They goed home", "somebody-new").why


def test_concurrent_correct_calls() -> None:
    a = make()

    def work() -> None:
        for _ in range(20):
            assert a.correct("He goed home", "ana").text == "He went home"

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert a.memory.counts("ana") == {"overregularized_past": 120}


def test_run_correct(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fake = make()
    seen: list[str | None] = []

    def load_default(db_path: str | None = None) -> GrammarTutorAgent:
        seen.append(db_path)
        return fake

    monkeypatch.setattr(GrammarTutorAgent, "load_default", staticmethod(load_default))
    ns = argparse.Namespace(sentence="He goed to school", learner_id=None, db=None, json=False)
    assert agent_mod.run_correct(ns) == 0
    assert capsys.readouterr().out.splitlines() == ["He went to school",
                                                    "The past tense of 'go' is the irregular form 'went', not 'goed'."]  # fmt: skip
    assert seen == [":memory:"]  # no learner: no database file is created
    ns.json, ns.learner_id, ns.db = True, "ana", "/tmp/x.sqlite3"
    assert agent_mod.run_correct(ns) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["corrected"] == "He went to school" and got["edits"][0]["error_type"] == "overregularized_past"
    assert set(got) == {"corrected", "explanation", "was_correct", "edits", "checks"}  # the HTTP answer's shape
    assert seen[-1] == "/tmp/x.sqlite3"
    # what the API refuses with a 422, the CLI refuses as a usage error, before loading anything
    for text, words in (("", "empty"), ("  \n", "empty"), ("x" * 501, "at most 500 characters, got 501")):
        ns.sentence = text
        assert agent_mod.run_correct(ns) == 2
        assert words in capsys.readouterr().err
    assert len(seen) == 2


# --- the shipped model --------------------------------------------------------------------------------------

needs_weights = pytest.mark.skipif(
    not (Path(WEIGHTS_DIR) / "model.safetensors").exists(),
    reason=f"no trained checkpoint yet ({WEIGHTS_DIR}/model.safetensors missing)",
)


@pytest.fixture(scope="module")
def real_agent() -> GrammarTutorAgent:
    if os.environ.get("MINISERVE_WEIGHTS_DIR"):
        from miniserve.tutor.generate import Generator

        return GrammarTutorAgent(Generator.load(WEIGHTS_DIR), LearnerMemory(":memory:"))
    return GrammarTutorAgent.load_default(db_path=":memory:")


def _mixed_sentences() -> list[str]:
    pairs = generate_pairs(60, "heldout", seed=11)
    extra = ["He goed to school", "she has went home yesterday morning with her little brother and two friends",
             "The sky is blue.", "Can you help me?", "My brother is a doctor in Wrocław.", "i eat",
             "They have ate all the cookies at Zoë's birthday party in Kraków!", "Go"]  # fmt: skip
    return [p.source for p in pairs] + extra


@needs_weights
def test_batched_equals_unbatched_on_the_real_model(real_agent: GrammarTutorAgent) -> None:
    sentences = _mixed_sentences()
    assert len(sentences) >= 64 and len({len(s) for s in sentences}) > 20
    batched = real_agent.correct_batch(sentences, [None] * len(sentences))
    alone = [real_agent.correct(s) for s in sentences]
    assert batched == alone


@needs_weights
def test_real_model_on_the_issue_examples(real_agent: GrammarTutorAgent) -> None:
    c = real_agent.correct("He goed to school")
    assert c.text == "He went to school" and c.edits == [Edit("goed", "went", "overregularized_past")]
    for s in ("The sky is blue.", "Can you help me?", "My brother is a doctor in Wrocław."):
        c = real_agent.correct(s)
        assert c.text == s and c.edits == [] and "outside" in c.why, (s, c)
    assert real_agent.correct("She has went to Gdańsk.").text == "She has gone to Gdańsk."
