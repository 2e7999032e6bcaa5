"""Every error the service can answer with, and the one table that maps each exception type to its HTTP status.

Handlers raise; they never build error responses themselves. `exception_handlers()` plugs the table into Starlette,
so a new error type is one class plus one row here. Bodies are always {"error": {"type", "message"}} (422 adds
"field"); an unexpected exception becomes a generic JSON 500 and its traceback goes to the server log only.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from miniserve.server.batching import errors as batching_errors


class ApiError(Exception):
    """An error with a message written for the client (no internals)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class MalformedJson(ApiError): ...
class PayloadTooLarge(ApiError): ...
class UnsupportedMediaType(ApiError): ...
class ValidationFailed(ApiError): ...  # message names the field; `field` carries it too
class Overloaded(ApiError): ...  # unbatched: max_inflight reached (the schedulers raise QueueFull)
class NotReady(ApiError): ...  # lifespan has not (or not successfully) loaded the model
class ServerShuttingDown(ApiError): ...
class DeadlinePassed(ApiError): ...
class ModelFailed(ApiError): ...  # the agent raised outside a batch (unbatched correct, continuous finish)
class ClientGone(ApiError): ...  # nobody reads this answer; it exists for the metrics and the log


# type -> (status, error type, default message). Looked up along the MRO, so subclasses inherit their row.
ERROR_TABLE: dict[type[BaseException], tuple[int, str, str]] = {
    MalformedJson: (400, "malformed_json", "the request body is not valid JSON"),
    PayloadTooLarge: (413, "payload_too_large", "the request body is too large"),
    UnsupportedMediaType: (415, "unsupported_media_type", "send the body as application/json"),
    ValidationFailed: (422, "validation_error", "the request body is invalid"),
    ClientGone: (499, "client_closed_request", "the client closed the connection before the answer"),
    ModelFailed: (500, "model_error", "the model failed on this request; try again"),
    batching_errors.BatchFailed: (500, "model_error", "the model failed on the batch holding this request; try again"),
    Overloaded: (503, "overloaded", "the server is at capacity; retry later"),
    batching_errors.QueueFull: (503, "overloaded", "the request queue is full; retry later"),
    NotReady: (503, "not_ready", "the model is not loaded yet; retry later"),
    ServerShuttingDown: (503, "shutting_down", "the server is shutting down; retry on another instance"),
    batching_errors.ShuttingDown: (503, "shutting_down", "the server is shutting down; retry on another instance"),
    DeadlinePassed: (504, "deadline_exceeded", "the request could not be answered within its deadline"),
    batching_errors.DeadlineExceeded: (504, "deadline_exceeded", "the request was not answered within its deadline"),
}
# Errors the client should simply retry: tell it when.
RETRY_AFTER_TYPES = frozenset({"overloaded", "not_ready"})
# Routing errors Starlette raises as HTTPException(status).
HTTP_STATUS_TYPES: dict[int, tuple[str, str]] = {
    404: ("not_found", "no such route"),
    405: ("method_not_allowed", "method not allowed on this route"),
}
INTERNAL = (500, "internal_error", "internal server error; details are in the server log")


# Every error.type the service can answer with, and the body's shape: the OpenAPI schema documents this, so a
# new row in the tables above is documented without touching app.py.
ERROR_TYPES: tuple[str, ...] = tuple(sorted({kind for _, kind, _ in ERROR_TABLE.values()}
                                            | {kind for kind, _ in HTTP_STATUS_TYPES.values()}
                                            | {INTERNAL[1], "http_error"}))
ERROR_BODY_SCHEMA: dict[str, object] = {
    "type": "object", "additionalProperties": False, "required": ["error"],
    "properties": {"error": {
        "type": "object", "additionalProperties": False, "required": ["type", "message"],
        "properties": {
            "type": {"type": "string", "enum": list(ERROR_TYPES), "description": "machine-readable error kind"},
            "message": {"type": "string", "description": "what went wrong, written for the client"},
            "field": {"type": "string", "description": "422 only: the offending field ('body' for the whole body)"},
        }}},
}


def classify(exc: BaseException) -> tuple[int, str, str]:
    """(status, error type, message) for any exception; INTERNAL for anything not in the table."""
    for cls in type(exc).__mro__:
        row = ERROR_TABLE.get(cls)
        if row is not None:
            status, kind, default = row
            # Only ApiError messages are written for clients; scheduler messages may carry internals (repr of a
            # batch_fn exception), so those use the table's message.
            message = exc.message if isinstance(exc, ApiError) and exc.message else default
            return status, kind, message
    if isinstance(exc, HTTPException):
        kind, message = HTTP_STATUS_TYPES.get(exc.status_code, ("http_error", str(exc.detail)))
        return exc.status_code, kind, message
    return INTERNAL


def error_body(kind: str, message: str, field: str | None = None) -> dict[str, dict[str, str]]:
    err = {"type": kind, "message": message}
    if field is not None:
        err["field"] = field
    return {"error": err}


class ErrorResponder:
    """Starlette exception handler: one instance per app, since Retry-After comes from that app's config."""

    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s

    async def __call__(self, request: Request, exc: Exception) -> JSONResponse:
        status, kind, message = classify(exc)
        headers: dict[str, str] = {}
        if isinstance(exc, HTTPException) and exc.headers:
            headers.update(exc.headers)  # e.g. Allow on 405
        if kind in RETRY_AFTER_TYPES:
            headers["Retry-After"] = str(self.retry_after_s)
        field = exc.field if isinstance(exc, ApiError) else None
        return JSONResponse(error_body(kind, message, field), status_code=status, headers=headers)


def exception_handlers(retry_after_s: int) -> dict[type[Exception], ErrorResponder]:
    """The mapping for Starlette(exception_handlers=...). `Exception` goes to ServerErrorMiddleware, which sends
    our JSON 500 and then re-raises, so uvicorn logs the traceback and the client never sees it."""
    responder = ErrorResponder(retry_after_s)
    handled: dict[type[Exception], ErrorResponder] = {cls: responder for cls in ERROR_TABLE if issubclass(cls, Exception)}
    handled[HTTPException] = responder
    handled[Exception] = responder
    return handled
