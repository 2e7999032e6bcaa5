"""Exploration (not shipped unless NOTES.md says so): does the shipped model fix more after a short second stage of
training from its own weights?

    OMP_WAIT_POLICY=PASSIVE python experiments/2026-12-03-tutor-finetune/finetune.py NAME [options] --out DIR
    OMP_WAIT_POLICY=PASSIVE python experiments/2026-12-03-tutor-finetune/finetune.py --score DIR --draw-seed 1

Run 26's training ended with its progress score still rising (5.5 points over its last 1,000 steps, MODEL.md), and no
host without bf16 instructions can train a whole run within the budget (~2.2 h in fp32). A second stage of a few
hundred steps from the shipped weights fits there: the same loss, tokenizer and batches by length as `train.py`, a
fresh AdamW with a short warm-up and a cosine decay, on a new draw of the training split (`--pool-seed`; the held-out
split never shares names, subjects or complements with it, whatever the seed), optionally with more 2- and 3-error
pairs (`--error-counts`). The weights are saved float16 like a shipped checkpoint. `--score` prints the tutor column
by bucket (exact and any valid) on one held-out draw, as `miniserve eval` computes it.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import runpy
import time
from dataclasses import asdict
from pathlib import Path

import torch

from miniserve.tutor import atoms
from miniserve.tutor.agent import GrammarTutorAgent
from miniserve.tutor.evaluate import bucket_groups, reference_cases, tutor_outputs
from miniserve.tutor.generate import META_FILE, WEIGHTS_DIR, Generator
from miniserve.tutor.train import (TrainConfig, adamw, length_grouped_batches, lr_at, save, train_step,
                                   training_pool)


# Capitalised plural subjects for `--cap-plural-share` (training split only). None of the README's probe words
# ("Germans", "Danes", ...: score.py in 2026-12-03-tutor-name-placeholders) is here, so the probes stay unseen.
GROUP_PLURALS = """Spaniards Russians Canadians Mexicans Norwegians Finns Turks Kenyans Peruvians Belgians Austrians Scots
Londoners Parisians Berliners Europeans Africans Asians Australians Brazilians Egyptians Indians Koreans Nigerians
Chileans Hungarians Czechs Slovaks Croats Serbs Arabs Kurds Buddhists Catholics Protestants Muslims Hindus Liberals
Democrats Republicans Socialists Romans Vikings Celts Saxons Normans Tourists Locals Scandinavians Irishmen""".split()
GROUP_ENDINGS = ("an", "ian", "er", "ite", "an")  # + "s": invented ones such as "Kolvarians", "Brekites"


def patch_cap_plurals(share: float) -> None:
    """Training pairs whose subject is, `share` of the time, a capitalised plural with no determiner ("Russians
    like tea", invented "Kolvarians play cards"): the corpus capitalises only names, places, weekdays and months
    inside a sentence, so the shipped model reads "Danes play" as a name and "fixes" it to "Danes plays"."""
    held = atoms._heldout_words()
    real = [w for w in GROUP_PLURALS if w.lower() not in held and w.lower()[:-1] not in held]
    plain = atoms.Atoms.subject

    def subject(self, verb: str, parts: list[str]) -> tuple[str, str]:
        r = self.rng
        if self.heldout or r.random() >= share:
            return plain(self, verb, parts)
        if r.random() < 0.5:
            w = r.choice(real)
        else:
            w = self._invented(lambda: atoms._word(r, r.choice((1, 2)), self.exotic) + r.choice(GROUP_ENDINGS) + "s")
        parts.append(w)
        return w, "other"

    atoms.Atoms.subject = subject


def finetune(args: argparse.Namespace) -> None:
    torch.set_num_threads(2)
    torch.manual_seed(args.pool_seed)
    base = Generator.load(WEIGHTS_DIR, constrained=True)
    meta = json.loads((WEIGHTS_DIR / META_FILE).read_text())
    model, tok = base.model, base.tok
    # The second stage's own schedule: `train.lr_at`'s warm-up and cosine, over its steps, from its peak.
    recipe = dict(meta["train_config"]) | {"seed": args.pool_seed, "train_pairs": args.pool, "precision": "fp32",
                                           "steps": args.steps, "lr": args.peak, "lr_min": args.low,
                                           "warmup_steps": args.warmup}
    if args.error_counts:
        recipe["error_counts"] = tuple(args.error_counts)
    if args.s_name_share is not None:
        recipe["s_name_share"] = args.s_name_share
    if args.cap_plural_share:
        patch_cap_plurals(args.cap_plural_share)
    cfg = TrainConfig(**recipe)
    t0 = time.perf_counter()
    pool = training_pool(cfg)
    print(f"pool: {len(pool):,} pairs in {time.perf_counter() - t0:.0f}s; {cfg}", flush=True)
    batches = length_grouped_batches(tok, pool, cfg, random.Random(args.pool_seed), model.cfg.max_seq_len)
    opt = adamw(model, cfg)
    t_start = time.perf_counter()
    model.train()
    for step in range(1, cfg.steps + 1):
        lr = lr_at(cfg, step)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = train_step(model, opt, next(batches), cfg, tok.pad_id)
        if step % 50 == 0 or step == 1:
            print(f"step {step:4d}/{cfg.steps} loss {loss.item():.4f} lr {lr:.2e} "
                  f"{time.perf_counter() - t_start:6.0f}s", flush=True)
    model.eval()
    seconds = round(time.perf_counter() - t_start, 1)
    meta = {k: v for k, v in meta.items() if not k.startswith("heldout")} | {
        "second_stage": {"name": args.name, "from_sha256": meta["model_sha256"],
                         "cap_plural_share": args.cap_plural_share, "train_config": asdict(cfg),
                         "train_seconds": seconds,
                         "final_loss": round(loss.item(), 5)}}
    save(Generator(model, tok, base.max_new_tokens, constrained=True), Path(args.out), meta)
    print(f"wrote {args.out} after {seconds:.0f}s of steps", flush=True)


def score_tutor(weights: Path, draw_seed: int) -> None:
    torch.set_num_threads(2)
    agent = GrammarTutorAgent(Generator.load(weights))
    score_draw(agent, weights, draw_seed)
    score_probes(agent)


def score_draw(agent: GrammarTutorAgent, weights: Path, draw_seed: int) -> None:
    cases = reference_cases(seed=draw_seed)
    t0 = time.perf_counter()
    outs = tutor_outputs(agent, cases)
    print(f"{weights} on held-out draw {draw_seed} ({time.perf_counter() - t0:.0f}s): tutor exact / any valid, %")
    for g, ix in bucket_groups(cases).items():
        exact = 100 * sum(outs[i] == cases[i].target for i in ix) / len(ix)
        valid = 100 * sum(cases[i].accepts(outs[i]) for i in ix) / len(ix)
        print(f"{g:<36} {len(ix):>5} {exact:>7.1f} {valid:>7.1f}")
    Path(weights, f"outs_draw{draw_seed}.json").write_text(json.dumps(outs))
    ines = [i for i, c in enumerate(cases) if c.kind == "error" and re.search(r"\bInes\b", c.source)]
    print(f"error sentences naming Ines missed: {sum(outs[i] != cases[i].target for i in ines)} of {len(ines)}")


def score_probes(agent: GrammarTutorAgent) -> None:
    # The hand-written probes of the name-placeholder exploration: names ending in -s with errors, and correct
    # sentences with capitalised plurals (any edit of those is wrong).
    probes = runpy.run_path(str(Path(__file__).parents[1] / "2026-12-03-tutor-name-placeholders" / "score.py"))
    names, plurals = probes["NAME_PROBES"], probes["PLURAL_PROBES"]
    got = [c.text for c in agent.correct_batch([s for s, _ in names] + plurals, [None] * (len(names) + len(plurals)))]
    print(f"probes, names ending in -s: {sum(o == t for o, (_, t) in zip(got, names))} of {len(names)} exactly corrected")
    wrong = [o for o, s in zip(got[len(names):], plurals) if o != s]
    print(f"probes, capitalised plurals: {len(wrong)} of {len(plurals)} changed: {wrong}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", nargs="?", default="")
    p.add_argument("--out", type=Path)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--peak", type=float, default=2e-4)
    p.add_argument("--low", type=float, default=2e-5)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--pool-seed", type=int, default=1)
    p.add_argument("--pool", type=int, default=50_000)
    p.add_argument("--error-counts", type=float, nargs=3)
    p.add_argument("--s-name-share", type=float)
    p.add_argument("--cap-plural-share", type=float, help="share of training subjects made capitalised plurals")
    p.add_argument("--score", type=Path, help="score these weights instead of training")
    p.add_argument("--probes-only", action="store_true", help="with --score: the hand-written probes alone")
    p.add_argument("--draw-seed", type=int, default=1)
    args = p.parse_args()
    if args.score and args.probes_only:
        torch.set_num_threads(2)
        score_probes(GrammarTutorAgent(Generator.load(args.score)))
    elif args.score:
        score_tutor(args.score, args.draw_seed)
    else:
        finetune(args)


if __name__ == "__main__":
    main()
