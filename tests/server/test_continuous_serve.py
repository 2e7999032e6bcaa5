"""A real `python -m miniserve serve --mode continuous` process on a free loopback port: it answers /correct and
shows it in /metrics, and SIGTERM while sentences are still queued answers every in-flight request and exits 0."""

from __future__ import annotations

import asyncio
import signal

import httpx
from tests._service_fakes import needs_model
from tests.server.test_serve import EXIT_TIMEOUT_S, server, server_log, wait_queued

from miniserve.lab.loadgen import default_payloads

pytestmark = needs_model


def short_texts(n: int, per_text: int) -> list[str]:
    """n inputs of `per_text` short held-out sentences each: every sentence is a row of its own."""
    short = [p["sentence"].rstrip(".!?") for p in default_payloads() if len(p["sentence"]) < 45]
    assert len(short) >= n * per_text
    return [". ".join(short[i * per_text:(i + 1) * per_text]) + "." for i in range(n)]


async def test_sigterm_answers_every_in_flight_request_and_exits_0(tmp_path):
    # One row: 6 inputs x 8 sentences decode one sentence at a time, so most of them still wait when SIGTERM comes.
    with server(tmp_path, "--mode", "continuous", "--max-running", "1", "--max-queue", "64") as (base, proc):
        one = httpx.post(f"{base}/correct", json={"sentence": "Yesterday I goed home. She walk to school."})
        assert one.status_code == 200
        assert one.json()["corrected"] == "Yesterday I went home. She walks to school."
        metrics = httpx.get(f"{base}/metrics").text
        assert "miniserve_time_to_first_token_seconds_count 2.0" in metrics  # one per sentence
        assert "miniserve_kv_cache_slots_used 0.0" in metrics
        texts = short_texts(6, 8)
        async with httpx.AsyncClient(base_url=base, timeout=EXIT_TIMEOUT_S) as client:
            calls = [asyncio.create_task(client.post("/correct", json={"sentence": t})) for t in texts]
            await asyncio.wait_for(wait_queued(client, at_least=8, inflight=len(texts)), 20)
            proc.send_signal(signal.SIGTERM)
            answers = await asyncio.wait_for(asyncio.gather(*calls), EXIT_TIMEOUT_S)
        assert [r.status_code for r in answers] == [200] * len(texts), [r.text for r in answers]
        assert [len(r.json()["checks"]) for r in answers] == [8] * len(texts)
        assert await asyncio.to_thread(proc.wait, EXIT_TIMEOUT_S) == 0
        log = server_log(open(tmp_path / "server.log", "rb"))
        assert "mode=continuous max_running=1 max_queue=64 max_prefill_tokens=512 torch_threads=1" in log
        assert "Traceback" not in log

