"""What a lab-02 sweep is asked to run: its server configurations and the load each gets.

`SweepConfig` is one server configuration (lab 03 uses it too, with continuous batching); `SweepParams` the sweep's
load, recorded in the benchmark JSON's machine_info so a report can tell a lab run from a quick look. Stdlib only:
the top-level conftest imports it on every pytest run, to parse the command line.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from miniserve.lab.workloads import LAB02_PAYLOADS

# The lab's configurations, plus (64, 50): the saturation criterion asks what a larger max_batch than the best one
# gains, and on this machine the best is often the largest of the lab's list, 32.
LAB_CONFIGS = "baseline,1:0,2:10,4:10,8:20,16:20,32:50,64:50"
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
