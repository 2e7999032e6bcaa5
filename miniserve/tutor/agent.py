"""GrammarTutorAgent: the model proposes a corrected sentence; a guard and the verb lexicon decide what the learner gets.

A learner's input may hold several sentences: it is split (`sentences.py`), every sentence is a row of one batched
generation, and each accepted edit is spliced back into the learner's own text, so everything else comes back byte
for byte. The model is trusted with one thing only: which covered verb form to change into which. Anything else in
its output (a changed name, a second edit, a dropped word, an invented form) leaves that sentence untouched. The
explanation comes from the lexicon, never from generated text. Every sentence gets a `SentenceCheck` saying whether
it was checked and, if not, why: "unchanged" must never be mistaken for "checked and right".
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from miniserve.tutor import lexicon
from miniserve.tutor.memory import LearnerMemory, default_db_path
from miniserve.tutor.sentences import Sentence, splice, split_sentences

WHY_LOOKS_RIGHT = "Looks right: I found no verb form to fix."
WHY_OUT_OF_SCOPE = (
    "This sentence is outside what I cover (the conjugation of 20 common verbs such as go, eat, walk and have), "
    "so I left it unchanged."
)
WHY_UNSAFE = "I couldn't check this sentence safely, so I left it unchanged."
WHY_TOO_LONG = "This sentence is too long for me to check, so I left it unchanged."
WHY_EMPTY = "There is no sentence to check."

_WORD = re.compile(r"\S+")
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")  # in any script


def readable_sentences(text: str) -> list[Sentence]:
    """The input's sentences that hold a letter or a digit. A piece of only punctuation, symbols or control
    characters ("...", "\a" after a full stop) is nothing to read: it is neither checked nor reported, so it cannot
    make `was_correct` false, and it comes back as it was like every other byte."""
    return [s for s in split_sentences(text) if _LETTER_OR_DIGIT.search(s.text)]


# What a learner sends at once, in characters: a short paragraph (the API's limit, enforced in server/payload.py).
MAX_INPUT_CHARS = 500
# A text must hold at least one non-whitespace character. input_problem and the API's OpenAPI `pattern` are this one
# regex (Python's \s is exactly what str.isspace() calls whitespace), so the schema promises what is enforced. An
# ECMA-262 validator reads the pattern the same way except for U+001C-U+001F, U+0085 and U+FEFF.
NON_BLANK = re.compile(r"\S")


@dataclass(slots=True, frozen=True)
class Edit:
    original: str  # the word as the user wrote it, e.g. "goed"
    corrected: str  # e.g. "went"
    error_type: str  # one of lexicon.ERROR_TYPES keys, e.g. "overregularized_past"
    # where `original` starts in the learner's input (in a sentence's Verdict: in that sentence), so two equal
    # mistakes in one text can be told apart. Not part of an edit's identity: the same fix anywhere compares equal.
    start: int = field(default=0, compare=False)


Status = Literal["correct", "corrected", "not_checked"]
# Why a sentence was not checked: no covered verb in it, longer than the model's context, or the model's output
# failed the guard. (Empty input has no sentence at all: `checks` is empty.)
Reason = Literal["out_of_scope", "too_long", "unsafe"]


@dataclass(slots=True, frozen=True)
class SentenceCheck:
    start: int  # the sentence's character offsets in the learner's input
    end: int
    status: Status
    reason: Reason | None = None  # set exactly when status == "not_checked"


@dataclass(slots=True)
class Correction:
    text: str  # the corrected input (== input when nothing to fix or nothing could be checked)
    why: str  # explanation for a learner
    was_correct: bool  # True only when every sentence was checked and none needed a change
    edits: list[Edit]
    checks: list[SentenceCheck]  # one per sentence, in order


class TextGenerator(Protocol):
    max_new_tokens: int

    def generate(self, sources: list[str], max_new_tokens: int | None = None, stop_at_eos: bool = True) -> list[str]: ...

    def fits(self, source: str) -> bool: ...


@dataclass(slots=True, frozen=True)
class Verdict:
    """The guard's decision on one model output, before learner memory adds repeat counts."""

    text: str
    edits: tuple[Edit, ...]  # in sentence order; empty when nothing was changed
    why: str  # used when there is no edit; an edit is explained with the learner's repeat count
    was_correct: bool
    reason: Reason | None = None  # why the sentence was not checked, when it was not

    @property
    def status(self) -> Status:
        return "corrected" if self.edits else "correct" if self.was_correct else "not_checked"


_REASONS: dict[str, Reason] = {WHY_OUT_OF_SCOPE: "out_of_scope", WHY_TOO_LONG: "too_long", WHY_UNSAFE: "unsafe"}


def _unchanged(sentence: str, why: str, was_correct: bool = False) -> Verdict:
    return Verdict(sentence, (), why, was_correct, None if was_correct else _REASONS[why])


def is_shouted(sentence: str) -> bool:
    """Written all in capitals ("YESTERDAY I GOED HOME!"): two or more capital letters and no small one."""
    return sum(c.isupper() for c in sentence) >= 2 and not any(c.islower() for c in sentence)


def model_input(sentence: str) -> str:
    """The model was trained on single-spaced sentences; the learner's own spacing is restored by splicing.

    A shouted sentence is given to the model in small letters. The corpus writes 10% of its sentences all in small
    letters but shouts in only 2% of the short ones, and the shipped model missed 19 of the 24 shouted held-out
    error sentences (MODEL.md); the guard gives every accepted edit the learner's capitals back (`judge`)."""
    text = " ".join(sentence.split())
    return text.lower() if is_shouted(text) else text


def judge(sentence: str, output: str) -> Verdict:
    """Accept `output` only if every word it changes is a covered verb form of `sentence` turned into a real form
    that the lexicon can classify in its own clause's context; otherwise keep the sentence as written."""
    spans = [m.span() for m in _WORD.finditer(sentence)]
    words = [sentence[a:b] for a, b in spans]
    seen = model_input(sentence).split()  # `words` as the model read them (in small letters when shouted)
    out = output.split()
    if not lexicon.contains_covered_verb(sentence):
        # Out of the domain whatever the model wrote: the tutor never rewrites what it does not cover, and it does
        # not call it right either (nothing in it was checked).
        return _unchanged(sentence, WHY_OUT_OF_SCOPE)
    if out == seen:
        if any(lexicon.is_wrong_form(w) for w in words):
            # The model left a form that is never right ("goed"): the tutor cannot call that checked and right.
            return _unchanged(sentence, WHY_UNSAFE)
        return _unchanged(sentence, WHY_LOOKS_RIGHT, was_correct=True)
    if len(out) != len(seen):
        return _unchanged(sentence, WHY_UNSAFE)
    edits: list[Edit] = []
    text = sentence
    for i in reversed([i for i, (w, o) in enumerate(zip(seen, out)) if w != o]):  # right to left: spans stay valid
        pre_w, core_w, post_w = lexicon.split_affixes(words[i])
        pre_o, core_o, post_o = lexicon.split_affixes(out[i])
        if (pre_w, post_w) != (pre_o, post_o) or core_w.lower() == core_o.lower():
            return _unchanged(sentence, WHY_UNSAFE)  # punctuation or capitalisation changed: not a verb edit
        if not (lexicon.is_covered_form(core_w) and lexicon.is_real_form(core_o)):
            return _unchanged(sentence, WHY_UNSAFE)
        try:
            # The context is the corrected sentence's words before this verb: "He have went" -> "has gone" is
            # judged "has" + "gone", as the learner will read it. Only the words right before a verb matter.
            error_type = lexicon.classify_edit(out[:i], core_w, core_o)
        except ValueError:
            return _unchanged(sentence, WHY_UNSAFE)
        corrected = lexicon.match_case(core_w, core_o.lower())
        a, b = spans[i]
        text = text[:a] + pre_w + corrected + post_w + text[b:]
        edits.append(Edit(core_w, corrected, error_type, a + len(pre_w)))
    return Verdict(text, tuple(reversed(edits)), "", False)


@dataclass(slots=True)
class InflightCorrection:
    """One learner input between `begin_correction` and `finish_correction` (continuous batching: each sentence
    that needs the model is generated on its own, as a row of `tutor.engine.TutorEngine`)."""

    text: str
    learner_id: str | None
    sentences: list[Sentence]
    verdicts: list[Verdict | None]  # per sentence; None while it waits for the model
    sources: list[str]  # the model input of every sentence whose verdict is None, in sentence order


class GrammarTutorAgent:
    """Thread-safe: the generator is read-only at inference time and the learner memory serialises its writes."""

    def __init__(self, generator: TextGenerator, memory: LearnerMemory | None = None) -> None:
        self.generator = generator
        self.memory = memory if memory is not None else LearnerMemory(":memory:")

    @classmethod
    def load_default(cls, db_path: str | None = None) -> GrammarTutorAgent:
        """The shipped model (loaded once per process) with learner memory at `db_path` (default data dir).

        Agents are cached per database file; ":memory:" always gets a fresh, private memory.
        """
        from miniserve.tutor.generate import default_generator  # torch import: only when a model is really needed

        path = db_path or default_db_path()
        if path == ":memory:":
            return cls(default_generator(), LearnerMemory(path))
        with _agents_lock:
            agent = _agents.get(path)
            if agent is None:
                agent = _agents[path] = cls(default_generator(), LearnerMemory(path))
            return agent

    def _precheck(self, sentence: str) -> Verdict | None:
        """A verdict without the model when the sentence cannot be given to it."""
        if not self.generator.fits(model_input(sentence)):
            return _unchanged(sentence, WHY_TOO_LONG)
        return None

    def correct(self, text: str, learner_id: str | None = None) -> Correction:
        """Correct one input (one or more sentences); generation stops once every sentence has ended."""
        return self._correct([text], [learner_id], stop_at_eos=lambda rows: True)[0]

    def correct_batch(self, texts: list[str], learner_ids: list[str | None]) -> list[Correction]:
        """One batched generation for every sentence of every input that fits, run until its longest row's budget
        is spent when it holds two or more inputs (by design: static batching pays for its longest member), then one
        memory transaction."""
        if len(texts) != len(learner_ids):
            raise ValueError(f"{len(texts)} inputs but {len(learner_ids)} learner ids")
        # Running to the longest budget stands for "a batch waits for its longest member". A batch of one input (or
        # of one row that reaches the model) has no other member to wait for, so it stops once its own sentences
        # have ended, like `correct`: that is what lets static batching with max_batch=1 match the unbatched server.
        single = len(texts) == 1
        return self._correct(texts, learner_ids, stop_at_eos=lambda rows: single or rows == 1)

    def begin_correction(self, text: str, learner_id: str | None = None) -> InflightCorrection:
        """Split one input and decide what can be decided without the model; `sources` is what remains to
        generate, one model input per sentence (possibly none). No model call, no memory write."""
        sentences = readable_sentences(text)
        verdicts = [self._precheck(s.text) for s in sentences]
        sources = [model_input(s.text) for s, v in zip(sentences, verdicts) if v is None]
        return InflightCorrection(text, learner_id, sentences, verdicts, sources)

    def finish_correction(self, inflight: InflightCorrection, outputs: list[str]) -> Correction:
        """Judge the model's output for each of `inflight.sources` (same order), splice, explain and record to
        memory: what `correct(text, learner_id)` returns when the outputs are the generator's."""
        if len(outputs) != len(inflight.sources):
            raise ValueError(f"{len(outputs)} outputs for {len(inflight.sources)} sources")
        pending = iter(outputs)
        verdicts = [v if v is not None else judge(s.text, next(pending))
                    for s, v in zip(inflight.sentences, inflight.verdicts)]
        return self._finish([inflight.text], [verdicts], [inflight.sentences], [inflight.learner_id])[0]

    def _correct(self, texts: list[str], learner_ids: list[str | None],
                 stop_at_eos: Callable[[int], bool]) -> list[Correction]:
        split = [readable_sentences(t) for t in texts]
        rows = [(i, k) for i, sents in enumerate(split) for k in range(len(sents))]  # (input, sentence) per row
        verdicts: dict[tuple[int, int], Verdict] = {}
        for i, k in rows:
            if (v := self._precheck(split[i][k].text)) is not None:
                verdicts[i, k] = v
        todo = [r for r in rows if r not in verdicts]
        if todo:
            outputs = self.generator.generate([model_input(split[i][k].text) for i, k in todo],
                                              stop_at_eos=stop_at_eos(len(todo)))
            for (i, k), output in zip(todo, outputs, strict=True):
                verdicts[i, k] = judge(split[i][k].text, output)
        return self._finish(texts, [[verdicts[i, k] for k in range(len(s))] for i, s in enumerate(split)],
                            split, learner_ids)

    def _finish(self, texts: list[str], verdicts: list[list[Verdict]], split: list[list[Sentence]],
                learner_ids: list[str | None]) -> list[Correction]:
        edited = [(i, k, j) for i, vs in enumerate(verdicts) if learner_ids[i]
                  for k, v in enumerate(vs) for j in range(len(v.edits))]
        counts = self.memory.record_many(
            [(learner_ids[i], verdicts[i][k].edits[j].error_type) for i, k, j in edited]  # type: ignore[misc]
        )
        repeat = dict(zip(edited, counts))
        return [_correction(text, sents, vs, [[repeat.get((i, k, j), 0) for j in range(len(v.edits))]
                                              for k, v in enumerate(vs)])
                for i, (text, sents, vs) in enumerate(zip(texts, split, verdicts))]


def _correction(text: str, sentences: list[Sentence], verdicts: list[Verdict],
                repeats: list[list[int]]) -> Correction:
    """Splice each sentence's verdict into the learner's text and explain every edit and every unchecked sentence.
    `repeats[k][j]`: how often the learner has now made the mistake of sentence k's edit j (0: not recorded)."""
    corrected = splice(text, sentences, [v.text for v in verdicts])
    edits = [replace(e, start=s.start + e.start) for s, v in zip(sentences, verdicts) for e in v.edits]
    checks = [SentenceCheck(s.start, s.end, v.status, v.reason) for s, v in zip(sentences, verdicts)]
    if not sentences:
        return Correction(text, WHY_EMPTY, False, [], [])
    whys: list[str] = []
    for n, (v, rs) in enumerate(zip(verdicts, repeats), start=1):
        if v.edits:
            # the same mistake twice in one sentence is explained once, with the learner's latest count
            last = {(e.original.lower(), e.corrected.lower(), e.error_type): (e, r) for e, r in zip(v.edits, rs)}
            said = [lexicon.explain(e, r) for e, r in last.values()]
        elif v.status == "not_checked":
            said = [v.why]
        else:
            continue
        # several sentences: say which one each explanation is about
        whys.append(" ".join(said) if len(sentences) == 1 else f"Sentence {n}: {' '.join(said)}")
    return Correction(corrected, " ".join(whys) or WHY_LOOKS_RIGHT, all(v.was_correct for v in verdicts),
                      edits, checks)


_agents: dict[str, GrammarTutorAgent] = {}
_agents_lock = threading.Lock()


def correction_to_dict(c: Correction) -> dict[str, object]:
    """The answer as `POST /correct` sends it and `miniserve correct --json` prints it (one shape, one place)."""
    return {"corrected": c.text, "explanation": c.why, "was_correct": c.was_correct,
            "edits": [{"original": e.original, "corrected": e.corrected, "error_type": e.error_type, "start": e.start}
                      for e in c.edits],
            "checks": [{"start": k.start, "end": k.end, "status": k.status, "reason": k.reason} for k in c.checks]}


def input_problem(text: str, max_chars: int = MAX_INPUT_CHARS) -> str | None:
    """Why a text is refused (None: it is taken): over `max_chars`, or nothing but whitespace. One check for the
    CLI's usage error and the API's 422 on each text field (server/payload.py, which also checks types)."""
    if len(text) > max_chars:
        return f"at most {max_chars} characters, got {len(text)}"
    if not NON_BLANK.search(text):
        return "must not be empty or only whitespace"
    return None


def run_correct(args: argparse.Namespace) -> int:
    if problem := input_problem(args.sentence):  # what the API would refuse with a 422
        print(f"miniserve correct: error: text: {problem}", file=sys.stderr)
        return 2
    # Without a learner there is nothing to remember: don't create a database file for a one-off check.
    db = args.db or (None if args.learner_id else ":memory:")
    try:
        agent = GrammarTutorAgent.load_default(db_path=db)
    except FileNotFoundError as e:
        print(f"miniserve: no trained checkpoint ({e}); run `miniserve train` first", file=sys.stderr)
        return 1
    c = agent.correct(args.sentence, args.learner_id)
    if args.json:
        print(json.dumps(correction_to_dict(c), ensure_ascii=False))
    else:
        print(c.text)
        print(c.why)
    return 0
