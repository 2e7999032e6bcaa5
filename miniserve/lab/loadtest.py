"""`miniserve loadtest`: check the options and the server, run one closed loop, open loop or calibration, print it."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from miniserve.lab.latency import Summary, summarize, summarize_by_class
from miniserve.lab.loadgen import (ServerUnreachable, calibrate, check_listening, check_positive, run_async,
                                   run_closed_loop, run_open_loop)


def run_loadtest(args: argparse.Namespace) -> int:
    c, open_loop = args.client, args.rate is not None or args.duration is not None
    if open_loop and not args.calibrate and (args.rate is None or args.duration is None):
        print("miniserve loadtest: error: an open loop needs both --rate and --duration", file=sys.stderr)
        return 2
    workload = None
    try:  # usage errors first, then whether anything listens: a wrong flag is not a missing server
        if getattr(args, "payloads", None) and not args.calibrate:
            from miniserve.lab.workloads import load_workload

            workload = load_workload(args.payloads)  # WorkloadError is a ValueError: a usage error
        if args.calibrate:
            check_positive(concurrency=args.concurrency, calibrate_total=args.calibrate_total)
        elif open_loop:
            check_positive(rate=args.rate, duration=args.duration, timeout=args.timeout)
        else:
            check_positive(concurrency=args.concurrency, total=args.total, timeout=args.timeout, max_wall=args.max_wall)
        check_listening(args.url)  # a server that is not there is one line, not a table of failures
    except ValueError as e:
        print(f"miniserve loadtest: error: {e}", file=sys.stderr)
        return 2
    except ServerUnreachable as e:
        print(e, file=sys.stderr)
        return 1
    if args.calibrate:  # closed loop on /noop; --rate/--duration do not apply
        what = f"calibration: {c}, concurrency {args.concurrency} on POST /noop"
        run = calibrate(args.url, args.concurrency, args.calibrate_total, client=c)
    elif open_loop:
        what = f"open loop: {c}, Poisson {args.rate} req/s for {args.duration} s, seed {args.seed}"
        run = run_open_loop(args.url, args.rate, args.duration, seed=args.seed, timeout_s=args.timeout, client=c,
                            payloads=workload.bodies if workload else None)
    else:
        what = f"closed loop: {c}, concurrency {args.concurrency}, {args.total} requests"
        run = run_closed_loop(args.url, args.concurrency, args.total, timeout_s=args.timeout, client=c,
                              max_wall_s=args.max_wall, payloads=workload.bodies if workload else None)
    if workload is not None:
        counts = ", ".join(f"{k} {v}" for k, v in workload.counts().items())
        what += f", payloads {workload.name} ({len(workload.payloads)}: {counts})"
    try:
        result = run_async(run)
    except ValueError as e:
        print(f"miniserve loadtest: error: {e}", file=sys.stderr)
        return 2
    records = None if isinstance(result, Summary) else result
    summary, notes = result if records is None else summarize(records), []
    if records is not None and args.records:
        with open(args.records, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(asdict(r)) + "\n" for r in records)
    out = {"run": what, **summary.to_dict()}
    if args.calibrate and args.best_rps:
        out["ceiling_multiple"] = m = summary.throughput_rps / args.best_rps
        verdict = "ok" if m >= 10 else "TOO LOW: the sweep would measure the client"
        notes.append(f"ceiling = {m:.1f} x {args.best_rps:g} req/s (need >= 10x): {verdict}")
    if records is not None and not open_loop and len(records) < args.total:
        notes.append(f"stopped at --max-wall {args.max_wall:g} s after {len(records)} of {args.total} requests")
    succeeded = bool(summary.by_status.get(200))
    if not succeeded:
        out["failure"] = summary.failure_reason()  # the text already says it in place of the latency line
    split = []
    if workload is not None and records is not None and set(workload.classes) != {"unknown"}:
        parts = summarize_by_class(records, workload.classes)
        out["by_class"] = {k: v.to_dict() for k, v in parts.items()}
        split = [_class_line(k, v) for k, v in parts.items()]
    text = "\n".join([f"{what} -> {args.url}", summary.as_text(), *split, *notes])
    print(json.dumps({**out, "notes": notes}) if args.json else text)
    return 0 if succeeded else 1


def _class_line(name: str, s: Summary) -> str:
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(s.by_status.items())) or "none"
    if not s.by_status.get(200):
        return f"  {name}: {s.count} requests (status {statuses}), none succeeded"
    return (f"  {name}: {s.count} requests (status {statuses})   p50 {s.p50_ms:.1f}   p95 {s.p95_ms:.1f}   "
            f"p99 {s.p99_ms:.1f} ms")
