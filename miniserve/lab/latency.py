"""What a load run measured: one record per request, and their summary (throughput, latency percentiles, statuses).

Latency runs from each request's *scheduled* send time, so a generator that falls behind its Poisson schedule charges
its own lag to the latency it reports (coordinated omission) and records the lag beside it.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass


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
                f"throughput {self.throughput_rps:.1f} req/s (HTTP 200 answers / wall)")
        if not self.by_status.get(200):  # no latencies to show: nan percentiles would only hide why
            return f"{head}\n{self.failure_reason()}"
        return (f"{head}\n"
                f"latency ms (HTTP 200 answers)   p50 {self.p50_ms:.1f}   p95 {self.p95_ms:.1f}   p99 {self.p99_ms:.1f}   "
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
