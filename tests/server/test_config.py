"""ServerConfig: defaults, env parsing, flag overrides, validation."""

from __future__ import annotations

import argparse

import pytest

from miniserve.server.config import DEFAULT_TORCH_THREADS, DEFAULT_WORKERS, ServerConfig
from miniserve.tutor.memory import default_db_path
from miniserve.server.serve import config_from_args


def test_defaults_follow_the_mode():
    assert ServerConfig().torch_threads == 1  # unbatched: workers share the cores
    assert ServerConfig(mode="static").torch_threads == DEFAULT_TORCH_THREADS["static"]
    assert (ServerConfig().workers, ServerConfig(mode="static").workers) == (DEFAULT_WORKERS["unbatched"],
                                                                             DEFAULT_WORKERS["static"])
    assert ServerConfig(mode="static", workers=3).workers == 3
    assert ServerConfig().max_body_bytes == 65536
    assert ServerConfig().db_path == default_db_path()


def test_from_env_reads_typed_fields():
    cfg = ServerConfig.from_env({"MINISERVE_MODE": "static", "MINISERVE_MAX_BATCH": "16", "MINISERVE_MAX_WAIT_MS":
                                 "2.5", "MINISERVE_MAX_QUEUE": "64", "MINISERVE_WEIGHTS_DIR": "/w", "OTHER": "x",
                                 "MINISERVE_WORKERS": " "})
    assert (cfg.mode, cfg.max_batch, cfg.max_wait_ms, cfg.max_queue, cfg.weights_dir) == ("static", 16, 2.5, 64, "/w")
    assert cfg.workers == DEFAULT_WORKERS["static"]  # blank means unset
    assert cfg.torch_threads == DEFAULT_TORCH_THREADS["static"]


def test_flags_override_env_and_mode_defaults_follow_the_final_mode(monkeypatch):
    monkeypatch.setenv("MINISERVE_MODE", "unbatched")
    monkeypatch.setenv("MINISERVE_MAX_BATCH", "4")
    args = argparse.Namespace(mode="static", max_batch=None, max_wait_ms=None, max_queue=None, workers=None,
                              torch_threads=None, host="127.0.0.1", port=0)
    cfg = config_from_args(args)  # flags absent from args (max_inflight) count as unset
    assert cfg.mode == "static" and cfg.max_batch == 4 and cfg.torch_threads == DEFAULT_TORCH_THREADS["static"]


@pytest.mark.parametrize(("env", "words"), [
    ({"MINISERVE_MAX_BATCH": "eight"}, "MINISERVE_MAX_BATCH='eight' is not a valid int"),
    ({"MINISERVE_MODE": "dynamic"}, "mode must be one of"),
    ({"MINISERVE_MAX_BATCH": "0"}, "max_batch must be >= 1"),
    ({"MINISERVE_MODE": "static", "MINISERVE_MAX_BATCH": "16", "MINISERVE_MAX_QUEUE": "8"}, "must be >= max_batch"),
    ({"MINISERVE_REQUEST_TIMEOUT_S": "0"}, "request_timeout_s must be > 0"),
    ({"MINISERVE_READY_HIGH_WATER": "1.5"}, "ready_high_water must be in (0, 1]"),
    ({"MINISERVE_TORCH_THREADS": "0"}, "torch_threads must be >= 1"),
])
def test_bad_values_are_rejected_with_the_name(env, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        ServerConfig.from_env(env)


def test_unknown_override_is_a_type_error():
    with pytest.raises(TypeError, match="no field 'max_batches'"):
        ServerConfig.from_env({}, max_batches=3)
