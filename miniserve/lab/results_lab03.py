"""Lab 03's data: continuous against static batching, on a mix of short and long requests.

bench/test_lab03_sweep.py writes one record per run into pytest-benchmark's `extra_info`, marked `"lab": "03"`: closed-loop
runs of every configuration, open-loop runs of every batching configuration at fractions of the *best static*
configuration's closed-loop throughput measured in the same session, and one load-generator calibration. Each run
record holds, besides lab 02's fields, its latencies split by the payloads' length class (`by_class`, and every
successful request's latency in `latencies_ms` by class), the server's metric deltas over the run (`metrics`), and
for one run per batching configuration the gauges sampled every 100 ms (`samples`).

`Lab03Results.from_benchmarks` turns those records -- live in the session or read back from the JSON -- into one row
per configuration, which the criteria (criteria_lab03.py) and the report (report_lab03.py) read. Stdlib only at import
(the top-level conftest imports it on every pytest run); the metric parsing imports prometheus_client when called.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from miniserve.lab import prom
from miniserve.lab.benchmark_doc import LAB_03, LAB_PARAMS_KEY, benchmark_lab
from miniserve.lab.results import Calibration, LoopResult, Spread, sum_counts
from miniserve.lab.sweep_params import BASELINE, SweepConfig
from miniserve.lab.workloads import LAB03_PAYLOADS, LENGTH_CLASSES  # noqa: F401 - LENGTH_CLASSES: re-exported

# The course's configurations: the unbatched reference, three static ones (lab 02's best region) and continuous
# batching at four row counts.
LAB03_CONFIGS = "baseline,8:20,16:20,32:50,cont:8,cont:16,cont:32,cont:64"

# The server's metric names (miniserve/server/metrics.py): the exposition names the parser reports as families.
BATCH_SIZE = "miniserve_batch_size"  # histogram: requests per model call (unbatched, static)
ROWS_PER_STEP = "miniserve_batch_rows_per_step"  # histogram: rows in one continuous decode step
STEP_SECONDS = "miniserve_step_seconds"  # histogram: wall time of one continuous iteration
TTFT_SECONDS = "miniserve_time_to_first_token_seconds"  # histogram
TOKENS = "miniserve_tokens"  # counter miniserve_tokens_total{kind="prompt"|"completion"}
KV_SLOTS = "miniserve_kv_cache_slots_used"  # gauge: cache rows holding a request right now
QUEUE_DEPTH = "miniserve_queue_depth"  # gauge: requests waiting for the model
INFLIGHT = "miniserve_inflight"  # gauge: /correct requests accepted and not yet answered
SAMPLED_GAUGES = (KV_SLOTS, QUEUE_DEPTH, INFLIGHT)
HISTOGRAMS = {"batch_size": BATCH_SIZE, "rows_per_step": ROWS_PER_STEP, "step_seconds": STEP_SECONDS,
              "ttft_seconds": TTFT_SECONDS}


def parse_lab03_configs(text: str) -> list[SweepConfig]:
    """Comma-separated 'baseline', static 'MAX_BATCH:MAX_WAIT_MS' and continuous 'cont:MAX_RUNNING' configurations,
    in the order the sweep measures them: the baseline, then static, then continuous (each as given). Lab 03 needs
    at least one static (its best sets the open-loop rates) and one continuous configuration."""
    configs = [SweepConfig.parse(t) for t in text.split(",") if t.strip()]
    keys = [c.key for c in configs]
    if dup := sorted({k for k in keys if keys.count(k) > 1}):
        raise ValueError(f"duplicate lab-03 configurations: {', '.join(dup)}")
    if not any(c.mode == "static" for c in configs) or not any(c.is_continuous for c in configs):
        raise ValueError("lab 03 compares continuous with static batching: --lab03-configs needs at least one static "
                         "(MAX_BATCH:MAX_WAIT_MS) and one continuous (cont:MAX_RUNNING) configuration")
    order = {"unbatched": 0, "static": 1, "continuous": 2}
    return sorted(configs, key=lambda c: order[c.mode])


@dataclass(slots=True)
class Lab03Params:
    """The load each configuration gets. Defaults are the lab's (sized for ~20 of CI's 50 minutes: docs/acceptance.md,
    lab 03); the command line can change them, and a sweep with other values writes a `-quick` folder."""

    concurrency: int = 50
    total: int = 500  # closed-loop requests per run
    runs: int = 3  # closed- and open-loop runs per configuration (and load)
    configs: str = LAB03_CONFIGS
    # 10 s, not lab 02's 15, at the reported loads: the offered rates are fractions of the best *static* throughput,
    # so a 10-s run holds ~150 requests at 1/5 and ~620 at 4/5 (2026-11-30-phase-33-lab-03-5)
    open_loop_duration_s: float = 10.0
    # The judged load's runs are longer: the criterion rests on a p95 from them, and at 10 s (~20 requests above the
    # p95) one configuration's runs spread 0.54-0.93x against the same static runs (2026-11-30-phase-33-lab-03-4).
    # 25 s gives ~2.5x the tail samples for ~5 more minutes of CI (7 configurations x 3 runs x 15 s).
    judged_duration_s: float = 25.0
    # Fractions of the best static configuration's median closed-loop throughput; the p95 criterion is judged at the
    # first (1/2, the issue's), the others are reported.
    open_loop_loads: tuple[float, ...] = (0.5, 0.2, 0.8)
    payloads: str = LAB03_PAYLOADS
    sample_interval_s: float = 0.1  # gauges sampled during run 1 at the judged load of every batching configuration
    calibration_concurrency: int = 50
    calibration_total: int = 5000

    def __post_init__(self) -> None:
        for name in ("concurrency", "total", "runs", "calibration_concurrency", "calibration_total"):
            if getattr(self, name) < 1:
                raise ValueError(f"lab03 {name} must be >= 1, got {getattr(self, name)}")
        for name in ("open_loop_duration_s", "judged_duration_s", "sample_interval_s"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):  # inf: no run ends
                raise ValueError(f"lab03 {name} must be finite and > 0, got {getattr(self, name)}")
        self.open_loop_loads = tuple(float(f) for f in self.open_loop_loads)
        if not self.open_loop_loads or any(not 0 < f <= 1 for f in self.open_loop_loads):
            raise ValueError(f"lab03 open_loop_loads must be fractions in (0, 1], got {self.open_loop_loads}")
        if len(set(self.open_loop_loads)) != len(self.open_loop_loads):
            raise ValueError(f"duplicate lab03 open_loop_loads: {self.open_loop_loads}")
        parse_lab03_configs(self.configs)

    @property
    def config_list(self) -> list[SweepConfig]:
        return parse_lab03_configs(self.configs)

    @property
    def open_loop_configs(self) -> list[SweepConfig]:
        """The batching configurations: the open loop's rates are fractions of the best static's throughput, which
        is several times the unbatched baseline's, so the baseline would only measure its own overload there."""
        return [c for c in self.config_list if not c.is_baseline]

    @property
    def judged_load(self) -> float:
        return self.open_loop_loads[0]

    def duration_s(self, load: float) -> float:
        """Seconds per open-loop run at `load`."""
        return self.judged_duration_s if load == self.judged_load else self.open_loop_duration_s

    def is_lab_default(self) -> bool:
        return self.to_dict() == Lab03Params().to_dict()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["configs"] = ",".join(c.token for c in self.config_list)  # normalized, so equal sweeps compare equal
        d["open_loop_loads"] = list(self.open_loop_loads)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Lab03Params:
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in d.items() if k in names}
        if "judged_duration_s" not in known and "open_loop_duration_s" in known:
            known["judged_duration_s"] = known["open_loop_duration_s"]  # sweeps before it ran every load this long
        return cls(**known)


@dataclass(slots=True, frozen=True)
class ClassResult:
    """One length class (short / long) of one loop of one configuration, over its runs."""

    p50_ms: Spread | None
    p95_ms: Spread | None
    p99_ms: Spread | None
    requests: int
    statuses: dict[str, int]
    latencies_ms: list[float]  # every run's successful requests' latencies, pooled (the CDF figure)

    @property
    def ok(self) -> int:
        return self.statuses.get("200", 0)


def class_result(loop: LoopResult | None, cls: str) -> ClassResult | None:
    """The class's percentiles as each run measured them (median and range over runs, like the loop's own)."""
    if loop is None:
        return None
    parts = [(r.get("by_class") or {}).get(cls) for r in loop.runs]
    parts = [p for p in parts if p]
    if not parts:
        return None
    lat = sorted(x for r in loop.runs for x in ((r.get("latencies_ms") or {}).get(cls) or []))
    return ClassResult(p50_ms=Spread.of(p.get("p50_ms") for p in parts), p95_ms=Spread.of(p.get("p95_ms") for p in parts),
                       p99_ms=Spread.of(p.get("p99_ms") for p in parts),
                       requests=sum(int(p.get("requests", 0)) for p in parts),
                       statuses=sum_counts(p.get("by_status") or {} for p in parts), latencies_ms=lat)


def class_p95(loop: LoopResult | None, cls: str | None) -> Spread | None:
    """The loop's p95 over its runs: of all requests (cls None) or of one length class's; None when not measured."""
    if loop is None:
        return None
    if cls is None:
        return loop.p95_ms
    part = class_result(loop, cls)
    return part.p95_ms if part else None


def _hist_mean(h: Mapping[str, Any] | None) -> float | None:
    return h["sum"] / h["count"] if h and h.get("count") else None


@dataclass(slots=True)
class Lab03Row:
    config: SweepConfig
    closed: LoopResult | None = None
    open_by_load: dict[float, LoopResult] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, Any] | None = None  # the sampled run's gauges: {"t_s": [...], name: [...], "load", "run"}

    @property
    def key(self) -> str:
        return self.config.key

    @property
    def tput(self) -> Spread | None:
        return self.closed.throughput_rps if self.closed else None

    def metric_mean(self, loop: LoopResult | None, name: str) -> Spread | None:
        """Per run, the mean of histogram `name` (HISTOGRAMS key) from the run's /metrics delta; spread over runs."""
        if loop is None:
            return None
        return Spread.of(_hist_mean((r.get("metrics") or {}).get(name)) for r in loop.runs)

    @property
    def rows_per_call(self) -> Spread | None:
        """Closed loop: mean requests per model call -- rows per decode step (continuous) or batch size (others)."""
        return self.metric_mean(self.closed, "rows_per_step" if self.config.is_continuous else "batch_size")

    def tokens(self, loop: LoopResult | None) -> dict[str, int]:
        return sum_counts((r.get("metrics") or {}).get("tokens") or {} for r in loop.runs) if loop else {}


@dataclass(slots=True)
class Lab03Results:
    params: Lab03Params
    configs: list[Lab03Row]
    calibration: Calibration | None = None
    workload: dict[str, Any] = field(default_factory=dict)  # the payload file's name, sha256 and counts
    engine_step: dict[str, Any] | None = None  # bench/test_lab03_engine_step.py's numbers (its extra_info)

    def get(self, key: str) -> Lab03Row | None:
        return next((c for c in self.configs if c.key == key), None)

    @property
    def baseline(self) -> Lab03Row | None:
        return self.get(BASELINE)

    @property
    def static(self) -> list[Lab03Row]:
        return [c for c in self.configs if c.config.mode == "static"]

    @property
    def continuous(self) -> list[Lab03Row]:
        return [c for c in self.configs if c.config.is_continuous]

    @property
    def best_static(self) -> Lab03Row | None:
        return best_of(self.static)

    @property
    def best_continuous(self) -> Lab03Row | None:
        return best_of(self.continuous)

    def rate_rps(self, load: float) -> float | None:
        """The offered rate at `load`, as the open-loop records say they ran it (else None)."""
        rates = [r.open_by_load[load].rate_rps for r in self.configs if load in r.open_by_load]
        rates = [x for x in rates if x]
        return statistics.median(rates) if rates else None

    @classmethod
    def from_benchmarks(cls, benchmarks: Iterable[Mapping[str, Any]], params: Lab03Params) -> Lab03Results:
        """`benchmarks`: entries shaped like the benchmark JSON's; only lab 03's are read."""
        rows = {c.key: Lab03Row(c) for c in params.config_list}
        calibration = engine_step = None
        loops: dict[tuple[str, str, float | None], list[Mapping[str, Any]]] = {}
        for bench in benchmarks:
            if benchmark_lab(bench) != LAB_03:
                continue
            info = bench.get("extra_info") or {}
            kind = info.get("kind")
            if kind == "calibration":
                calibration = Calibration.from_info(info)
                continue
            if kind == "engine_step":
                engine_step = {k: v for k, v in info.items() if k not in ("lab", "kind")}
                continue
            if kind not in ("closed_loop", "open_loop"):
                continue
            config = SweepConfig(info["mode"], info.get("max_batch"), info.get("max_wait_ms"), info.get("max_running"),
                                 info.get("max_prefill_tokens"))
            row = rows.setdefault(config.key, Lab03Row(config))
            row.server.update(info.get("server") or {})
            load = float(info["rate_fraction"]) if kind == "open_loop" else None
            loops.setdefault((kind, config.key, load), []).append(info)
            for run in info.get("runs") or []:
                if run.get("samples") and row.samples is None:
                    row.samples = {**run["samples"], "load": load, "run": run.get("run"), "kind": kind}
        for (kind, key, load), infos in loops.items():
            loop = LoopResult.from_records(infos)
            if load is None:
                rows[key].closed = loop
            else:
                rows[key].open_by_load[load] = loop
        return cls(params, list(rows.values()), calibration, engine_step=engine_step)

    @classmethod
    def from_benchmark_json(cls, data: Mapping[str, Any]) -> Lab03Results:
        info = (data.get("machine_info") or {}).get("miniserve") or {}
        params = Lab03Params.from_dict(info.get(LAB_PARAMS_KEY[LAB_03]) or {})
        out = cls.from_benchmarks(data.get("benchmarks") or [], params)
        out.workload = dict(info.get("lab03_workload") or {})
        return out


def best_of(rows: Sequence[Lab03Row]) -> Lab03Row | None:
    """The configuration with the highest median closed-loop throughput (the first in sweep order on a tie); None
    when none has one."""
    measured = [r for r in rows if r.tput is not None]
    return max(measured, key=lambda r: r.tput.median) if measured else None  # max keeps the first of equals


# -- the server's metrics, scraped before and after a run ---------------------------------------------------------

def scrape(metrics_text: str) -> dict[str, Any]:
    """The lab's metrics from Prometheus text: each HISTOGRAMS entry as {"cumulative": {bound: n}, "count", "sum"}
    (None when the server does not expose it), and the token counters by kind."""
    families = prom.parse(metrics_text, HISTOGRAMS.values(), {TOKENS: "kind"})
    return {key: families[name] for key, name in HISTOGRAMS.items()} | {"tokens": families[TOKENS]}


def metrics_delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """What a run added: per histogram its non-cumulative buckets (only the non-empty ones), count and sum; tokens by
    kind. A metric the server does not expose stays None."""
    out: dict[str, Any] = {key: None if after.get(key) is None else
                           prom.histogram_delta(before.get(key), after[key], keep_empty=False) for key in HISTOGRAMS}
    out["tokens"] = None if after.get("tokens") is None else prom.counter_delta(before.get("tokens"), after["tokens"])
    return out
