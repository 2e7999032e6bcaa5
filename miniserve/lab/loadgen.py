"""Load generator: closed- and open-loop HTTP load on a loopback server, and a calibration of its own ceiling.

Default client aiohttp: httpx cannot reach the sweep's ceiling (>= 10x the best server, ~1,500-4,000 req/s). Measured
at concurrency 50 on a no-op endpoint (uvicorn+uvloop+httptools; 2 cores shared with the server and other jobs), req/s:
one shared httpx.AsyncClient 210-240 (p95 650-840 ms); one httpx client per worker 500-940 (p95 60-120 ms), 450-870
over 2 processes; aiohttp 3,850-4,850 (p95 11-20 ms), 3,150-8,600 on uvloop (p95 8-26 ms). httpx stays selectable.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import random
import re
import socket
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx

from miniserve.lab import workloads


try:  # the CLI runs on uvloop when there is one: a cheaper event loop raises the generator's ceiling by ~40%
    from uvloop import run as _run
except ImportError:  # e.g. on Windows
    _run = asyncio.run

CLIENTS = ("aiohttp", "httpx")
_HEADERS = {"content-type": "application/json"}
_MAX_ARRIVALS = 1_000_000  # an open-loop run is bounded in count, not only in time
_HTTPX_CLIENTS = 64  # open loop with httpx: requests round-robin over this many clients (a shared one caps ~250 req/s)


@dataclass(slots=True)
class RequestRecord:
    scheduled_s: float  # when the request was due, seconds since the run started (closed loop: == sent_s)
    sent_s: float  # when it actually started, same clock; sent_s - scheduled_s is the generator's own lag
    latency_s: float  # from scheduled_s to the end of the response, so a late send is charged to latency
    status: int  # HTTP status; 0 = transport error, timeout, or not sent (open loop over its outstanding cap)
    payload: int = -1  # index of the payload sent (into the run's payload list), so results can be split by it


@dataclass(slots=True)
class Summary:
    count: int
    by_status: dict[int, int]
    wall_s: float
    throughput_rps: float  # completed 200s / wall
    p50_ms: float  # latency percentiles and mean are over the 200s; nan when there are none
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    send_lag_p99_ms: float  # open loop: how late the generator sent; large means it was the bottleneck

    def to_dict(self) -> dict:
        d = asdict(self)
        d["by_status"] = {str(k): v for k, v in sorted(self.by_status.items())}
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}

    def run_fields(self) -> dict:
        """The fields a sweep records per run (both labs' benchmark JSON): `to_dict` with `count` as `requests`."""
        d = self.to_dict()
        d["requests"] = d.pop("count")
        return d

    def as_text(self) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.by_status.items())) or "none"
        head = (f"requests {self.count} (status {statuses})   wall {self.wall_s:.2f} s   "
                f"throughput {self.throughput_rps:.1f} req/s (200s / wall)")
        if not self.by_status.get(200):  # no latencies to show: nan percentiles would only hide why
            return f"{head}\n{self.failure_reason()}"
        return (f"{head}\n"
                f"latency ms (200s)   p50 {self.p50_ms:.1f}   p95 {self.p95_ms:.1f}   p99 {self.p99_ms:.1f}   "
                f"max {self.max_ms:.1f}   mean {self.mean_ms:.1f}   send lag p99 {self.send_lag_p99_ms:.1f}")

    def failure_reason(self) -> str:
        """Why there are no latencies: the run's outcomes, most frequent first."""
        if not self.count:
            return "no requests were sent"
        counts = sorted(self.by_status.items(), key=lambda kv: (-kv[1], kv[0]))
        return "no request succeeded: " + ", ".join(f"{n} x {_outcome(status)}" for status, n in counts)


def _outcome(status: int) -> str:
    if status == 0:
        return "no HTTP answer (connection refused or reset, timed out, or not sent over the outstanding cap)"
    if status == 404:
        return "HTTP 404 (no such route: --url takes the server's base URL or an endpoint like /correct)"
    return f"HTTP {status}"


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), so small samples give stable answers."""
    if not sorted_values:
        return math.nan
    pos = q * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), min(math.floor(pos) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(records: list[RequestRecord], wall_s: float | None = None) -> Summary:
    """wall_s defaults to run start -> last completion, which the records carry (their clock starts at the run)."""
    if wall_s is None:
        wall_s = max((r.scheduled_s + r.latency_s for r in records), default=0.0)
    ok = sorted(r.latency_s * 1000 for r in records if r.status == 200)
    lag = sorted((r.sent_s - r.scheduled_s) * 1000 for r in records)
    return Summary(count=len(records), by_status=dict(Counter(r.status for r in records)), wall_s=wall_s,
                   throughput_rps=len(ok) / wall_s if wall_s > 0 else 0.0, p50_ms=_percentile(ok, 0.50),
                   p95_ms=_percentile(ok, 0.95), p99_ms=_percentile(ok, 0.99), max_ms=ok[-1] if ok else math.nan,
                   mean_ms=sum(ok) / len(ok) if ok else math.nan, send_lag_p99_ms=_percentile(lag, 0.99))


def summarize_by_class(records: list[RequestRecord], classes: list[str]) -> dict[str, Summary]:
    """The run split by its payloads' classes (e.g. short / long): classes[i] is payload i's. Each part keeps the
    run's wall time, so its throughput is that class's share of the run's."""
    wall_s = max((r.scheduled_s + r.latency_s for r in records), default=0.0)
    parts: dict[str, list[RequestRecord]] = {}
    for r in records:
        parts.setdefault(classes[r.payload] if 0 <= r.payload < len(classes) else "unknown", []).append(r)
    return {k: summarize(v, wall_s) for k, v in sorted(parts.items())}


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
    _check(interval_s=interval_s)
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


def _check(**positive: float) -> None:
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
    _check(concurrency=concurrency, total=total, timeout_s=timeout_s, max_wall_s=max_wall_s)
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
    _check(rate_rps=rate_rps, duration_s=duration_s)
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
    _check(timeout_s=timeout_s)
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


async def calibrate(base_url: str, concurrency: int = 50, total: int = 5000, *, client: str = "aiohttp",
                    timeout_s: float = 10) -> Summary:
    """The generator's own ceiling: closed loop on POST /noop (the app's no-model endpoint) after a short warm-up."""
    url = _endpoint(base_url, "/noop", force=True)
    await run_closed_loop(url, concurrency, 2 * concurrency, timeout_s=timeout_s, client=client)
    return summarize(await run_closed_loop(url, concurrency, total, timeout_s=timeout_s, client=client))


def run_loadtest(args: argparse.Namespace) -> int:
    c, open_loop = args.client, args.rate is not None or args.duration is not None
    if open_loop and not args.calibrate and (args.rate is None or args.duration is None):
        print("miniserve loadtest: error: an open loop needs both --rate and --duration", file=sys.stderr)
        return 2
    workload = None
    try:  # usage errors first, then whether anything listens: a wrong flag is not a missing server
        if getattr(args, "payloads", None) and not args.calibrate:
            from miniserve.lab.workloads import load_workload

            workload = load_workload(args.payloads)  # WorkloadError is a ValueError: a usage error
        if args.calibrate:
            _check(concurrency=args.concurrency, calibrate_total=args.calibrate_total)
        elif open_loop:
            _check(rate=args.rate, duration=args.duration, timeout=args.timeout)
        else:
            _check(concurrency=args.concurrency, total=args.total, timeout=args.timeout, max_wall=args.max_wall)
        check_listening(args.url)  # a server that is not there is one line, not a table of failures
    except ValueError as e:
        print(f"miniserve loadtest: error: {e}", file=sys.stderr)
        return 2
    except ServerUnreachable as e:
        print(e, file=sys.stderr)
        return 1
    if args.calibrate:  # closed loop on /noop; --rate/--duration do not apply
        what = f"calibration: {c}, concurrency {args.concurrency} on POST /noop"
        run = calibrate(args.url, args.concurrency, args.calibrate_total, client=c)
    elif open_loop:
        what = f"open loop: {c}, Poisson {args.rate} req/s for {args.duration} s, seed {args.seed}"
        run = run_open_loop(args.url, args.rate, args.duration, seed=args.seed, timeout_s=args.timeout, client=c,
                            payloads=workload.bodies if workload else None)
    else:
        what = f"closed loop: {c}, concurrency {args.concurrency}, {args.total} requests"
        run = run_closed_loop(args.url, args.concurrency, args.total, timeout_s=args.timeout, client=c,
                              max_wall_s=args.max_wall, payloads=workload.bodies if workload else None)
    if workload is not None:
        counts = ", ".join(f"{k} {v}" for k, v in workload.counts().items())
        what += f", payloads {workload.name} ({len(workload.payloads)}: {counts})"
    try:
        result = _run(run)
    except ValueError as e:
        print(f"miniserve loadtest: error: {e}", file=sys.stderr)
        return 2
    records = None if isinstance(result, Summary) else result
    summary, notes = result if records is None else summarize(records), []
    if records is not None and args.records:
        with open(args.records, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(asdict(r)) + "\n" for r in records)
    out = {"run": what, **summary.to_dict()}
    if args.calibrate and args.best_rps:
        out["ceiling_multiple"] = m = summary.throughput_rps / args.best_rps
        verdict = "ok" if m >= 10 else "TOO LOW: the sweep would measure the client"
        notes.append(f"ceiling = {m:.1f} x {args.best_rps:g} req/s (need >= 10x): {verdict}")
    if records is not None and not open_loop and len(records) < args.total:
        notes.append(f"stopped at --max-wall {args.max_wall:g} s after {len(records)} of {args.total} requests")
    succeeded = bool(summary.by_status.get(200))
    if not succeeded:
        out["failure"] = summary.failure_reason()  # the text already says it in place of the latency line
    split = []
    if workload is not None and records is not None and set(workload.classes) != {"unknown"}:
        parts = summarize_by_class(records, workload.classes)
        out["by_class"] = {k: v.to_dict() for k, v in parts.items()}
        split = [_class_line(k, v) for k, v in parts.items()]
    text = "\n".join([f"{what} -> {args.url}", summary.as_text(), *split, *notes])
    print(json.dumps({**out, "notes": notes}) if args.json else text)
    return 0 if succeeded else 1


def _class_line(name: str, s: Summary) -> str:
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(s.by_status.items())) or "none"
    if not s.by_status.get(200):
        return f"  {name}: {s.count} requests (status {statuses}), none succeeded"
    return (f"  {name}: {s.count} requests (status {statuses})   p50 {s.p50_ms:.1f}   p95 {s.p95_ms:.1f}   "
            f"p99 {s.p99_ms:.1f} ms")
