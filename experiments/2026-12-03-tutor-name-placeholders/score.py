"""Exploration (not shipped): would the tutor fix more if the model read names ending in -s as a known name?

    OMP_WAIT_POLICY=PASSIVE python experiments/2026-12-03-tutor-name-placeholders/score.py [--draw-seed 1]

The tokenizer (`split_s`) cuts a final "-s" off a word whose stem has 3+ letters, so the held-out name "Ines" reaches
the model as "Ine" + the plural / third-person -s token, and the shipped model misses about a quarter of the held-out
error sentences that name her (MODEL.md). Here the model reads each such capitalised word inside a sentence as a training name ("Anna"; a
training place, "London", after a preposition), and the guard splices the accepted verb edits into the learner's
own text as always, so the names come back as written. Prints the tutor's exact-match and *any valid* scores, by
bucket, as served and with the placeholders, on one held-out draw, and how many inputs each fixes that the other
misses; then both on probe sentences written by hand (names ending in -s, each with errors, and correct sentences
with capitalised plurals, which the placeholder makes singular). Writes nothing.
"""

from __future__ import annotations

import argparse
import re

from miniserve.tutor import agent as agent_mod
from miniserve.tutor import lexicon
from miniserve.tutor.agent import GrammarTutorAgent
from miniserve.tutor.evaluate import reference_cases
from miniserve.tutor.generate import default_generator

AS_SERVED = agent_mod.model_input
S_CUT = re.compile(r"^[^\W\d_]{3,}(?<!s)s$")  # what split_s cuts: a stem of 3+ letters, not ending in s, then "s"
WEEKDAYS = {d + "s" for d in "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()}  # "on Sundays"
FUNCTION = set("this does has was is its his hers ours yours theirs always sometimes perhaps".split())
DETERMINERS = set("the my your his her our their these those many some all both two three few several".split())
PREPOSITIONS = set("in on to from at near over around through into across of via outside inside past towards".split())
PERSON, PLACE = "Anna", "London"  # both in the training split (atoms.py: list index % 5 != 2)


def with_placeholders(sentence: str) -> str:
    """The model input as served, with each capitalised word the tokenizer would cut before an -s replaced (a
    possessive's "'s" kept), unless it starts the sentence ("Dogs like ..." is a plural; the agent has already split
    the input, so only the first word starts one), follows a determiner, is a weekday, a function word, a verb form
    or an acronym."""
    words = AS_SERVED(sentence).split()
    out = []
    for i, w in enumerate(words):
        pre, core, post = lexicon.split_affixes(w)
        base, poss = (core[:-2], core[-2:]) if core.endswith(("'s", "’s")) else (core, "")
        prev = words[i - 1].lower() if i else ""
        if (i and prev not in DETERMINERS and base[:1].isupper() and S_CUT.match(base) and not base[:-1].isupper()
                and base not in WEEKDAYS and base.lower() not in FUNCTION and not lexicon.is_covered_form(base.lower())):
            w = pre + (PLACE if prev in PREPOSITIONS and not poss else PERSON) + poss + post
        out.append(w)
    return " ".join(out)


NAME_FRAMES = (("Yesterday {n} go to the market.", "Yesterday {n} went to the market."),
               ("My friend {n} have two dogs.", "My friend {n} has two dogs."),
               ("Last week {n} eat pizza with me.", "Last week {n} ate pizza with me."),
               ("I think {n} like football.", "I think {n} likes football."),
               ("Yesterday I visit {n} and we watch a film.", "Yesterday I visited {n} and we watched a film."))
# Lucas is a training name; the other nine never occur in the corpus.
NAME_PROBES = [(src.format(n=n), fixed.format(n=n)) for src, fixed in NAME_FRAMES
               for n in "James Thomas Charles Lucas Carlos Agnes Marcus Nicholas Dolores Jonas".split()]
PLURAL_PROBES = """I think Germans like beer.|In my town Greeks eat a lot of fish.|Every summer Americans go to the beach.|
My neighbours say Italians have good food.|At home Christians eat fish on Fridays.|In winter Danes play cards.|
I know Poles like soup.|On Sundays Swedes eat cake.|After work Brits go to the pub.|Here Texans eat a lot of beef.""".replace(
    "\n", "").split("|")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draw-seed", type=int, default=1, help="held-out draw (1: the reference draw)")
    args = p.parse_args()
    agent = GrammarTutorAgent(default_generator())
    cases = reference_cases(seed=args.draw_seed)
    probes = [src for src, _ in NAME_PROBES] + PLURAL_PROBES
    variants = {"as served": AS_SERVED, "placeholders": with_placeholders}
    outs: dict[str, list[str]] = {}
    probed: dict[str, list[str]] = {}
    try:
        for name, fn in variants.items():
            agent_mod.model_input = fn  # read by the agent and its guard alike
            outs[name] = [c.text for i in range(0, len(cases), 64)
                          for c in agent.correct_batch([x.source for x in cases[i:i + 64]], [None] * len(cases[i:i + 64]))]
            probed[name] = [c.text for c in agent.correct_batch(probes, [None] * len(probes))]
    finally:
        agent_mod.model_input = AS_SERVED
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(cases):
        for g in (f"kind: {c.kind}", *c.buckets):
            groups.setdefault(g, []).append(i)
    print(f"held-out draw {args.draw_seed}: tutor exact / any valid, %")
    print(f"{'bucket':<36} {'n':>5} " + "".join(f"{v:>16}" for v in variants))
    for g, ix in sorted(groups.items()):
        if g.startswith("length"):  # errors and correct together; the error rows are the targets' rows
            continue
        cells = "".join(f"{100 * sum(outs[v][i] == cases[i].target for i in ix) / len(ix):>9.1f}"
                        f"{100 * sum(cases[i].accepts(outs[v][i]) for i in ix) / len(ix):>7.1f}" for v in variants)
        print(f"{g:<36} {len(ix):>5} {cells}")
    hit = {v: [o == c.target for o, c in zip(outs[v], cases)] for v in variants}
    for kind in ("error", "correct", "multi", "ood"):
        ix = [i for i, c in enumerate(cases) if c.kind == kind]
        gained = sum(hit["placeholders"][i] and not hit["as served"][i] for i in ix)
        lost = sum(hit["as served"][i] and not hit["placeholders"][i] for i in ix)
        print(f"{kind}: placeholders right where as served wrong {gained}, the reverse {lost} (of {len(ix)})")
    ines = [i for i, c in enumerate(cases) if c.kind == "error" and re.search(r"\bInes\b", c.source)]
    for v in variants:
        print(f"{v}: error sentences naming Ines (\\bInes\\b) missed: {sum(not hit[v][i] for i in ines)} of {len(ines)}")
    n = len(NAME_PROBES)
    print(f"\nprobes: {n} sentences with a name ending in -s and 1-2 errors; exactly corrected (edited at all)")
    for v in variants:
        exact = sum(o == fixed for o, (_, fixed) in zip(probed[v], NAME_PROBES))
        edited = sum(o != src for o, (src, _) in zip(probed[v], NAME_PROBES))
        print(f"  {v}: {exact} of {n} ({edited})")
    print("capitalised plurals, all correct as written (an edit is a wrong correction):")
    for v in variants:
        wrong = [o for o, src in zip(probed[v][n:], PLURAL_PROBES) if o != src]
        print(f"  {v}: {len(wrong)} of {len(PLURAL_PROBES)} changed: {wrong}")


if __name__ == "__main__":
    main()
