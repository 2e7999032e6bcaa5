"""The HTTP API in-process (httpx.ASGITransport + the app's lifespan): answers, every error path, metrics, probes."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator

import pytest
from tests._service_fakes import (WEIGHTS_DIR, FakeAgent, client_for, config, error_of, needs_model, serving, wait_entered,
                            wait_until)

from miniserve.server.app import create_app
from miniserve.server.service import default_agent_factory

MODES = ["unbatched", "static"]


@pytest.fixture
async def client(tmp_path):
    async with serving(config(tmp_path, mode="static", max_wait_ms=0), FakeAgent()) as (c, _):
        yield c


@pytest.mark.parametrize("mode", MODES)
async def test_correct_answers_in_both_modes(tmp_path, mode):
    agent = FakeAgent()
    async with serving(config(tmp_path, mode=mode), agent) as (c, _):
        r = await c.post("/correct", json={"sentence": "  Yesterday I goed home. ", "learner_id": "ana"})
    assert r.status_code == 200
    assert r.json() == {"corrected": "  Yesterday I went home. ",
                        "explanation": "'go' is irregular: its past is 'went'.", "was_correct": False,
                        "edits": [{"original": "goed", "corrected": "went", "error_type": "overregularized_past",
                                   "start": 14}],
                        "checks": [{"start": 0, "end": 25, "status": "corrected", "reason": None}]}
    assert agent.sentences_run == ["  Yesterday I goed home. "]  # the input as sent: the agent keeps its whitespace


BAD_BODIES = [
    # (body bytes, content-type, status, error type, words the message must contain)
    (b"{", "application/json", 400, "malformed_json", "not valid JSON"),
    (b"", "application/json", 400, "malformed_json", "empty"),
    (b"\xff\xfe\xfa", "application/json", 400, "malformed_json", "UTF-8"),
    (b"[" * 30000 + b"]" * 30000, None, 400, "malformed_json", "nested too deeply"),
    (b'["I goed"]', "application/json", 422, "validation_error", "body: must be a JSON object"),
    (b'{"sentence": 3}', "application/json", 422, "validation_error", "sentence: must be a string, got number"),
    (b'{"sentence": null}', "application/json", 422, "validation_error", "sentence: must be a string, got null"),
    (b'{"learner_id": "a"}', "application/json", 422, "validation_error", "sentence: field required"),
    (b'{"sentence": ""}', "application/json", 422, "validation_error", "sentence: must not be empty"),
    (b'{"sentence": " \\t\\n "}', "application/json", 422, "validation_error", "sentence: must not be empty"),
    (json.dumps({"sentence": "a" * 501}).encode(), None, 422, "validation_error", "sentence: at most 500"),
    (b'{"sentence": "\\ud800 goed"}', None, 422, "validation_error", "sentence: contains an invalid Unicode"),
    (b'{"sentence": "ok", "learner_id": 7}', None, 422, "validation_error", "learner_id: must be a string"),
    (json.dumps({"sentence": "ok", "learner_id": "x" * 65}).encode(), None, 422, "validation_error",
     "learner_id: at most 64"),
    (b'{"sentence": "ok", "lang": "en"}', None, 422, "validation_error", "lang: unknown field"),
    (b'{"sentence": "ok"}', "text/plain", 415, "unsupported_media_type", "'text/plain' is not supported"),
    (b"sentence=ok", "application/x-www-form-urlencoded", 415, "unsupported_media_type", "application/json"),
]


@pytest.mark.parametrize("path", ["/correct", "/noop"])
@pytest.mark.parametrize(("body", "ctype", "status", "kind", "words"), BAD_BODIES)
async def test_bad_input_gets_its_status_and_a_message(client, path, body, ctype, status, kind, words):
    headers = {"content-type": ctype} if ctype else {}
    r = await client.post(path, content=body, headers=headers)
    assert r.status_code == status, r.text
    err = error_of(r)
    assert err["type"] == kind
    assert words in err["message"]
    if status == 422:
        assert err["field"] == err["message"].split(":")[0]  # the field is named both ways


@pytest.mark.parametrize("body", [
    {"sentence": "a" * 500},
    {"sentence": "I goed", "learner_id": None},
    {"sentence": "I goed", "learner_id": "x" * 64},
])
async def test_boundary_values_are_accepted(client, body):
    assert (await client.post("/correct", json=body)).status_code == 200


@pytest.mark.parametrize("ctype", [None, "application/json; charset=utf-8", "application/merge-patch+json"])
async def test_json_content_types_and_a_missing_one_are_accepted(client, ctype):
    headers = {"content-type": ctype} if ctype else {}
    r = await client.post("/correct", content=b'{"sentence": "I goed home."}', headers=headers)
    assert r.status_code == 200, r.text


async def test_body_over_limit_by_content_length_is_413_without_reading(client):
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(100):
            pulled += 1
            yield b"x" * 1024

    r = await client.post("/correct", content=body(), headers={"content-length": str(100 * 1024)})
    assert r.status_code == 413
    assert error_of(r)["type"] == "payload_too_large"
    assert "102400 bytes exceeds the limit of 65536" in error_of(r)["message"]
    assert pulled <= 1  # decided from the header; the transport may have primed one chunk at most


async def test_chunked_body_over_limit_stops_reading_at_the_limit(client):
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(1000):  # 1 MiB if read to the end
            pulled += 1
            yield b"x" * 1024

    r = await client.post("/correct", content=body())  # no Content-Length: chunked
    assert r.status_code == 413
    assert "exceeds the limit of 65536 bytes" in error_of(r)["message"]
    assert 64 <= pulled <= 70  # stopped just past 64 KiB


async def test_bad_content_length_is_400(client):
    r = await client.post("/correct", content=b'{"sentence": "x"}', headers={"content-length": "abc"})
    assert r.status_code == 400 and "Content-Length" in error_of(r)["message"]


@pytest.mark.parametrize(("method", "path", "allow"), [("GET", "/correct", "POST"), ("DELETE", "/noop", "POST"),
                                                       ("POST", "/healthz", "GET")])
async def test_wrong_method_is_json_405_with_allow(client, method, path, allow):
    r = await client.request(method, path)
    assert r.status_code == 405
    assert error_of(r)["type"] == "method_not_allowed"
    assert allow in r.headers["allow"]


async def test_unknown_route_is_json_404(client):
    r = await client.get("/nope")
    assert r.status_code == 404 and error_of(r)["type"] == "not_found"


async def test_without_lifespan_model_is_not_loaded(tmp_path):
    app = create_app(config(tmp_path), agent_factory=lambda _c: FakeAgent())
    async with client_for(app) as c:  # lifespan never ran
        r = await c.post("/correct", json={"sentence": "I goed"})
        assert r.status_code == 503 and error_of(r)["type"] == "not_ready"
        assert r.headers["retry-after"] == "1"
        ready = await c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["reason"] == "model not loaded"
        assert (await c.get("/healthz")).status_code == 200  # alive even when not ready


@pytest.mark.parametrize("mode", MODES)
async def test_batch_failure_is_500_for_that_request_and_the_next_succeeds(tmp_path, mode):
    agent = FakeAgent(fail_next=1)
    async with serving(config(tmp_path, mode=mode), agent) as (c, _):
        first = await c.post("/correct", json={"sentence": "I goed"})
        second = await c.post("/correct", json={"sentence": "I goed"})
    assert first.status_code == 500
    err = error_of(first)
    assert err["type"] == "model_error" and "try again" in err["message"]
    assert "secret" not in first.text  # the cause is logged, not sent
    assert second.status_code == 200 and second.json()["corrected"] == "I went"


class BrokenAgent(FakeAgent):
    def correct(self, sentence, learner_id=None):
        return object()  # not a Correction: serializing it fails in the route, outside every typed error

    def correct_batch(self, sentences, learner_ids):
        return [object() for _ in sentences]


@pytest.mark.parametrize("mode", MODES)
async def test_unexpected_exception_is_json_500_without_traceback(tmp_path, mode):
    async with serving(config(tmp_path, mode=mode), BrokenAgent()) as (c, _):
        r = await c.post("/correct", json={"sentence": "I goed"})
        assert r.status_code == 500
        assert error_of(r) == {"type": "internal_error", "message": "internal server error; details are in the "
                                                                    "server log"}
        assert (await c.post("/correct", content=b"{")).status_code == 400  # and it keeps serving


async def test_noop_validates_but_never_calls_the_model(tmp_path):
    agent = FakeAgent()
    async with serving(config(tmp_path), agent) as (c, _):
        r = await c.post("/noop", json={"sentence": "I goed home."})
    assert r.status_code == 200 and set(r.json()) == {"corrected", "explanation", "was_correct", "edits", "checks"}
    assert agent.calls == []


async def test_healthz_and_readyz_when_serving(client):
    assert (await client.get("/healthz")).json() == {"status": "alive"}
    r = await client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"


async def test_openapi_describes_the_routes(client):
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {"/correct", "/noop", "/healthz", "/readyz", "/metrics", "/openapi.json"}
    body = doc["paths"]["/correct"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["sentence"] and body["properties"]["sentence"]["maxLength"] == 500
    assert {"200", "400", "413", "422", "503", "504"} <= {str(k) for k in doc["paths"]["/correct"]["post"]["responses"]}


async def test_readyz_is_503_at_the_high_water_mark(tmp_path):
    gate = threading.Event()
    agent = FakeAgent(gate=gate)
    cfg = config(tmp_path, mode="static", workers=1, max_batch=1, max_wait_ms=0, max_queue=4,
                 ready_high_water=0.5)
    async with serving(cfg, agent) as (c, app):
        try:
            calls = [asyncio.create_task(c.post("/correct", json={"sentence": "I goed"})) for _ in range(3)]
            await wait_entered(agent)  # one runs, two wait: 2 >= 0.5 * 4
            await wait_until(lambda: app.state.service.runner.depth == 2)
            r = await c.get("/readyz")
            assert r.status_code == 503
            assert r.json() == {"status": "not_ready", "reason": "load 2 at or above high-water mark 2 (of 4)"}
        finally:
            gate.set()
        assert [r.status_code for r in await asyncio.gather(*calls)] == [200] * 3
        assert (await c.get("/readyz")).status_code == 200


REAL_SENTENCES = ["Yesterday I goed to the store.", "She walk to school every day.", "I like green tea.",
                  " The sky is blue. He goed home and she eat lunch.\n"]


@needs_model
async def test_real_agent_answers_the_same_in_both_modes(tmp_path):
    answers = {}
    for mode in MODES:
        async with serving(config(tmp_path, mode=mode, max_wait_ms=5, weights_dir=WEIGHTS_DIR), None) as (c, _):
            rs = await asyncio.gather(*(c.post("/correct", json={"sentence": s, "learner_id": "t"})
                                        for s in REAL_SENTENCES))
        assert [r.status_code for r in rs] == [200] * len(REAL_SENTENCES), [r.text for r in rs]
        answers[mode] = [r.json() for r in rs]
        for a in answers[mode]:
            assert isinstance(a["corrected"], str) and a["explanation"] and isinstance(a["was_correct"], bool)
    # static runs them as one batch, unbatched one by one: batching must not change what the tutor says (the
    # explanations may differ: the second mode's learner memory already holds the first mode's mistakes)
    for key in ("corrected", "was_correct", "edits", "checks"):
        assert [a[key] for a in answers["static"]] == [a[key] for a in answers["unbatched"]], key


@needs_model
async def test_the_answer_says_which_sentences_were_checked(tmp_path):
    text = "  The sky is blue. I walk to school. My sister take the bus.\n"  # every byte comes back but the edit
    async with serving(config(tmp_path, mode="static", max_wait_ms=5, weights_dir=WEIGHTS_DIR), None) as (c, _):
        r = await c.post("/correct", json={"sentence": text})
        sky = await c.post("/correct", json={"sentence": "The sky is blue."})
    a = r.json()
    assert a["corrected"] == "  The sky is blue. I walk to school. My sister takes the bus.\n" and not a["was_correct"]
    assert [(k["status"], k["reason"]) for k in a["checks"]] == [
        ("not_checked", "out_of_scope"), ("correct", None), ("corrected", None)]
    assert [text[k["start"]:k["end"]] for k in a["checks"]] == ["The sky is blue.", "I walk to school.",
                                                                "My sister take the bus."]
    # nothing checked is not "correct": a client can tell "unchanged" from "checked and right"
    assert sky.json()["was_correct"] is False and sky.json()["checks"][0]["reason"] == "out_of_scope"


class FailOnce:
    """The real agent, except that its first model call raises."""

    def __init__(self, agent):
        self.agent, self.failed = agent, False

    def _maybe_fail(self):
        if not self.failed:
            self.failed = True
            raise RuntimeError("injected fault")

    def correct(self, sentence, learner_id=None):
        self._maybe_fail()
        return self.agent.correct(sentence, learner_id)

    def correct_batch(self, sentences, learner_ids):
        self._maybe_fail()
        return self.agent.correct_batch(sentences, learner_ids)


@needs_model
@pytest.mark.parametrize("mode", MODES)
async def test_real_agent_fault_fails_one_request_and_the_next_succeeds(tmp_path, mode):
    cfg = config(tmp_path, mode=mode, weights_dir=WEIGHTS_DIR)
    agent = FailOnce(default_agent_factory(cfg))
    async with serving(cfg, agent) as (c, _):
        first = await c.post("/correct", json={"sentence": REAL_SENTENCES[0]})
        second = await c.post("/correct", json={"sentence": REAL_SENTENCES[0]})
    assert first.status_code == 500 and error_of(first)["type"] == "model_error"
    assert "injected" not in first.text
    assert second.status_code == 200 and second.json()["corrected"]
