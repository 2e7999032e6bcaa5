"""GrammarTutorAgent: the model proposes a corrected sentence; a guard and the verb lexicon decide what the learner gets.

The model is trusted with one thing only: which covered verb form to change into which. Anything else in its
output (a changed name, a second edit, a dropped word, an invented form) makes the agent return the sentence
untouched. The accepted word is spliced into the learner's own string, so spacing, names and punctuation come
back byte for byte; the explanation comes from the lexicon, never from generated text.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
from dataclasses import asdict, dataclass
from typing import Protocol

from miniserve.tutor import lexicon
from miniserve.tutor.memory import LearnerMemory, default_db_path

WHY_LOOKS_RIGHT = "Looks right: I found no verb form to fix."
WHY_OUT_OF_SCOPE = (
    "This sentence is outside what I cover (the conjugation of 20 common verbs such as go, eat, walk and have), "
    "so I left it unchanged."
)
WHY_UNSAFE = "I couldn't check this sentence safely, so I left it unchanged."
WHY_TOO_LONG = "This sentence is too long for me to check, so I left it unchanged."
WHY_EMPTY = "There is no sentence to check."

_WORD = re.compile(r"\S+")


@dataclass(slots=True, frozen=True)
class Edit:
    original: str  # the word as the user wrote it, e.g. "goed"
    corrected: str  # e.g. "went"
    error_type: str  # one of lexicon.ERROR_TYPES keys, e.g. "overregularized_past"


@dataclass(slots=True)
class Correction:
    text: str  # corrected sentence (== input when nothing to fix or rejected)
    why: str  # explanation for a learner
    was_correct: bool  # True when the sentence was checked and needed no change
    edits: list[Edit]


class TextGenerator(Protocol):
    max_new_tokens: int

    def generate(self, sources: list[str], max_new_tokens: int | None = None, stop_at_eos: bool = True) -> list[str]: ...

    def fits(self, source: str) -> bool: ...


@dataclass(slots=True, frozen=True)
class Verdict:
    """The guard's decision on one model output, before learner memory adds repeat counts."""

    text: str
    edit: Edit | None
    why: str  # used when there is no edit; an edit is explained with the learner's repeat count
    was_correct: bool


def _unchanged(sentence: str, why: str, was_correct: bool = False) -> Verdict:
    return Verdict(sentence, None, why, was_correct)


def model_input(sentence: str) -> str:
    """The model was trained on single-spaced sentences; the learner's own spacing is restored by splicing."""
    return " ".join(sentence.split())


def judge(sentence: str, output: str) -> Verdict:
    """Accept `output` only if it changes exactly one covered verb form of `sentence` into a real form that the
    lexicon can classify in context; otherwise keep the sentence as written."""
    spans = [m.span() for m in _WORD.finditer(sentence)]
    words = [sentence[a:b] for a, b in spans]
    out = output.split()
    if not lexicon.contains_covered_verb(sentence):
        # Out of the domain whatever the model wrote: the tutor never rewrites what it does not cover.
        return _unchanged(sentence, WHY_OUT_OF_SCOPE, was_correct=True)
    if out == words:
        return _unchanged(sentence, WHY_LOOKS_RIGHT, was_correct=True)
    if len(out) != len(words):
        return _unchanged(sentence, WHY_UNSAFE)
    diff = [i for i, (w, o) in enumerate(zip(words, out)) if w != o]
    if len(diff) != 1:
        return _unchanged(sentence, WHY_UNSAFE)
    i = diff[0]
    pre_w, core_w, post_w = lexicon.split_affixes(words[i])
    pre_o, core_o, post_o = lexicon.split_affixes(out[i])
    if (pre_w, post_w) != (pre_o, post_o) or core_w.lower() == core_o.lower():
        return _unchanged(sentence, WHY_UNSAFE)  # punctuation or capitalisation changed: not a verb edit
    if not (lexicon.is_covered_form(core_w) and lexicon.is_real_form(core_o)):
        return _unchanged(sentence, WHY_UNSAFE)
    try:
        error_type = lexicon.classify_edit(words[:i], core_w, core_o)
    except ValueError:
        return _unchanged(sentence, WHY_UNSAFE)
    corrected = lexicon.match_case(core_w, core_o.lower())
    a, b = spans[i]
    text = sentence[:a] + pre_w + corrected + post_w + sentence[b:]
    return Verdict(text, Edit(core_w, corrected, error_type), "", False)


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
        src = model_input(sentence)
        if not src:
            return _unchanged(sentence, WHY_EMPTY)
        if not self.generator.fits(src):
            return _unchanged(sentence, WHY_TOO_LONG)
        return None

    def correct(self, sentence: str, learner_id: str | None = None) -> Correction:
        verdict = self._precheck(sentence)
        if verdict is None:
            output = self.generator.generate([model_input(sentence)], stop_at_eos=True)[0]
            verdict = judge(sentence, output)
        return self._finish([verdict], [learner_id])[0]

    def correct_batch(self, sentences: list[str], learner_ids: list[str | None]) -> list[Correction]:
        """One batched generation for every sentence that fits, run for the generator's full max_new_tokens when
        it holds two or more (by design: static batching pays for its longest member), then one memory
        transaction."""
        if len(sentences) != len(learner_ids):
            raise ValueError(f"{len(sentences)} sentences but {len(learner_ids)} learner ids")
        verdicts: list[Verdict | None] = [self._precheck(s) for s in sentences]
        todo = [i for i, v in enumerate(verdicts) if v is None]
        if todo:
            # The fixed length stands for "a batch waits for its longest member". A batch of one has no other
            # member to wait for, so it stops at its own end-of-sequence, like `correct`: that is what lets
            # static batching with max_batch=1 match the unbatched server.
            outputs = self.generator.generate(
                [model_input(sentences[i]) for i in todo], stop_at_eos=len(todo) == 1
            )
            for i, output in zip(todo, outputs, strict=True):
                verdicts[i] = judge(sentences[i], output)
        return self._finish([v for v in verdicts if v is not None], learner_ids)

    def _finish(self, verdicts: list[Verdict], learner_ids: list[str | None]) -> list[Correction]:
        to_record = [i for i, v in enumerate(verdicts) if v.edit is not None and learner_ids[i]]
        counts = self.memory.record_many(
            [(learner_ids[i], verdicts[i].edit.error_type) for i in to_record]  # type: ignore[misc, union-attr]
        )
        repeat = dict(zip(to_record, counts))
        out: list[Correction] = []
        for i, v in enumerate(verdicts):
            if v.edit is None:
                out.append(Correction(v.text, v.why, v.was_correct, []))
            else:
                why = lexicon.explain(v.edit, repeat.get(i, 0))
                out.append(Correction(v.text, why, False, [v.edit]))
        return out


_agents: dict[str, GrammarTutorAgent] = {}
_agents_lock = threading.Lock()


def correction_to_dict(c: Correction) -> dict[str, object]:
    return {"text": c.text, "why": c.why, "was_correct": c.was_correct, "edits": [asdict(e) for e in c.edits]}


def run_correct(args: argparse.Namespace) -> int:
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
