"""Lab 02 acceptance: one test per criterion (per configuration where the criterion is per configuration), each
asserting the verdict miniserve.lab.criteria computed from this session's sweep -- the verdicts the manifest records.
The rules and their thresholds live in miniserve/lab/criteria.py; the messages name the configuration and numbers."""

from __future__ import annotations

import pytest

from miniserve.lab import criteria


def verdict(judged, criterion: str, config: str | None = None) -> criteria.Verdict:
    if judged.problem:
        pytest.fail(judged.problem, pytrace=False)
    key = None if config == "none" else config
    found = [v for v in judged.verdicts if v.criterion == criterion and (config is None or v.config == key)]
    if not found:
        pytest.fail(f"no {criterion} verdict for {config or 'the sweep'} in {judged.source}", pytrace=False)
    return found[0]


def check(v: criteria.Verdict) -> None:
    if not v.passed and v.inconclusive:
        pytest.xfail(f"inconclusive, {v.criterion}: {v.message}")
    if not v.passed:
        pytest.fail(f"{v.criterion}: {v.message}", pytrace=False)


def test_throughput_at_least_1_5x_baseline(judged, gain_config: str) -> None:
    """Every static max_batch >= 4 serves >= 1.5x the unbatched baseline's closed-loop throughput."""
    check(verdict(judged, "throughput_gain", gain_config))


def test_p95_above_baseline_at_same_offered_load(judged, gain_config: str) -> None:
    """Every static max_batch >= 4 pays for its throughput in latency: open-loop p95 above the baseline's at the
    same Poisson rate (the judged load, one fifth of the baseline's throughput by default)."""
    check(verdict(judged, "p95_above_baseline_at_same_load", gain_config))


def test_throughput_saturates(judged) -> None:
    """The throughput curve has a knee inside the sweep (see criteria.saturation for the exact definition)."""
    check(verdict(judged, "saturation"))


def test_every_request_returned_200(judged, sweep_config: str) -> None:
    """No timeout, 503 or error in any closed- or open-loop run of this configuration, and every run happened."""
    check(verdict(judged, "all_requests_ok", sweep_config))


def test_max_batch_1_within_15_percent_of_baseline(judged) -> None:
    """Static batching with max_batch=1 costs only scheduler overhead."""
    check(verdict(judged, "max_batch_1_matches_baseline"))


def test_load_generator_ceiling_10x_best_throughput(judged) -> None:
    """The sweep measured the server, not the client: the generator alone goes >= 10x faster."""
    check(verdict(judged, "loadgen_ceiling"))
