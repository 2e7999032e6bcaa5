"""The exception -> HTTP table: every row, inheritance, and that internals never reach a client message."""

from __future__ import annotations

import pytest
from starlette.exceptions import HTTPException

from miniserve.server import errors
from miniserve.server.batching import errors as batching_errors


@pytest.mark.parametrize(("exc", "status", "kind"), [
    (errors.MalformedJson("m"), 400, "malformed_json"),
    (errors.PayloadTooLarge("m"), 413, "payload_too_large"),
    (errors.UnsupportedMediaType("m"), 415, "unsupported_media_type"),
    (errors.ValidationFailed("m", field="sentence"), 422, "validation_error"),
    (errors.ClientGone("m"), 499, "client_closed_request"),
    (errors.ModelFailed("m"), 500, "model_error"),
    (batching_errors.BatchFailed("batch of 3 failed: RuntimeError('/secret/path')", RuntimeError("x")), 500, "model_error"),
    (errors.Overloaded("m"), 503, "overloaded"),
    (batching_errors.QueueFull("queue is full"), 503, "overloaded"),
    (errors.NotReady("m"), 503, "not_ready"),
    (errors.ServerShuttingDown("m"), 503, "shutting_down"),
    (batching_errors.ShuttingDown("x"), 503, "shutting_down"),
    (errors.DeadlinePassed("m"), 504, "deadline_exceeded"),
    (batching_errors.DeadlineExceeded("x"), 504, "deadline_exceeded"),
    (HTTPException(405), 405, "method_not_allowed"),
    (HTTPException(404), 404, "not_found"),
    (KeyError("internal"), 500, "internal_error"),
])
def test_every_error_type_has_one_status(exc, status, kind):
    got_status, got_kind, message = errors.classify(exc)
    assert (got_status, got_kind) == (status, kind)
    assert message


def test_table_covers_every_error_class_defined():
    api_errors = {c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.ApiError)}
    sched_errors = {c for c in vars(batching_errors).values() if isinstance(c, type) and issubclass(c, batching_errors.SchedulerError)}
    assert api_errors - {errors.ApiError} <= set(errors.ERROR_TABLE)
    assert sched_errors - {batching_errors.SchedulerError} <= set(errors.ERROR_TABLE)


def test_scheduler_and_unexpected_messages_do_not_leak_internals():
    _, _, message = errors.classify(batching_errors.BatchFailed("failed: RuntimeError('/secret/path')", RuntimeError()))
    assert "secret" not in message and "try again" in message
    assert errors.classify(KeyError("/secret/key"))[2] == errors.INTERNAL[2]  # fixed text, nothing of the cause


def test_api_error_message_is_passed_through():
    assert errors.classify(errors.ValidationFailed("sentence: too long"))[2] == "sentence: too long"


class Subclassed(errors.Overloaded): ...


def test_subclasses_inherit_their_row():
    assert errors.classify(Subclassed("x"))[:2] == (503, "overloaded")


async def test_responder_sets_retry_after_and_keeps_allow():
    responder = errors.ErrorResponder(retry_after_s=3)
    r = await responder(None, errors.Overloaded("busy"))  # type: ignore[arg-type]
    assert r.status_code == 503 and r.headers["retry-after"] == "3"
    r = await responder(None, HTTPException(405, headers={"Allow": "POST"}))  # type: ignore[arg-type]
    assert r.status_code == 405 and r.headers["allow"] == "POST" and "retry-after" not in r.headers
    r = await responder(None, errors.ServerShuttingDown("bye"))  # type: ignore[arg-type]
    assert "retry-after" not in r.headers  # go elsewhere; this instance will not come back
