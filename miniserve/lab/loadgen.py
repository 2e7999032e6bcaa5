"""Load generator: closed- and open-loop HTTP load on a loopback server, and a calibration of its own ceiling.

Default client aiohttp: httpx cannot reach the sweep's ceiling (>= 10x the best server, ~1,500-4,000 req/s). Measured
at concurrency 50 on a no-op endpoint (uvicorn+uvloop+httptools; 2 cores shared with the server and other jobs), req/s:
one shared httpx.AsyncClient 210-240 (p95 650-840 ms); one httpx client per worker 500-940 (p95 60-120 ms), 450-870
over 2 processes; aiohttp 3,850-4,850 (p95 11-20 ms), 3,150-8,600 on uvloop (p95 8-26 ms). httpx stays selectable.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import random
import re
import socket
import time
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import httpx

from miniserve.lab import workloads
from miniserve.lab.latency import RequestRecord, Summary, summarize


CLIENTS = ("aiohttp", "httpx")
_HEADERS = {"content-type": "application/json"}
_MAX_ARRIVALS = 1_000_000  # an open-loop run is bounded in count, not only in time
_HTTPX_CLIENTS = 64  # open loop with httpx: requests round-robin over this many clients (a shared one caps ~250 req/s)
T = TypeVar("T")


_GAUGE_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[ \t]+(\S+)", re.MULTILINE)


def read_gauges(metrics_text: str, names: tuple[str, ...]) -> dict[str, float | None]:
    """The unlabelled samples `names` from Prometheus text, by a cheap scan (this runs 10 times a second during a
    run); a name not exposed is None."""
    found = {m.group(1): m.group(2) for m in _GAUGE_LINE.finditer(metrics_text) if m.group(1) in names}
    out: dict[str, float | None] = {}
    for name in names:
        try:
            out[name] = float(found[name])
        except (KeyError, ValueError):
            out[name] = None
    return out


async def sample_gauges(base_url: str, names: tuple[str, ...], interval_s: float, stop: asyncio.Event,
                        timeout_s: float = 2.0) -> dict[str, list]:
    """GET /metrics every interval_s (on a fixed schedule, so no drift) until `stop` is set: {"t_s": [...], name:
    [...]} with t_s counted from the first scrape. A failed scrape records None for every name."""
    url = _endpoint(base_url, "/metrics", force=True)
    out: dict[str, list] = {"t_s": [], **{n: [] for n in names}}
    t0 = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
        k = 0
        while not stop.is_set():
            t = time.perf_counter() - t0
            try:
                async with session.get(url) as response:
                    values = read_gauges(await response.text(), names) if response.status == 200 else {}
            except Exception:  # noqa: BLE001 - a missed sample is a gap in the figure, not a failed run
                values = {}
            out["t_s"].append(round(t, 3))
            for n in names:
                out[n].append(values.get(n))
            k += 1
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, t0 + k * interval_s - time.perf_counter()))
            except asyncio.TimeoutError:
                pass
    return out


async def with_gauge_samples(run: Any, base_url: str, names: tuple[str, ...],
                             interval_s: float = 0.1) -> tuple[Any, dict[str, list]]:
    """Await the load coroutine `run` while sampling the server's gauges; (its result, the samples)."""
    check_positive(interval_s=interval_s)
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_gauges(base_url, names, interval_s, stop))
    try:
        result = await run
    finally:
        stop.set()
        samples = await sampler
    return result, samples


def default_payloads() -> list[dict]:
    """Lab 02's gated workload: 200 held-out single-clause sentences (3-13 words; ~60% with a verb error, ~25% correct,
    ~15% other), frozen in bench/payloads/lab02.json from the corpus every lab-02 sweep has sent, the workload its
    criteria were set on. What learners really send is bench/payloads/learner.json (`--sweep-payloads`, `miniserve
    loadtest --payloads`); lab 03 sends bench/payloads/lab03.json."""
    return workloads.load_workload(workloads.REPO_ROOT / workloads.LAB02_PAYLOADS).bodies


def check_loopback(url: str) -> str:
    """Return url if every address its host resolves to is loopback (127.0.0.0/8, ::1); ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"refusing {url!r}: need an http:// URL with a host, e.g. http://127.0.0.1:8000")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 80, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise ValueError(f"refusing {url!r}: cannot resolve {parts.hostname!r} ({e})") from None
    addrs = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}  # "%" = IPv6 zone id
    if outside := sorted(str(a) for a in addrs if not a.is_loopback):
        raise ValueError(f"refusing to send load to {url!r}: {parts.hostname} resolves to {', '.join(outside)}; "
                         "load goes only to loopback addresses (127.0.0.0/8, ::1)")
    return url


class ServerUnreachable(Exception):
    """Nothing accepts connections at the target: said in one line, before any load is sent."""


def check_listening(url: str, timeout_s: float = 2.0) -> None:
    """Return if something accepts a TCP connection at url's host and port; ServerUnreachable otherwise (and
    ValueError, as check_loopback, for a URL that is not loopback)."""
    parts = urlsplit(check_loopback(url))
    base = f"{parts.scheme}://{parts.netloc}"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return
    except ConnectionRefusedError:
        raise ServerUnreachable(f"connection refused: no server at {base} — start one with `miniserve serve` "
                                "or pass --url") from None
    except OSError as e:  # e.g. a timeout: something holds the port but does not accept
        raise ServerUnreachable(f"cannot connect to {base}: {e.strerror or e} — is `miniserve serve` "
                                "running there? (or pass --url)") from None


def _endpoint(url: str, path: str, force: bool = False) -> str:
    parts = urlsplit(check_loopback(url))
    return f"{parts.scheme}://{parts.netloc}{path}" if force or parts.path in ("", "/") else url


class _Aiohttp:
    def __init__(self, url: str, connections: int, timeout_s: float) -> None:
        # connection limit >= outstanding requests, so no request waits inside the client for a connection
        self.url, connector = url, aiohttp.TCPConnector(limit=connections, limit_per_host=0)
        self._session = aiohttp.ClientSession(connector=connector, headers=_HEADERS,
                                              timeout=aiohttp.ClientTimeout(total=timeout_s))

    async def post(self, slot: int, body: bytes) -> int:
        async with self._session.post(self.url, data=body) as response:
            await response.read()
            return response.status

    async def close(self) -> None:
        await self._session.close()


class _Httpx:
    def __init__(self, url: str, connections: int, timeout_s: float, clients: int) -> None:
        self.url, self.timeout_s, per_client = url, timeout_s, math.ceil(connections / clients)
        limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
        self._clients = [httpx.AsyncClient(timeout=timeout_s, limits=limits, headers=_HEADERS, trust_env=False)
                         for _ in range(clients)]

    async def post(self, slot: int, body: bytes) -> int:
        # httpx's timeout is per phase (connect, read, ...); wait_for makes it a bound on the whole request
        post = self._clients[slot % len(self._clients)].post(self.url, content=body)
        return (await asyncio.wait_for(post, self.timeout_s)).status_code

    async def close(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self._clients))


def _backend(client: str, url: str, connections: int, timeout_s: float, slots: int) -> _Aiohttp | _Httpx:
    if client == "aiohttp":
        return _Aiohttp(url, connections, timeout_s)
    if client == "httpx":
        return _Httpx(url, connections, timeout_s, clients=min(slots, connections))
    raise ValueError(f"unknown client {client!r}; choose one of {', '.join(CLIENTS)}")


def _bodies(payloads: list[dict] | None) -> list[bytes]:
    return [json.dumps(p).encode() for p in (payloads or default_payloads())]  # encoded once, not per request


def check_positive(**positive: float) -> None:
    if bad := [f"{name} must be > 0, got {value}" for name, value in positive.items() if not value > 0]:
        raise ValueError("; ".join(bad))


async def _timed(backend: _Aiohttp | _Httpx, slot: int, body: bytes, scheduled_s: float | None, t0: float,
                 records: list[RequestRecord], payload: int = -1) -> None:
    sent_s = time.perf_counter() - t0
    due_s = sent_s if scheduled_s is None else scheduled_s
    status = 0
    try:
        status = await backend.post(slot, body)
    except Exception:  # noqa: BLE001 - a refused, reset or timed-out request is data (status 0), not a crash
        pass
    finally:  # also when cancelled by the run's hard timeout: the request is recorded as failed
        records.append(RequestRecord(due_s, sent_s, time.perf_counter() - t0 - due_s, status, payload))


async def _settle(tasks: set[asyncio.Task], timeout_s: float) -> None:
    if tasks:  # they time out on their own within timeout_s; the extra second and cancel() make that a hard bound
        _, pending = await asyncio.wait(tasks, timeout=timeout_s + 1)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def run_closed_loop(url: str, concurrency: int, total: int, *, timeout_s: float = 30, payloads: list[dict] | None
                          = None, client: str = "aiohttp", max_wall_s: float = 600.0) -> list[RequestRecord]:
    """`concurrency` workers each send their next request when the previous one completes, `total` in all. url is
    the endpoint (a bare base URL targets /correct). Returns within max_wall_s + timeout_s + 1 s."""
    check_positive(concurrency=concurrency, total=total, timeout_s=timeout_s, max_wall_s=max_wall_s)
    url, bodies, records = _endpoint(url, "/correct"), _bodies(payloads), []
    backend = _backend(client, url, concurrency, timeout_s, slots=concurrency)
    next_i, t0 = 0, time.perf_counter()

    async def worker(slot: int) -> None:
        nonlocal next_i
        while next_i < total and time.perf_counter() - t0 < max_wall_s:
            i, next_i = next_i, next_i + 1
            await _timed(backend, slot, bodies[i % len(bodies)], None, t0, records, i % len(bodies))

    try:
        await _settle({asyncio.create_task(worker(s)) for s in range(min(concurrency, total))}, max_wall_s + timeout_s)
    finally:
        await backend.close()
    return records


def poisson_arrivals(rate_rps: float, duration_s: float, seed: int = 0) -> list[float]:
    """Send times in [0, duration_s): exponential gaps at rate_rps, the same list for the same seed."""
    check_positive(rate_rps=rate_rps, duration_s=duration_s)
    if rate_rps * duration_s > _MAX_ARRIVALS:
        raise ValueError(f"rate x duration = {rate_rps * duration_s:.0f} requests exceeds {_MAX_ARRIVALS}")
    rng, t, times = random.Random(seed), 0.0, []
    while (t := t + rng.expovariate(rate_rps)) < duration_s:
        times.append(t)
    return times


async def run_open_loop(url: str, rate_rps: float, duration_s: float, *, seed: int = 0, timeout_s: float = 30,
                        payloads: list[dict] | None = None, client: str = "aiohttp",
                        max_outstanding: int | None = None) -> list[RequestRecord]:
    """Poisson arrivals, each sent at its scheduled time whatever is outstanding; latency counted from the schedule.

    At most max_outstanding requests (default rate x timeout, at most 1000) are in flight: an arrival beyond
    that is recorded as status 0 instead of waiting, so the generator never quietly slows down to the server's pace.
    """
    check_positive(timeout_s=timeout_s)
    arrivals = poisson_arrivals(rate_rps, duration_s, seed)
    cap = max_outstanding or max(1, min(math.ceil(rate_rps * timeout_s), 1000))
    url, bodies, records = _endpoint(url, "/correct"), _bodies(payloads), []
    backend = _backend(client, url, cap, timeout_s, slots=_HTTPX_CLIENTS)
    inflight, t0 = set[asyncio.Task](), time.perf_counter()
    try:
        for j, due_s in enumerate(arrivals):
            await asyncio.sleep(max(0.0, t0 + due_s - time.perf_counter()))  # sleep(0) still lets sends run
            if len(inflight) >= cap:  # not sent: counted as failed at once rather than sent late
                records.append(RequestRecord(due_s, now_s := time.perf_counter() - t0, now_s - due_s, 0,
                                             j % len(bodies)))
                continue
            task = asyncio.create_task(_timed(backend, j, bodies[j % len(bodies)], due_s, t0, records,
                                              j % len(bodies)))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        await _settle(set(inflight), timeout_s)
    finally:
        for task in inflight:  # only non-empty when this run itself was cancelled
            task.cancel()
        await backend.close()
    return records


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a load coroutine on uvloop when it is installed (the CLI and the sweeps do): a cheaper event loop raises
    the generator's ceiling by ~40%."""
    try:
        import uvloop
    except ImportError:  # e.g. on Windows
        return asyncio.run(coro)
    return uvloop.run(coro)


async def calibrate(base_url: str, concurrency: int = 50, total: int = 5000, *, client: str = "aiohttp",
                    timeout_s: float = 10) -> Summary:
    """The generator's own ceiling: closed loop on POST /noop (the app's no-model endpoint) after a short warm-up."""
    url = _endpoint(base_url, "/noop", force=True)
    await run_closed_loop(url, concurrency, 2 * concurrency, timeout_s=timeout_s, client=client)
    return summarize(await run_closed_loop(url, concurrency, total, timeout_s=timeout_s, client=client))
