"""The tutor's conjugation table: the tool the agent consults to classify and explain a verb edit.

The model proposes a rewrite; everything the learner reads about *why* comes from this table, never from
generated text. Matching is case-insensitive and ignores punctuation attached to a word ("goed." is "goed").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True, frozen=True)
class Verb:
    base: str
    third: str  # 3rd-person singular present
    past: str
    participle: str
    wrong: tuple[str, ...] = ()  # over-regularised forms learners produce (irregular verbs only)

    @property
    def regular(self) -> bool:
        return not self.wrong


def _regular(base: str, third: str, past: str) -> Verb:
    return Verb(base, third, past, past)


VERBS: dict[str, Verb] = {
    v.base: v
    for v in (
        _regular("work", "works", "worked"),
        _regular("play", "plays", "played"),
        _regular("watch", "watches", "watched"),
        _regular("walk", "walks", "walked"),
        _regular("study", "studies", "studied"),
        _regular("like", "likes", "liked"),
        _regular("cook", "cooks", "cooked"),
        _regular("clean", "cleans", "cleaned"),
        _regular("visit", "visits", "visited"),
        _regular("finish", "finishes", "finished"),
        _regular("call", "calls", "called"),
        _regular("live", "lives", "lived"),
        Verb("go", "goes", "went", "gone", ("goed",)),
        Verb("eat", "eats", "ate", "eaten", ("eated",)),
        Verb("see", "sees", "saw", "seen", ("seed",)),
        Verb("write", "writes", "wrote", "written", ("writed",)),
        Verb("take", "takes", "took", "taken", ("taked",)),
        Verb("buy", "buys", "bought", "bought", ("buyed",)),
        Verb("do", "does", "did", "done", ("doed",)),
        Verb("have", "has", "had", "had", ("haved",)),
    )
}
REGULAR_VERBS: tuple[str, ...] = tuple(b for b, v in VERBS.items() if v.regular)
IRREGULAR_VERBS: tuple[str, ...] = tuple(b for b, v in VERBS.items() if not v.regular)

# Words that make the following verb a participle (present perfect) or a bare infinitive (modal / "going to").
PERFECT_AUX: frozenset[str] = frozenset({"have", "has", "'ve", "haven't", "hasn't"})
MODALS: tuple[str, ...] = (
    "will", "would", "can", "could", "shall", "should", "may", "might", "must",
    "won't", "wouldn't", "can't", "cannot", "couldn't", "shouldn't", "mustn't", "'ll",
)  # fmt: skip
BE_FORMS: dict[str, str] = {"i": "am", "you": "are", "we": "are", "they": "are", "he": "is", "she": "is", "it": "is"}
# Adverbs that may sit between the auxiliary/modal and the verb ("has already gone", "will never eat").
_SKIPPABLE: frozenset[str] = frozenset(
    {"already", "just", "never", "ever", "not", "also", "probably", "definitely", "finally", "really", "still",
     "always", "recently", "soon", "certainly"}
)  # fmt: skip

ERROR_TYPES: dict[str, str] = {
    "missing_third_person_s": "Missing third-person -s",
    "extra_third_person_s": "Extra third-person -s",
    "overregularized_past": "Over-regularised irregular verb",
    "base_for_past": "Base form instead of the past tense",
    "base_for_participle": "Base form instead of the past participle",
    "past_for_participle": "Simple past instead of the past participle",
    "inflected_after_modal": "Inflected verb after a modal or 'going to'",
}

# How a repeated mistake is named to the learner: "This is the third time you've <phrase>."
_REPEAT_PHRASE: dict[str, str] = {
    "missing_third_person_s": "left the -s off a he/she/it verb",
    "extra_third_person_s": "added an -s the subject doesn't take",
    "overregularized_past": "over-regularised a past tense",
    "base_for_past": "used the base form where the past tense was needed",
    "base_for_participle": "used the base form after have/has",
    "past_for_participle": "used the simple past after have/has",
    "inflected_after_modal": "inflected a verb after a modal or 'going to'",
}
assert _REPEAT_PHRASE.keys() == ERROR_TYPES.keys()

_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")

# form -> {(lemma, role)}; role in base/third/past/participle/wrong. "walked" is both past and participle.
_FORMS: dict[str, set[tuple[str, str]]] = {}
for _v in VERBS.values():
    for _role, _form in (("base", _v.base), ("third", _v.third), ("past", _v.past), ("participle", _v.participle)):
        _FORMS.setdefault(_form, set()).add((_v.base, _role))
    for _w in _v.wrong:
        _FORMS.setdefault(_w, set()).add((_v.base, "wrong"))
REAL_FORMS: frozenset[str] = frozenset(f for f, roles in _FORMS.items() if any(r != "wrong" for _, r in roles))
WRONG_FORMS: frozenset[str] = frozenset(f for f, roles in _FORMS.items() if all(r == "wrong" for _, r in roles))
COVERED_FORMS: frozenset[str] = REAL_FORMS | WRONG_FORMS


class EditLike(Protocol):
    original: str
    corrected: str
    error_type: str


def split_affixes(word: str) -> tuple[str, str, str]:
    """("(goed.") -> ("(", "goed", "."): punctuation around a word is not part of the verb form."""
    start, end = 0, len(word)
    while start < end and not word[start].isalnum():
        start += 1
    while end > start and not word[end - 1].isalnum():
        end -= 1
    return word[:start], word[start:end], word[end:]


def _norm(word: str) -> str:
    return split_affixes(word.replace("\u2019", "'"))[1].lower()


def _norm_context(word: str) -> str:
    # Keep a leading apostrophe so that "I've" -> "'ve" can still be recognised as an auxiliary.
    w = word.replace("\u2019", "'").lower().strip(".,!?;:\"()")
    for clitic in ("'ve", "'ll"):
        if w.endswith(clitic) and w != clitic:
            return clitic
    return w


def match_case(original: str, corrected: str) -> str:
    """Give `corrected` the capitalisation of `original` ("Goed" -> "Went", "GOED" -> "WENT")."""
    if len(original) > 1 and original.isupper():
        return corrected.upper()
    if original[:1].isupper():
        return corrected[:1].upper() + corrected[1:].lower()
    return corrected.lower()


def is_covered_form(word: str) -> bool:
    """A form of one of the 20 verbs (including have/has) or a known learner error such as "goed"."""
    return _norm(word) in COVERED_FORMS


def is_wrong_form(word: str) -> bool:
    """A learner's over-regularised form that is never right ("goed", "buyed")."""
    return _norm(word) in WRONG_FORMS


def is_real_form(word: str) -> bool:
    return _norm(word) in REAL_FORMS


def contains_covered_verb(sentence: str) -> bool:
    return any(is_covered_form(w) for w in sentence.split())


def lemma_of(word: str) -> str | None:
    roles = _FORMS.get(_norm(word))
    return next(iter(roles))[0] if roles else None


def lemmas_of(word: str) -> frozenset[str]:
    """Every verb `word` is a form of ("saw" -> {"see"}); empty when it is not a covered form."""
    return frozenset(lemma for lemma, _ in _FORMS.get(_norm(word), ()))


def _roles(form: str) -> set[str]:
    return {r for _, r in _FORMS.get(form, ())}


# A word right after one of these is a noun or a gerund, never a finite verb ("after work", "at work", "from work").
# The corpus never puts a covered form there, so an edit there means the model took a noun for a verb: run 26 turned
# "After work Brits go to the pub." into "After works ..." (experiments/2026-12-03-tutor-name-placeholders). "to" is
# left out: a base form after it is an infinitive.
PREPOSITIONS: frozenset[str] = frozenset(
    {"after", "before", "at", "from", "for", "with", "without", "of", "in", "on", "into", "onto", "by", "during",
     "about", "under", "over", "through", "near"}
)  # fmt: skip


def _context(tokens_before: list[str]) -> str:
    """'modal', 'perfect', 'third' / 'nonthird' (right after a subject pronoun), 'noun' (right after a preposition)
    or 'plain', from the words right before the verb (skipping adverbs)."""
    words = [_norm_context(t) for t in tokens_before]
    while words and words[-1] in _SKIPPABLE:
        words.pop()
    if not words:
        return "plain"
    if words[-1] in PREPOSITIONS:
        return "noun"
    if words[-1] in MODALS:
        return "modal"
    if words[-1] == "to" and len(words) >= 2 and words[-2] in ("going", "gonna"):
        return "modal"
    if words[-1] in PERFECT_AUX:
        return "perfect"
    if words[-1] in ("he", "she", "it"):
        return "third"
    if words[-1] in ("i", "you", "we", "they"):
        return "nonthird"
    return "plain"


def classify_edit(tokens_before: list[str], original: str, corrected: str) -> str:
    """Error type of replacing `original` by `corrected` after the words `tokens_before`.

    Raises ValueError when the pair is not one of the seven covered corrections (different verbs, a
    non-form, or a change no rule explains) — the agent treats that as an unsafe rewrite.
    """
    o, c = _norm(original), _norm(corrected)
    if o == c or o not in COVERED_FORMS or c not in REAL_FORMS:
        raise ValueError(f"not a covered verb edit: {original!r} -> {corrected!r}")
    lemmas_o = {lemma for lemma, _ in _FORMS[o]}
    lemmas_c = {lemma for lemma, _ in _FORMS[c]}
    if not lemmas_o & lemmas_c:
        raise ValueError(f"{original!r} and {corrected!r} are forms of different verbs")
    ro, rc = _roles(o), _roles(c)
    ctx = _context(tokens_before)

    if ctx == "noun":
        raise ValueError(f"right after a preposition, {original!r} is a noun, not a verb to correct")
    if ctx == "modal":
        if "base" in rc and "base" not in ro:
            return "inflected_after_modal"
        raise ValueError(f"after a modal only a base form is a correction: {original!r} -> {corrected!r}")
    if "wrong" in ro:
        if ("past" in rc and ctx != "perfect") or ("participle" in rc and ctx == "perfect"):
            return "overregularized_past"
        raise ValueError(f"{original!r} -> {corrected!r} does not fit the context")
    # Agreement edits must agree with a pronoun subject when there is one (names and noun phrases can't be checked).
    if "base" in ro and "third" in rc and ctx != "nonthird":
        return "missing_third_person_s"
    if "third" in ro and "base" in rc and ctx != "third":
        return "extra_third_person_s"
    if ctx == "perfect" and "participle" in rc:
        if "base" in ro:
            return "base_for_participle"
        if "past" in ro:
            return "past_for_participle"
    if ctx != "perfect" and "base" in ro and "past" in rc:
        return "base_for_past"
    raise ValueError(f"no rule explains {original!r} -> {corrected!r} here")


def ordinal(n: int) -> str:
    if 1 <= n <= len(_ORDINALS):
        return _ORDINALS[n - 1]
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def explain(edit: EditLike, repeat_count: int = 0) -> str:
    """A short learner-readable explanation of one edit, from the table.

    `repeat_count` is how many times this learner has now made this kind of mistake (this one included);
    from 2 on the explanation says so.
    """
    o, c = _norm(edit.original), _norm(edit.corrected)
    lemma = lemma_of(c) or c
    verb = VERBS.get(lemma)
    t = edit.error_type
    if t == "missing_third_person_s":
        if lemma == "have":
            text = "With he, she, it or one person as the subject, 'have' becomes 'has'."
        else:
            text = f"With he, she, it or one person as the subject, the present tense of '{lemma}' is '{c}', not '{o}'."
    elif t == "extra_third_person_s":
        if lemma == "have":
            text = "With I, you, we, they or more than one person, use 'have', not 'has'."
        else:
            text = f"Only he, she, it or one person take '{o}'; with this subject use '{c}'."
    elif t == "overregularized_past":
        which = "past participle" if verb is not None and c == verb.participle and c != verb.past else "past tense"
        text = f"The {which} of '{lemma}' is the irregular form '{c}', not '{o}'."
    elif t == "base_for_past":
        kind = "the irregular past tense" if verb is not None and not verb.regular else "the past tense"
        text = f"The sentence talks about the past, so '{o}' becomes {kind} '{c}'."
    elif t == "base_for_participle":
        text = f"After have/has, use the past participle '{c}', not the base form '{o}'."
    elif t == "past_for_participle":
        text = f"After have/has, use the past participle '{c}', not the simple past '{o}'."
    elif t == "inflected_after_modal":
        text = f"After a modal like 'will', or after 'going to', use the base form '{c}', not '{o}'."
    else:
        raise ValueError(f"unknown error type {t!r}")
    if repeat_count >= 2:
        text += f" This is the {ordinal(repeat_count)} time you've {_REPEAT_PHRASE[t]}."
    return text
