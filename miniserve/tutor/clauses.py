"""Clauses the corpus joins into sentences: each has its own subject and one verb group.

A covered clause has one of the 20 verbs in a frame (present, past, perfect, will, going to) that decides its correct
form, and may carry one error in that verb slot (the error type decides the frame, as `lexicon.classify_edit` reads
it from the words right before the verb). A plain clause has no covered verb form at all (be + adjective, a verb
outside the table, a modal + such a verb), so not every clause of a sentence is checkable. Either may grow: a
relative clause on a noun subject ("the neighbour who lives in Lima"), adverbial phrases, lists, times, dates and
numbers ("at 7 p.m.", "in 2019", "3.5 km from Tartu"). Relative clauses never carry an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from miniserve.tutor import lexicon
from miniserve.tutor.atoms import Atoms, _word
from miniserve.tutor.corpus_vocab import (
    CONTRACT_BE, CONTRACT_WILL, FUTURE_MARKERS, IT_VERBS, LIST_HEADS, MODAL_OOD, MONTHS, OOD_FIXED, OTHER_VERBS,
    PAST_MARKERS, PERFECT_ADVERBS, PERFECT_END, PLAIN_BE_ADJS, PRE_ADVERBS, PRESENT_END, PROFESSIONS, REL_PRONOUNS,
    TITLES, UNITS, WEEKDAYS, WILL_ADVERBS,
)  # fmt: skip
from miniserve.tutor.lexicon import VERBS

# Verbs whose complement may be a list of things ("bought bread, milk and eggs").
LIST_VERBS = ("buy", "eat", "cook", "like", "have", "take")


@dataclass(slots=True)
class Clause:
    """Target tokens (whitespace-free) and, for a covered clause, the verb slot: `tokens[slot]` is `right`; the
    learner wrote `wrong` there (== right unless `error`)."""

    tokens: list[str]
    slot: int | None = None
    right: str = ""
    wrong: str = ""
    error: str | None = None
    # Another correct form for the slot, or "": a present-tense clause with no time word of its own ("so she call
    # the bank") is as well corrected to the past ("called") as to "calls". Scored as a valid reading, never trained.
    also: str = ""


def _tokens(chunks: list[str]) -> list[str]:
    return " ".join(c for c in chunks if c).split()


# Words that tie a present-tense clause to the present ("every evening", "on Sundays", "usually"): with one of them
# in the clause (anywhere, relative clause included: erring towards "marked"), only the present form is right.
_PRESENT_TIME = re.compile(
    r"\b(?:" + "|".join(re.escape(w) for w in (*PRESENT_END, *PRE_ADVERBS, "every", "twice"))
    + "|on (?:" + "|".join(WEEKDAYS) + r")s)\b", re.IGNORECASE)  # fmt: skip


class ClauseBuilder(Atoms):
    # -- phrases that lengthen a clause ----------------------------------------------------------------------------
    def _time(self, frame: str) -> str:
        """A time or date that fits the frame; shared grammar (numbers, months), in both splits."""
        r = self.rng
        h, mm = r.randint(1, 12), r.choice(("00", "15", "30", "45", "05", "20"))
        clock = r.choice((f"at {h} p.m.", f"at {h} a.m.", f"at {h}:{mm}", f"at {h}.{mm}", f"around {h} o'clock",
                          f"at {h}{r.choice(('am', 'pm'))}", "at noon", "at midnight"))  # fmt: skip
        day = r.choice((f"on {r.randint(1, 28)} {r.choice(MONTHS)}", f"on {r.choice(MONTHS)} {r.randint(1, 28)}",
                        f"on {r.choice(WEEKDAYS)}", f"on {r.randint(1, 28)}/{r.randint(1, 12)}"))  # fmt: skip
        if frame == "present":
            return r.choice((clock, f"every {r.choice(WEEKDAYS)}", f"on {r.choice(WEEKDAYS)}s", f"{clock} every day",
                             f"every {r.choice(('morning', 'evening'))} {clock}"))  # fmt: skip
        if frame == "past":
            return r.choice((clock, day, f"in {r.randint(1950, 2024)}", f"{day} {r.randint(1990, 2024)}",
                             f"{day} {clock}", f"in {r.choice(MONTHS)}"))  # fmt: skip
        if frame == "perfect":
            return r.choice((f"since {r.randint(1990, 2024)}", f"since {r.choice(WEEKDAYS)}",
                             f"{r.randint(2, 40)} times", f"since {h} {r.choice(('a.m.', 'p.m.'))}",
                             f"since {r.choice(MONTHS)}"))  # fmt: skip
        return r.choice((clock, day, f"{day} {clock}", f"in {r.randint(2026, 2040)}"))  # will / going to

    def _number(self, parts: list[str]) -> str:
        r = self.rng
        n = r.randint(2, 60)
        x = r.random()
        if x < 0.3:
            return f"for {r.choice((n, f'{n}.5', r.randint(2, 9)))} {r.choice(('hours', 'minutes'))}"
        if x < 0.55:
            p = self.place()
            parts.append(p)
            return f"{r.randint(1, 40)}.{r.randint(1, 9)} {r.choice(UNITS[:4])} from {p}"
        if x < 0.75:
            item = r.choice(self.list_items)
            parts.append(item)
            return f"with {n} {item}"
        amount = r.choice((str(n), f"{r.randint(1, 9)},{r.randint(100, 999)}", f"{n}.{r.randint(10, 99)}"))
        return f"for {amount} {r.choice(UNITS[6:8])}"

    def _list(self, parts: list[str]) -> str:
        r = self.rng
        items = r.sample(self.list_items, r.choice((2, 3, 3, 4)))
        parts.extend(items)
        *first, last = items
        x = r.random()
        if x < 0.15:
            return f"{r.choice(LIST_HEADS)}, e.g. {', '.join(first)} and {last}"
        if x < 0.3:
            return f"{', '.join(items)} etc."
        if x < 0.5 and len(first) > 1:
            return f"{', '.join(first)}, and {last}"
        return f"{', '.join(first)} and {last}"

    def extra(self, frame: str, parts: list[str]) -> str:
        """One adverbial phrase: fixed (split), built on the split's atoms, a list, a number, or a time/date."""
        r = self.rng
        x = r.random()
        if x < 0.25:
            e = r.choice(self.long_pps)
            parts.append(e)
            return e
        if x < 0.45:
            shape = r.choice(("near {place}", "in {place}", "with {np}", "next to {name}'s house", "at {name}'s place",
                              "via {place}", "with {title} {name}", "for {np}", "without {np}"))  # fmt: skip
            e = self.fill(shape.replace("{title}", r.choice(TITLES)), parts)
            parts.append(e)
            return e
        if x < 0.55:
            return "with " + self._list(parts)
        if x < 0.7:
            return self._number(parts)
        return self._time(frame)

    def _extras(self, frame: str, richness: float, parts: list[str]) -> list[str]:
        out = []
        while len(out) < 3 and self.rng.random() < richness:
            out.append(self.extra(frame, parts))
        return out

    def relative(self, person: str, parts: list[str]) -> str:
        """A relative clause on a noun subject, covered verb or not, never with an error: "who lives in Lima"."""
        r = self.rng
        who = r.choice(REL_PRONOUNS)
        x = r.random()
        if x < 0.55:
            verb = r.choice(list(VERBS))
            v = VERBS[verb]
            form = (v.third if person == "3sg" else v.base) if r.random() < 0.6 else v.past
            return f"{who} {form} {self.complement(verb, parts)}".strip()
        if x < 0.8:
            base, third, past, objects = r.choice(OTHER_VERBS)
            form = (third if person == "3sg" else base) if r.random() < 0.5 else past
            return f"{who} {form} {r.choice(objects)}"
        be = ("is" if person == "3sg" else "are") if r.random() < 0.6 else ("was" if person == "3sg" else "were")
        return f"{who} {be} {r.choice(PLAIN_BE_ADJS)}"

    def _subject(self, verb: str, richness: float, parts: list[str]) -> tuple[list[str], str, bool]:
        """(subject chunks, person, is a pronoun), the subject sometimes with a relative clause."""
        subj, person = self.subject(verb, parts)
        pronoun = subj in CONTRACT_BE
        if pronoun or self.rng.random() >= richness * 0.5:
            return [subj], person, pronoun
        rel = self.relative(person, parts)
        if subj[:1].isupper() and self.rng.random() < 0.5:  # a name: "Tom, who lives in Lima, works ..."
            return [subj + ",", rel + ","], person, False
        return [subj, rel], person, False

    # -- covered clauses ---------------------------------------------------------------------------------------------
    def _modal_wrong(self, verb: str) -> str:
        v, x = VERBS[verb], self.rng.random()
        if x < 0.4:
            return v.third
        if x < 0.8 or v.participle == v.past:
            return v.past
        return v.participle

    def covered(self, err: str | None, richness: float, parts: list[str]) -> Clause:
        """One clause with a covered verb in its slot; `err` (an ERROR_TYPES key or None) picks frame and verb."""
        r = self.rng
        if err in ("missing_third_person_s", "extra_third_person_s"):
            frame = "present" if r.random() < 0.7 else "perfect"
        elif err == "overregularized_past":
            frame = "past" if r.random() < 0.8 else "perfect"
        elif err == "base_for_past":
            frame = "past"
        elif err in ("base_for_participle", "past_for_participle"):
            frame = "perfect"
        elif err == "inflected_after_modal":
            frame = r.choice(("will", "going"))
        else:
            frame = r.choice(("present", "past", "perfect", "will", "going"))
        if err == "overregularized_past":
            verb = r.choice(self.irregular)
        elif err == "past_for_participle":
            verb = r.choice(self.distinct_participle)
        else:
            verb = r.choice(self.verbs)
        v = VERBS[verb]
        while True:
            subj_parts: list[str] = []
            head, person, pronoun = self._subject(verb if verb in IT_VERBS else "", richness, subj_parts)
            if err == "missing_third_person_s" and person != "3sg":
                continue
            if err == "extra_third_person_s" and person == "3sg":
                continue
            break
        parts.extend(subj_parts)
        subj, third = head[0], person == "3sg"
        if verb in LIST_VERBS and r.random() < richness * 0.4:
            comp = self._list(parts)
        else:
            comp = self.complement(verb, parts)
        front: list[str] = []
        end: list[str] = []
        # Which word of the verb group carries the error: the auxiliary for have/has agreement in the perfect.
        if frame == "present":
            if r.random() < 0.25:
                head.append(r.choice(PRE_ADVERBS))
            right = v.third if third else v.base
            wrong = {"missing_third_person_s": v.base, "extra_third_person_s": v.third}.get(err or "", right)
            group, slot_in_group = [right], 0
            if r.random() < 0.35:
                end.append(r.choice(PRESENT_END))
        elif frame == "past":
            marker = err == "base_for_past" or r.random() < 0.6
            right = v.past
            wrong = {"base_for_past": v.base, "overregularized_past": v.wrong[0] if v.wrong else ""}.get(
                err or "", right
            )
            group, slot_in_group = [right], 0
            if marker:
                m = r.choice(PAST_MARKERS)
                if r.random() < 0.35:
                    front.append(m + ("," if r.random() < 0.5 else ""))
                else:
                    end.append(m)
        elif frame == "perfect":
            aux = "has" if third else "have"
            group = [aux]
            if r.random() < 0.3:
                group.append(r.choice(PERFECT_ADVERBS))
            group.append(v.participle)
            if err in ("missing_third_person_s", "extra_third_person_s"):
                right, wrong, slot_in_group = aux, ("have" if third else "has"), 0
            else:
                right, slot_in_group = v.participle, len(group) - 1
                wrong = {"base_for_participle": v.base, "past_for_participle": v.past,
                         "overregularized_past": v.wrong[0] if v.wrong else ""}.get(err or "", right)  # fmt: skip
            if r.random() < 0.3:
                end.append(r.choice(PERFECT_END))
        else:  # will / going to
            if frame == "will":
                if pronoun and subj in CONTRACT_WILL and r.random() < 0.15:
                    head[0] = CONTRACT_WILL[subj]
                    group = []
                else:
                    group = ["will"]
                if r.random() < 0.15:
                    group.append(r.choice(WILL_ADVERBS))
            else:
                if pronoun and r.random() < 0.25:
                    head[0] = CONTRACT_BE[subj]
                    group = ["going", "to"]
                else:
                    be = "am" if person == "I" else "is" if third else "are"
                    group = [be, "going", "to"]
            group.append(v.base)
            right, slot_in_group = v.base, len(group) - 1
            wrong = self._modal_wrong(verb) if err == "inflected_after_modal" else right
            if r.random() < 0.5:
                m = r.choice(FUTURE_MARKERS)
                if r.random() < 0.2:
                    front.append(m + ("," if r.random() < 0.5 else ""))
                else:
                    end.append(m)
        if err is not None and (not wrong or wrong == right):
            raise AssertionError(f"no distinct wrong form for {err} / {verb}")
        extras = self._extras(frame, richness, parts)
        if extras and not front and r.random() < 0.2:  # "In 2019, ..." / "At 7 p.m., ..."
            front.append(extras.pop() + ",")
        before = _tokens(front + head + group[:slot_in_group])
        tokens = before + _tokens(group[slot_in_group:] + [comp] + extras + end)
        # No random draw here: the corpus stream is the same with or without this reading.
        also = v.past if (err == "missing_third_person_s" and frame == "present"
                          and not _PRESENT_TIME.search(" ".join(tokens))) else ""
        return Clause(tokens, len(before), right, wrong, err, also)

    # -- clauses without a covered verb ------------------------------------------------------------------------------
    def plain(self, richness: float, parts: list[str]) -> Clause:
        """A clause with no covered verb form: be + adjective, a verb outside the table, or a modal + such a verb."""
        r = self.rng
        head, person, _ = self._subject("have", richness * 0.5, parts)
        x = r.random()
        if x < 0.35:
            past = r.random() < 0.4
            if past:
                be = "were" if person == "other" or head[0] == "you" else "was"
            else:
                be = "am" if person == "I" else "is" if person == "3sg" else "are"
            body = [be, self.fill(r.choice(PLAIN_BE_ADJS + ("from {place}", "in {place}")), parts)]
            frame = "past" if past else "present"
        else:
            base, third, past, objects = r.choice(OTHER_VERBS)
            if x < 0.8:
                y = r.random()
                if y < 0.3:  # forms of verbs outside the table are left alone, right or wrong
                    form, frame = r.choice((base, third, past)), "plain"
                elif y < 0.65:
                    form, frame = (third if person == "3sg" else base), "present"
                else:
                    form, frame = past, "past"
                body = [form, r.choice(objects)]
            else:
                body, frame = [r.choice(MODAL_OOD), base, r.choice(objects)], "will"
        return Clause(_tokens(head + body + self._extras(frame, richness * 0.7, parts)))

    def short_ood(self, parts: list[str]) -> str:
        """Short out-of-domain sentences that are not a clause of the kind above: a fixed phrase, a question, a job,
        a run of invented words."""
        r = self.rng
        x = r.random()
        if x < 0.3:
            return r.choice(OOD_FIXED).rstrip(".!?")
        if x < 0.55:
            if r.random() < 0.5:
                s, _ = self.np(parts, plural=False)
            else:
                s = self.name()
            place = self.place()
            parts.extend((s, place))
            return f"{s} is a {r.choice(PROFESSIONS)} in {place}"
        if x < 0.75:
            n, place = self.name(), self.place()
            parts.extend((n, place))
            return r.choice((f"is {n} from {place}", f"where is {n}", f"why is {n} in {place}"))
        words = [self._invented(lambda: _word(r, r.choice((1, 2, 3)), self.exotic)) for _ in range(r.randint(3, 6))]
        parts.extend(words)
        return " ".join([words[0]] + [w.lower() for w in words[1:]])


assert all(not lexicon.contains_covered_verb(a) for a in PLAIN_BE_ADJS)
