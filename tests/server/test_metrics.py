"""Metrics through the app: per-route/status counts, latency, queue depth, in-flight and batch-size histograms."""

from __future__ import annotations

import asyncio
import re
import threading

from miniserve.server.metrics import Metrics
from tests._service_fakes import FakeAgent, config, serving, wait_entered, wait_until


def metric(text: str, name: str, **labels: str) -> float:
    """Value of one sample in Prometheus text; labels must match exactly."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name + (f"{{{want}}}" if want else "")) + r" ([0-9.e+-]+)$"
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"{name}{{{want}}} not in metrics"
    return float(found.group(1))


async def test_metrics_unbatched_counts_routes_statuses_and_batch_size_one(tmp_path):
    async with serving(config(tmp_path, mode="unbatched"), FakeAgent()) as (c, _):
        for _ in range(3):
            assert (await c.post("/correct", json={"sentence": "I goed"})).status_code == 200
        await c.post("/correct", json={"sentence": ""})
        await c.get("/nope")
        r = await c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert metric(text, "miniserve_requests_total", route="/correct", status="200") == 3
    assert metric(text, "miniserve_requests_total", route="/correct", status="422") == 1
    assert metric(text, "miniserve_requests_total", route="other", status="404") == 1
    assert metric(text, "miniserve_request_latency_seconds_count", route="/correct") == 4
    assert metric(text, "miniserve_batch_size_count") == 3
    assert metric(text, "miniserve_batch_size_bucket", le="1.0") == 3  # every unbatched call is a batch of 1
    assert metric(text, "miniserve_batch_run_seconds_count") == 3
    assert metric(text, "miniserve_queue_depth") == 0
    assert metric(text, "miniserve_inflight") == 0


async def test_metrics_static_observes_full_batches_and_queue_depth(tmp_path):
    gate = threading.Event()
    agent = FakeAgent(gate=gate)
    cfg = config(tmp_path, mode="static", max_batch=4, max_wait_ms=10_000, max_queue=8)
    async with serving(cfg, agent) as (c, app):
        try:
            # 4 requests fill one batch at once (max_wait is long, so only size can close it); the 5th waits.
            calls = [asyncio.create_task(c.post("/correct", json={"sentence": f"I goed {i}"})) for i in range(5)]
            await wait_entered(agent)
            await wait_until(lambda: app.state.service.runner.depth == 1)
            during = (await c.get("/metrics")).text
            assert metric(during, "miniserve_queue_depth") == 1
            assert metric(during, "miniserve_inflight") == 5
        finally:
            gate.set()
        # the 5th closes its batch by max_wait (10 s) unless something else comes: 3 more make it a full 4
        calls += [asyncio.create_task(c.post("/correct", json={"sentence": f"I goed {i}"})) for i in range(5, 8)]
        assert [r.status_code for r in await asyncio.gather(*calls)] == [200] * 8
        text = (await c.get("/metrics")).text
    assert [len(call) for call in agent.calls] == [4, 4]
    assert metric(text, "miniserve_batch_size_count") == 2
    assert metric(text, "miniserve_batch_size_bucket", le="3.0") == 0
    assert metric(text, "miniserve_batch_size_bucket", le="4.0") == 2
    assert metric(text, "miniserve_batch_size_sum") == 8


def test_batch_size_histogram_has_a_bucket_per_size_up_to_the_labs_largest_max_batch():
    # the lab's report draws one bar per batch size: a batch of 50 must be told from one of 49 or 64
    metrics = Metrics(frozenset({"/correct"}))
    metrics.observe_batch(50, 0.1)
    text = metrics.render()[0].decode()
    for size in range(1, 65):
        assert metric(text, "miniserve_batch_size_bucket", le=f"{size}.0") == (size >= 50)
    assert metric(text, "miniserve_batch_size_bucket", le="+Inf") == 1
