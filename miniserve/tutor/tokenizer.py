"""Byte-level BPE tokenizer, trained by our own code on our corpus.

Byte level means there is no out-of-vocabulary failure: any Unicode string encodes to bytes, and any byte
sequence decodes. Merges only shorten what the corpus makes common; "Wrocław" still encodes, as smaller pieces.
Text is first cut into chunks (a word with its leading space, a number, a run of punctuation, whitespace), and
merges never cross a chunk boundary, so a word's tokens do not depend on its neighbours: the model can copy an
unknown word token for token.

With `split_s`, a word ending in a single lower-case "s" after a stem of 3+ letters is cut before that "s"
("colleagues" -> "colleague" + "s", "walks" -> "walk" + "s", but "boss", "has", "Tom's" stay whole). The plural and
third-person "-s" is then one token the model sees on every word, known or not: "the landlord has" and "her
colleagues have" differ by a token it was trained on, not by how BPE happened to cut two unseen words. That
chunk gets an id of its own (after the merges), so it never looks like the byte "s" ending "boss" or "Wrocłas".
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

# A word with its optional leading space, digits, punctuation runs, whitespace runs. Like GPT-2's pattern, in `re`.
_CHUNK = re.compile(r" ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+|_+")
# The same, with a first alternative that stops a word before a final "s" (a letter other than "s" before it, no
# letter after it), so the "s" becomes a chunk of its own.
_CHUNK_SPLIT_S = re.compile(r" ?[^\W\d_]{3,}(?<!s)(?=s(?![^\W\d_]))|" + _CHUNK.pattern)

PAD, BOS, SEP, EOS = "<pad>", "<bos>", "<sep>", "<eos>"
SPECIALS = (PAD, BOS, SEP, EOS)


def _chunks(text: str, split_s: bool = False) -> list[bytes]:
    pattern = _CHUNK_SPLIT_S if split_s else _CHUNK
    return [m.group().encode("utf-8") for m in pattern.finditer(text)]


class ByteBPETokenizer:
    """ids 0-255 are bytes, then the special tokens, then one id per merge (in rank order), then (split_s) the -s."""

    def __init__(self, merges: list[tuple[int, int]], split_s: bool = False) -> None:
        self.merges = merges
        self.split_s = split_s
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.special_ids = {s: 256 + i for i, s in enumerate(SPECIALS)}
        self.first_merge_id = 256 + len(SPECIALS)
        self.pieces: list[bytes] = [bytes([b]) for b in range(256)] + [b""] * len(SPECIALS)
        for a, b in merges:
            self.pieces.append(self.pieces[a] + self.pieces[b])
        if split_s:
            self.suffix_s_id = len(self.pieces)
            self.pieces.append(b"s")
        self._encode_chunk = lru_cache(maxsize=65536)(self._encode_chunk_uncached)

    pad_id = property(lambda self: self.special_ids[PAD])
    bos_id = property(lambda self: self.special_ids[BOS])
    sep_id = property(lambda self: self.special_ids[SEP])
    eos_id = property(lambda self: self.special_ids[EOS])

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    def _encode_chunk_uncached(self, chunk: bytes, dropout: float = 0.0, rng: random.Random | None = None) -> tuple[int, ...]:
        if self.split_s and chunk == b"s":  # the cut-off suffix (and the s of "Tom's"): its own id
            return (self.suffix_s_id,)
        ids = list(chunk)
        while len(ids) > 1:
            # apply the lowest-ranked (earliest learned) merge present, as in training; with BPE-dropout each
            # candidate merge is skipped with probability `dropout` at every step
            candidates = [
                (rank, i)
                for i in range(len(ids) - 1)
                if (rank := self.ranks.get((ids[i], ids[i + 1]))) is not None and not (rng and rng.random() < dropout)
            ]
            if not candidates:
                break
            rank, i = min(candidates)
            ids[i : i + 2] = [self.first_merge_id + rank]
        return tuple(ids)

    def encode(self, text: str) -> list[int]:
        out: list[int] = []
        for chunk in _chunks(text, self.split_s):
            out.extend(self._encode_chunk(chunk))
        return out

    def encode_with_dropout(self, texts: list[str], dropout: float, rng: random.Random) -> list[list[int]]:
        """BPE-dropout (Provilkov et al., 2020) for training: random coarser segmentations, so that the pieces a
        new word breaks into at inference (" grand" of "grandson") were seen in training too. A chunk gets one
        segmentation across `texts`, so a word copied from source to target is copied token for token."""
        seen: dict[bytes, tuple[int, ...]] = {}
        out: list[list[int]] = []
        for text in texts:
            ids: list[int] = []
            for chunk in _chunks(text, self.split_s):
                if chunk not in seen:
                    seen[chunk] = self._encode_chunk_uncached(chunk, dropout, rng)
                ids.extend(seen[chunk])
            out.append(ids)
        return out

    def decode(self, ids: list[int]) -> str:
        data = b"".join(self.pieces[i] for i in ids if 0 <= i < len(self.pieces))
        # A model can emit a byte sequence that is not UTF-8; show it (the agent's guard rejects it) rather than fail.
        return data.decode("utf-8", errors="replace")

    @classmethod
    def train(cls, texts: list[str], num_merges: int, min_count: int = 2, split_s: bool = False) -> ByteBPETokenizer:
        """Learn up to `num_merges` merges, stopping at the first pair seen fewer than `min_count` times.

        Each step merges the most frequent adjacent pair; a tie goes to the pair that occurs first (chunks in
        order of first appearance, left to right). Pair counts are kept up to date for the chunks a merge touches
        only, instead of recounted over all ~26k chunks per merge: the same merges, 85-90 s -> 3.2 s for the shipped recipe."""
        words = Counter(chunk for t in texts for chunk in _chunks(t, split_s))
        seqs = [list(w) for w in words]
        weight = list(words.values())
        pairs: Counter[tuple[int, int]] = Counter()
        where: dict[tuple[int, int], set[int]] = {}  # pair -> indices of the chunks it occurs in

        def count(i: int, sign: int) -> None:
            ids = seqs[i]
            for pair in zip(ids, ids[1:]):
                pairs[pair] += sign * weight[i]
                if sign > 0:
                    where.setdefault(pair, set()).add(i)
                else:
                    where[pair].discard(i)
                    if pairs[pair] == 0:
                        del pairs[pair], where[pair]

        def first_seen(pair: tuple[int, int]) -> tuple[int, int]:
            i = min(where[pair])
            return i, next(k for k, p in enumerate(zip(seqs[i], seqs[i][1:])) if p == pair)

        for i in range(len(seqs)):
            count(i, +1)
        merges: list[tuple[int, int]] = []
        next_id = 256 + len(SPECIALS)
        for _ in range(num_merges):
            if not pairs:
                break
            best = max(pairs.values())
            if best < min_count:
                break
            pair = min((p for p, n in pairs.items() if n == best), key=first_seen)
            merges.append(pair)
            for i in sorted(where[pair]):
                count(i, -1)  # the chunk's pairs out, merged left to right, its new pairs back in
                ids, k = seqs[i], 0
                while k < len(ids) - 1:
                    if ids[k] == pair[0] and ids[k + 1] == pair[1]:
                        ids[k : k + 2] = [next_id]
                    k += 1
                count(i, +1)
            next_id += 1
        return cls(merges, split_s)

    def save(self, path: str | Path) -> None:
        data = {"type": "byte-bpe", "specials": SPECIALS, "split_s": self.split_s, "merges": self.merges}
        Path(path).write_text(json.dumps(data))

    @classmethod
    def load(cls, path: str | Path) -> ByteBPETokenizer:
        data = json.loads(Path(path).read_text())
        if data.get("type") != "byte-bpe" or tuple(data["specials"]) != SPECIALS:
            raise ValueError(f"{path}: not a miniserve byte-bpe tokenizer")
        return cls([tuple(m) for m in data["merges"]], bool(data.get("split_s", False)))  # absent: made before it
