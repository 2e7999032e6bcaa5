"""What a submitter can get back from a batching scheduler instead of a result.

Shared by every batching policy; `miniserve.server.errors` maps each to an HTTP status in one table.
"""

from __future__ import annotations


class SchedulerError(Exception):
    """Base of every error a submitter can get from the scheduler (the app maps each to an HTTP status)."""


class QueueFull(SchedulerError):
    """The waiting queue is at max_queue; rejected at once so memory stays bounded (-> 503 + Retry-After)."""


class ShuttingDown(SchedulerError):
    """shutdown() has begun; no new work is accepted (-> 503)."""


class DeadlineExceeded(SchedulerError):
    """The request's deadline passed before its answer was ready (-> 504): still waiting in the queue (it never
    ran), or, in continuous batching, while its row was running (the row is released at the next step)."""


class BatchFailed(SchedulerError):
    """The model failed on this request's work (-> 500): batch_fn raised (or returned the wrong number of results)
    for its batch, or the continuous engine's prefill or decode step holding its row raised."""

    def __init__(self, message: str, cause: BaseException) -> None:
        super().__init__(message)
        self.cause = cause
        self.__cause__ = cause
