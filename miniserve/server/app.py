"""The Starlette app: routes and lifespan only. Parsing lives in payload.py, the model side in service.py, the
exception -> status table in errors.py, metrics in metrics.py.

`uvicorn miniserve.server.app:app` serves `create_app()` with ServerConfig.from_env(); the model loads in the lifespan.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from miniserve.server.config import ServerConfig
from miniserve.server.errors import exception_handlers
from miniserve.server.metrics import Metrics, MetricsMiddleware
from miniserve.server.payload import read_correct_request
from miniserve.server.service import AgentFactory, Service

schemas = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "miniserve grammar tutor", "version": "0.1.0"}})
ERROR_SCHEMA = {"type": "object", "properties": {"error": {"type": "object", "properties": {
    "type": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}}}

# /noop answers this, about the size of a real answer, so calibration measures the same bytes on the wire.
NOOP_ANSWER = {"corrected": "Yesterday I went to the store.", "was_correct": False,
               "explanation": "'goed' is an over-regularized past tense: 'go' is irregular, its past is 'went'.",
               "edits": [{"original": "goed", "corrected": "went", "error_type": "overregularized_past"}]}


def _service(request: Request) -> Service:
    return request.app.state.service


def correction_body(c: Any) -> dict[str, Any]:
    return {"corrected": c.text, "explanation": c.why, "was_correct": c.was_correct,
            "edits": [{"original": e.original, "corrected": e.corrected, "error_type": e.error_type} for e in c.edits]}


async def correct(request: Request) -> Response:
    """
    summary: Correct one sentence and explain the correction.
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            additionalProperties: false
            required: [sentence]
            properties:
              sentence: {type: string, minLength: 1, maxLength: 500}
              learner_id: {type: string, maxLength: 64, nullable: true}
    responses:
      200:
        description: The corrected sentence.
        content:
          application/json:
            schema:
              type: object
              properties:
                corrected: {type: string}
                explanation: {type: string}
                was_correct: {type: boolean}
                edits:
                  type: array
                  items:
                    type: object
                    properties: {original: {type: string}, corrected: {type: string}, error_type: {type: string}}
      400: {description: Malformed JSON.}
      413: {description: Body larger than max_body_bytes.}
      415: {description: A Content-Type other than application/json (a missing one is accepted).}
      422: {description: Invalid field; error.field names it.}
      500: {description: The model failed on this request or its batch.}
      503: {description: Queue full / too many in flight (Retry-After), model not loaded, or shutting down.}
      504: {description: Not answered within request_timeout_s.}
    """
    svc = _service(request)
    deadline = asyncio.get_running_loop().time() + svc.config.request_timeout_s
    req = await read_correct_request(request, svc.config.max_body_bytes)
    correction = await svc.answer(request.receive, req, deadline)
    return JSONResponse(correction_body(correction))


async def noop(request: Request) -> Response:
    """
    summary: Load-generator calibration; parses and validates like /correct, does no model work.
    responses:
      200: {description: A fixed answer of the same shape and about the same size as /correct.}
      400: {description: Malformed JSON.}
      422: {description: Invalid field.}
    """
    await read_correct_request(request, _service(request).config.max_body_bytes)
    return JSONResponse(NOOP_ANSWER)


async def healthz(request: Request) -> Response:
    """
    summary: Liveness; the process answers.
    responses:
      200: {description: Alive.}
    """
    return JSONResponse({"status": "alive"})


async def readyz(request: Request) -> Response:
    """
    summary: Readiness; model loaded and queue (or in-flight count) below its high-water mark.
    responses:
      200: {description: Ready for traffic.}
      503: {description: Not ready; "reason" says why.}
    """
    ready, reason = _service(request).readiness()
    return JSONResponse({"status": "ready" if ready else "not_ready", "reason": reason},
                        status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    """
    summary: Prometheus metrics in text exposition format.
    responses:
      200: {description: Metrics text.}
    """
    body, content_type = _service(request).metrics.render()
    return Response(body, media_type=content_type)


async def openapi(request: Request) -> Response:
    """
    summary: This API's OpenAPI schema.
    responses:
      200: {description: OpenAPI 3 document.}
    """
    return JSONResponse(request.app.state.openapi)


ROUTES = [
    Route("/correct", correct, methods=["POST"]),
    Route("/noop", noop, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    service: Service = app.state.service
    await service.start()  # torch threads, agent load, runner start; a failure here aborts startup
    try:
        yield
    finally:
        await service.stop()  # queued and running work is answered before the process exits


def create_app(config: ServerConfig | None = None, agent_factory: AgentFactory | None = None) -> Starlette:
    """`agent_factory(config)` returns the agent; default GrammarTutorAgent.load_default(db_path=config.db_path)."""
    config = config or ServerConfig.from_env()
    metrics_ = Metrics(frozenset(r.path for r in ROUTES))
    app = Starlette(routes=ROUTES, lifespan=lifespan,
                    middleware=[Middleware(MetricsMiddleware, metrics=metrics_)],
                    exception_handlers=exception_handlers(config.retry_after_s))
    app.state.service = Service(config, metrics_, agent_factory)
    app.state.openapi = schemas.get_schema(routes=app.routes)
    return app


app = create_app()
