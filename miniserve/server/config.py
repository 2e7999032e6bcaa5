"""ServerConfig: every knob of the HTTP service in one validated place, readable from MINISERVE_* variables."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from miniserve.tutor.memory import default_db_path  # the agent's own default, so CLI and server share one file

# Where `miniserve serve` listens and `miniserve loadtest` sends by default: one place, so the two always agree.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"

Mode = Literal["unbatched", "static", "continuous"]
MODES: tuple[str, ...] = ("unbatched", "static", "continuous")

# Measured on 2 cores shared with the load generator (closed loop c=50, 500 requests; bench/test_server_tuning.py
# re-measures these in every sweep):
# - torch threads, one run per variant: unbatched 1 worker x 1 thread 36.3 req/s | 1 x 2: 23.1 | 2 x 1: 36.4 |
#   4 x 1: 33.4; static (8, 20) 1 thread 98.0, 2 threads 87.7 | (32, 50) 1 thread 173.0, 2 threads 199.9. A second
#   intra-op thread hurts unbatched and mid-size batches and helps only the largest; one thread is also the choice
#   that cannot collapse when another process holds a core.
# - workers, all servers up at once and runs interleaved round-robin (3 rounds, median req/s): unbatched 2 workers
#   51.8, 1 worker 49.8; static 1 -> 2 batches at once: (4, 10) 86.0 -> 99.4 | (8, 20) 116.7 -> 151.7 |
#   (16, 20) 173.4 -> 271.0 | (32, 50) 228.6 -> 281.6; max_batch=1: 51.7 -> 50.3. Two model calls at once let one
#   run kernels while the other holds the GIL for Python work, for single requests and batches alike; 4 only add
#   contention. Both modes therefore run the same executor (2 calls at once), and differ only in batching.
# Continuous: not measured yet; one thread like the others (it cannot collapse when another process holds a core,
# and the event loop, which feeds the engine between steps, keeps the second core).
DEFAULT_TORCH_THREADS: dict[str, int] = {"unbatched": 1, "static": 1, "continuous": 1}
# Model calls running at once: unbatched requests, or static batches (each its own engine loop over one queue).
# Continuous batching runs one engine loop over one KV cache: its concurrency is max_running rows, not workers.
DEFAULT_WORKERS: dict[str, int] = {"unbatched": 2, "static": 2, "continuous": 1}


@dataclass(slots=True)
class ServerConfig:
    mode: Mode = "unbatched"
    # static mode: a batch closes at max_batch requests or max_wait_ms after its first request arrived
    max_batch: int = 8
    max_wait_ms: float = 20.0
    max_queue: int = 256  # static: requests waiting for a batch; continuous: sentences waiting for a row; beyond -> 503
    workers: int | None = None  # model calls at once (unbatched: requests, static: batches); None: DEFAULT_WORKERS
    # continuous mode: max_running sentences decode together, one KV-cache row each (reserved at start-up); one
    # iteration prefills arrivals of at most max_prefill_tokens prompt tokens (a free row always takes the head)
    max_running: int = 32
    max_prefill_tokens: int = 512
    # unbatched mode
    max_inflight: int = 256  # accepted /correct requests (queued in the pool + running); beyond it -> 503
    torch_threads: int | None = None  # None: DEFAULT_TORCH_THREADS[mode]
    request_timeout_s: float = 30.0  # from the handler's start to the answer; past it -> 504
    max_body_bytes: int = 65536
    retry_after_s: int = 1  # Retry-After sent with 503 overload answers
    ready_high_water: float = 0.8  # /readyz says 503 once queue (or in-flight) >= this fraction of its bound
    db_path: str = field(default_factory=default_db_path)
    weights_dir: str | None = None  # None: the shipped miniserve/tutor/weights

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.workers is None:
            self.workers = DEFAULT_WORKERS[self.mode]
        for name in ("max_batch", "max_queue", "workers", "max_inflight", "max_body_bytes", "max_running",
                     "max_prefill_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.mode == "static" and self.max_queue < self.max_batch:
            # a queue shorter than a batch could never fill one: every batch would wait the full max_wait
            raise ValueError(f"max_queue ({self.max_queue}) must be >= max_batch ({self.max_batch}) in static mode")
        if self.mode == "continuous" and self.workers != 1:
            # one engine loop owns the KV cache; a second would need its own cache and split the rows
            raise ValueError(f"workers must be 1 in continuous mode (one engine loop; its concurrency is "
                             f"max_running={self.max_running} rows), got {self.workers}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s must be > 0, got {self.request_timeout_s}")
        if self.retry_after_s < 0:
            raise ValueError(f"retry_after_s must be >= 0, got {self.retry_after_s}")
        if not 0 < self.ready_high_water <= 1:
            raise ValueError(f"ready_high_water must be in (0, 1], got {self.ready_high_water}")
        if self.torch_threads is None:
            self.torch_threads = DEFAULT_TORCH_THREADS[self.mode]
        elif self.torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1, got {self.torch_threads}")
        if not self.db_path:
            raise ValueError("db_path must not be empty")

    @property
    def admission_bound(self) -> int:
        """How many /correct requests (continuous: sentences) may wait for the model before new ones get 503."""
        return self.max_queue if self.mode in ("static", "continuous") else self.max_inflight

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerConfig:
        """Defaults overridden by MINISERVE_<FIELD_UPPER> (e.g. MINISERVE_MODE=static MINISERVE_MAX_BATCH=16),
        then by `overrides` whose value is not None (command-line flags). Built in one step, so mode-dependent
        defaults (torch_threads) follow the final mode."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f"MINISERVE_{f.name.upper()}")
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _parse(f.name, str(f.type), raw.strip())
        names = {f.name for f in dataclasses.fields(cls)}
        for name, value in overrides.items():
            if name not in names:
                raise TypeError(f"ServerConfig has no field {name!r}")
            if value is not None:
                values[name] = value
        return cls(**values)


def _parse(name: str, type_text: str, raw: str) -> Any:
    # With `from __future__ import annotations` field types are strings; the set used here is small and fixed.
    try:
        if type_text.startswith("int"):
            return int(raw)
        if type_text.startswith("float"):
            return float(raw)
    except ValueError:
        raise ValueError(f"MINISERVE_{name.upper()}={raw!r} is not a valid {type_text.split(' ')[0]}") from None
    return raw
