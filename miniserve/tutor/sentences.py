"""Split a learner's input into sentences, as exact character spans of that input.

The tutor corrects a whole input (one or more sentences) one sentence at a time and
splices each accepted edit back into the learner's own text, so that everything it
did not edit comes back byte for byte. A sentence is therefore a span of the
original (`text[start:end]`), never a cleaned-up copy: the caller edits inside one
span and pastes it back by offsets. Spans are stripped of surrounding whitespace;
the gaps between them hold only whitespace, and gaps plus spans rebuild the input.

Why a library, and why sentencex (Wikimedia, MIT, released 2026): it is rule-based
with its abbreviation lists compiled into the wheel, so nothing is downloaded or
fetched at run time, its time grew linearly with input length when measured (500 to
50,000 characters of "A. ", "Dr. ", ".", quotes), and it passes every case in
tests/tutor/test_sentences.py: titles and "e.g."/"etc."/"a.m."/"U.S.", initials,
decimals, "...", quotes, "?!" runs. pysbd, the other candidate, was tried and
rejected: no release since 2021, and it keeps "Home!!! She left." and
"home.She left." as one sentence.

What this wrapper adds on top of sentencex 1.0.32:
- Line breaks end a sentence. sentencex joins "line one\\nline two", so the input
  is cut into lines first (str.splitlines: \\n, \\r\\n, \\r, U+2028, U+0085, and the
  \\v \\f \\x1c-\\x1e controls too, which are rare enough to cut at).
- It never raises. sentencex panics on a one-letter word, a non-ASCII space and a
  period ("A\\u00a0."), a Rust slicing bug, and the panic is a BaseException that
  `except Exception` misses. It also refuses lone surrogates (UnicodeEncodeError),
  which JSON can carry. Each such character is swapped one-for-one (so offsets
  still index the original) before the call, and any remaining failure falls back
  to keeping the line whole, which corrects less but never mangles the text.
- Only the library's end offsets are used, as cut points; the spans are rebuilt
  from them here, so they tile the input by construction whatever it returns.

- It does not cut after "Ms.", "Mx.", "Mt." and a few military titles, which
  sentencex treats as sentence ends.

Known misses (tests mark them xfail): "(He left.) Then ..." and "home\\u2026 She ..."
stay one sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from sentencex import get_sentence_boundaries

__all__ = ["Sentence", "is_whole_sentence", "splice", "split_sentences"]

# One-for-one replacements that keep sentencex 1.0.32 from panicking or raising:
# every non-ASCII whitespace character (Unicode's are all below U+3001) becomes an
# ASCII space, every surrogate code point becomes U+FFFD. Same length, same offsets.
_SAFE = {cp: " " for cp in range(0x80, 0x3001) if chr(cp).isspace()}
_SAFE.update({cp: "\ufffd" for cp in range(0xD800, 0xE000)})


# Titles that always precede a name but that sentencex 1.0.32 cuts after ("Ms. Nowak goed home." became two
# sentences). A cut right after one of them is not taken.
_TITLE_AT_END = re.compile(r"(?<![\w.])(?:Ms|Mx|Mt|Sgt|Capt|Lt|Col)\.\s*$")


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence: `text == original[start:end]`, with no surrounding whitespace."""

    start: int
    end: int
    text: str


def split_sentences(text: str) -> list[Sentence]:
    """Split `text` into its non-empty sentences, in order, as stripped spans.

    Linear in len(text): one pass to cut lines, one library call per line (itself
    linear), one strip per piece. Empty and whitespace-only pieces are dropped, so
    "", "   " and "\\n\\n" give [].
    """
    sentences: list[Sentence] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        for start, end in _pieces(line):
            piece = line[start:end]
            body = piece.strip()
            if body:  # a piece of only whitespace is a gap, not a sentence
                lead = offset + start + len(piece) - len(piece.lstrip())
                sentences.append(Sentence(lead, lead + len(body), body))
        offset += len(line)
    return sentences


def _pieces(line: str) -> Iterator[tuple[int, int]]:
    """Cut one line into contiguous (start, end) pieces that cover all of it."""
    try:
        bounds = get_sentence_boundaries("en", line.translate(_SAFE))
    except BaseException as exc:
        # A bug in the splitter must not fail a tutor request: keep the line whole.
        # Only Exception and the Rust panic are caught; KeyboardInterrupt and
        # friends still propagate.
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise
        bounds = []
    start = 0
    for bound in bounds:
        end = bound["end_index"]
        # Only cuts strictly inside the line and moving forward are taken, so the
        # pieces tile the line even if the library ever returned odd offsets.
        if isinstance(end, int) and start < end < len(line) and not _TITLE_AT_END.search(line, 0, end):
            yield start, end
            start = end
    yield start, len(line)


def splice(text: str, sentences: Sequence[Sentence], replacements: Iterable[str]) -> str:
    """`text` with each sentence's span replaced by its replacement (one per sentence, in order): everything
    between and around the spans comes back byte for byte. `sentences` are spans of `text` (split_sentences)."""
    out, last = [], 0
    for s, new in zip(sentences, replacements, strict=True):
        out += [text[last:s.start], new]
        last = s.end
    out.append(text[last:])
    return "".join(out)


def is_whole_sentence(text: str) -> bool:
    """Capital first and . ! or ? last: a sentence whose end a reader (and the splitter) sees, so several of them
    joined by a space still split where each one ends."""
    return text[-1:] in ".!?" and text[:1].isupper()
