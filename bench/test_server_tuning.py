"""How many model threads and torch intra-op threads each server mode should use, measured, not guessed.

On 2 cores the choices pull against each other: several unbatched workers overlap one request's Python work with
another's kernels (static mode: two batches at once, for the same reason), but two calls with two torch threads
each oversubscribe the cores; one static batch is a single call that may or may not profit from a second intra-op
thread. The defaults in miniserve/server/config.py come from this benchmark (one closed-loop run per variant at the sweep's
concurrency); the sweep's baseline is the unbatched default, so a weak baseline would show up here as a variant
that beats it.
"""

from __future__ import annotations

import pytest

from miniserve.lab import latency
from miniserve.lab.sweep_params import SweepConfig

VARIANTS = {  # name -> (sweep config, server environment)
    "unbatched-w1-t1": ("baseline", {"MINISERVE_WORKERS": "1", "MINISERVE_TORCH_THREADS": "1"}),
    "unbatched-w1-t2": ("baseline", {"MINISERVE_WORKERS": "1", "MINISERVE_TORCH_THREADS": "2"}),
    "unbatched-w2-t1": ("baseline", {"MINISERVE_WORKERS": "2", "MINISERVE_TORCH_THREADS": "1"}),
    "unbatched-w4-t1": ("baseline", {"MINISERVE_WORKERS": "4", "MINISERVE_TORCH_THREADS": "1"}),
    "static-8:20-w1-t1": ("8:20", {"MINISERVE_WORKERS": "1", "MINISERVE_TORCH_THREADS": "1"}),
    "static-8:20-w1-t2": ("8:20", {"MINISERVE_WORKERS": "1", "MINISERVE_TORCH_THREADS": "2"}),
    "static-8:20-w2-t1": ("8:20", {"MINISERVE_WORKERS": "2", "MINISERVE_TORCH_THREADS": "1"}),
    "static-32:50-w1-t1": ("32:50", {"MINISERVE_WORKERS": "1", "MINISERVE_TORCH_THREADS": "1"}),
    "static-32:50-w1-t2": ("32:50", {"MINISERVE_WORKERS": "1", "MINISERVE_TORCH_THREADS": "2"}),
    "static-32:50-w2-t1": ("32:50", {"MINISERVE_WORKERS": "2", "MINISERVE_TORCH_THREADS": "1"}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_server_tuning(benchmark, variant: str, sweep_store, progress, payloads, server_log_dir, launch_server) -> None:
    key, env = VARIANTS[variant]
    params = sweep_store.params
    srv = launch_server(SweepConfig.parse(key), server_log_dir, env, name=f"tuning-{variant}")
    try:
        srv.wait_ready(60)
        srv.closed_loop(params.concurrency, 2 * params.concurrency, payloads)  # warm-up
        records = benchmark.pedantic(
            srv.closed_loop, args=(params.concurrency, params.total, payloads), rounds=1, iterations=1
        )
    finally:
        srv.stop()
    s = latency.summarize(records)
    benchmark.group = "server-tuning"
    benchmark.extra_info.update(variant=variant, config=key, env=env, throughput_rps=s.throughput_rps,
                                p95_ms=s.p95_ms, by_status=s.by_status)
    progress(f"[tuning {variant}] {s.throughput_rps:.1f} req/s, p95 {s.p95_ms:.0f} ms, statuses {s.by_status}")
    assert s.by_status == {200: params.total}, f"{variant}: not every request returned 200: {s.by_status}"
