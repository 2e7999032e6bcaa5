"""Continuous mode's settings: defaults, MINISERVE_* variables, `miniserve serve` flags, validation, start-up line."""

from __future__ import annotations

import pytest

from miniserve.cli import build_parser
from miniserve.server.config import ServerConfig
from miniserve.server.serve import config_from_args
from miniserve.server.service import startup_line


def test_defaults():
    cfg = ServerConfig(mode="continuous")
    assert (cfg.max_running, cfg.max_prefill_tokens, cfg.max_queue) == (32, 512, 256)
    assert (cfg.workers, cfg.torch_threads) == (1, 1)
    assert cfg.admission_bound == cfg.max_queue  # /readyz compares the queue (sentences) with max_queue


def test_env_vars_set_the_mode_and_its_settings():
    cfg = ServerConfig.from_env({"MINISERVE_MODE": "continuous", "MINISERVE_MAX_RUNNING": "8",
                                 "MINISERVE_MAX_PREFILL_TOKENS": "64", "MINISERVE_MAX_QUEUE": "40"})
    assert (cfg.mode, cfg.max_running, cfg.max_prefill_tokens, cfg.max_queue) == ("continuous", 8, 64, 40)


def test_flags_override_env(monkeypatch):
    monkeypatch.setenv("MINISERVE_MAX_RUNNING", "8")
    monkeypatch.setenv("MINISERVE_MAX_PREFILL_TOKENS", "64")
    args = build_parser().parse_args(["serve", "--mode", "continuous", "--max-running", "4", "--max-queue", "9"])
    cfg = config_from_args(args)
    assert (cfg.mode, cfg.max_running, cfg.max_queue, cfg.max_prefill_tokens) == ("continuous", 4, 9, 64)
    args = build_parser().parse_args(["serve", "--mode", "continuous", "--max-prefill-tokens", "100"])
    assert config_from_args(args).max_prefill_tokens == 100


@pytest.mark.parametrize(("env", "words"), [
    ({"MINISERVE_MAX_RUNNING": "0"}, "max_running must be >= 1, got 0"),
    ({"MINISERVE_MAX_RUNNING": "many"}, "MINISERVE_MAX_RUNNING='many' is not a valid int"),
    ({"MINISERVE_MAX_PREFILL_TOKENS": "-1"}, "max_prefill_tokens must be >= 1, got -1"),
    ({"MINISERVE_MODE": "continuous", "MINISERVE_MAX_QUEUE": "0"}, "max_queue must be >= 1, got 0"),
    ({"MINISERVE_MODE": "continuous", "MINISERVE_WORKERS": "2"}, "workers must be 1 in continuous mode"),
])
def test_bad_values_are_rejected_with_the_name(env, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        ServerConfig.from_env(env)


def test_static_only_constraints_do_not_apply():
    # max_batch is static's: a continuous queue shorter than it is fine
    assert ServerConfig(mode="continuous", max_queue=2, max_batch=8).max_queue == 2


def test_startup_line_names_the_continuous_settings():
    cfg = ServerConfig(mode="continuous", max_running=6, max_queue=50, max_prefill_tokens=128, db_path=":memory:")
    line = startup_line(cfg, "127.0.0.1:1", "agent=x", 0.5)
    assert line.startswith("miniserve ready: mode=continuous max_running=6 max_queue=50 max_prefill_tokens=128 "
                           "torch_threads=1 ")
    assert "max_batch" not in line and "max_inflight" not in line and "workers" not in line


def test_cli_offers_the_mode():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--mode", "dynamic"])
    assert build_parser().parse_args(["serve", "--mode", "continuous"]).mode == "continuous"
