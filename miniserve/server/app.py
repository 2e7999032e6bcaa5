"""The Starlette app: routes and lifespan only. Parsing lives in payload.py, the model side in service.py, the
exception -> status table in errors.py, metrics in metrics.py.

`uvicorn miniserve.server.app:app` serves `create_app()` with ServerConfig.from_env(); the model loads in the lifespan.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, get_args

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from miniserve.server.config import ServerConfig
from miniserve.server.errors import ERROR_BODY_SCHEMA, exception_handlers
from miniserve.server.metrics import Metrics, MetricsMiddleware
from miniserve.server.payload import CORRECT_REQUEST_SCHEMA, read_correct_request
from miniserve.server.service import AgentFactory, Service
from miniserve.tutor.agent import Reason, correction_to_dict  # torch-free: the agent loads its model lazily
from miniserve.tutor.lexicon import ERROR_TYPES

CHECK_REASONS = get_args(Reason)


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": _json({"$ref": "#/components/schemas/Error"}), **extra}


# The shapes the route docstrings below refer to by $ref. The request body and the error body are built from the
# code that enforces them (payload.py, errors.py), so the schema cannot drift from what the server checks.
COMPONENTS: dict[str, Any] = {
    "schemas": {
        "Correction": {
            "type": "object", "additionalProperties": False,
            "required": ["corrected", "explanation", "was_correct", "edits", "checks"],
            "properties": {
                "corrected": {"type": "string", "description": "the learner's text with every accepted edit"},
                "explanation": {"type": "string"},
                "was_correct": {"type": "boolean",
                                "description": "true only when every sentence was checked and none needed a change"},
                "edits": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False,
                    "required": ["original", "corrected", "error_type", "start"],
                    "properties": {"original": {"type": "string"}, "corrected": {"type": "string"},
                                   "error_type": {"type": "string", "enum": list(ERROR_TYPES)},
                                   "start": {"type": "integer", "minimum": 0,
                                             "description": "where `original` starts in the request's `sentence`"}}}},
                "checks": {"type": "array", "description": "one per sentence of the input, in order", "items": {
                    "type": "object", "additionalProperties": False, "required": ["start", "end", "status", "reason"],
                    "properties": {
                        "start": {"type": "integer", "minimum": 0,
                                  "description": "offset of the sentence in the request's `sentence` as sent, in "
                                                 "Unicode code points (not in `corrected`, whose edits may differ "
                                                 "in length)"},
                        "end": {"type": "integer", "minimum": 0, "description": "offset just past the sentence"},
                        "status": {"type": "string", "enum": ["correct", "corrected", "not_checked"]},
                        "reason": {"type": "string", "nullable": True, "enum": [*CHECK_REASONS, None],
                                   "description": "why a sentence was not checked (null when it was): no covered "
                                                  "verb in it, too long for the model, or the model's output failed "
                                                  "the guard"}}}},
            },
        },
        "Error": ERROR_BODY_SCHEMA,
        "Readiness": {
            "type": "object", "additionalProperties": False, "required": ["status", "reason"],
            "properties": {"status": {"type": "string", "enum": ["ready", "not_ready"]}, "reason": {"type": "string"}},
        },
    },
    "requestBodies": {"CorrectRequest": {"required": True, "content": _json(CORRECT_REQUEST_SCHEMA)}},
    "responses": {
        "MalformedJson": _error("Empty body, not UTF-8, not valid JSON, or a Content-Length that is not a number "
                                "(uvicorn refuses that one itself, with a plain-text 400, before the app sees it)."),
        "PayloadTooLarge": _error("Body larger than max_body_bytes; in continuous mode also an input with more "
                                  "sentences to check than max_queue."),
        "UnsupportedMediaType": _error("A Content-Type other than application/json or application/*+json "
                                       "(a missing one is accepted)."),
        "ValidationError": _error("The JSON is not a valid request; error.field names the offending field."),
        "ModelError": _error("The model failed on this request or its batch (model_error; retry), or an "
                             "unexpected error (internal_error; details in the server log)."),
        "InternalError": _error("An unexpected error (internal_error; details in the server log)."),
        "Unavailable": _error("Queue full or too many in flight (overloaded), model not loaded (not_ready): both "
                              "with Retry-After; or shutting down (shutting_down).",
                              headers={"Retry-After": {"description": "seconds to wait before retrying",
                                                       "schema": {"type": "integer", "minimum": 0}}}),
        "DeadlineExceeded": _error("Not answered within request_timeout_s."),
    },
}
schemas = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "miniserve grammar tutor", "version": "0.1.0"},
                           "components": COMPONENTS})

# /noop answers this, about the size of a real answer, so calibration measures the same bytes on the wire.
NOOP_ANSWER = {"corrected": "Yesterday I went to the store.", "was_correct": False,
               "explanation": "'goed' is an over-regularized past tense: 'go' is irregular, its past is 'went'.",
               "edits": [{"original": "goed", "corrected": "went", "error_type": "overregularized_past",
                          "start": 12}],
               "checks": [{"start": 0, "end": 30, "status": "corrected", "reason": None}]}


def _service(request: Request) -> Service:
    return request.app.state.service


async def correct(request: Request) -> Response:
    """
    summary: Correct a learner's text (one or more sentences) and explain each correction.
    requestBody: {$ref: '#/components/requestBodies/CorrectRequest'}
    responses:
      200:
        description: The learner's text with every accepted edit, an explanation, and a check per sentence.
        content: {application/json: {schema: {$ref: '#/components/schemas/Correction'}}}
      400: {$ref: '#/components/responses/MalformedJson'}
      413: {$ref: '#/components/responses/PayloadTooLarge'}
      415: {$ref: '#/components/responses/UnsupportedMediaType'}
      422: {$ref: '#/components/responses/ValidationError'}
      500: {$ref: '#/components/responses/ModelError'}
      503: {$ref: '#/components/responses/Unavailable'}
      504: {$ref: '#/components/responses/DeadlineExceeded'}
    """
    svc = _service(request)
    deadline = asyncio.get_running_loop().time() + svc.config.request_timeout_s
    req = await read_correct_request(request, svc.config.max_body_bytes)
    correction = await svc.answer(request.receive, req, deadline)
    return JSONResponse(correction_to_dict(correction))


async def noop(request: Request) -> Response:
    """
    summary: Load-generator calibration; parses and validates like /correct, does no model work.
    requestBody: {$ref: '#/components/requestBodies/CorrectRequest'}
    responses:
      200:
        description: A fixed answer of the same shape and about the same size as /correct's.
        content: {application/json: {schema: {$ref: '#/components/schemas/Correction'}}}
      400: {$ref: '#/components/responses/MalformedJson'}
      413: {$ref: '#/components/responses/PayloadTooLarge'}
      415: {$ref: '#/components/responses/UnsupportedMediaType'}
      422: {$ref: '#/components/responses/ValidationError'}
      500: {$ref: '#/components/responses/InternalError'}
    """
    await read_correct_request(request, _service(request).config.max_body_bytes)
    return JSONResponse(NOOP_ANSWER)


async def healthz(request: Request) -> Response:
    """
    summary: Liveness; the process answers.
    responses:
      200:
        description: Alive.
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              required: [status]
              properties: {status: {type: string, enum: [alive]}}
    """
    return JSONResponse({"status": "alive"})


async def readyz(request: Request) -> Response:
    """
    summary: Readiness; model loaded and queue (or in-flight count) below its high-water mark.
    responses:
      200:
        description: Ready for traffic.
        content: {application/json: {schema: {$ref: '#/components/schemas/Readiness'}}}
      503:
        description: Not ready; "reason" says why.
        content: {application/json: {schema: {$ref: '#/components/schemas/Readiness'}}}
    """
    ready, reason = _service(request).readiness()
    return JSONResponse({"status": "ready" if ready else "not_ready", "reason": reason},
                        status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    """
    summary: Prometheus metrics in text exposition format.
    responses:
      200:
        description: Metrics text.
        content: {text/plain: {schema: {type: string}}}
    """
    body, content_type = _service(request).metrics.render()
    return Response(body, media_type=content_type)


async def openapi(request: Request) -> Response:
    """
    summary: This API's OpenAPI schema.
    responses:
      200:
        description: OpenAPI 3 document.
        content: {application/json: {schema: {type: object}}}
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


def openapi_document(routes: list[Any]) -> dict[str, Any]:
    """The docstrings' schema, with each `requestBody: {$ref: ...}` served inline: an operation shows its body
    without a lookup, while the docstrings still name it once for /correct and /noop alike."""
    doc = schemas.get_schema(routes=routes)
    prefix = "#/components/requestBodies/"
    for operations in doc["paths"].values():
        for operation in operations.values():
            ref = operation.get("requestBody", {}).get("$ref", "")
            if ref.startswith(prefix):
                operation["requestBody"] = copy.deepcopy(COMPONENTS["requestBodies"][ref[len(prefix):]])
    return doc


def make_logs_visible() -> None:
    """uvicorn configures only its own loggers, so miniserve's INFO lines (the start-up line among them) would go
    nowhere. Unless logging is already set up (a root handler: pytest, an embedding application), give the
    `miniserve` logger a stderr handler formatted like uvicorn's and at uvicorn's level (--log-level)."""
    package = logging.getLogger("miniserve")
    if package.hasHandlers():
        return
    handler = logging.StreamHandler()
    level = logging.INFO
    if "uvicorn" in sys.modules and logging.getLogger("uvicorn").handlers:  # uvicorn.Config set up its logging
        from uvicorn.logging import DefaultFormatter

        handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
        level = logging.getLogger("uvicorn.error").getEffectiveLevel()
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    package.addHandler(handler)
    if package.level == logging.NOTSET:
        package.setLevel(level)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    make_logs_visible()
    service: Service = app.state.service
    await service.start()  # torch threads, agent load, runner start; a failure here aborts startup
    try:
        yield
    finally:
        await service.stop()  # queued and running work is answered before the process exits


def create_app(config: ServerConfig | None = None, agent_factory: AgentFactory | None = None, *,
               listen: str | None = None) -> Starlette:
    """`agent_factory(config)` returns the agent; default GrammarTutorAgent.load_default(db_path=config.db_path).
    `listen` ("host:port") goes into the start-up log line; `uvicorn app:app` does not tell the app its address."""
    config = config or ServerConfig.from_env()
    metrics_ = Metrics(frozenset(r.path for r in ROUTES))
    app = Starlette(routes=ROUTES, lifespan=lifespan,
                    middleware=[Middleware(MetricsMiddleware, metrics=metrics_)],
                    exception_handlers=exception_handlers(config.retry_after_s))
    app.state.service = Service(config, metrics_, agent_factory, listen=listen)
    app.state.openapi = openapi_document(app.routes)
    return app


app = create_app()
