"""Command line: argument definitions only; each command's work lives in its own module.

Modules are imported inside each command so that `miniserve --help` stays fast (torch is slow to import).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence

from miniserve.server.config import (DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TORCH_THREADS,  # cheap: no torch
                                     DEFAULT_URL, DEFAULT_WORKERS, MODES, ServerConfig)


def _train(args: argparse.Namespace) -> int:
    from miniserve.tutor.train import run_train

    return run_train(args)


def _eval(args: argparse.Namespace) -> int:
    from miniserve.tutor.evaluate import run_eval

    return run_eval(args)


def _correct(args: argparse.Namespace) -> int:
    from miniserve.tutor.agent import run_correct

    return run_correct(args)


def _serve(args: argparse.Namespace) -> int:
    from miniserve.server.serve import run_serve

    return run_serve(args)


def _loadtest(args: argparse.Namespace) -> int:
    from miniserve.lab.loadtest import run_loadtest

    return run_loadtest(args)


def _report(args: argparse.Namespace) -> int:
    from miniserve.lab.report import run_report

    return run_report(args)


def _shares(text: str) -> tuple[float, ...]:
    """"0.3,0.35,0.35" -> (0.3, 0.35, 0.35); TrainConfig checks that they are three shares summing to 1."""
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _config_default(name: str) -> object:
    return next(f.default for f in dataclasses.fields(ServerConfig) if f.name == name)


def _per_mode(defaults: dict[str, int]) -> str:
    """'1' when every mode has the same default, else 'unbatched 2, static 2, continuous 1'."""
    values = set(defaults.values())
    return str(values.pop()) if len(values) == 1 else ", ".join(f"{m} {n}" for m, n in defaults.items())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="miniserve", description=__doc__.splitlines()[0] if __doc__ else None)
    p.description = "A grammar-tutor Mini-GPT, its HTTP server, load generator and batching experiment."
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train the tutor model from scratch on CPU and write the checkpoint")
    t.add_argument("--out", default=None,
                   help="checkpoint directory (default: the shipped miniserve/tutor/weights, overwritten in place)")
    t.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the recorded recipe)")
    t.add_argument("--seed", type=int, default=0,
                   help="seeds the training data, initialisation and order (default 0: the shipped run); the final "
                   "scores are on the reference draw whatever the seed")
    t.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: all cores)")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="training-only corpus augmentation (default: the recorded recipe)")
    t.add_argument("--correct-share", type=float, default=None,
                   help="share of training pairs that are correct sentences (default: the recorded recipe)")
    t.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the recorded recipe)")
    t.add_argument("--batch-size", type=int, default=None, help="sequences per step (default: the recorded recipe)")
    t.add_argument("--warmup-steps", type=int, default=None,
                   help="learning-rate warm-up steps (default: the recorded recipe)")
    t.add_argument("--length-group", type=int, default=None,
                   help="batches formed by length at once (1: off; default: the recorded recipe)")
    t.add_argument("--split-s", action=argparse.BooleanOptionalAction, default=None,
                   help="tokenize a final -s as its own token (default: the recorded recipe)")
    t.add_argument("--decision-weight", type=float, default=None,
                   help="loss weight of the covered verb forms' tokens, where constrained decoding leaves the model "
                        "a choice (1: none; default: the recorded recipe)")
    t.add_argument("--precision", choices=("bf16", "fp32"), default=None,
                   help="the forward pass's arithmetic; weights and loss stay float32 (default: the recorded recipe)")
    t.add_argument("--caps-share", type=float, default=None,
                   help="share of short training sentences written all in capitals (default: the corpus's 2%%)")
    t.add_argument("--error-counts", type=_shares, default=None, metavar="P1,P2,P3",
                   help="shares of 1, 2 and 3 errors in a training error pair (default: the corpus's 0.45,0.35,0.20)")
    t.add_argument("--s-name-share", type=float, default=None,
                   help="share of invented training names given a singular -s/-es ending (default: none added)")
    t.add_argument("--ema-decay", type=float, default=None,
                   help="save an exponential moving average of the weights with this decay (default: the last step's)")
    t.add_argument("--d-model", type=int, default=None, help="model width (default: the recorded recipe)")
    t.add_argument("--n-layer", type=int, default=None, help="transformer blocks (default: the recorded recipe)")
    t.set_defaults(func=_train)

    e = sub.add_parser("eval", help="score a checkpoint on the held-out split, raw and through the tutor, by bucket")
    e.add_argument("--weights", default=None, help="checkpoint directory (default: the shipped one)")
    e.add_argument("--n", type=int, default=5000,  # evaluate.REFERENCE_PAIRS: that module imports torch
                   help="held-out pairs, all kinds together (default 5000: with the default --draw-seed, the "
                   "reference draw model.json's scores are from)")
    e.add_argument("--n-multi", type=int, default=500,
                   help="multi-sentence inputs made from those pairs (default 500)")
    e.add_argument("--draw-seed", type=int, default=None,
                   help="which held-out draw (default 1: the reference draw, whatever seed trained the checkpoint; "
                   "another seed checks a result on fresh sentences)")
    e.add_argument("--split", choices=("heldout", "train"), default="heldout",
                   help="heldout (default): sentences the model never saw; train: the first --n pairs of the "
                   "checkpoint's own training pool, drawn again from its recorded recipe (how well it fits what it "
                   "trained on)")
    e.add_argument("--json", action="store_true", help="print the scores as JSON instead of a table")
    e.set_defaults(func=_eval)

    c = sub.add_parser("correct", help="correct a learner's text (one or more sentences) and explain each correction")
    c.add_argument("sentence", help="the learner's text: one or more sentences, 1-500 characters (as the API takes)")
    c.add_argument("--learner-id", default=None, help="remember this learner's mistakes (default: remember nothing)")
    c.add_argument("--db", default=None, help="learner-memory SQLite file (default: under the data directory)")
    c.add_argument("--json", action="store_true", help="print the answer as JSON, as POST /correct returns it")
    c.set_defaults(func=_correct)

    s = sub.add_parser("serve", help="serve POST /correct with uvicorn")
    s.add_argument("--mode", choices=MODES, default=None,
                   help=f"how requests reach the model (default: {_config_default('mode')})")
    s.add_argument("--max-batch", type=int, default=None,
                   help=f"static: requests per batch at most (default {_config_default('max_batch')})")
    s.add_argument("--max-wait-ms", type=float, default=None,
                   help="static: a batch that is not full runs this long after its first request arrived (default "
                        f"{_config_default('max_wait_ms'):g})")
    s.add_argument("--max-queue", type=int, default=None,
                   help="static: requests waiting for a batch; continuous: sentences waiting for a row; 503 beyond "
                        f"(default {_config_default('max_queue')})")
    s.add_argument("--workers", type=int, default=None,
                   help="model calls at once: unbatched requests, or static batches (default "
                        f"{DEFAULT_WORKERS['static']}; continuous: always {DEFAULT_WORKERS['continuous']}, one "
                        "engine loop)")
    s.add_argument("--max-running", type=int, default=None,
                   help="continuous: sentences decoding together, one KV-cache row each (default "
                        f"{_config_default('max_running')})")
    s.add_argument("--max-prefill-tokens", type=int, default=None,
                   help="continuous: prompt tokens prefilled per step at most (default "
                        f"{_config_default('max_prefill_tokens')})")
    s.add_argument("--torch-threads", type=int, default=None,
                   help=f"torch intra-op threads per model call (default {_per_mode(DEFAULT_TORCH_THREADS)}: on 2 "
                        "cores, two calls of 1 thread each beat one call of 2; docs/server-tuning.md)")
    s.add_argument("--max-inflight", type=int, default=None,
                   help=f"unbatched: accepted requests before 503 (default {_config_default('max_inflight')})")
    s.add_argument("--request-timeout-s", type=float, default=None,
                   help=f"per-request deadline, 504 past it (default {_config_default('request_timeout_s'):g})")
    s.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default: %(default)s)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help="port to listen on (default: %(default)s, the port `miniserve loadtest` targets by default)")
    s.set_defaults(func=_serve)

    lt = sub.add_parser("loadtest", help="drive a running server with closed- or open-loop load")
    lt.add_argument("--url", default=DEFAULT_URL,
                    help="server base URL, loopback only (default: %(default)s, where `miniserve serve` listens "
                         "unless given --host/--port)")
    lt.add_argument("--concurrency", type=int, default=50, help="closed loop: concurrent workers")
    lt.add_argument("--total", type=int, default=500, help="closed loop: requests in all")
    lt.add_argument("--rate", type=float, default=None, help="open loop: Poisson arrivals per second")
    lt.add_argument("--duration", type=float, default=None, help="open loop: seconds of arrivals")
    lt.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")
    lt.add_argument("--calibrate", action="store_true", help="measure the generator's own ceiling on /noop")
    lt.add_argument("--json", action="store_true", help="print the summary as JSON")
    lt.add_argument("--records", default=None, help="write raw per-request records (JSON lines) here")
    lt.add_argument("--payloads", default=None,
                    help="payload set to send, in order and cycled (e.g. bench/payloads/lab03.json, a JSON list of "
                         "request bodies, or JSON lines); latencies are also split by its length classes "
                         "(default: 200 held-out sentences)")
    lt.add_argument("--client", choices=["aiohttp", "httpx"], default="aiohttp",
                    help="HTTP client (aiohttp: the only one whose calibrated ceiling is >= 10x the server)")
    lt.add_argument("--seed", type=int, default=0, help="open loop: seed of the Poisson arrivals")
    lt.add_argument("--max-wall", type=float, default=600.0, help="closed loop: no new request after this many s")
    lt.add_argument("--calibrate-total", type=int, default=5000, help="calibration: requests in all")
    lt.add_argument("--best-rps", type=float, default=None,
                    help="calibration: print the ceiling as a multiple of this server throughput")
    lt.set_defaults(func=_loadtest)

    r = sub.add_parser("report", help="write the experiment folder from a pytest-benchmark JSON")
    r.add_argument("benchmark_json")
    r.add_argument("--out", default=None, help="experiment folder (default: experiments/<date>-phase-33-lab-NN, "
                   "the lab read from the JSON; a JSON of both labs writes both folders)")
    r.add_argument("--lab", choices=["02", "03"], default=None,
                   help="report only this lab's records (needed with --out when the JSON holds both labs)")
    r.set_defaults(func=_report)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
