from __future__ import annotations

import json
import random

import pytest

from miniserve.tutor.tokenizer import SPECIALS, ByteBPETokenizer

CORPUS = ["He goed to school yesterday.", "She has eaten an apple!", "they will go to the market", "I walk home."] * 20


@pytest.fixture(scope="module")
def tok() -> ByteBPETokenizer:
    return ByteBPETokenizer.train(CORPUS, num_merges=60)


def _random_text(rng: random.Random, n: int) -> str:
    # Mix ASCII, Latin-1, Polish, CJK, emoji (astral plane) and whitespace/control characters.
    ranges = [(0x20, 0x7E), (0xA0, 0xFF), (0x100, 0x17F), (0x4E00, 0x4E40), (0x1F600, 0x1F64F), (0x0, 0x1F)]
    return "".join(chr(rng.randint(*rng.choice(ranges))) for _ in range(n))


def test_round_trips_arbitrary_unicode(tok: ByteBPETokenizer) -> None:
    rng = random.Random(0)
    for n in list(range(0, 20)) + [200] * 50:
        text = _random_text(rng, n)
        assert tok.decode(tok.encode(text)) == text


def test_round_trips_unseen_words(tok: ByteBPETokenizer) -> None:
    for text in ["Wrocław is in Poland.", "Zoë and Ñandú went to Łódź!", "  two  spaces\tand a tab\n", "日本語"]:
        assert tok.decode(tok.encode(text)) == text


def test_merges_shorten_corpus_text(tok: ByteBPETokenizer) -> None:
    text = "He goed to school yesterday."
    assert len(tok.encode(text)) < len(text.encode()) / 2


def test_word_tokens_do_not_depend_on_neighbours(tok: ByteBPETokenizer) -> None:
    # The model copies unknown words token for token: a word's ids must be the same wherever it stands.
    word = tok.encode(" Wrocław")
    assert tok.encode("I live in Wrocław")[-len(word) :] == word
    assert tok.encode("I live in Wrocław.")[-len(word) - 1 : -1] == word
    he_goed = tok.encode("He goed")
    assert tok.encode("He goed to school")[: len(he_goed)] == he_goed


def test_decode_of_invalid_bytes_does_not_raise(tok: ByteBPETokenizer) -> None:
    assert "\ufffd" in tok.decode([0xC3])  # a lone UTF-8 lead byte


def test_save_load(tmp_path, tok: ByteBPETokenizer) -> None:
    tok.save(tmp_path / "t.json")
    again = ByteBPETokenizer.load(tmp_path / "t.json")
    assert again.merges == tok.merges
    assert again.encode("He goed to Wrocław.") == tok.encode("He goed to Wrocław.")


def test_special_ids_are_outside_bytes_and_merges(tok: ByteBPETokenizer) -> None:
    specials = {tok.pad_id, tok.bos_id, tok.sep_id, tok.eos_id}
    assert len(specials) == 4 and all(256 <= i < tok.first_merge_id for i in specials)
    assert not specials & set(tok.encode("<bos> <eos> <sep> <pad>"))


def test_bpe_dropout_keeps_text_and_copies_segmentation(tok: ByteBPETokenizer) -> None:
    rng = random.Random(0)
    src, tgt = "She goed to Wrocław yesterday.", "She went to Wrocław yesterday."
    segmentations = set()
    for _ in range(50):
        a, b = tok.encode_with_dropout([src, tgt], 0.3, rng)
        assert tok.decode(a) == src and tok.decode(b) == tgt
        # Everything but the verb is segmented identically in source and target: strip the common ends.
        head = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
        tail = next(i for i, (x, y) in enumerate(zip(a[::-1], b[::-1])) if x != y)
        assert (tok.decode(a[head : len(a) - tail]).strip(), tok.decode(b[head : len(b) - tail]).strip()) == ("goed", "went")
        segmentations.add(tuple(a))
    assert len(segmentations) > 1  # dropout really varies the segmentation
    assert tok.encode_with_dropout([src], 0.0, rng)[0] == tok.encode(src)


@pytest.fixture(scope="module")
def tok_s() -> ByteBPETokenizer:
    return ByteBPETokenizer.train(CORPUS + ["The kids walks home.", "My boss has two cats."] * 20, 60, split_s=True)


def test_split_s_cuts_a_final_s_into_its_own_token(tok_s: ByteBPETokenizer) -> None:
    s = tok_s.encode("s")
    assert s == [tok_s.suffix_s_id] and tok_s.suffix_s_id == tok_s.vocab_size - 1
    for plural, singular in [(" colleagues", " colleague"), (" walks", " walk"), (" Wrocławs", " Wrocław")]:
        assert tok_s.encode(plural) == tok_s.encode(singular) + s  # same stem tokens either way
    # Not a final inflection: a double s, a short word, an upper-case S, an s inside a word.
    for word in [" boss", " has", " his", " WALKS", " sister"]:
        assert tok_s.encode(word)[-1:] != s, word
    assert tok_s.encode(" boss")[-1] == ord("s")  # a word's own final byte is not the suffix token
    assert tok_s.encode("Tom's") == tok_s.encode("Tom'") + s  # the "'s" cut is the plain tokenizer's, unchanged


def test_split_s_round_trips_and_saves(tmp_path, tok_s: ByteBPETokenizer) -> None:
    rng = random.Random(1)
    for text in [_random_text(rng, 200) for _ in range(50)] + ["Łódź's twins walks.", "ss s sss", "cafés!"]:
        assert tok_s.decode(tok_s.encode(text)) == text
    tok_s.save(tmp_path / "t.json")
    again = ByteBPETokenizer.load(tmp_path / "t.json")
    assert again.split_s and again.encode("the kids walk") == tok_s.encode("the kids walk")


def test_tokenizer_file_without_split_s_loads_as_before(tmp_path, tok: ByteBPETokenizer) -> None:
    # Checkpoints written before split_s existed have no such key: they keep the chunking they were trained with.
    (tmp_path / "old.json").write_text(json.dumps({"type": "byte-bpe", "specials": SPECIALS, "merges": tok.merges}))
    old = ByteBPETokenizer.load(tmp_path / "old.json")
    assert not old.split_s and old.encode("the kids walks") == tok.encode("the kids walks")


def _naive_merges(texts: list[str], num_merges: int, min_count: int, split_s: bool) -> list[tuple[int, int]]:
    """The textbook trainer: recount every pair before each merge; ties go to the pair seen first."""
    from collections import Counter

    from miniserve.tutor.tokenizer import _chunks

    seqs = [(list(w), n) for w, n in Counter(c for t in texts for c in _chunks(t, split_s)).items()]
    merges, next_id = [], 256 + len(SPECIALS)
    for _ in range(num_merges):
        pairs: Counter[tuple[int, int]] = Counter()
        for ids, n in seqs:
            for pair in zip(ids, ids[1:]):
                pairs[pair] += n
        if not pairs or (best := pairs.most_common(1)[0])[1] < min_count:
            break
        merges.append(best[0])
        for ids, _ in seqs:
            i = 0
            while i < len(ids) - 1:
                if (ids[i], ids[i + 1]) == best[0]:
                    ids[i : i + 2] = [next_id]
                i += 1
        next_id += 1
    return merges


@pytest.mark.parametrize("seed", range(4))
def test_training_learns_the_merges_of_a_full_recount(seed: int) -> None:
    # The trainer keeps pair counts up to date instead of recounting; ties ("aaaa", "abab", equal counts) and
    # running out of pairs must still give the textbook merges in the textbook order.
    rng = random.Random(seed)
    texts = [" ".join("".join(rng.choice("abś ") for _ in range(rng.randint(1, 9))) for _ in range(rng.randint(1, 6)))
             for _ in range(300)] + ["aaaa aaaa abab walks cats"]
    for num_merges, min_count, split_s in ((60, 2, False), (500, 1, True), (40, 5, True)):
        merges = ByteBPETokenizer.train(texts, num_merges, min_count, split_s).merges
        assert merges == _naive_merges(texts, num_merges, min_count, split_s)
