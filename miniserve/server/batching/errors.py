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
    """The request was still waiting in the queue when its deadline passed; it was never run (-> 504)."""


class BatchFailed(SchedulerError):
    """batch_fn raised (or returned the wrong number of results) for the batch this request was in (-> 500)."""

    def __init__(self, message: str, cause: BaseException) -> None:
        super().__init__(message)
        self.cause = cause
        self.__cause__ = cause
