from __future__ import annotations

import hashlib
import re
import statistics
import time
from collections import Counter

import pytest

from miniserve.tutor import atoms, corpus, corpus_vocab, lexicon
from miniserve.tutor.agent import is_shouted, judge
from miniserve.tutor.corpus import generate_examples, generate_pairs
from miniserve.tutor.sentences import split_sentences


@pytest.fixture(scope="module")
def train() -> list[corpus.Example]:
    return generate_examples(20000, "train", seed=0)


@pytest.fixture(scope="module")
def heldout() -> list[corpus.Example]:
    return generate_examples(6000, "heldout", seed=0)


def _diff(pair: corpus.Pair) -> list[int]:
    s, t = pair.source.split(), pair.target.split()
    assert len(s) == len(t), pair
    return [i for i, (a, b) in enumerate(zip(s, t)) if a != b]


def test_deterministic_and_seeded() -> None:
    assert generate_pairs(300, "train", seed=3) == generate_pairs(300, "train", seed=3)
    assert generate_examples(300, "heldout", seed=2) == generate_examples(300, "heldout", seed=2)
    assert generate_pairs(300, "train", seed=3) != generate_pairs(300, "train", seed=4)
    assert generate_pairs(300, "train", seed=3) != generate_pairs(300, "heldout", seed=3)
    with pytest.raises(ValueError):
        generate_pairs(10, "test")


def test_mix_of_kinds_and_error_types(train: list[corpus.Example]) -> None:
    kinds = Counter(e.pair.kind for e in train)
    n = len(train)
    assert 0.57 < kinds["error"] / n < 0.63 and 0.22 < kinds["correct"] / n < 0.28 and 0.12 < kinds["ood"] / n < 0.18
    types = Counter(e.pair.error_type for e in train if e.pair.kind == "error")
    assert set(types) == set(lexicon.ERROR_TYPES)
    for t, c in types.items():
        assert abs(c / kinds["error"] - 1 / 7) < 0.02, (t, c)
    assert all((e.pair.error_type is None) == (e.pair.kind != "error") for e in train)


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_only_error_slots_differ_and_each_is_a_classified_verb_edit(split: str, train, heldout) -> None:
    examples = train if split == "train" else heldout
    for e in examples:
        p = e.pair
        if p.kind != "error":
            assert p.source == p.target, p
            continue
        diff = _diff(p)
        assert 1 <= len(diff) <= 3, p
        src_words, tgt_words = p.source.split(), p.target.split()
        types = []
        for i in diff:
            o, c = src_words[i], tgt_words[i]
            assert lexicon.is_covered_form(o) and lexicon.is_real_form(c), p
            # punctuation attached to the verb stays the same ("goed," -> "went,")
            assert lexicon.split_affixes(o)[::2] == lexicon.split_affixes(c)[::2], p
            types.append(lexicon.classify_edit(tgt_words[:i], o, c))
        assert types[0] == p.error_type, p  # error_type is the first (leftmost) error's


@pytest.mark.parametrize("split", ["train", "heldout"])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_the_guard_delivers_every_target(split: str, seed: int) -> None:
    # The tutor can only return what `judge` accepts: every target must pass it whole, one edit per differing word,
    # and a correct or out-of-domain sentence must come back unchanged.
    for p in generate_pairs(3000, split, seed):
        as_read = str.lower if is_shouted(p.source) else str  # the model reads (and answers) shouting in small letters
        v = judge(p.source, as_read(p.target))
        assert v.text == p.target, p
        assert len(v.edits) == len(_diff(p)) and (p.kind == "error") == bool(v.edits), p
        assert (v.edits[0].error_type if v.edits else None) == p.error_type, p
        if p.kind != "error":
            w = judge(p.source, as_read(p.source))
            assert w.text == p.source and not w.edits, p


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_lengths_and_error_counts(split: str, train, heldout) -> None:
    pairs = [e.pair for e in (train if split == "train" else heldout)]
    n = len(pairs)
    words = [len(p.source.split()) for p in pairs]
    assert min(words) >= 3 and max(words) <= 60
    assert all(len(p.source) <= corpus.MAX_CHARS and len(p.target) <= corpus.MAX_CHARS for p in pairs)
    assert all(len(p.source.split()) == len(p.target.split()) for p in pairs)
    short, medium = sum(w <= 10 for w in words) / n, sum(10 < w <= 25 for w in words) / n
    assert abs(short - 0.35) < 0.03 and abs(medium - 0.40) < 0.03 and abs(1 - short - medium - 0.25) < 0.03
    assert sum(w > 40 for w in words) > 0.02 * n  # the long tail is used, not just 26-30
    errors = Counter(len(_diff(p)) for p in pairs if p.kind == "error")
    assert set(errors) == {1, 2, 3}
    n_err = sum(errors.values())
    assert errors[1] / n_err < 0.75 and errors[2] / n_err > 0.15 and errors[3] / n_err > 0.03, errors
    long_multi = [p for p in pairs if p.kind == "error" and len(p.source.split()) > 25 and len(_diff(p)) > 1]
    assert len(long_multi) > 0.05 * n_err
    assert all(not lexicon.contains_covered_verb(p.source) for p in pairs if p.kind == "ood")


def test_heldout_split_has_the_same_shape_as_training(train, heldout) -> None:
    def shape(examples):
        pairs = [e.pair for e in examples]
        err = [p for p in pairs if p.kind == "error"]
        return (sum(len(p.source.split()) > 25 for p in pairs) / len(pairs),
                sum(len(_diff(p)) > 1 for p in err) / len(err),
                statistics.mean(len(p.source) for p in pairs) / 100)  # fmt: skip

    for a, b in zip(shape(train), shape(heldout)):
        assert abs(a - b) < 0.04, (shape(train), shape(heldout))


def test_sentences_have_structure(train) -> None:
    sources = [e.pair.source for e in train]
    low = [f" {s.lower()} " for s in sources]
    has = lambda *words: sum(any(w in s for w in words) for s in low) / len(low)  # noqa: E731
    for connector in (" and ", " but ", " because ", " so ", " then ", " when ", " while "):
        assert has(connector) > 0.01, connector
    assert has(" who ", " that ") > 0.03  # relative clauses
    assert has(" dr. ", " mrs. ", " mr. ", " prof. ") > 0.005 and has(" st. ") > 0.001 and has(" e.g. ") > 0.001
    assert has(" p.m. ", " a.m. ") > 0.01 and has(" in 19", " in 20") > 0.01
    assert sum(bool(re.search(r"\d\.\d", s)) for s in sources) > 0.01 * len(sources)  # "3.5 km"
    assert has(", ") > 0.3


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_every_source_is_one_sentence_for_the_agent(split: str, train, heldout) -> None:
    # The agent splits a learner's text into sentences before the model sees them: an abbreviation or a time the
    # splitter cuts at ("Ms. Nowak", "7 p.m. 34 times") would make a training sentence the model never gets.
    for e in (train if split == "train" else heldout)[:6000]:
        assert len(split_sentences(e.pair.source)) == 1, e.pair.source


def test_domain_membership(train: list[corpus.Example]) -> None:
    for e in train:
        in_domain = lexicon.contains_covered_verb(e.pair.source)
        assert in_domain == (e.pair.kind != "ood"), e.pair


def test_heldout_atoms_never_appear_in_train(train, heldout) -> None:
    train_parts = {p for e in train for p in e.parts} - corpus_vocab.SHARED
    held_parts = {p for e in heldout for p in e.parts} - corpus_vocab.SHARED
    assert len(held_parts) > 1000 and len(train_parts) > 5000
    assert not (train_parts & held_parts), sorted(train_parts & held_parts)[:20]
    # by construction: fixed lists split without overlap, invented strings by a property of the string
    for lst in (corpus_vocab.NAMES, corpus_vocab.PLACES, corpus_vocab.NOUNS_SG, corpus_vocab.NOUNS_PL,
                corpus_vocab.LONG_PPS, corpus_vocab.LIST_ITEMS):
        tr, he = corpus._split_list(lst, "train"), corpus._split_list(lst, "heldout")
        assert not set(tr) & set(he) and len(tr) + len(he) == len(lst) and he
    tr_c, he_c = corpus._split_complements("train"), corpus._split_complements("heldout")
    fixed = lambda phrases: {p for p in phrases if p and "{" not in p}  # noqa: E731
    all_tr = set().union(*(fixed(v) for v in tr_c.values()))
    all_he = set().union(*(fixed(v) for v in he_c.values()))
    assert not all_tr & all_he
    # list items: the training split also drops any whose singular or plural is a held-out word
    tr_items, he_items = atoms.LIST_ITEMS_BY_SPLIT["train"], set(atoms.LIST_ITEMS_BY_SPLIT["heldout"])
    assert not {w for t in tr_items for w in (t, t[:-1])} & (he_items | corpus._heldout_words()) and len(tr_items) > 25
    for verb in lexicon.VERBS:
        assert len(fixed(tr_c[verb])) >= 6, verb
        assert fixed(he_c[verb]) or any("{" in p for p in he_c[verb]), verb


def test_heldout_sentences_are_new(train, heldout) -> None:
    train_sources = {e.pair.source for e in train}
    fresh = [e for e in heldout if e.pair.kind == "error" and e.pair.source not in train_sources]
    assert len(fresh) / sum(e.pair.kind == "error" for e in heldout) > 0.99


def test_surface_variety(train: list[corpus.Example]) -> None:
    sources = [e.pair.source for e in train]
    lengths = [len(s) for s in sources]
    assert max(lengths) <= corpus.MAX_CHARS
    assert 50 <= statistics.median(lengths) <= 130
    ends = Counter(s[-1] if s[-1] in ".!?" else "none" for s in sources)
    assert all(ends[k] > 0.03 * len(sources) for k in (".", "!", "?", "none"))
    assert sum(s[0].islower() for s in sources) > 0.2 * len(sources)
    assert sum(s[0].isupper() for s in sources) > 0.4 * len(sources)
    assert sum(any(ord(ch) > 127 for ch in s) for s in sources) > 0.05 * len(sources)
    assert sum(any(ch.isdigit() for ch in s) for s in sources) > 0.01 * len(sources)
    frames = {"will": 0, "going to": 0, "has": 0, "yesterday": 0}
    for s in sources:
        for k in frames:
            frames[k] += f" {k} " in f" {s.lower()} "
    assert all(v > 200 for v in frames.values()), frames


def test_fast_enough() -> None:
    t0 = time.perf_counter()
    pairs = generate_pairs(50_000, "train", seed=1)
    elapsed = time.perf_counter() - t0
    assert len(pairs) == 50_000
    assert elapsed < 30, elapsed  # ~4 s on the dev box; 200k pairs in ~16 s


def test_tokenizer_text() -> None:
    text = corpus.tokenizer_text(1000, seed=0)
    assert len(text) == 1000 and all(isinstance(s, str) and s for s in text)
    assert text == corpus.tokenizer_text(1000, seed=0)


def test_augmentation_is_training_only_and_leaves_the_heldout_split_as_it_was() -> None:
    # The held-out split draws nothing from the augmentation, so its pairs (and scores on it) are comparable across
    # training recipes with and without it.
    assert generate_pairs(2000, "heldout", seed=1) == generate_pairs(2000, "heldout", seed=1, augment=False)
    plain = generate_pairs(3000, "train", seed=0, augment=False)
    augmented = generate_pairs(3000, "train", seed=0)
    extra = {w for sg, pl in corpus.EXTRA_SUBJECTS + corpus.EXTRA_OBJECTS for w in (sg, pl)}

    def words(pairs: list[corpus.Pair]) -> set[str]:
        return {w.strip(".!?,").lower() for p in pairs for w in p.target.split()}

    assert len(words(augmented) & extra) > len(words(plain) & extra) + 100  # a few ("apple") are in the lists


def test_extra_nouns_never_share_a_word_with_the_heldout_split() -> None:
    held = corpus._heldout_words()
    for sg, pl in corpus.EXTRA_SUBJECTS + corpus.EXTRA_OBJECTS:
        assert sg not in held and pl not in held, (sg, pl)
    assert "colleague" in held and "colleagues" in held  # a held-out plural keeps its singular out too
    assert all(w not in held for w in corpus.EXTRA_ACTIVITY_WORDS)


def test_training_fixed_nouns_are_seen_in_both_numbers_unless_the_other_is_held_out() -> None:
    # A noun seen in one number only is learned as that number by its token; both numbers make its -s decide.
    both = set(corpus.EXTRA_SUBJECTS)
    assert {("daughter", "daughters"), ("wife", "wives"), ("kid", "kids"), ("sister", "sisters")} <= both
    held = corpus._heldout_words()
    for sg in corpus._split_list(corpus_vocab.NOUNS_SG, "train"):
        assert any(s == sg for s, _ in both) == (sg not in held and sg + "s" not in held), sg
    # "colleague" is a training singular whose plural is held out: "colleagues" must stay unseen in training.
    assert not any("colleague" in w or "neighbour" in w for pair in both for w in pair)
    train_words = {w.strip(".!?,").lower() for p in generate_pairs(20000, "train", seed=0) for w in p.target.split()}
    assert "daughters" in train_words and "colleagues" not in train_words and "neighbours" not in train_words


def test_exotic_letters_cover_every_utf8_continuation_byte() -> None:
    # A letter the corpus never names ("ň") is then still made of byte tokens the model has learned to copy.
    continuation = {b for ch in corpus_vocab.EXOTIC_LETTERS for b in ch.encode()[1:]}
    assert continuation == set(range(0x80, 0xC0))


def test_correct_share_moves_the_training_mix_only() -> None:
    kinds = lambda pairs: Counter(p.kind for p in pairs)  # noqa: E731
    more = kinds(corpus.generate_pairs(4000, "train", seed=3, correct_share=0.35))
    default = kinds(corpus.generate_pairs(4000, "train", seed=3))
    assert 0.32 < more["correct"] / 4000 < 0.38 and 0.22 < default["correct"] / 4000 < 0.28
    assert 0.12 < more["ood"] / 4000 < 0.18  # out-of-domain keeps its share; errors give way
    held = corpus.generate_pairs(500, "heldout", seed=1)
    assert corpus.generate_pairs(500, "heldout", seed=1, correct_share=0.35) == held
    with pytest.raises(ValueError, match="correct_share"):
        corpus.generate_pairs(10, "train", correct_share=0.9)


def test_caps_share_and_error_counts_move_the_training_mix_only() -> None:
    def errors(pairs) -> Counter:
        return Counter(sum(a != b for a, b in zip(p.source.split(), p.target.split())) for p in pairs
                       if p.kind == "error")
    def shouted(pairs) -> float:
        return sum(p.source.isupper() for p in pairs) / len(pairs)
    default = corpus.generate_pairs(4000, "train", seed=3)
    moved = corpus.generate_pairs(4000, "train", seed=3, caps_share=0.12, error_counts=(0.3, 0.35, 0.35))
    assert shouted(default) < 0.02 < 0.04 < shouted(moved)  # only sentences of <= 80 characters shout
    assert all(len(p.source) <= 81 for p in moved if p.source.isupper())  # 80 and the final . ! or ?
    d, m = errors(default), errors(moved)
    assert m[3] / m.total() > 1.5 * d[3] / d.total() and m[1] / m.total() < d[1] / d.total()
    held = corpus.generate_pairs(500, "heldout", seed=1)
    assert corpus.generate_pairs(500, "heldout", seed=1, caps_share=0.5, error_counts=(0, 0, 1)) == held
    with pytest.raises(ValueError, match="caps_share"):
        corpus.generate_pairs(10, "train", caps_share=1.0)
    with pytest.raises(ValueError, match="error_counts"):
        corpus.generate_pairs(10, "train", error_counts=(0.5, 0.5, 0.5))


def test_s_name_share_ends_invented_training_names_in_a_singular_s_only() -> None:
    def invented(share: float | None) -> list[str]:
        g = corpus._Gen("train", 3, s_name_share=share)
        return [n for n in (g.name() for _ in range(2000)) if n not in corpus_vocab.NAMES and n.isalpha()]
    ends_in_s = lambda names: sum(n.endswith("s") for n in names) / len(names)  # noqa: E731
    assert ends_in_s(invented(None)) < 0.15 and ends_in_s(invented(1.0)) == 1.0
    assert 0.3 < ends_in_s(invented(0.3)) < 0.5
    held = corpus.generate_pairs(500, "heldout", seed=1)
    assert corpus.generate_pairs(500, "heldout", seed=1, s_name_share=1.0) == held
    with pytest.raises(ValueError, match="s_name_share"):
        corpus.generate_pairs(10, "train", s_name_share=1.5)


def test_invented_nouns_show_their_number_only_in_the_suffix() -> None:
    # Training-only nouns that end like held-out singulars ("boss", "landlord"), so that a noun's number is learned
    # from its -s suffix and not from how its other letters happen to look.
    g = corpus._Gen("train", seed=0)
    singular = [g.invented_noun(False) for _ in range(3000)]
    plural = [g.invented_noun(True) for _ in range(3000)]
    irregular = {pl for sg, pl in corpus.EXTRA_SUBJECTS if not pl.endswith("s")}
    assert not [w for w in singular if w.endswith("s") and not w.endswith("ss")]
    assert all(w.endswith("s") or w.endswith(tuple(irregular)) for w in plural)
    share = lambda ends: sum(w.endswith(ends) for w in singular) / len(singular)  # noqa: E731
    assert share("ss") > 0.08 and share(corpus_vocab.NOUN_CLUSTERS) > 0.25
    assert share(tuple(sg for sg, _ in corpus.EXTRA_SUBJECTS)) > 0.12  # compounds: "kolgardener"


def test_the_scored_heldout_split_never_changes() -> None:
    # Every held-out score in model.json, the README and the notes was measured on these 5,000 pairs (seed 1, as
    # `miniserve train` and `miniserve eval` draw them). A corpus edit that moves them, even by one random draw, makes
    # old and new scores incomparable without anyone noticing; this pins them. Re-pinned on purpose when the corpus
    # grew to 3-60-word, multi-clause, multi-error sentences: scores from before that are not comparable with after.
    pairs = generate_pairs(5000, "heldout", seed=1)
    text = "\n".join(f"{p.source}\t{p.target}\t{p.kind}\t{p.error_type}" for p in pairs)
    assert hashlib.sha256(text.encode()).hexdigest() == "482b7270ea2e3452e724b22e460c98e5175508b308babd6320344f4d627b5af5"


def test_a_present_clause_without_a_time_word_also_reads_as_past(train, heldout) -> None:
    # "so she call the bank" is as well fixed by "called" as by "calls": the clause has no time word of its own.
    # Scoring counts that reading in a column of its own (evaluate.Case.also); the stream itself is unchanged.
    from miniserve.tutor.clauses import _PRESENT_TIME

    assert all(_PRESENT_TIME.search(t) for t in ("every Friday", "On Sundays", "she usually goes", "twice a week"))
    assert not any(_PRESENT_TIME.search(t) for t in ("at 7 p.m.", "on Monday", "Everyone", "yesterday"))
    for split, examples in (("train", train), ("heldout", heldout)):
        pairs = [e.pair for e in examples]
        errors = [p for p in pairs if p.kind == "error"]
        with_also = [p for p in errors if p.also]
        assert 0.03 < len(with_also) / len(errors) < 0.12, (split, len(with_also) / len(errors))
        assert not any(p.also for p in pairs if p.kind != "error")
        for p in with_also:
            s, t = p.source.split(), p.target.split()
            for i, word in p.also:
                assert i in _diff(p)
                core_s, core_t, core_a = (lexicon.split_affixes(w)[1].lower() for w in (s[i], t[i], word))
                (lemma,) = {v for v, _ in lexicon._FORMS[core_t]} & {v for v, _ in lexicon._FORMS[core_a]}
                v = lexicon.VERBS[lemma]
                assert (core_s, core_t, core_a) == (v.base, v.third, v.past), p
                assert _PRESENT_TIME.search(" ".join(t[max(0, i - 1) : i + 3])) is None, p  # no time word beside it
                # the guard takes that reading as a fix, in the target's own case and punctuation
                reading = " ".join(t[:i] + [word] + t[i + 1 :])
                as_read = str.lower if is_shouted(p.source) else str  # the model answers shouting in small letters
                assert judge(p.source, as_read(reading)).text == reading, p
