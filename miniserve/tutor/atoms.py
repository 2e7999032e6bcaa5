"""The corpus's atoms and the split they belong to: names, places, nouns, complements, invented words.

Held-out split: every split-dependent atom (fixed names, places, nouns, complement phrases, adverbial phrases, list
items, invented names and places) belongs to exactly one split, so held-out subjects and complements never occur in
training. Fixed lists are split by index; invented strings by a CRC of the string itself (a property of the string,
not of the draw). Clauses (clauses.py) and sentences (corpus.py) are built from these atoms only.
"""

from __future__ import annotations

import random
import zlib

from miniserve.tutor import lexicon
from miniserve.tutor.corpus_vocab import (
    ABBR_PLACE_SHAPES, ACCENTS, ADJS, CODAS, COMPLEMENTS, DETS, EXOTIC_LETTERS, EXTRA_ACTIVITIES, EXTRA_OBJECT_NOUNS,
    EXTRA_SUBJECT_NOUNS, INVENTED_OBJECT_SHAPES, IT_VERBS, LIST_ITEMS, LONG_PPS, NAMES, NOUN_CLUSTERS,
    NOUN_SS_ENDINGS, NOUN_SUFFIXES, NOUNS_PL, NOUNS_SG, ONSETS, PLACE_SHAPES, PLACES, SUBJECT_PRONOUNS, TITLES, VOWELS,
)  # fmt: skip
from miniserve.tutor.lexicon import VERBS

SPLITS = ("train", "heldout")

def _heldout_index(i: int) -> bool:
    return i % 5 == 2


def _split_list(items: list[str], split: str) -> list[str]:
    want = split == "heldout"
    return [x for i, x in enumerate(items) if _heldout_index(i) == want]


def _heldout_string(s: str) -> bool:
    return zlib.crc32(s.lower().encode()) % 5 == 0


def _split_complements(split: str) -> dict[str, list[str]]:
    # The first occurrence of a phrase (in table order) decides its split, so a phrase listed under two verbs
    # ("home") cannot end up in both splits. Templates and "" are shared: their fillers are split instead.
    owner: dict[str, bool] = {}
    for phrases in COMPLEMENTS.values():
        for i, p in enumerate(phrases):
            owner.setdefault(p, _heldout_index(i))
    want = split == "heldout"
    return {
        verb: [p for p in phrases if "{" in p or p == "" or owner[p] == want]
        for verb, phrases in COMPLEMENTS.items()
    }


def _heldout_words() -> set[str]:
    """Every word of every held-out atom (fixed names, places, nouns, complement phrases), lower-cased."""
    atoms = _split_list(NAMES, "heldout") + _split_list(PLACES, "heldout") + _split_list(NOUNS_SG, "heldout")
    atoms += _split_list(NOUNS_PL, "heldout") + [p for ps in _split_complements("heldout").values() for p in ps]
    atoms += _split_list(LIST_ITEMS, "heldout")
    words = {w.lower().removesuffix("'s") for a in atoms for w in a.split() if "{" not in w}
    # Singular and plural both count as the word: "colleagues" held out keeps "colleague" out of training.
    return words | {w[:-1] for w in words if w.endswith("s")} | {w[:-2] for w in words if w.endswith("es")}


def _train_only(entries: list[str]) -> list[tuple[str, str]]:
    """(singular, plural) pairs from "sg" / "sg:pl" entries, minus any sharing a word with the held-out split."""
    held = _heldout_words() | set(lexicon.COVERED_FORMS)
    pairs = [(e.split(":")[0], e.split(":")[1] if ":" in e else e + "s") for e in entries]
    return [(sg, pl) for sg, pl in pairs if sg not in held and pl not in held]


_RESERVED = {w.lower() for w in NAMES} | {p.lower() for p in PLACES} | set(lexicon.COVERED_FORMS)


def _plural(noun: str) -> str:
    """The regular plural of an invented noun: -es after a sibilant ("brekoss" -> "brekosses"), else -s."""
    return noun + ("es" if noun.endswith(("s", "sh", "ch", "x", "z")) else "s")


def _word(rng: random.Random, syllables: int, exotic: float = 0.0) -> str:
    s = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syllables))
    if rng.random() < 0.3:
        idx = [i for i, ch in enumerate(s) if ch in ACCENTS]
        if idx:
            i = rng.choice(idx)
            s = s[:i] + rng.choice(ACCENTS[s[i]]) + s[i + 1 :]
    if exotic and rng.random() < exotic:  # no draw at 0: the held-out stream stays as it was
        # Any letter of Latin-1/Latin Extended-A/Greek/Cyrillic: every UTF-8 continuation byte then occurs in
        # training, so a letter the corpus never names ("ň" in "Plzeň") is still made of bytes the model can copy.
        i = rng.randrange(len(s))
        s = s[:i] + rng.choice(EXOTIC_LETTERS) + s[i + 1 :]
    return s[:1].upper() + s[1:]


class Atoms:
    """Draws the split's atoms from one seeded stream (`self.rng`); clauses.py and corpus.py build on it."""

    def __init__(self, split: str, seed: int, augment: bool = True) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split = split
        self.heldout = split == "heldout"
        # Training-only augmentation: invented nouns and objects and wider Unicode teach the rules (a plural noun
        # takes "have"; an unknown word is copied) instead of the fixed lists. The held-out split draws none of it,
        # so its pairs stay byte-identical and scores stay comparable across recipes.
        self.augment = augment and not self.heldout
        self.exotic = 0.15 if self.augment else 0.0
        # Share of invented names given a singular -s/-es ending ("Brakes", "Tomas"): training only (corpus.py sets it)
        self.s_names = 0.0
        self.rng = random.Random(seed * 1_000_003 + SPLITS.index(split))
        self.names = _split_list(NAMES, split)
        self.places = _split_list(PLACES, split)
        self.nouns_sg = _split_list(NOUNS_SG, split)
        self.nouns_pl = _split_list(NOUNS_PL, split)
        self.complements = _split_complements(split)
        self.long_pps = _split_list(LONG_PPS, split)
        self.list_items = LIST_ITEMS_BY_SPLIT[split]
        self.verbs = list(VERBS)
        self.irregular = list(lexicon.IRREGULAR_VERBS)
        self.distinct_participle = [b for b in self.irregular if VERBS[b].past != VERBS[b].participle]

    # -- atoms ----------------------------------------------------------------------------------------------
    def _invented(self, make) -> str:
        while True:
            s = make()
            if len(s) >= 3 and s.lower() not in _RESERVED and _heldout_string(s) == self.heldout:
                return s

    def name(self) -> str:
        r = self.rng
        if r.random() < 0.5:
            return r.choice(self.names)

        def make() -> str:
            s = _word(r, r.choice((1, 2, 2, 2, 3)), self.exotic)
            if self.s_names and r.random() < self.s_names:  # no draw at 0: the held-out stream stays as it was
                s += "s" if s[-1] in "aeiouy" else "es"
            return s + str(r.randint(1, 99)) if r.random() < 0.04 else s

        return self._invented(make)

    def place(self) -> str:
        r = self.rng
        if r.random() < 0.5:
            return r.choice(self.places)
        shapes = ABBR_PLACE_SHAPES if r.random() < 0.12 else PLACE_SHAPES
        return self._invented(lambda: r.choice(shapes).format(
            r=_word(r, r.choice((1, 2, 2, 3)), self.exotic), n=r.randint(1, 120)))

    def np(self, parts: list[str], plural: bool | None = None) -> tuple[str, bool]:
        r = self.rng
        plural = r.random() < 0.4 if plural is None else plural
        if self.augment and r.random() < 0.5:
            noun = self.extra_noun(plural, EXTRA_SUBJECTS)
        else:
            noun = r.choice(self.nouns_pl if plural else self.nouns_sg)
        adj = r.choice(ADJS) + " " if r.random() < 0.15 else ""
        if r.random() < 0.1:
            owner = self.name()
            parts.append(owner)
            return f"{owner}'s {adj}{noun}", plural
        return f"{r.choice(DETS)} {adj}{noun}", plural

    def extra_noun(self, plural: bool, real: list[tuple[str, str]]) -> str:
        """A noun the fixed lists do not have: a real English one (training only) or an invented one."""
        if self.rng.random() < 0.6:
            sg, pl = self.rng.choice(real)
            return pl if plural else sg
        return self.invented_noun(plural)

    def invented_noun(self, plural: bool) -> str:
        """A made-up common noun; its plural is the regular -s/-es form (the -s is what marks a plural subject).

        Its singular may end in anything but a lone -s: a double s ("brekoss"), a consonant cluster ("vamland"), or a
        real noun it is a compound of ("kolgardener", "ramchildren", which takes that noun's number). Without these,
        held-out singulars that end like no training singular ("boss", "landlord", "husband") were read as plurals."""
        r = self.rng
        x = r.random()
        if x < 0.12:
            stem = self._invented(lambda: _word(r, r.choice((1, 2))).lower().rstrip("s") + r.choice(NOUN_SS_ENDINGS))
            return _plural(stem) if plural else stem
        if x < 0.3:
            sg, pl = r.choice(EXTRA_SUBJECTS)
            head = self._invented(lambda: _word(r, 1).lower() + sg)[: -len(sg)]
            return head + (pl if plural else sg)
        if x < 0.6:
            stem = self._invented(
                lambda: _word(r, r.choice((1, 2, 2)), self.exotic).lower().rstrip("s") + r.choice(NOUN_CLUSTERS)
            )
            return _plural(stem) if plural else stem
        while True:
            stem = self._invented(
                lambda: _word(r, r.choice((1, 2, 2, 3)), self.exotic).lower() + r.choice(NOUN_SUFFIXES)
            )
            word = _plural(stem) if plural else stem
            if not stem.endswith("s") and word not in _RESERVED:  # "ha" + "s" would be the verb "has"
                return word

    def invented_object(self, parts: list[str]) -> str:
        r = self.rng
        plural = r.random() < 0.5
        det = r.choice(("the", "my", "your", "her", "their", "") + (("some", "two", "many") if plural else ("a",)))
        adj = r.choice(ADJS) + " " if r.random() < 0.15 else ""
        if r.random() < 0.15:
            thing = r.choice(EXTRA_ACTIVITY_WORDS)  # "go fishing", "like baking"
        else:
            thing = f"{det} {adj}{self.extra_noun(plural, EXTRA_OBJECTS)}".strip()
        return self.fill(r.choice(INVENTED_OBJECT_SHAPES).replace("{thing}", thing), parts)

    def fill(self, template: str, parts: list[str]) -> str:
        out = template
        if "{place}" in out:
            p = self.place()
            parts.append(p)
            out = out.replace("{place}", p)
        if "{name}" in out:
            n = self.name()
            parts.append(n)
            out = out.replace("{name}", n)
        if "{np}" in out:
            np, _ = self.np(parts)
            parts.append(np)
            out = out.replace("{np}", np)
        return out

    def subject(self, verb: str, parts: list[str]) -> tuple[str, str]:
        """(subject text, person) with person in {"I", "3sg", "other"}; "it" only for a verb in IT_VERBS."""
        r = self.rng
        x = r.random()
        if x < 0.45:
            while True:
                p = r.choice(SUBJECT_PRONOUNS)
                if p != "it" or verb in IT_VERBS:
                    break
            return p, "I" if p == "I" else "3sg" if p in ("he", "she", "it") else "other"
        if x < 0.65:
            s = self.name()
            parts.append(s)
            if r.random() < 0.12:
                s = f"{r.choice(TITLES)} {s}"  # "Dr. Anna", "Mrs. Kowalczyk"
            return s, "3sg"
        if x < 0.9:
            s, plural = self.np(parts)
            parts.append(s)
            return s, "other" if plural else "3sg"
        if x < 0.95:
            a, b = self.name(), self.name()
            s = f"{a} and {b}"
            parts.extend((a, b, s))
            return s, "other"
        noun = r.choice(self.nouns_sg)
        n = self.name()
        s = f"{r.choice(('my', 'our', 'your'))} {noun} {n}"
        parts.extend((n, s))
        return s, "3sg"

    def complement(self, verb: str, parts: list[str]) -> str:
        if self.augment and self.rng.random() < 0.25:
            c = self.invented_object(parts)
        else:
            c = self.fill(self.rng.choice(self.complements[verb]), parts)
        if c:
            parts.append(c)
        return c


# The fixed lists' training nouns in their other number too ("daughter" -> "daughters", "kids" -> "kid"). A noun seen in
# one number only was learned as that number by its token: "colleague" is a training singular, so held-out
# "colleague" + "s" was still read as singular a third of the time ("his colleagues has" left as it was). Seen in both,
# every fixed noun's number comes from its -s. Nouns whose other form is held out ("colleagues") stay out.
_IRREGULAR_PLURALS = {"wife": "wives", "baby": "babies"}
FIXED_NOUNS_BOTH_NUMBERS = list(dict.fromkeys(
    [f"{sg}:{_IRREGULAR_PLURALS.get(sg, _plural(sg))}" for sg in NOUNS_SG]
    + [f"{pl[:-1]}:{pl}" for pl in NOUNS_PL if pl.endswith("s")]
))
EXTRA_SUBJECTS = _train_only(EXTRA_SUBJECT_NOUNS + FIXED_NOUNS_BOTH_NUMBERS)
EXTRA_OBJECTS = _train_only(EXTRA_OBJECT_NOUNS)
EXTRA_ACTIVITY_WORDS = [sg for sg, _ in _train_only(EXTRA_ACTIVITIES)]
# List items of the training split that share no word with a held-out atom ("carrots" held out keeps "carrot" out).
_HELD = _heldout_words()
LIST_ITEMS_BY_SPLIT = {
    "train": [w for w in _split_list(LIST_ITEMS, "train") if w not in _HELD and w[:-1] not in _HELD],
    "heldout": _split_list(LIST_ITEMS, "heldout"),
}
