"""The batching sweep's data: which configurations under which load, and the per-configuration result table.

The benchmarks (bench/test_sweep.py) write one record per test into pytest-benchmark's `extra_info`: a closed-loop
record and an open-loop record per configuration, and one calibration record. `SweepResults.from_benchmarks` turns
those records -- live from the pytest session or read back from the saved benchmark JSON, the same dicts either way --
into one row per configuration (medians over runs with their min/max), which both the acceptance criteria
(criteria.py) and the report (report.py) read. Stdlib only: the top-level conftest imports it on every pytest run.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from miniserve.lab import prom
from miniserve.lab.workloads import LAB02_PAYLOADS

# The lab's configurations, plus (64, 50): the saturation criterion asks what a larger max_batch than the best one
# gains, and on this machine the best is often the largest of the lab's list, 32.
LAB_CONFIGS = "baseline,1:0,2:10,4:10,8:20,16:20,32:50,64:50"
KINDS = ("closed_loop", "open_loop", "calibration")
BASELINE = "baseline"
CONTINUOUS_PREFIX = "cont:"


@dataclass(slots=True, frozen=True)
class SweepConfig:
    """One server configuration: the unbatched baseline, static batching with (max_batch, max_wait_ms), or
    continuous batching with max_running rows (and optionally a prefill token budget per iteration; lab 03)."""

    mode: str
    max_batch: int | None = None
    max_wait_ms: float | None = None
    max_running: int | None = None
    max_prefill_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.mode != "continuous" and (self.max_running is not None or self.max_prefill_tokens is not None):
            raise ValueError(f"max_running / max_prefill_tokens are continuous-mode settings, not {self.mode}'s")
        if self.mode == "unbatched":
            if self.max_batch is not None or self.max_wait_ms is not None:
                raise ValueError("the unbatched baseline takes no max_batch / max_wait_ms")
        elif self.mode == "static":
            if self.max_batch is None or self.max_batch < 1:
                raise ValueError(f"static max_batch must be >= 1, got {self.max_batch}")
            if self.max_wait_ms is None or self.max_wait_ms < 0:
                raise ValueError(f"static max_wait_ms must be >= 0, got {self.max_wait_ms}")
        elif self.mode == "continuous":
            if self.max_batch is not None or self.max_wait_ms is not None:
                raise ValueError("continuous batching takes max_running, not max_batch / max_wait_ms")
            if self.max_running is None or self.max_running < 1:
                raise ValueError(f"continuous max_running must be >= 1, got {self.max_running}")
            if self.max_prefill_tokens is not None and self.max_prefill_tokens < 1:
                raise ValueError(f"continuous max_prefill_tokens must be >= 1, got {self.max_prefill_tokens}")
        else:
            raise ValueError(f"mode must be 'unbatched', 'static' or 'continuous', got {self.mode!r}")

    @classmethod
    def parse(cls, token: str) -> SweepConfig:
        """'baseline', 'MAX_BATCH:MAX_WAIT_MS' (static, e.g. '8:20') or 'cont:MAX_RUNNING[:MAX_PREFILL_TOKENS]'
        (continuous, e.g. 'cont:16')."""
        token = token.strip()
        if token == BASELINE:
            return cls("unbatched")
        if token.startswith(CONTINUOUS_PREFIX):
            rows, _, budget = token[len(CONTINUOUS_PREFIX):].partition(":")
            try:
                return cls("continuous", max_running=int(rows), max_prefill_tokens=int(budget) if budget else None)
            except ValueError as e:
                if "continuous" in str(e):
                    raise
                raise ValueError(f"bad continuous configuration {token!r}: use cont:MAX_RUNNING or "
                                 "cont:MAX_RUNNING:MAX_PREFILL_TOKENS, e.g. cont:16") from None
        batch, sep, wait = token.partition(":")
        try:
            if not sep:
                raise ValueError
            max_batch, max_wait_ms = int(batch), float(wait)
        except ValueError:
            raise ValueError(f"bad sweep configuration {token!r}: use 'baseline' or MAX_BATCH:MAX_WAIT_MS, "
                             "e.g. 8:20") from None
        return cls("static", max_batch, max_wait_ms)  # range errors name the field

    @property
    def is_baseline(self) -> bool:
        return self.mode == "unbatched"

    @property
    def is_continuous(self) -> bool:
        return self.mode == "continuous"

    @property
    def rows(self) -> int:
        """Requests one model call can carry: max_batch (static), max_running (continuous), 1 (the baseline)."""
        return self.max_batch or self.max_running or 1

    @property
    def key(self) -> str:
        """Stable id used in test ids, records, CSV rows: 'baseline', 'static-8-20' or 'continuous-16'."""
        if self.is_continuous:
            budget = f"-p{self.max_prefill_tokens}" if self.max_prefill_tokens is not None else ""
            return f"continuous-{self.max_running}{budget}"
        return BASELINE if self.is_baseline else f"static-{self.max_batch}-{self.max_wait_ms:g}"

    @property
    def token(self) -> str:
        """The configuration as the command line writes it: 'baseline', '8:20', 'cont:16'."""
        if self.is_continuous:
            budget = f":{self.max_prefill_tokens}" if self.max_prefill_tokens is not None else ""
            return f"{CONTINUOUS_PREFIX}{self.max_running}{budget}"
        return BASELINE if self.is_baseline else f"{self.max_batch}:{self.max_wait_ms:g}"

    @property
    def label(self) -> str:
        """What a person reads in messages and legends."""
        if self.is_baseline:
            return "unbatched baseline"
        if self.is_continuous:
            budget = f", max_prefill_tokens={self.max_prefill_tokens}" if self.max_prefill_tokens is not None else ""
            return f"continuous max_running={self.max_running}{budget}"
        return f"static max_batch={self.max_batch}, max_wait={self.max_wait_ms:g} ms"

    def server_args(self) -> list[str]:
        if self.is_baseline:
            return ["--mode", "unbatched"]
        if self.is_continuous:
            budget = [] if self.max_prefill_tokens is None else ["--max-prefill-tokens", str(self.max_prefill_tokens)]
            return ["--mode", "continuous", "--max-running", str(self.max_running), *budget]
        return ["--mode", "static", "--max-batch", str(self.max_batch), "--max-wait-ms", f"{self.max_wait_ms:g}"]


def parse_configs(text: str) -> list[SweepConfig]:
    """Comma-separated configurations; the baseline must be among them and is moved first (it sets the open-loop
    rate of all the others, so it has to be measured before them)."""
    configs = [SweepConfig.parse(t) for t in text.split(",") if t.strip()]
    if cont := [c.token for c in configs if c.is_continuous]:
        raise ValueError(f"lab 02 sweeps the baseline and static batching; continuous configurations "
                         f"({', '.join(cont)}) belong to lab 03 (--lab03-configs)")
    keys = [c.key for c in configs]
    if dup := sorted({k for k in keys if keys.count(k) > 1}):
        raise ValueError(f"duplicate sweep configurations: {', '.join(dup)}")
    if BASELINE not in keys:
        raise ValueError("the sweep needs the 'baseline' configuration: it is what every criterion compares with")
    return sorted(configs, key=lambda c: not c.is_baseline)


def parse_loads(text: str) -> tuple[float, ...]:
    """Comma-separated open-loop loads, e.g. '0.2,0.5' (SweepParams checks their range)."""
    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"open-loop loads are comma-separated fractions like 0.2,0.5, got {text!r}") from None


@dataclass(slots=True)
class SweepParams:
    """The load each configuration gets. Defaults are the lab's; the command line can shrink them for a quick run."""

    concurrency: int = 50
    total: int = 500  # closed-loop requests per run
    runs: int = 3
    configs: str = LAB_CONFIGS
    open_loop_duration_s: float = 15.0
    # Open-loop offered loads, as fractions of the baseline's median closed-loop throughput. The p95 criterion is
    # judged at the first: one fifth, the measured example (20 of ~100 req/s), where the unbatched server
    # is not yet queueing. Half (the wording) is measured and reported beside it: there the baseline's own
    # queueing tail is as long as a batch's wait, and the verdict flips between sweeps of the same code.
    open_loop_loads: tuple[float, ...] = (0.2, 0.5)
    calibration_concurrency: int = 50
    calibration_total: int = 5000
    # The payload file, relative to the repository root. None: a sweep recorded before the field existed, which
    # sent LAB02_PAYLOADS (its reports regenerate byte for byte).
    payloads: str | None = LAB02_PAYLOADS

    def __post_init__(self) -> None:
        for name in ("concurrency", "total", "runs", "calibration_concurrency", "calibration_total"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (math.isfinite(self.open_loop_duration_s) and self.open_loop_duration_s > 0):  # inf: no run ends
            raise ValueError(f"open_loop_duration_s must be finite and > 0, got {self.open_loop_duration_s}")
        self.open_loop_loads = tuple(float(f) for f in self.open_loop_loads)  # a JSON list reads back as a tuple
        if not self.open_loop_loads or any(not 0 < f <= 1 for f in self.open_loop_loads):
            raise ValueError(f"open_loop_loads must be fractions in (0, 1], got {self.open_loop_loads}")
        if len(set(self.open_loop_loads)) != len(self.open_loop_loads):
            raise ValueError(f"duplicate open_loop_loads: {self.open_loop_loads}")
        parse_configs(self.configs)  # fail at option parsing, not half-way through the sweep

    @property
    def config_list(self) -> list[SweepConfig]:
        return parse_configs(self.configs)

    @property
    def judged_load(self) -> float:
        """The open-loop load the p95 criterion is judged at (the others are reported)."""
        return self.open_loop_loads[0]

    def is_lab_default(self) -> bool:
        mine = self.to_dict()
        mine.setdefault("payloads", LAB02_PAYLOADS)  # an older sweep: it sent the same file
        return mine == SweepParams().to_dict()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.payloads is None:
            del d["payloads"]  # as the sweep recorded it (older reports regenerate byte for byte)
        d["configs"] = ",".join(c.key if c.is_baseline else f"{c.max_batch}:{c.max_wait_ms:g}"
                                for c in self.config_list)  # normalized, so equal sweeps compare equal
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SweepParams:
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        if "open_loop_loads" not in d and "open_loop_rate_fraction" in d:  # sweeps before two open-loop loads
            kwargs["open_loop_loads"] = (d["open_loop_rate_fraction"],)
        if d and "payloads" not in d:
            kwargs["payloads"] = None
        return cls(**kwargs)


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


def stale_reason(data: Mapping[str, Any], head: str | None, max_age_h: float,
                 now: datetime | None = None) -> str | None:
    """Why a saved sweep JSON may not be judged as the current code's result (None: it may): it must carry the
    current git commit and be at most max_age_h hours old."""
    commit = (data.get("commit_info") or {}).get("id")
    if head is None:
        return "cannot read the current git commit to check that the JSON belongs to it"
    if commit != head:
        return f"it was measured at commit {commit}, the tree is at {head}: the numbers describe other code"
    raw = data.get("datetime")
    if not raw:
        return "it carries no datetime"
    age_h = ((now or datetime.now(timezone.utc)) - datetime.fromisoformat(raw)).total_seconds() / 3600
    if age_h > max_age_h:
        return f"it is {age_h:.1f} h old (limit --sweep-max-age-hours {max_age_h:g})"
    return None


# -- which lab a benchmark record belongs to ---------------------------------------------------------------------------

LAB_02, LAB_03 = "02", "03"
LABS = (LAB_02, LAB_03)
# machine_info["miniserve"] keys holding a lab's parameters: lab 02's predates lab 03, hence the plain "sweep"
LAB_PARAMS_KEY = {LAB_02: "sweep", LAB_03: "lab03"}


def benchmark_lab(entry: Mapping[str, Any]) -> str:
    """Lab 03's records say so (extra_info["lab"] == "03"); everything else -- lab 02's sweep, its offline and
    server-tuning benchmarks, and every JSON saved before lab 03 -- is lab 02's."""
    return str((entry.get("extra_info") or {}).get("lab") or LAB_02)


def labs_in(data: Mapping[str, Any]) -> list[str]:
    """The labs a benchmark JSON holds records of, in lab order."""
    found = {benchmark_lab(b) for b in data.get("benchmarks") or []}
    return [lab for lab in LABS if lab in found]


def split_by_lab(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """One benchmark document per lab present: that lab's benchmarks and parameters only, everything else as is.
    A document of one lab comes back unchanged (lab 02's reports stay byte for byte what they were)."""
    labs = labs_in(data)
    if len(labs) <= 1:
        return {lab: dict(data) for lab in labs}
    out = {}
    for lab in labs:
        doc = dict(data)
        doc["benchmarks"] = [b for b in data.get("benchmarks") or [] if benchmark_lab(b) == lab]
        machine = dict(data.get("machine_info") or {})
        info = dict(machine.get("miniserve") or {})
        for other in LABS:
            if other != lab:
                info.pop(LAB_PARAMS_KEY[other], None)
                info.pop(f"lab{other}_workload", None)
        machine["miniserve"] = info
        doc["machine_info"] = machine
        out[lab] = doc
    return out
