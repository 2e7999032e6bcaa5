"""A load run's summary: throughput over the 200s, interpolated percentiles, the generator's own send lag."""

from __future__ import annotations

import json
import math

import pytest

from miniserve.lab.latency import RequestRecord, summarize


def test_summarize_known_records() -> None:
    # 200s with latencies 10, 20, ..., 100 ms; one 503 and one transport error that must not enter the percentiles
    records = [RequestRecord(i * 0.1, i * 0.1, (i + 1) / 100, 200) for i in range(10)]
    records += [RequestRecord(0.0, 0.0, 5.0, 503), RequestRecord(0.0, 0.0, 9.0, 0)]
    s = summarize(records, wall_s=2.0)
    assert s.count == 12 and s.by_status == {200: 10, 503: 1, 0: 1}
    assert s.throughput_rps == pytest.approx(5.0)  # 10 200s / 2 s
    assert s.p50_ms == pytest.approx(55.0)  # linear interpolation between 50 and 60
    assert s.p95_ms == pytest.approx(95.5)
    assert s.p99_ms == pytest.approx(99.1)
    assert s.max_ms == pytest.approx(100.0) and s.mean_ms == pytest.approx(55.0)
    assert s.send_lag_p99_ms == 0.0


def test_summarize_derives_wall_and_lag_and_handles_no_successes() -> None:
    records = [RequestRecord(0.0, 0.0, 0.5, 200), RequestRecord(1.0, 1.25, 1.0, 200)]
    s = summarize(records)
    assert s.wall_s == pytest.approx(2.0)  # run start -> last completion (scheduled 1.0 + latency 1.0)
    assert s.throughput_rps == pytest.approx(1.0)
    assert s.send_lag_p99_ms == pytest.approx(247.5)
    empty = summarize([RequestRecord(0.0, 0.0, 1.0, 0)], wall_s=1.0)
    assert empty.throughput_rps == 0.0 and math.isnan(empty.p95_ms)
    assert empty.to_dict()["p95_ms"] is None and json.dumps(empty.to_dict())  # valid JSON, no NaN
