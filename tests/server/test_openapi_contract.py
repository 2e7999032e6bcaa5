"""The OpenAPI document against the server: schemathesis sends generated requests (schema-valid and schema-invalid)
to the in-process app, and every one must get a documented status, never a 5xx, and a body matching its documented
schema. The error statuses schemathesis cannot provoke (413, 500, 503, 504) are provoked by hand and checked the
same way."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from tests._service_fakes import FakeAgent, client_for, config, serving, wait_entered

from miniserve.server.app import create_app
from miniserve.server.config import ServerConfig
from miniserve.server.errors import ERROR_TYPES

# Loaded at import: schemathesis's lazy `from_fixture` does not work with this pytest (it sets Function._nodeid).
# The fake agent never opens the learner database, so nothing is written. Schemathesis runs the app's lifespan
# itself, once per test item.
APP = create_app(ServerConfig(mode="static", max_wait_ms=0, db_path=":memory:"), agent_factory=lambda _c: FakeAgent())
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
DOC = APP.state.openapi


# ~700 cases in all: 300 generated per POST route (about half schema-valid), plus schemathesis's coverage cases
# (boundaries, missing and unknown fields, wrong types, other media types and methods; ~35 per POST route, ~10 per
# GET route); 6-8 s on the shared 2-core box. Derandomized: the same cases every run, so a failure reproduces.
@schema.parametrize()
@settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_every_generated_request_gets_a_documented_answer(case):
    # All of schemathesis's checks: no 5xx, status documented, content type and body match the documented schema,
    # schema-valid requests accepted (2xx), schema-invalid ones rejected (4xx), undocumented methods get 405.
    case.call_and_validate()


def _response(path: str, method: str, status: int) -> dict:
    response = DOC["paths"][path][method]["responses"][status]
    ref = response.get("$ref", "")
    return DOC["components"]["responses"][ref.rsplit("/", 1)[-1]] if ref else response


@pytest.mark.parametrize(("path", "statuses"), [
    ("/correct", [400, 413, 415, 422, 500, 503, 504]),
    ("/noop", [400, 413, 415, 422, 500]),
])
def test_error_statuses_are_documented_with_the_error_body(path, statuses):
    assert sorted(s for s in DOC["paths"][path]["post"]["responses"] if s >= 400) == statuses
    for status in statuses:
        response = _response(path, "post", status)
        assert response["description"]
        assert response["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    error = DOC["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and error["properties"]["error"]["required"] == ["type", "message"]


def test_request_body_is_required_and_documents_what_is_enforced():
    for path in ("/correct", "/noop"):
        body = DOC["paths"][path]["post"]["requestBody"]
        assert body["required"] is True
        fields = body["content"]["application/json"]["schema"]["properties"]
        assert fields["sentence"]["minLength"] == 1 and fields["learner_id"]["minLength"] == 1
        assert fields["sentence"]["pattern"] == fields["learner_id"]["pattern"] == r"\S"  # not only whitespace


def _check(path: str, response) -> None:
    assert response.status_code in DOC["paths"][path]["post"]["responses"], response.status_code
    schema[path]["POST"].validate_response(response)  # raises unless status, content type and body conform
    assert response.json()["error"]["type"] in ERROR_TYPES


@pytest.mark.parametrize("path", ["/correct", "/noop"])
@pytest.mark.parametrize(("content", "headers", "status"), [
    (b'{"sentence": "I goed', {}, 400),
    (b"", {}, 400),
    (b'{"sentence": "x"}', {"content-length": "abc"}, 400),
    (json.dumps({"sentence": "x" * 70000}).encode(), {}, 413),
    (b'{"sentence": "I goed"}', {"content-type": "text/plain"}, 415),
    (b'{"sentence": "I goed", "learner_id": ""}', {}, 422),
    (b'{"sentence": "I goed", "learner_id": " \\u3000 "}', {}, 422),
    (b'{"sentence": ["I goed"]}', {}, 422),
])
async def test_client_errors_match_the_documented_schema(tmp_path, path, content, headers, status):
    async with serving(config(tmp_path), FakeAgent()) as (c, _):
        r = await c.post(path, content=content, headers=headers)
    assert r.status_code == status, r.text
    _check(path, r)


async def test_not_ready_503_matches_the_documented_schema(tmp_path):
    app = create_app(config(tmp_path), agent_factory=lambda _c: FakeAgent())
    async with client_for(app) as c:  # lifespan never ran: the model is not loaded
        r = await c.post("/correct", json={"sentence": "I goed"})
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    _check("/correct", r)


@pytest.mark.parametrize("mode", ["unbatched", "static"])
async def test_overloaded_503_and_deadline_504_match_the_documented_schema(tmp_path, mode):
    gate = threading.Event()
    agent = FakeAgent(gate=gate)
    cfg = config(tmp_path, mode=mode, workers=1, max_batch=1, max_queue=1, max_inflight=2, max_wait_ms=0,
                 request_timeout_s=0.5)
    async with serving(cfg, agent) as (c, _):
        try:
            running = asyncio.create_task(c.post("/correct", json={"sentence": "I goed"}))
            await wait_entered(agent)
            waiting = asyncio.create_task(c.post("/correct", json={"sentence": "I goed"}))  # queued (or in flight)
            await asyncio.sleep(0.05)
            refused = await c.post("/correct", json={"sentence": "I goed"})
            timed_out = await running
            await waiting
        finally:
            gate.set()
    assert refused.status_code == 503 and refused.json()["error"]["type"] == "overloaded"
    _check("/correct", refused)
    assert timed_out.status_code == 504
    _check("/correct", timed_out)


async def test_model_500_matches_the_documented_schema(tmp_path):
    async with serving(config(tmp_path), FakeAgent(fail_next=1)) as (c, _):
        r = await c.post("/correct", json={"sentence": "I goed"})
    assert r.status_code == 500 and r.json()["error"]["type"] == "model_error"
    _check("/correct", r)
