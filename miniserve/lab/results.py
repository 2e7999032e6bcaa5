"""The batching sweep's data: the per-configuration result table (what the sweep's configurations and load are:
sweep_params.py).

The benchmarks (bench/test_sweep.py) write one record per test into pytest-benchmark's `extra_info`: a closed-loop
record and an open-loop record per configuration, and one calibration record. `SweepResults.from_benchmarks` turns
those records -- live from the pytest session or read back from the saved benchmark JSON, the same dicts either way --
into one row per configuration (medians over runs with their min/max), which both the acceptance criteria
(criteria.py) and the report (report.py) read.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from miniserve.lab import prom
from miniserve.lab.benchmark_doc import LAB_02, benchmark_lab
from miniserve.lab.sweep_params import BASELINE, SweepConfig, SweepParams


@dataclass(slots=True, frozen=True)
class Spread:
    """The median over runs and the range it came from."""

    median: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Spread | None:
        vals = [float(v) for v in values if v is not None and v == v]  # v == v drops NaN
        return cls(statistics.median(vals), min(vals), max(vals)) if vals else None


def sum_counts(dicts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Counts added up key by key (keys as strings): status codes over runs, tokens by kind, bucket sizes."""
    total: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            total[str(k)] = total.get(str(k), 0) + int(v)
    return total


@dataclass(slots=True)
class LoopResult:
    """A closed- or open-loop measurement of one configuration, over its runs."""

    runs: list[dict[str, Any]]  # the raw per-run records as the benchmark wrote them
    p50_ms: Spread | None
    p95_ms: Spread | None
    p99_ms: Spread | None
    throughput_rps: Spread | None
    statuses: dict[str, int]  # summed over runs; "0" = transport error / timeout
    requests: int
    rate_rps: float | None = None  # open loop: offered Poisson rate
    latencies_ms: list[float] | None = None  # one run's per-request latencies (200s), when recorded
    latencies_run: int | None = None  # which run those are

    @classmethod
    def from_records(cls, infos: Sequence[Mapping[str, Any]]) -> LoopResult:
        """One configuration's loop from its benchmark records: one per run (the interleaved sweep) or one holding
        every run. The latency sample kept for the CDF is the median-throughput run's (closed loop) or the first
        run's (open loop), among the runs that recorded one."""
        runs = sorted((r for info in infos for r in info.get("runs") or []), key=lambda r: r.get("run", 0))
        samples = {info.get("latencies_run"): info["latencies_ms"] for info in infos if info.get("latencies_ms")}
        chosen = None
        if samples:
            kind = infos[0].get("kind")
            ranked = sorted((r for r in runs if r.get("run") in samples), key=lambda r: r.get("throughput_rps") or 0)
            if kind == "closed_loop" and ranked:
                chosen = ranked[(len(ranked) - 1) // 2].get("run")
            else:
                chosen = min(samples, key=lambda k: (k is None, k or 0))
        return cls(
            runs=runs,
            p50_ms=Spread.of(r.get("p50_ms") for r in runs),
            p95_ms=Spread.of(r.get("p95_ms") for r in runs),
            p99_ms=Spread.of(r.get("p99_ms") for r in runs),
            throughput_rps=Spread.of(r.get("throughput_rps") for r in runs),
            statuses=sum_counts(r.get("by_status") or {} for r in runs),
            requests=sum(int(r.get("requests", 0)) for r in runs),
            rate_rps=infos[0].get("rate_rps"),
            latencies_ms=samples.get(chosen),
            latencies_run=chosen,
        )

    @property
    def ok(self) -> int:
        return self.statuses.get("200", 0)


@dataclass(slots=True)
class ConfigResult:
    config: SweepConfig
    closed: LoopResult | None = None
    open: LoopResult | None = None  # at the judged open-loop load (SweepParams.judged_load)
    open_by_load: dict[float, LoopResult] = field(default_factory=dict)  # every open-loop load, by fraction
    server: dict[str, Any] = field(default_factory=dict)  # torch_threads, workers, max_queue... as the server ran
    batch_hist: dict[str, int] = field(default_factory=dict)  # closed-loop batches per bucket upper bound, all runs
    mean_batch_size: Spread | None = None  # per run: batch-size sum / batch count, from /metrics deltas

    @property
    def key(self) -> str:
        return self.config.key


@dataclass(slots=True)
class Calibration:
    """The load generator's own ceiling against POST /noop (no model work)."""

    throughput_rps: float
    p50_ms: float | None
    p95_ms: float | None
    requests: int
    statuses: dict[str, int]
    client: str
    concurrency: int

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> Calibration:
        """From a calibration record's extra_info (either lab's)."""
        return cls(throughput_rps=float(info["throughput_rps"]), p50_ms=info.get("p50_ms"), p95_ms=info.get("p95_ms"),
                   requests=int(info.get("requests", 0)), statuses=sum_counts([info.get("by_status") or {}]),
                   client=str(info.get("client", "?")), concurrency=int(info.get("concurrency", 0)))


@dataclass(slots=True)
class SweepResults:
    params: SweepParams
    configs: list[ConfigResult]  # the configured ones first (in sweep order), then any others found
    calibration: Calibration | None = None

    def get(self, key: str) -> ConfigResult | None:
        return next((c for c in self.configs if c.key == key), None)

    @property
    def baseline(self) -> ConfigResult | None:
        return self.get(BASELINE)

    @property
    def static(self) -> list[ConfigResult]:
        return [c for c in self.configs if not c.config.is_baseline]

    @classmethod
    def from_benchmarks(cls, benchmarks: Iterable[Mapping[str, Any]], params: SweepParams) -> SweepResults:
        """`benchmarks`: entries shaped like the benchmark JSON's (each with "extra_info"); others, and lab 03's, are
        ignored."""
        rows = {c.key: ConfigResult(c) for c in params.config_list}
        calibration = None
        loops: dict[tuple[str, str, float | None], list[Mapping[str, Any]]] = {}
        for bench in benchmarks:
            if benchmark_lab(bench) != LAB_02:  # a session of both labs: lab 03's records are its own
                continue
            info = bench.get("extra_info") or {}
            kind = info.get("kind")
            if kind == "calibration":
                calibration = Calibration.from_info(info)
                continue
            if kind not in ("closed_loop", "open_loop"):
                continue
            config = SweepConfig(info["mode"], info.get("max_batch"), info.get("max_wait_ms"))
            row = rows.setdefault(config.key, ConfigResult(config))
            row.server.update(info.get("server") or {})
            # an open-loop record without its load is from a sweep that ran one load: the judged one
            load = float(info.get("rate_fraction", params.judged_load)) if kind == "open_loop" else None
            loops.setdefault((kind, config.key, load), []).append(info)
        for (kind, key, load), infos in loops.items():
            row, loop = rows[key], LoopResult.from_records(infos)
            if load is not None:
                row.open_by_load[load] = loop
                if load == params.judged_load:
                    row.open = loop
                continue
            row.closed = loop
            hists = [r["batch_size"] for r in loop.runs if r.get("batch_size")]
            row.batch_hist = sum_counts(h.get("buckets") or {} for h in hists)
            row.mean_batch_size = Spread.of(h["sum"] / h["count"] if h.get("count") else None for h in hists)
        return cls(params, list(rows.values()), calibration)

    @classmethod
    def from_benchmark_json(cls, data: Mapping[str, Any]) -> SweepResults:
        """From a whole pytest-benchmark JSON document; the sweep parameters live in machine_info["miniserve"]."""
        info = (data.get("machine_info") or {}).get("miniserve") or {}
        params = SweepParams.from_dict(info.get("sweep") or {})
        return cls.from_benchmarks(data.get("benchmarks") or [], params)


def parse_batch_histogram(metrics_text: str, name: str = "miniserve_batch_size") -> dict[str, Any]:
    """The cumulative histogram `name` from Prometheus text: {"cumulative": {bound: n}, "count": n, "sum": x}."""
    hist = prom.parse(metrics_text, [name])[name]
    if hist is None:
        raise ValueError(f"no {name} histogram in the metrics text")
    return hist


def histogram_delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """What happened between two scrapes: batches per bucket (non-cumulative, keyed by upper bound, every bucket),
    their count and the sum of their sizes (sum / count = mean batch size)."""
    return prom.histogram_delta(before, after, keep_empty=True)
