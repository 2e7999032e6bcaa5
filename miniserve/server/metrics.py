"""Prometheus metrics of one app (its own CollectorRegistry, so apps in one process never share counters), and
the ASGI middleware that counts every request by route and status and times it."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# One bucket per batch size up to 64, the lab's largest max_batch: the report shows how many batches held exactly
# n requests, which coarser buckets (48, 64] could not tell. Larger batches (a max_batch above 64) fall in +Inf.
BATCH_SIZE_BUCKETS = tuple(range(1, 65))
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Label values are the app's own routes; anything else is "other", so scanners cannot blow up the label set.
UNMATCHED_ROUTE = "other"


class Metrics:
    def __init__(self, routes: frozenset[str]) -> None:
        self.routes = routes
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("miniserve_requests", "HTTP requests answered, by route and status",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("miniserve_request_latency_seconds", "time from request start to response end",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("miniserve_queue_depth", "requests waiting for the model (not yet running)",
                                 registry=self.registry)
        self.inflight = Gauge("miniserve_inflight", "/correct requests accepted and not yet answered",
                              registry=self.registry)
        self.batch_size = Histogram("miniserve_batch_size", "requests per model call (unbatched: always 1)",
                                    buckets=BATCH_SIZE_BUCKETS, registry=self.registry)
        self.batch_run = Histogram("miniserve_batch_run_seconds", "wall time of one model call (batch or single)",
                                   buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue_depth.set_function(lambda: 0.0)
        # labels() takes a lock and hashes the tuple; the set of (route, status) pairs is small, so cache children.
        self._request_children: dict[tuple[str, int], Counter] = {}
        self._latency_children: dict[str, Histogram] = {}

    def route_label(self, path: str) -> str:
        return path if path in self.routes else UNMATCHED_ROUTE

    def bind_queue_depth(self, depth: Callable[[], int]) -> None:
        """Read the depth at scrape time rather than on every change: the hot path stays free of it."""
        self.queue_depth.set_function(lambda: float(depth()))

    def observe_batch(self, size: int, run_s: float) -> None:
        """The scheduler's on_batch callback; unbatched mode calls it with size 1. Thread-safe."""
        self.batch_size.observe(size)
        self.batch_run.observe(run_s)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        child = self._request_children.get((route, status))
        if child is None:
            child = self._request_children[(route, status)] = self.requests.labels(route, str(status))
        child.inc()
        hist = self._latency_children.get(route)
        if hist is None:
            hist = self._latency_children[route] = self.latency.labels(route)
        hist.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        # Our names are all legacy-valid, so the text is the 0.0.4 format every scraper understands; say so.
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware: it would add a task and a stream copy per request)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, inflight_route: str = "/correct") -> None:
        self.app = app
        self.metrics = metrics
        self.inflight_route = inflight_route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route = self.metrics.route_label(scope["path"])
        status = 500  # if the app raises before starting a response, ServerErrorMiddleware answers 500
        counts_inflight = route == self.inflight_route
        if counts_inflight:
            self.metrics.inflight.inc()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            if counts_inflight:
                self.metrics.inflight.dec()
            self.metrics.observe_request(route, status, time.perf_counter() - started)
