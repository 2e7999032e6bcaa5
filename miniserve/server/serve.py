"""`miniserve serve`: the ServerConfig from env + flags, and uvicorn tuned for measurement.

uvloop + httptools are the fastest stock loop and parser; the access log is off because formatting and writing a
line per request costs measurable throughput at the rates the sweep runs (use /metrics instead).
"""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType

from miniserve.server.config import DEFAULT_HOST, DEFAULT_PORT, ServerConfig

log = logging.getLogger("miniserve.server.serve")

# cli flag (argparse dest) -> ServerConfig field; a flag left at None keeps the env/default value.
FLAG_FIELDS = ("mode", "max_batch", "max_wait_ms", "max_queue", "workers", "max_inflight", "max_running",
               "max_prefill_tokens", "torch_threads", "request_timeout_s")
# uvicorn's own exit code when the app failed to start (e.g. the model did not load).
STARTUP_FAILURE = 3
# Every request ends by its deadline (504), so whatever still runs this long after it is stuck: cancel, don't hang.
GRACEFUL_MARGIN_S = 5.0


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig.from_env(**{name: getattr(args, name, None) for name in FLAG_FIELDS})


def uvicorn_config(config: ServerConfig, host: str, port: int) -> object:
    import uvicorn

    from miniserve.server.app import create_app

    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return uvicorn.Config(
        create_app(config, listen=listen),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",  # the model loads there; without it every request would be a 503
        access_log=False,
        timeout_graceful_shutdown=config.request_timeout_s + GRACEFUL_MARGIN_S,
        log_level="info",
    )


def _graceful_done(sig: int, frame: FrameType | None) -> None:
    # uvicorn captures SIGTERM/SIGINT while serving, shuts down gracefully (in-flight requests answered, lifespan
    # shutdown drains the scheduler), then restores the previous handlers and re-raises the signal. With the
    # default handler that re-raise would kill us with -15 after a clean shutdown; this handler makes it a no-op,
    # so a completed graceful shutdown exits 0.
    log.info("signal %d after graceful shutdown: exiting normally", sig)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    config = config_from_args(args)
    host = getattr(args, "host", None) or DEFAULT_HOST
    port = getattr(args, "port", None) or DEFAULT_PORT
    server = uvicorn.Server(uvicorn_config(config, host, port))  # type: ignore[arg-type]
    previous = {sig: signal.signal(sig, _graceful_done) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        return STARTUP_FAILURE
    return 0
