"""Decoding constrained to the source: the model may copy the sentence or change its covered verb forms, nothing else.

The tutor only ever keeps an output whose words are the source's, except covered verb forms turned into other forms
of the same verb (the guard, `agent.judge`). Unconstrained, the model sometimes drifts while copying a long span
(a dropped word, a re-spelled name) and the guard must then throw the whole sentence away, its verb fixes with it.
Constrained, every step may only emit a token that keeps the output on one of those paths: the source's next token,
or, at a covered verb, a token of one of that verb's real forms (never a learner error such as "goed"), and
end-of-sequence only once every word is written. The model still makes every choice that matters (which form each
verb takes, or none), as greedy decoding over the allowed tokens; it can no longer mis-copy. The guard stays: the
constraint keeps the output's shape, the lexicon still judges each edit in its clause.

The paths are a small automaton over token ids, built once per sentence in time linear in its tokens: a word's
tokens do not depend on its neighbours (`tokenizer.py` chunks never cross a space), so each word is encoded on its
own, with its leading space, and the sentence's paths are its words' alternatives one after another. Most states have one way out (a word being
copied): the model's choice is needed only where a verb's forms part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from miniserve.tutor import lexicon
from miniserve.tutor.tokenizer import ByteBPETokenizer

ACCEPT = -1  # the state after end-of-sequence


def word_alternatives(word: str) -> list[str]:
    """The word itself, then (if it is a covered verb form) every other real form of its verb, in the word's case
    and punctuation: "Goed," -> ["Goed,", "Go,", "Goes,", "Went,", "Gone,"]."""
    pre, core, post = lexicon.split_affixes(word)
    out = [word]
    if lexicon.is_covered_form(core):
        for lemma in sorted(lexicon.lemmas_of(core)):
            v = lexicon.VERBS[lemma]
            for form in (v.base, v.third, v.past, v.participle):
                alt = pre + lexicon.match_case(core, form) + post
                if alt not in out and form != core.lower():
                    out.append(alt)
    return out


@dataclass(frozen=True, slots=True)
class SourceConstraint:
    """The automaton of one sentence: `moves[state]` maps each allowed token id to the next state; state 0 is the
    start, end-of-sequence leads to ACCEPT. `branching` counts the states where the model has a choice."""

    moves: tuple[dict[int, int], ...]
    branching: int

    @classmethod
    def build(cls, tok: ByteBPETokenizer, source: str) -> SourceConstraint | None:
        """The automaton for `source` (single-spaced, as `agent.model_input` gives it), or None when its words do
        not encode independently (then the row decodes unconstrained and the guard alone decides)."""
        words = source.split(" ")
        alts = [[tuple(tok.encode(a if i == 0 else " " + a)) for a in word_alternatives(w)] for i, w in enumerate(words)]
        if [t for a in alts for t in a[0]] != tok.encode(source) or any(not t for a in alts for t in a):
            return None
        # One trie per word, built from the last word back. A word's last token leads into the next word's first
        # tokens (its trie's root moves), or to end-of-sequence after the last word. A token inside a word never
        # starts with a space and a word after the first always does, so "go on within this word" and "start the
        # next word" never share a token: the tries chained this way are already deterministic.
        moves: list[dict[int, int]] = [{}]  # state 0: the first word's root, filled last
        after: dict[int, int] = {tok.eos_id: ACCEPT}  # what may follow the word being built
        for i in reversed(range(len(words))):
            root: dict[int, int] = {}
            ends: list[dict[int, int]] = []
            for alt in alts[i]:
                node = root
                for t in alt:
                    if t not in node:
                        node[t] = len(moves)
                        moves.append({})
                    node = moves[node[t]]
                ends.append(node)
            for node in ends:
                if any(t in node and node[t] != s for t, s in after.items()):
                    return None  # a word that ends where another goes on with the next word's token: not expected
                node.update(after)
            after = root
        moves[0] = after
        return cls(tuple(moves), sum(len(m) > 1 for m in moves))

    def pick(self, state: int, preferred: int, score: Callable[[list[int]], list[float]]) -> tuple[int, int]:
        """(token to emit, next state). The token is the model's own choice `preferred` (its argmax) when allowed,
        else the only allowed token, else the allowed token that `score` (the row's logits at those ids) ranks best:
        greedy decoding over the allowed tokens, asking for the extra scores only when the model strays. After
        end-of-sequence (ACCEPT) nothing is constrained: a row stepping on past its end keeps `preferred`."""
        if state == ACCEPT:
            return preferred, ACCEPT
        allowed = self.moves[state]
        if preferred in allowed:
            tok = preferred
        elif len(allowed) == 1:
            tok = next(iter(allowed))
        else:
            ids = list(allowed)
            scores = score(ids)
            tok = ids[max(range(len(ids)), key=scores.__getitem__)]
        return tok, allowed[tok]
