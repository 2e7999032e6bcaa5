"""Deterministic generator of (learner sentence -> corrected sentence) training pairs over the tutor's domain.

A sentence is 3-60 words (at most MAX_CHARS characters): one clause, or several joined by and / but / because / so /
then / when / while, each with its own subject (clauses.py). Roughly 35% have at most 10 words, 40% 11-25 and 25%
26-60 (LENGTH_BUCKETS). Clauses grow with relative clauses, adverbial phrases, lists, times, dates and numbers, and
the sentence gets mixed capitalisation and a final . ! ? or nothing.

Kinds: an "error" pair has 1-3 errors, each the covered verb of its own clause (so each is a one-word edit the
lexicon classifies from the words right before it, exactly what the agent's guard accepts); a "correct" pair has
none; an "ood" pair has no covered verb form at all. `Pair.error_type` is the type of the first (leftmost) error of
an error pair, None otherwise: first errors are balanced over the seven types.

Every pair is one list of words in which only the error slots differ between source and target (punctuation stays
attached to its word), so `judge(source, target)` returns the target with one edit per differing word. The sentence
is rebuilt and checked against `lexicon.classify_edit` before it is kept.

Held-out split: see atoms.py. Every subject, complement, name, place, adverbial phrase and list item comes from one
split's atoms; grammar words, times, dates and numbers are shared.
"""

from __future__ import annotations

from dataclasses import dataclass

from miniserve.tutor import lexicon
from miniserve.tutor.atoms import (  # noqa: F401  (re-exported: tests and callers use corpus.<name>)
    EXTRA_ACTIVITY_WORDS, EXTRA_OBJECTS, EXTRA_SUBJECTS, SPLITS, _heldout_words, _split_complements, _split_list,
)  # fmt: skip
from miniserve.tutor.clauses import Clause, ClauseBuilder
from miniserve.tutor.corpus_vocab import CONNECTORS, FRONT_CONNECTORS
from miniserve.tutor.sentences import split_sentences

KIND_WEIGHTS = (("error", 0.60), ("correct", 0.25), ("ood", 0.15))
MAX_CHARS = 300
# (first word count, last word count, share, clause counts to draw from, richness: how often a clause grows)
LENGTH_BUCKETS = ((3, 10, 0.35, (1, 1, 1, 1, 2), 0.1), (11, 25, 0.40, (1, 2, 2, 3, 3), 0.4),
                  (26, 60, 0.25, (3, 3, 4, 4, 5, 6), 0.55))  # fmt: skip
ERRORS_PER_SENTENCE = ((1, 0.45), (2, 0.35), (3, 0.20))  # for kind "error", capped by the covered clauses
CAPS_SHARE = 0.02  # sentences of at most 80 characters written all in capitals ("I PLAY LAST MONDAY!")
ERROR_KEYS: tuple[str, ...] = tuple(lexicon.ERROR_TYPES)


@dataclass(slots=True, frozen=True)
class Pair:
    source: str
    target: str
    kind: str  # "error" | "correct" | "ood"
    error_type: str | None  # kind == "error": the lexicon.ERROR_TYPES key of the first (leftmost) error; else None
    # Other correct words for some error slots, as (word index, word): the target is one valid correction, these
    # words (each alone or together) give the others. Scoring reads them; training learns the target only.
    also: tuple[tuple[int, str], ...] = ()


@dataclass(slots=True, frozen=True)
class Example:
    """A pair plus the split-dependent strings (subject, complement, names, places) it was built from."""

    pair: Pair
    parts: tuple[str, ...]


def kind_weights(correct_share: float | None = None) -> tuple[float, float, float]:
    """(error, correct, out-of-domain) shares of a split: KIND_WEIGHTS, or with `correct_share` of correct sentences
    taken from the errors' share (out-of-domain keeps its own)."""
    error, correct, ood = (w for _, w in KIND_WEIGHTS)
    if correct_share is None:
        return error, correct, ood
    if not 0 <= correct_share <= 1 - ood:
        raise ValueError(f"correct_share must be in [0, {1 - ood:g}], got {correct_share}")
    return 1 - ood - correct_share, correct_share, ood


def check_caps_share(caps_share: float | None) -> float | None:
    if caps_share is not None and not 0 <= caps_share < 1:
        raise ValueError(f"caps_share must be in [0, 1), got {caps_share}")
    return caps_share


def check_s_name_share(s_name_share: float | None) -> float | None:
    if s_name_share is not None and not 0 <= s_name_share <= 1:
        raise ValueError(f"s_name_share must be in [0, 1], got {s_name_share}")
    return s_name_share


def errors_per_sentence(counts: tuple[float, float, float] | None = None) -> tuple[tuple[int, float], ...]:
    """ERRORS_PER_SENTENCE, or the shares of 1, 2 and 3 errors in `counts` (drawn before the cap by clauses)."""
    if counts is None:
        return ERRORS_PER_SENTENCE
    if len(counts) != 3 or min(counts) < 0 or abs(sum(counts) - 1) > 1e-9:
        raise ValueError(f"error_counts must be three shares (1, 2, 3 errors) summing to 1, got {counts}")
    return tuple(zip((1, 2, 3), counts))


def _pick(r, weighted):
    x = r.random()
    for item, w in weighted:
        x -= w
        if x < 0:
            return item
    return weighted[-1][0]


class _Gen(ClauseBuilder):
    def __init__(self, split: str, seed: int, augment: bool = True, correct_share: float | None = None,
                 caps_share: float | None = None, error_counts: tuple[float, float, float] | None = None,
                 s_name_share: float | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        super().__init__(split, seed, augment)
        # Training only, like augment: the held-out split keeps KIND_WEIGHTS, CAPS_SHARE and ERRORS_PER_SENTENCE so
        # scores stay comparable.
        self.weights = kind_weights(None if self.heldout else correct_share)
        self.caps_share = None if self.heldout else check_caps_share(caps_share)
        self.errors = ERRORS_PER_SENTENCE if self.heldout else errors_per_sentence(error_counts)
        self.s_names = 0.0 if self.heldout else check_s_name_share(s_name_share) or 0.0

    def _clauses(self, kind: str, err: str | None, n: int, richness: float, parts: list[str]) -> list[Clause]:
        r = self.rng
        if kind == "ood":
            return [self.plain(richness, parts) for _ in range(n)]
        k = min(_pick(r, self.errors), n) if kind == "error" else 0
        covered = sorted(r.sample(range(n), max(k, 1)))
        covered += [i for i in range(n) if i not in covered and r.random() < 0.7]
        wrong = sorted(r.sample(sorted(covered), k))
        types = iter([err] + [r.choice(ERROR_KEYS) for _ in range(k - 1)])  # the leftmost error is `err`
        return [self.covered(next(types) if i in wrong else None, richness, parts) if i in covered
                else self.plain(richness, parts) for i in range(n)]  # fmt: skip

    def _join(self, clauses: list[Clause]) -> tuple[list[str], list[int]]:
        """All clauses' tokens, joined by connectors; the offset of each clause's first token."""
        r = self.rng
        tokens: list[str] = []
        offsets: list[int] = []
        fronted = len(clauses) >= 2 and r.random() < 0.12  # "When he goes home, she cooks dinner"
        for i, c in enumerate(clauses):
            if i == 0 and fronted:
                tokens.append(r.choice(FRONT_CONNECTORS).lower())
            elif i == 1 and fronted:
                if not tokens[-1].endswith(","):
                    tokens[-1] += ","
            elif i > 0:
                conn, comma = r.choice(CONNECTORS)
                if r.random() < comma and not tokens[-1].endswith(","):
                    tokens[-1] += ","
                tokens += conn.split()
            offsets.append(len(tokens))
            tokens += c.tokens
        return tokens, offsets

    def example(self, kind: str, err: str | None) -> Example:
        r = self.rng
        lo, hi, _, counts, richness = _pick(r, [(b, b[2]) for b in LENGTH_BUCKETS])
        while True:
            parts: list[str] = []
            n = r.choice(counts)
            if kind == "ood" and lo == 3 and r.random() < 0.35:
                tgt_t = self.short_ood(parts).split()
                src_t, slots, also_at = tgt_t, [], []
            else:
                clauses = self._clauses(kind, err, n, richness, parts)
                tgt_t, offsets = self._join(clauses)
                src_t = list(tgt_t)
                slots, also_at = [], []
                for c, off in zip(clauses, offsets):
                    if c.error is not None:
                        i = off + c.slot
                        pre, core, post = lexicon.split_affixes(tgt_t[i])
                        assert core == c.right, (tgt_t[i], c.right)
                        src_t[i] = pre + c.wrong + post
                        slots.append((i, c.error))
                        if c.also:
                            also_at.append((i, c.also))
            if not lo <= len(tgt_t) <= hi:
                continue
            src, tgt = " ".join(src_t), " ".join(tgt_t)
            p = "" if tgt.endswith(".") else _pick(r, (("." , 0.55), ("!", 0.1), ("?", 0.05), ("", 0.3)))
            x = r.random()
            if self.caps_share is not None:  # the other three cases keep their proportions
                x = 1.0 if x < self.caps_share else (x - self.caps_share) / (1 - self.caps_share) * (1 - CAPS_SHARE)
            if x < 0.58:
                src, tgt = src[:1].upper() + src[1:] + p, tgt[:1].upper() + tgt[1:] + p
            elif x < 0.88:
                src, tgt = src[:1].lower() + src[1:] + p, tgt[:1].lower() + tgt[1:] + p
            elif x < 0.98 or len(src) > 80:  # shouting is short (and costs ~2x the tokens)
                src, tgt = src.lower() + p, tgt.lower() + p
            else:
                src, tgt = src.upper() + p, tgt.upper() + p
            if len(src) > MAX_CHARS or len(tgt) > MAX_CHARS or not self._valid(kind, src, tgt, slots):
                continue
            return Example(Pair(src, tgt, kind, err, _also(src, tgt, also_at)), tuple(parts))

    @staticmethod
    def _valid(kind: str, src: str, tgt: str, slots: list[tuple[int, str]]) -> bool:
        """One sentence for the agent's splitter (it splits a learner's text before the model sees it: "p.m. 34"
        would be cut), only the error slots differ, and the lexicon classifies each edit as its intended type."""
        if "." in src[:-1] and len(split_sentences(src)) != 1:
            return False
        if kind == "ood":
            return not lexicon.contains_covered_verb(src)
        s, t = src.split(), tgt.split()
        if len(s) != len(t) or [i for i, (a, b) in enumerate(zip(s, t)) if a != b] != [i for i, _ in slots]:
            return False
        try:
            return all(lexicon.classify_edit(t[:i], s[i], t[i]) == e for i, e in slots)
        except ValueError:
            return False

    def draw(self) -> Example:
        r = self.rng
        x = r.random()
        if x < self.weights[0]:
            return self.example("error", r.choice(ERROR_KEYS))
        if x < self.weights[0] + self.weights[1]:
            return self.example("correct", None)
        return self.example("ood", None)


def _also(src: str, tgt: str, at: list[tuple[int, str]]) -> tuple[tuple[int, str], ...]:
    """The other correct words at `at` in the target's own case and punctuation ("Calls," -> "Called,"), kept only
    where the lexicon classifies the learner's word -> that word in its context, as the guard would (`_valid`)."""
    s, t = src.split(), tgt.split()
    out = []
    for i, form in at:
        pre, core, post = lexicon.split_affixes(t[i])
        word = pre + lexicon.match_case(core, form) + post
        try:
            lexicon.classify_edit(t[:i], s[i], word)  # it strips the affixes itself
        except ValueError:
            continue
        out.append((i, word))
    return tuple(out)


def generate_examples(n: int, split: str = "train", seed: int = 0, augment: bool = True,
                      correct_share: float | None = None, caps_share: float | None = None,
                      error_counts: tuple[float, float, float] | None = None,
                      s_name_share: float | None = None) -> list[Example]:
    """Pairs with the split-dependent strings they use (for disjointness checks)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    g = _Gen(split, seed, augment, correct_share, caps_share, error_counts, s_name_share)
    return [g.draw() for _ in range(n)]


def generate_pairs(n: int, split: str = "train", seed: int = 0, augment: bool = True,
                   correct_share: float | None = None, caps_share: float | None = None,
                   error_counts: tuple[float, float, float] | None = None,
                   s_name_share: float | None = None) -> list[Pair]:
    """`n` pairs, ~60% error (1-3 errors; first errors balanced over the 7 types), ~25% correct, ~15% out-of-domain;
    same args -> same list. The training split's mix can move (held-out ignores these): `correct_share` its
    error/correct balance, `caps_share` its all-capitals sentences, `error_counts` its shares of 1, 2 and 3 errors,
    `s_name_share` its invented names ending in a singular -s/-es."""
    return [e.pair for e in generate_examples(n, split, seed, augment, correct_share, caps_share, error_counts,
                                              s_name_share)]


def tokenizer_text(n: int = 20000, seed: int = 0, augment: bool = True) -> list[str]:
    """Training-split sentences (sources and corrected targets) for learning the tokenizer's merges."""
    pairs = generate_pairs(n, "train", seed + 7919, augment)
    return [p.target if i % 2 else p.source for i, p in enumerate(pairs)]
